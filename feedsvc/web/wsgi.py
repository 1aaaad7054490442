"""WSGI entry point for other servers: ``gunicorn 'feedsvc.web.wsgi:app'``.

Settings come from ``$FEEDSVC_CONFIG`` (else ``config/feedsvc.toml``) and
``FEEDSVC_*`` variables, read when the server imports this module.
"""

from __future__ import annotations

from feedsvc.web import SERVER_RECHECK_SECONDS, create_app

app = create_app(recheck_seconds=SERVER_RECHECK_SECONDS)
