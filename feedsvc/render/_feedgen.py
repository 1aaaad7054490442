"""One adapter over feedgen for RSS and Atom: owns feedgen's quirks, not field choices.

feedgen 1.0 is convenient but has traps (listed below), each fixed
here once so that ``rss.py`` and ``atom.py`` only say which value goes where:

- ``add_entry()`` prepends: entries are always appended, in ``doc.items`` order.
- ``lastBuildDate`` / feed ``updated`` / entry ``updated`` default to now():
  every date is set from the data (``_common.feed_updated``).
- RFC 822 dates go through ``feedgen.util.formatRFC2822``, which switches the
  *process-wide* locale to C and back on every call (a race with any other
  thread): we never hand feedgen an RSS date and write ``pubDate`` and
  ``lastBuildDate`` ourselves with ``email.utils`` (locale-free).
- ``<generator>`` carries the library version: ours is a bare "feedsvc".
- The RSS channel ``<link>`` is the href of the *last* ``link()`` call: the
  self link goes first, the home page last. RSS gets only the self link as
  ``atom:link``: WebSub hub links are written after it by ``_FeedExtras``.
- Atom entry links lose ``rel`` and ``type`` (``FeedEntry.atom_entry`` shadows
  its loop variable), so an enclosure becomes a second "alternate" link, which
  RFC 4287 §4.1.2 forbids: ``entry_link`` writes Atom entry links itself.
- ``link(rel="enclosure")`` invents ``length="0"`` in RSS, which the W3C
  validator rejects: ``entry_link`` refuses it. ``content(type="CDATA")``
  writes invalid Atom and raises on ``]]>``: format modules never use it.
- Errors surface only in ``rss_str()``/``atom_str()``, for the whole feed.
  Callers pass ``xml_safe`` text and never-empty titles so it cannot happen;
  should it still, ``to_bytes`` drops the offending entries (logged) instead
  of losing the feed.

Extra markup feedgen cannot express (per-entry ``xml:lang``, Dublin Core,
Media RSS) is added through feedgen's own extension hook, on the lxml tree
feedgen builds, before it serialises: no second parse, same determinism.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from feedsvc.render._common import GENERATOR, feed_updated, line, moment, text, title, uri
from feedsvc.render.model import FeedDocument

log = logging.getLogger(__name__)

Flavour = Literal["rss", "atom"]
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ATOM = "http://www.w3.org/2005/Atom"

_EXTENSION = "feedsvc"  # the attribute feedgen gives our extension on feeds and entries
# feedgen keeps lastBuildDate in a name-mangled attribute that defaults to now()
# and has no public way to unset it (see unset_rss_last_build_date).
_RSS_LAST_BUILD = "_FeedGenerator__rss_lastBuildDate"

# An lxml element of feedgen's tree (lxml ships no type stubs; feedgen none either).
Element = Any
# (qualified tag, text, attributes) of one element added after feedgen's own.
_Extra = tuple[str, str | None, dict[str, str]]


# feedgen internals. Each is touched in exactly one function below, which
# raises naming it should a feedgen release move it; the version is pinned in
# requirements/*.lock and tests/test_feedgen_internals.py checks both.


def unset_rss_last_build_date(fg: Any) -> None:
    """Make ``rss_str()`` write no ``lastBuildDate`` of its own.

    feedgen stamps now() there and formats it with its locale-switching
    ``formatRFC2822``; ``FeedBuilder`` writes the element itself from the data.
    """
    if _RSS_LAST_BUILD not in vars(fg):
        raise RuntimeError(f"feedgen no longer has {_RSS_LAST_BUILD}; see _feedgen.py")
    vars(fg)[_RSS_LAST_BUILD] = None


def extension_of(owner: Any) -> Any:
    """Our extension's instance that feedgen made for a feed or an entry.

    ``register_extension`` (feed) and ``add_entry`` (entries) set it as an
    attribute named after the extension.
    """
    extension = getattr(owner, _EXTENSION, None)
    if not isinstance(extension, (_FeedExtras, _EntryExtras)):
        raise RuntimeError(f"feedgen no longer sets the {_EXTENSION!r} extension attribute")
    return extension


def rfc822(value: datetime) -> str:
    """RSS 2.0 date (RFC 822 as updated by RFC 1123), the item's own offset."""
    return format_datetime(moment(value))


class _FeedExtras:
    """feedgen feed extension: namespace prefixes and extra channel elements."""

    def __init__(self) -> None:
        self.namespaces: dict[str, str] = {}
        self.elements: list[_Extra] = []
        self.rss_hubs: list[str] = []

    def extend_ns(self) -> dict[str, str]:
        return dict(self.namespaces)

    def extend_rss(self, feed: Element) -> Element:
        channel = feed.find("channel")
        if channel is None:  # feedgen always builds <rss><channel>
            raise RuntimeError("feedgen built an RSS document without <channel>")
        _add_rss_hubs(channel, self.rss_hubs)
        _append(channel, self.elements)
        return feed

    def extend_atom(self, feed: Element) -> Element:
        _append(feed, self.elements)
        return feed


class _EntryExtras:
    """feedgen entry extension: attributes on the entry and extra children."""

    def __init__(self) -> None:
        self.attributes: dict[str, str] = {}
        self.elements: list[_Extra] = []

    def extend_rss(self, entry: Element) -> Element:
        return self.extend_atom(entry)

    def extend_atom(self, entry: Element) -> Element:
        for name, value in self.attributes.items():
            entry.set(name, value)
        _append(entry, self.elements)
        return entry


def _add_rss_hubs(channel: Element, hubs: list[str]) -> None:
    """WebSub §4: ``atom:link rel="hub"`` right after the channel's self link."""
    if not hubs:
        return
    atom_link = f"{{{ATOM}}}link"
    anchor = next(
        (child for child in channel if child.tag == atom_link and child.get("rel") == "self"),
        None,
    )
    if anchor is None:  # feedgen writes the self link whenever one is set
        raise RuntimeError("feedgen built an RSS channel without its self link")
    for href in reversed(hubs):
        link = anchor.makeelement(atom_link, {"href": href, "rel": "hub"})
        anchor.addnext(link)


def _append(parent: Element, elements: list[_Extra]) -> None:
    for tag, content, attributes in elements:
        child = xml_elem(tag, parent, **attributes)
        child.text = content


def with_stylesheet(document: bytes, href: str) -> bytes:
    """``document`` with an ``xml-stylesheet`` PI (W3C "Associating Style Sheets
    with XML documents" 1.0) right after the XML declaration.

    Written as bytes: feedgen serialises the root element only, so a PI added
    to its tree would not come out. The PI is part of the feed's bytes, so
    every request still gets the same bytes and the same ETag.
    """
    declaration, newline, rest = document.partition(b"\n")
    if not declaration.startswith(b"<?xml ") or not newline:
        raise RuntimeError("feedgen wrote no XML declaration; see _feedgen.py")
    pi = f'<?xml-stylesheet type="text/xsl" href={quoteattr(uri(href))}?>'
    return declaration + newline + pi.encode("utf-8") + newline + rest


class FeedBuilder:
    """One feed being built: a FeedGenerator with every default made explicit.

    ``feed`` is the FeedGenerator, for format-specific fields feedgen handles
    well (ttl, authors). Entries come from ``entry()`` only, so they are
    appended in order and carry their dates and the extension.
    """

    def __init__(
        self,
        doc: FeedDocument,
        flavour: Flavour,
        *,
        self_type: str,
        namespaces: Mapping[str, str] | None = None,
    ) -> None:
        self.doc = doc
        self.flavour = flavour
        self._entries: list[tuple[str, Any]] = []
        fg: Any = FeedGenerator()
        fg.register_extension(
            _EXTENSION,
            _FeedExtras,
            _EntryExtras,
            atom=flavour == "atom",
            rss=flavour == "rss",
        )
        self.feed = fg
        extension_of(fg).namespaces.update(namespaces or {})

        feed_title = title(doc.title, GENERATOR)
        fg.id(text(doc.feed_id).strip() or text(doc.self_url))  # RFC 4287 §4.2.6
        fg.title(feed_title)
        description = text(doc.description).strip()
        if description or flavour == "rss":  # RSS 2.0: <description> is required
            fg.description(description or feed_title)
        fg.generator(GENERATOR)  # no version, no uri: bytes survive upgrades
        # Order matters: RSS takes the channel <link> from the LAST call.
        fg.link(href=uri(doc.self_url), rel="self", type=self_type)
        # WebSub §4: every hub as rel="hub" beside the self link (the topic URL).
        hubs = [uri(hub) for hub in doc.hubs]
        if flavour == "atom":
            for hub in hubs:
                fg.link(href=hub, rel="hub")
        else:
            extension_of(fg).rss_hubs.extend(hubs)
        fg.link(href=uri(doc.home_url), rel="alternate", type="text/html")
        if doc.language:
            fg.language(line(doc.language))  # RSS <language>; Atom feed xml:lang

        updated = feed_updated(doc)
        if flavour == "atom":
            fg.updated(updated)  # RFC 4287 §4.2.15, isoformat: no locale involved
        else:
            unset_rss_last_build_date(fg)  # drop feedgen's now() and its locale switch
            self.channel_element("lastBuildDate", rfc822(updated))

    def entry(self, key: str, *, published: datetime, updated: datetime) -> Any:
        """Append an entry (never prepend) with its dates set from the data.

        ``key`` names the item in logs should the entry ever be dropped.
        """
        fe = self.feed.add_entry(order="append")
        fe.updated(moment(updated))  # Atom entry <updated>; unused by RSS
        if self.flavour == "atom":
            fe.published(moment(published))
        else:
            self.element(fe, "pubDate", rfc822(published))  # RSS 2.0 <pubDate>
        self._entries.append((key, fe))
        return fe

    def entry_link(
        self, fe: Any, href: str, *, rel: str = "alternate", media_type: str | None = None
    ) -> None:
        """An entry link that keeps its rel and type (RFC 4287 §4.2.7)."""
        if self.flavour == "rss":
            if rel != "alternate":  # feedgen would write <enclosure length="0">
                raise ValueError(f"RSS items take only their alternate link, not {rel!r}")
            fe.link(href=href)  # sets the item's <link>
            return
        attributes = {"href": href, "rel": rel}
        if media_type:
            attributes["type"] = media_type
        self.element(fe, "link", None, attributes)  # feedgen's own would drop rel/type

    def channel_element(self, tag: str, content: str) -> None:
        extension_of(self.feed).elements.append((tag, content, {}))

    def element(
        self,
        fe: Any,
        tag: str,
        content: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """Add a child element to an entry, after feedgen's own children."""
        extension_of(fe).elements.append((tag, content, dict(attributes or {})))

    def attribute(self, fe: Any, name: str, value: str) -> None:
        """Set an attribute on the entry element itself (e.g. ``xml:lang``)."""
        extension_of(fe).attributes[name] = value

    def to_bytes(self) -> bytes:
        """Serialise as pretty-printed UTF-8 XML with a declaration."""
        try:
            return self._serialise()
        except ValueError:
            if not self._drop_broken_entries():
                raise  # a feed-level problem is a programming error: surface it
            return self._serialise()

    def _serialise(self) -> bytes:
        write = self.feed.rss_str if self.flavour == "rss" else self.feed.atom_str
        result: bytes = write(pretty=True, encoding="UTF-8", xml_declaration=True)
        if self.doc.stylesheet:
            result = with_stylesheet(result, self.doc.stylesheet)
        return result

    def _drop_broken_entries(self) -> int:
        """Remove every entry feedgen cannot build; one bad item never kills a feed."""
        dropped = 0
        for key, fe in self._entries:
            try:
                fe.rss_entry() if self.flavour == "rss" else fe.atom_entry()
            except ValueError as exc:  # lxml's bad-string errors are ValueErrors too
                log.error(
                    "feed %s (%s): dropped item %s: %s",
                    self.doc.key.path_stem,
                    self.flavour,
                    key,
                    exc,
                )
                self.feed.remove_entry(fe)
                dropped += 1
        return dropped
