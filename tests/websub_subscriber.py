"""An independent WebSub subscriber, as its own process: Flask-WebSub's ``Subscriber``.

feedsvc did not write this subscriber: discovery (``Link`` header, then
``<link rel="hub">``), the subscription request (§5.1), answering the
verification of intent (§5.3) and checking ``X-Hub-Signature`` (§8) are all
Flask-WebSub's own code. This file only gives it a web server and a small
control API for the tests:

- ``POST /control/subscribe`` ``{"url": FEED}``: discover, then subscribe;
- ``GET /control/state``: confirmed subscriptions (with the secret the
  library chose) and every notification its listener accepted.

One change to the library's behaviour: it sends a ``hub.secret`` only to an
``https`` hub (§5.1 says SHOULD). The tests run on loopback without TLS, so
``is_secure`` answers True for the 127.0.0.1 hub; everything else is as shipped.

Run: ``python tests/websub_subscriber.py STATE_DIR``; prints ``PORT <n>`` once
it listens on 127.0.0.1 (a free port).
"""

from __future__ import annotations

import base64
import sys
import threading
import time
from pathlib import Path

import flask_websub.subscriber as websub_subscriber
from flask import Flask, jsonify, request
from flask_websub.subscriber import (
    SQLite3SubscriberStorage,
    SQLite3TempSubscriberStorage,
    Subscriber,
    discover,
)
from werkzeug.serving import make_server


def _loopback_counts_as_secure(url: str) -> bool:
    return url.startswith(("https://", "http://127.0.0.1:"))


def build(state_dir: Path) -> Flask:
    websub_subscriber.is_secure = _loopback_counts_as_secure
    app = Flask(__name__)
    subscriber = Subscriber(
        SQLite3SubscriberStorage(str(state_dir / "subs.sqlite3")),
        SQLite3TempSubscriberStorage(str(state_dir / "temp.sqlite3")),
    )
    app.register_blueprint(subscriber.build_blueprint(url_prefix="/callbacks"))
    lock = threading.Lock()
    confirmed: dict[str, dict[str, object]] = {}
    received: list[dict[str, object]] = []

    @subscriber.add_success_handler
    def on_success(topic_url: str, callback_id: str, mode: str) -> None:
        with lock:
            confirmed[callback_id] = {"topic": topic_url, "mode": mode}

    @subscriber.add_listener
    def on_notification(topic_url: str, callback_id: str, body: bytes) -> None:
        # Called by Flask-WebSub only once the signature matched the secret.
        with lock:
            received.append(
                {
                    "topic": topic_url,
                    "callback_id": callback_id,
                    "received_at": time.time(),
                    "body": base64.b64encode(body).decode("ascii"),
                    "signature": request.headers.get("X-Hub-Signature"),
                    "content_type": request.headers.get("Content-Type"),
                    "link": request.headers.get("Link"),
                }
            )

    @app.post("/control/subscribe")
    def subscribe():  # type: ignore[no-untyped-def]
        found = discover(request.json["url"], timeout=10)
        callback_id = subscriber.subscribe(**found)
        return jsonify({"callback_id": callback_id, **found})

    @app.get("/control/state")
    def state():  # type: ignore[no-untyped-def]
        with lock:
            subs = {}
            for callback_id, info in confirmed.items():
                try:
                    secret = subscriber.storage[callback_id]["secret"]
                except KeyError:  # unsubscribed or expired
                    secret = None
                subs[callback_id] = {**info, "secret": secret}
            return jsonify({"confirmed": subs, "received": list(received)})

    return app


def main() -> None:
    state_dir = Path(sys.argv[1])
    state_dir.mkdir(parents=True, exist_ok=True)
    server = make_server("127.0.0.1", 0, build(state_dir), threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
