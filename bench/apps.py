"""The WSGI app for servers run outside ``feedsvc serve``; settings from ``FEEDSVC_*``."""

from __future__ import annotations

from feedsvc.web import SERVER_RECHECK_SECONDS, create_app

# The product app, as `feedsvc serve` builds it in each worker (feed fast path in front of Flask).
app = create_app(recheck_seconds=SERVER_RECHECK_SECONDS)

__all__ = ["app"]
