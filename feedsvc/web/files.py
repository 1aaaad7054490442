"""Resources of the content folder at ``/files/{path}``; owns nothing but serving them.

So that the relative references of documents work in a reader and on the
item page (normalise/references.py builds the URLs), every *resource* under
the content root (``feedsvc.classify``) is served with its content type, a
strong ETag, ``Last-Modified``, ``Cache-Control``, HEAD, 304 by the rule every
route follows (``revalidate``), and byte ranges (Werkzeug's range handling).

Never served, always the same plain 404: hidden names, ``content.ignore``
matches, documents (their source is not published, only their item),
symbolic links (at any depth), anything that is not a regular file, and
any path that leaves the root. The file is opened by ``discover.open_source``
(``O_NOFOLLOW`` on every component, checked with ``fstat``), the same way a
scan reads it.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, request
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wsgi import wrap_file

from feedsvc.classify import SNIFF_BYTES, sniff
from feedsvc.discover import open_source, walked_by_name
from feedsvc.errors import SourceError
from feedsvc.normalise.urls import FILES_PREFIX
from feedsvc.web.revalidate import revalidate
from feedsvc.web.services import services

bp = Blueprint("files", __name__)

# One table for every machine: the standard library's own, not /etc/mime.types,
# plus the types it lacks on older Pythons.
_TYPES = mimetypes.MimeTypes(filenames=())
for _type, _ext in (
    ("image/webp", ".webp"),
    ("image/avif", ".avif"),
    ("image/svg+xml", ".svg"),
    ("font/woff", ".woff"),
    ("font/woff2", ".woff2"),
    ("audio/ogg", ".ogg"),
    ("audio/opus", ".opus"),
    ("audio/flac", ".flac"),
    ("video/webm", ".webm"),
    ("text/vtt", ".vtt"),
    ("application/x-yaml", ".yaml"),
    ("application/x-yaml", ".yml"),
    ("application/toml", ".toml"),
    ("text/x-go", ".go"),
    ("text/x-rust", ".rs"),
):
    _TYPES.add_type(_type, _ext)

# A served SVG (or any file a browser opens on our origin) runs no script and
# loads nothing: the file is content, not an application.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; "
    "style-src 'unsafe-inline'; sandbox",
    "Access-Control-Allow-Origin": "*",
}


def content_type(name: str) -> str:
    """The media type of a resource by its name; unknown: application/octet-stream."""
    guessed, encoding = _TYPES.guess_type(name, strict=False)
    if encoding is not None:  # .gz, .bz2, .xz: the bytes are sent as they are
        return {"gzip": "application/gzip", "bzip2": "application/x-bzip2"}.get(
            encoding, "application/octet-stream"
        )
    return guessed or "application/octet-stream"


def _etag(st: os.stat_result) -> str:
    # Any write moves mtime_ns (nanoseconds) or the size, a replaced file has
    # another inode: the same triple means the same bytes, so the tag is strong.
    key = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode("ascii")
    return '"' + hashlib.blake2b(key, digest_size=12).hexdigest() + '"'


# Decided by ``revalidate`` before Werkzeug sees the request: Werkzeug would
# read an unquoted If-None-Match as a tag and answer 304 to a future date.
_VALIDATORS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")


@bp.route(FILES_PREFIX + "<path:path>", methods=["GET", "HEAD"])
def resource(path: str) -> Response:
    svc = services()
    content = svc.settings.content
    if "\x00" in path or not walked_by_name(path, content.ignore):
        abort(404)
    name = path.rpartition("/")[2]
    kind = content.rules.by_name(name)
    if kind == "document":
        abort(404)
    try:
        fd = open_source(svc.settings.content_root, path)
    except SourceError:
        abort(404)  # missing, a link, outside the root: all look the same
    try:
        st = os.fstat(fd)
        servable = stat.S_ISREG(st.st_mode) and (
            kind == "resource" or sniff(os.pread(fd, SNIFF_BYTES, 0)) == "resource"
        )
    except BaseException:
        os.close(fd)
        raise
    if not servable:
        os.close(fd)
        abort(404)  # a folder, a FIFO, or a document by its first bytes
    file = os.fdopen(fd, "rb")
    response = Response(
        wrap_file(request.environ, file),
        mimetype=content_type(name),
        headers=_HEADERS,
        direct_passthrough=True,
    )
    response.content_length = st.st_size
    now = svc.clock()
    # RFC 9110 §8.8.2.1: never later than the answer itself.
    modified = min(datetime.fromtimestamp(st.st_mtime, UTC), now)
    response.last_modified = modified
    response.cache_control.public = True
    response.cache_control.max_age = svc.settings.feeds.cache_seconds
    if revalidate(response, now=now, etag=_etag(st), last_modified=modified).status_code == 304:
        return response  # Werkzeug sends no body and closes the file
    environ = {k: v for k, v in request.environ.items() if k not in _VALIDATORS}
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=st.st_size)
    except RequestedRangeNotSatisfiable:  # 416: the answer never reaches the file
        file.close()
        raise
    return response  # make_conditional changed it in place (206, 412 or 416)
