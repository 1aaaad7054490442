"""Conditional GET for answers Flask builds (pages, files, the stylesheet); owns nothing else.

The rule is ``conditional.not_modified``, the one the feeds follow, so every
route treats If-None-Match and If-Modified-Since alike (docs/http.md,
"Caching and revalidation"). A 304 keeps the answer's headers but its
representation metadata: Werkzeug drops the body, ``Content-Length``,
``Content-Type`` and ``Last-Modified`` of a 304, as the feed fast path does.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from flask import Response, request

from feedsvc.web.conditional import Asked, not_modified


def strong_etag(body: bytes) -> str:
    """A strong, quoted ETag from the bytes: it moves only when they do."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def revalidate(
    response: Response,
    *,
    now: datetime,
    etag: str | None = None,
    last_modified: datetime | None = None,
) -> Response:
    """Give ``response`` its ETag (``etag``, else one from its bytes) and make it
    a 304 when the request's copy is current; changed in place, and returned."""
    if etag is None:
        etag = strong_etag(response.get_data())
    response.headers["ETag"] = etag
    asked = Asked.of(request.method, request.headers.get)
    if asked.method in ("GET", "HEAD") and not_modified((etag,), last_modified, asked, now):
        response.status_code = 304
    return response
