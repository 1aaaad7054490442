"""``feedsvc build``: every feed, the index and the OPML as static files.

Owns writing files. The bytes come from the same app that serves them
(through Flask's test client), so a static build and the live service
agree byte for byte.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

from feedsvc.pipeline import Scanner
from feedsvc.publish import STYLESHEET_NAME, feed_path
from feedsvc.render import FORMATS
from feedsvc.settings import Settings
from feedsvc.store import open_store


def _write(out: Path, url_path: str, body: bytes) -> None:
    target = out / unquote(url_path.lstrip("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, target)


def build_site(settings: Settings, out: Path, *, clock: Callable[[], datetime]) -> int:
    """Rescan, then write every page and feed under ``out``; return the file count."""
    from feedsvc.web import create_app

    store = open_store(settings.store.url)
    try:
        Scanner(settings, store, clock).run()
        app = create_app(settings, store=store, clock=clock)
        client = app.test_client()
        # The XSLT every RSS and Atom feed names (docs/feeds-for-people.md).
        paths = ["/", "/feeds.opml", "/" + STYLESHEET_NAME]
        for info in app.extensions["feedsvc"].feeds.grid():
            paths += [feed_path(info.key, fmt) for fmt in FORMATS]
        for path in paths:
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code} while building")
            _write(out, "/index.html" if path == "/" else path, response.get_data())
        return len(paths)
    finally:
        store.close()
