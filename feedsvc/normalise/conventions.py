"""Site-generator conventions: which parsed documents are not items; owns nothing else.

A Hugo or Jekyll content folder holds documents that the site generator
itself never lists as posts. feedsvc follows the same rules, so such a
folder works as it is (docs/documents-and-resources.md):

- Hugo section pages: ``_index.md`` (any document extension);
- Hugo headless bundles: ``headless: true``;
- Hugo pages kept out of lists: ``_build`` (or the older ``build``) with
  ``list: never``, ``list: local`` or ``list: false``;
- redirect stubs: front matter with ``aliases`` (Hugo) or ``redirect_to``
  (Jekyll) and no body.

``not_an_item`` only reads a ``RawDocument``; the pipeline records such a
file as skipped (never an error) and keeps it out of every feed. Hugo reads
front-matter keys without regard to case, and so does this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from feedsvc.types import RawDocument, pure_path

_TRUE = frozenset({"true", "yes", "on", "1"})
# Hugo's `_build.list`: "always" (true) lists the page; "never" (false) and
# "local" (only in its own section's page collections) keep it out of feeds.
_NOT_LISTED = frozenset({"never", "local", "false", "no", "off", "0"})
_REDIRECT_KEYS = ("aliases", "redirect_to")
_COMMENTS = re.compile(r"<!--.*?(?:-->|\Z)", re.S)


def _lower_keys(meta: Mapping[str, object]) -> dict[str, object]:
    return {key.lower(): value for key, value in meta.items()}


def _word(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.strip().lower()
    return None


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | tuple | dict):
        return bool(value.strip() if isinstance(value, str) else value)
    return True


def not_an_item(raw: RawDocument) -> str | None:
    """Why ``raw`` is not an item by a site generator's convention, or None."""
    if pure_path(raw.path).stem == "_index":
        return "section page (_index), not an item"
    if not raw.meta:  # every rule below is a front-matter key
        return None
    meta = _lower_keys(raw.meta)
    if _word(meta.get("headless")) in _TRUE:
        return "headless bundle (headless: true), not an item"
    for key in ("_build", "build"):
        build = meta.get(key)
        if isinstance(build, Mapping):
            listed = _word(_lower_keys(build).get("list"))
            if listed in _NOT_LISTED:
                return f"not listed ({key}: list: {listed}), not an item"
    redirect = next((key for key in _REDIRECT_KEYS if _present(meta.get(key))), None)
    if redirect is not None and not _COMMENTS.sub("", raw.body_html).strip():
        return f"redirect stub ({redirect}, no body), not an item"
    return None
