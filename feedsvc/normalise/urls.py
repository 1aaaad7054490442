"""Item identity and URLs: id from a path, guid IRI, item url, absolute http(s) URLs.

Owns the URL/IRI syntax rules; not which source an id or url comes from.
STYLE "Stable identity": nothing here reads a title, a clock or an mtime, and
the id never depends on ``base_url`` (only the url does).
"""

from __future__ import annotations

import re
import string
from urllib.parse import quote, urljoin, urlsplit

from feedsvc.types import pure_path

# RFC 3986 reserved characters plus "%", kept when a URL is made safe: only
# characters that may never appear in a URI (spaces, non-ASCII, <>"{}|\^`) are escaped.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~"
# Schemes of ids that are already permanent IRIs and are used as they are.
_PERMANENT_SCHEMES = ("tag", "urn", "http", "https")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# RFC 3986 unreserved characters: the only ASCII left unescaped in the id part
# of a guid, so it stays valid in tag:, XML and JSON alike.
_ID_ASCII_SAFE = frozenset(string.ascii_letters + string.digits + "-._~/")
# ASCII allowed anywhere in an IRI (RFC 3987 §2.2: unreserved, reserved, "%").
_IRI_ASCII = frozenset(string.ascii_letters + string.digits + "-._~" + _URI_SAFE)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def id_from_path(path: str) -> str:
    """``news/2024/a.md`` -> ``news/2024/a`` (docs/item-fields.md, id)."""
    pure = pure_path(path)
    return str(pure.with_suffix("")) if pure.suffix else str(pure)


def _is_ucschar(cp: int) -> bool:
    """RFC 3987 §2.2 ucschar: non-ASCII code points an IRI may carry unescaped."""
    return (
        0xA0 <= cp <= 0xD7FF
        or 0xF900 <= cp <= 0xFDCF
        or 0xFDF0 <= cp <= 0xFFEF
        or (0x10000 <= cp <= 0xEFFFD and (cp & 0xFFFF) <= 0xFFFD)
    )


def _iri_escape(text: str) -> str:
    """Percent-encode everything but unreserved ASCII and ``/`` (UTF-8 octets)."""
    return "".join(
        ch if ch in _ID_ASCII_SAFE else quote(ch, safe="", errors="replace") for ch in text
    )


def iri_to_uri(iri: str) -> str:
    """RFC 3987 §3.1: every non-ASCII character as its UTF-8 octets, percent-encoded.

    ASCII is left exactly as it is (existing escapes included), so an IRI that
    is already a URI comes back unchanged.
    """
    if iri.isascii():
        return iri
    return "".join(ch if ch.isascii() else quote(ch, safe="", errors="replace") for ch in iri)


def tag_uri(id_prefix: str, specific: str) -> str:
    """``id_prefix`` (an RFC 4151 ``tag:authority,date:``) plus ``specific``, escaped.

    The one way an id becomes a ``tag:`` URI, for items and feeds alike: the
    W3C validator rejects non-ASCII in a tag URI ("id is not a valid TAG").
    """
    return iri_to_uri(id_prefix) + _iri_escape(specific)


def _is_absolute_iri(text: str) -> bool:
    """A ``tag:``/``urn:``/``http(s):`` IRI made only of characters RFC 3987 allows."""
    match = _SCHEME.match(text)
    if match is None or match.group(1).lower() not in _PERMANENT_SCHEMES:
        return False
    rest = text[match.end() :]
    if not rest or _BAD_ESCAPE.search(rest):
        return False
    return all(ch in _IRI_ASCII or _is_ucschar(ord(ch)) for ch in rest)


def guid_for(item_id: str, id_prefix: str) -> str:
    """The permanent identifier written into feeds (RFC 4287 §4.2.6 atom:id).

    The id scheme, for good (``docs/ids-and-slugs.md``): an id that already is
    an absolute ``tag:``/``urn:``/``http(s):`` IRI is used as it is, its
    non-ASCII characters percent-encoded (RFC 3987 §3.1); any other id goes
    after the site's tag-URI prefix (RFC 4151) with everything but unreserved
    ASCII and ``/`` percent-encoded as UTF-8. An ASCII path keeps the id it
    always had.
    """
    if _is_absolute_iri(item_id):
        return iri_to_uri(item_id)
    return tag_uri(id_prefix, item_id)


def item_page_url(item_id: str, base_url: str) -> str:
    """``{base_url}/items/{id}`` with each path segment percent-encoded (docs/item-fields.md, url).

    ``/`` inside an id stays a separator; ``.`` and ``..`` segments are escaped
    so a client never resolves them away from ``/items/``.
    """
    segments = []
    for segment in item_id.split("/"):
        escaped = quote(segment, safe="", errors="replace")
        segments.append(escaped.replace(".", "%2E") if segment in (".", "..") else escaped)
    return f"{base_url.rstrip('/')}/items/{'/'.join(segments)}"


FILES_PREFIX = "/files/"  # where resources are served (web/files.py); coupled with it


def files_url(path: str, base_url: str) -> str:
    """``{base_url}/files/{path}``, each segment percent-encoded: a resource's URL."""
    segments = (quote(segment, safe="", errors="replace") for segment in path.split("/"))
    return f"{base_url.rstrip('/')}{FILES_PREFIX}{'/'.join(segments) if path else ''}"


def uri_safe(url: str) -> str:
    """Escape what a URI may never contain (spaces, non-ASCII), keep existing escapes."""
    return quote(url.strip(), safe=_URI_SAFE, errors="replace")


def absolute_http_url(url: str, base: str | None = None) -> str | None:
    """``url`` resolved against ``base`` (if any), if that gives an http(s) URL with a host."""
    candidate = url.strip()
    if base is not None:
        candidate = urljoin(base, candidate)
    try:
        parts = urlsplit(candidate)
    except ValueError:  # e.g. "http://[bad"
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return uri_safe(candidate)
