"""WSGI apps for the server comparison; settings come from ``FEEDSVC_*`` variables."""

from __future__ import annotations

from typing import Any

from feedsvc.web import SERVER_RECHECK_SECONDS, create_app

# The product app, as `feedsvc serve` builds it (feed fast path in front of Flask).
app = create_app(recheck_seconds=SERVER_RECHECK_SECONDS)

# The same app with the fast path unwrapped: the plain Flask route, for reference.
flask_only = create_app()
flask_only.wsgi_app = flask_only.wsgi_app._app  # type: ignore[attr-defined,method-assign]

__all__: list[Any] = ["app", "flask_only"]
