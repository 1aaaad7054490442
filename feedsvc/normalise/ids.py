"""Which ids make a working item page (docs/operations.md, "Ids").

Owns the validity of an item id itself: one rule, applied to an id from
``id:``/``guid:`` and to one made from the file's path alike. How a valid id
is written into a feed (percent-encoding, ``tag:`` IRIs) is ``urls.py``.

The rule: an id is NFC-normalised and stripped of surrounding white space;
then it is refused, as a per-file error naming the reason, if it is empty,
holds a control character or a line/paragraph separator, or has an empty,
``.`` or ``..`` path segment (the ``//`` after an absolute URI's scheme, as in
``https://example.com/a``, is not one). Each of those would give ``/items/{id}`` a URL
that does not lead back to the item: a newline cannot be sent in a request
line, ``/items//`` loses its segment in proxies and browsers, and browsers
resolve ``%2E%2E`` like ``..``, so the link leads elsewhere.
"""

from __future__ import annotations

import re
import unicodedata

from feedsvc.errors import SourceError

# Longest id accepted: its URL must fit a request line of every usual proxy.
MAX_ID_CHARS = 1024
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# ``https://host/a``: the ``//`` of an absolute URI's authority is not an empty segment.
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?=[^/])")


def checked_id(path: str, item_id: str, origin: str) -> str:
    """``item_id`` in its canonical form, or ``SourceError(path, reason)``.

    ``origin`` says where the id came from, for the message: ``"the front
    matter"`` or ``"the file name"``.
    """
    canonical = unicodedata.normalize("NFC", item_id).strip()
    fix = "set another id" if origin != "the file name" else "rename the file or set an id"
    if not canonical:
        raise SourceError(path, f"the id (from {origin}) is empty: {fix}")
    shown = repr(canonical[:80])
    for ch in canonical:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise SourceError(
                path,
                f"the id {shown} (from {origin}) holds a control character "
                f"(U+{ord(ch):04X}), which no item URL can carry: {fix}",
            )
    if len(canonical) > MAX_ID_CHARS:
        raise SourceError(
            path, f"the id (from {origin}) is longer than {MAX_ID_CHARS} characters: {fix}"
        )
    authority = _AUTHORITY.match(canonical)
    rest = canonical[authority.end() :] if authority else canonical
    for segment in rest.split("/"):
        if segment in ("", ".", ".."):
            what = "an empty" if not segment else f"a {segment!r}"
            raise SourceError(
                path,
                f"the id {shown} (from {origin}) has {what} path segment, which browsers "
                f"and proxies rewrite, so its item URL would not open: {fix}",
            )
    return canonical
