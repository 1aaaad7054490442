"""Where a document's references point: its relative links resolved against its own folder.

Owns one rule (docs/documents-and-resources.md, "Relative references"):

- ``#part``: the item's own page;
- ``http:``/``https:`` and ``//host/...``: kept as they are;
- ``/img/x.png`` (root-relative): against ``site.source_base_url`` (the site
  the content was written for) when it is set, else against the content
  root as served at ``/files/``;
- ``figure.png``, ``../images/x.png`` (relative): against the document's own
  folder, as served at ``/files/``; a reference to another *document*
  (``other.md``, or a name without extension such as Jekyll's
  ``{% post_url 2024-01-02-name %}`` gives) goes to that document's item
  page instead, since documents are never served as files;
- a relative reference that climbs out of the content root is left relative
  to the item page, and ``feedsvc check`` names it.

``local_references`` lists what ``feedsvc check`` verifies: every local
reference of a body and of the ``image`` front matter, with the content path
it points at. Nothing here touches the file system.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import lxml.html  # type: ignore[import-untyped]  # no stubs; lxml-stubs is not a dependency

from feedsvc.classify import DEFAULT_RULES, ContentRules, extension
from feedsvc.normalise.urls import absolute_http_url, files_url, id_from_path, item_page_url

# Attributes holding one URL, and those holding a srcset (HTML §4.8.4.2).
URL_ATTRIBUTES = frozenset({"src", "href", "poster"})
SRCSET_ATTRIBUTES = frozenset({"srcset"})
_SRCSET_URL = re.compile(r"\s*([^\s,][^\s]*)")


@dataclass(frozen=True, slots=True)
class Target:
    """A local reference: as written, and the content path it points at (None: outside)."""

    reference: str
    path: str | None


@dataclass(frozen=True, slots=True)
class References:
    """How the relative references of the document at ``path`` resolve."""

    path: str  # the document, relative to the content root
    item_url: str
    base_url: str  # site.base_url
    source_base_url: str = ""  # site.source_base_url ("" when not set)
    rules: ContentRules = DEFAULT_RULES

    def target(self, reference: str) -> Target | None:
        """The content path ``reference`` points at, if it is local (else None)."""
        ref = reference.strip()
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or not parts.path:
            return None  # absolute, another host, or only a query/fragment
        if parts.path.startswith("/"):
            if self.source_base_url:
                return None  # on the site the content was written for
            joined = parts.path.lstrip("/")
        else:
            joined = posixpath.join(posixpath.dirname(self.path), parts.path)
        normal = posixpath.normpath(unquote(joined))
        if normal == ".." or normal.startswith("../"):
            return Target(ref, None)
        return Target(ref, "" if normal == "." else normal)

    def resolve(self, reference: str) -> str | None:
        """``reference`` as an absolute http(s) URL, or None when it must be dropped."""
        ref = reference.strip()
        try:
            parts = urlsplit(ref)
        except ValueError:
            return None
        if parts.path.startswith("/") and not parts.netloc and self.source_base_url:
            return absolute_http_url(ref.lstrip("/"), self.source_base_url + "/")
        target = self.target(ref)
        if target is None or target.path is None:
            return absolute_http_url(ref, self.item_url)
        suffix = (f"?{parts.query}" if parts.query else "") + (
            f"#{parts.fragment}" if parts.fragment else ""
        )
        name = PurePosixPath(target.path).name
        page = not parts.path.endswith("/") and not extension(name)  # `{% post_url x %}`
        if name and (page or self.rules.by_name(name) == "document"):
            # Documents are never served as files: link to the item they make.
            return absolute_http_url(
                item_page_url(id_from_path(target.path), self.base_url) + suffix
            )
        folder = target.path == "" or parts.path.endswith("/")
        url = files_url(target.path, self.base_url) + ("/" if folder and target.path else "")
        return absolute_http_url(url + suffix)

    def resolve_srcset(self, value: str) -> str | None:
        """Each URL of a ``srcset`` resolved (HTML §4.8.4.2.1); unusable candidates dropped."""
        candidates: list[str] = []
        for url, descriptor in _srcset(value):
            resolved = self.resolve(url)
            if resolved is not None:
                candidates.append(f"{resolved} {descriptor}".strip())
        return ", ".join(candidates) or None


def _srcset(value: str) -> list[tuple[str, str]]:
    """(url, descriptor) pairs: a URL is a run without spaces (commas inside are
    kept, trailing ones end it); its descriptor runs to the next comma."""
    found: list[tuple[str, str]] = []
    pos = 0
    while pos < len(value):
        match = _SRCSET_URL.match(value, pos)
        if match is None:
            break
        url = match.group(1)
        pos = match.end()
        if url.endswith(","):
            found.append((url.rstrip(","), ""))
            continue
        end = value.find(",", pos)
        end = len(value) if end < 0 else end
        found.append((url, value[pos:end].strip()))
        pos = end + 1
    return found


def local_references(body_html: str, image: str | None, refs: References) -> tuple[Target, ...]:
    """Every local reference of an (unsanitised) body and of the ``image`` front
    matter, in document order, each once."""
    written: list[str] = []
    if image:
        written.append(image)
    if body_html.strip():
        root = lxml.html.fragment_fromstring(body_html, create_parent="div")
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue  # a comment or processing instruction
            for attribute, value in element.attrib.items():
                if attribute in URL_ATTRIBUTES:
                    written.append(value)
                elif attribute in SRCSET_ATTRIBUTES:
                    written.extend(url for url, _ in _srcset(value))
    targets: dict[str, Target] = {}
    for reference in written:
        target = refs.target(reference)
        if target is not None and target.reference not in targets:
            targets[target.reference] = target
    return tuple(targets.values())
