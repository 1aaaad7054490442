"""``feedsvc build``: everything the service serves, as a folder of static files.

Owns which URLs are written and how the folder is replaced. The bytes come
from the same app that serves them (through Flask's test client), so a
static build and the live service agree byte for byte.

The output is exact: the new tree is written beside ``OUT_DIR`` and swapped
in whole, so nothing of an earlier build survives (a category whose last item
left takes its feeds along), and a web server reading the folder during a
build sees the old tree or the new one, never a half-written or missing file.
On Linux the swap is one ``renameat2(RENAME_EXCHANGE)``; elsewhere the old
folder is renamed away and the new one renamed in, a moment without a folder.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from feedsvc.discover import discover
from feedsvc.errors import FeedsvcError
from feedsvc.normalise.urls import FILES_PREFIX
from feedsvc.publish import STYLESHEET_NAME, feed_path
from feedsvc.render import FORMATS
from feedsvc.scanner import Scanner
from feedsvc.settings import Settings
from feedsvc.store import Store, open_store

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

# The index page is "/" on the service and this file in the folder (nginx's `index`).
INDEX_FILE = "index.html"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class BuildError(FeedsvcError):
    """``OUT_DIR`` cannot be built: ``path`` names it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


def build_site(settings: Settings, out: Path, *, clock: Callable[[], datetime]) -> int:
    """Rescan, then replace ``out`` with every page, feed and file served; return the count."""
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise BuildError(out, "exists and is not a folder: name a folder (made if missing)")
    if out.exists() and out.is_symlink():
        raise BuildError(out, "is a symbolic link: name the folder itself")
    out.parent.mkdir(parents=True, exist_ok=True)
    from feedsvc.web import create_app

    store = open_store(settings.store.url)
    try:
        Scanner(settings, store, clock).run()
        app = create_app(settings, store=store, clock=clock)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
        try:
            count = _write_tree(app, store, staging)
            staging.chmod(0o755)  # mkdtemp makes it private; a web server must read it
            _swap_in(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # the old tree, or a failed new one
        return count
    finally:
        store.close()


def _write_tree(app: Flask, store: Store, root: Path) -> int:
    client = app.test_client()
    count = 0
    for path in sorted({*_served_paths(app, store), *_resource_paths(app)}):
        response = client.get(path)
        body = response.get_data()
        response.close()  # a resource's answer holds its file open
        if response.status_code == 404 and path.startswith(("/items/", FILES_PREFIX)):
            continue  # a draft, a file whose item failed, a resource gone: not served either
        if response.status_code != 200:
            raise BuildError(root, f"{path} answered {response.status_code} while building")
        _write(root, INDEX_FILE if path == "/" else path, body)
        count += 1
    return count


def _served_paths(app: Flask, store: Store) -> Iterator[str]:
    """Every URL the service answers 200 for (but the API and the hub)."""
    yield from ("/", "/feeds.opml", "/tags", "/" + STYLESHEET_NAME)
    feeds = app.extensions["feedsvc"].feeds
    for info, fmt, _ in feeds.all_feeds():
        yield feed_path(info.key, fmt)
    for key in store.known_feeds():  # feeds that once existed keep answering
        for fmt in FORMATS:
            yield feed_path(key, fmt)
    for stored in store.files().values():
        if stored.item_id is not None:
            yield "/items/" + quote(stored.item_id, safe="/")  # web/pages.py, item_page


def _resource_paths(app: Flask) -> Iterator[str]:
    """The content folder's resources, at ``/files/...`` as the service serves them."""
    settings: Settings = app.extensions["feedsvc"].settings
    found = discover(
        settings.content_root,
        settings.content.ignore,
        settings.content.max_file_bytes,
        rules=settings.content.rules,
    )
    for path in found.resources:
        yield FILES_PREFIX + quote(path, safe="/")


def _write(root: Path, url_path: str, body: bytes) -> None:
    target = root / unquote(url_path.lstrip("/"))
    if root.resolve() not in target.resolve().parents:
        raise BuildError(root, f"{url_path} would leave the folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(body)


def _swap_in(new: Path, out: Path) -> None:
    """Put ``new`` at ``out``; the old tree (if any) ends up at ``new``."""
    if not out.exists():
        os.rename(new, out)
        new.mkdir()  # the caller removes it
        return
    if sys.platform == "linux" and _exchange(new, out):
        return
    aside = new.with_name(new.name + ".old")
    os.rename(out, aside)
    os.rename(new, out)
    os.rename(aside, new)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False when the kernel or libc cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    log.debug("renameat2(RENAME_EXCHANGE) failed (errno %d): swapping in two steps", errno)
    return False
