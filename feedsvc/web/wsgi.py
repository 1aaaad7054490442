"""WSGI entry point for running the app under another server setup.

E.g. ``granian --interface wsgi feedsvc.web.wsgi:app``; ``feedsvc serve`` does not
use it (it builds the app in each worker from the settings it was given).

Settings come from ``$FEEDSVC_CONFIG`` (else ``config/feedsvc.toml``) and
``FEEDSVC_*`` variables, read when the server imports this module.
"""

from __future__ import annotations

from feedsvc.web import SERVER_RECHECK_SECONDS, create_app

app = create_app(recheck_seconds=SERVER_RECHECK_SECONDS)
