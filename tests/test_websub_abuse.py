"""The hub must not become a weapon (WebSub §5.1 callbacks are chosen by strangers).

Callbacks to loopback (with the test allowance off), private, link-local and
metadata addresses are refused before any connection, whether given as an
address or as a name that resolves to one; redirects are not followed; a
callback that never answers costs one delivery thread for the deadline and
stalls neither the other subscribers nor a scan; one host cannot hold more
than its share of subscriptions; an unconfirmed subscription receives nothing.

The only traffic these tests send goes to 127.0.0.1: for other addresses the
resolver is replaced and every connection attempt is recorded (there must be
none).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import wait_until
from flask.testing import FlaskClient

from feedsvc.scanner import Scanner
from feedsvc.store import Store, open_store
from feedsvc.web import create_app
from feedsvc.websub.callbacks import CallbackClient, CallbackFailed, CallbackRefused
from feedsvc.websub.dispatch import Dispatcher

BASE = "https://news.example.com"
TOPIC = BASE + "/feeds/all/all.atom"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Network:
    """A resolver with fixed answers and a connector that records every attempt.

    Only 127.0.0.1 is ever really connected to.
    """

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.names = names or {}
        self.attempts: list[tuple[str, int]] = []

    def resolve(self, host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        address = self.names.get(host, host)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    def connect(self, address: tuple[str, int], timeout: float) -> socket.socket:
        self.attempts.append(address)
        if address[0] != "127.0.0.1":
            raise AssertionError(f"the hub tried to connect to {address}")
        return socket.create_connection(address, timeout=timeout)


# ------------------------------------------------------------------- local callbacks


class Callbacks:
    """A subscriber's server on 127.0.0.1 whose behaviour each path chooses.

    ``/echo``: confirms verifications, accepts deliveries; ``/wrong``: answers
    200 with something else than the challenge; ``/redirect``: 302 to the
    metadata address; ``/gone``: 410.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        calls = self.requests

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _answer(self, status: int, body: bytes = b"", **headers: str) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                calls.append(("GET", self.path, b""))
                path = urlsplit(self.path).path
                challenge = parse_qs(urlsplit(self.path).query).get("hub.challenge", [""])[0]
                if path == "/redirect":
                    self._answer(302, Location="http://169.254.169.254/latest/meta-data/")
                elif path == "/wrong":
                    self._answer(200, b"sure, whatever")
                else:
                    self._answer(200, challenge.encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                calls.append(("POST", self.path, self.rfile.read(length)))
                path = urlsplit(self.path).path
                if path == "/redirect":
                    self._answer(307, Location="http://10.0.0.1/")
                elif path == "/gone":
                    self._answer(410)
                else:
                    self._answer(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def posts(self, path: str) -> list[bytes]:
        return [body for method, p, body in self.requests if method == "POST" and p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callbacks() -> Iterator[Callbacks]:
    server = Callbacks()
    yield server
    server.close()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A callback that accepts connections and never answers a byte."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/hole"
    sock.close()


# ------------------------------------------------------------------- the site


class Site:
    def __init__(self, settings: Any, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.client: FlaskClient = create_app(settings, store=store, clock=clock).test_client()
        self.scanner = Scanner(settings, store, clock)

    def subscribe(self, callback: str, topic: str = TOPIC, **fields: str) -> int:
        form = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback, **fields}
        return self.client.post("/websub", data=form).status_code

    def status(self) -> dict[str, Any]:
        return self.client.get("/api/status").get_json()["websub"]

    def dispatcher(self, network: Network, **kwargs: Any) -> Dispatcher:
        client = CallbackClient(
            allow_loopback=self.settings.websub.allow_loopback,
            timeout=self.settings.websub.timeout_seconds,
            resolve=network.resolve,
            connect=network.connect,
        )
        return Dispatcher(self.settings, self.store, self.clock, client=client, **kwargs)


def make_site(content_dir: Path, make_settings, store_url: str, **env: str) -> Site:
    settings = make_settings(
        content_dir, store_url, websub_timeout_seconds="1", websub_retry_seconds="1", **env
    )
    store = open_store(settings.store.url)
    clock = Clock()
    site = Site(settings, store, clock)
    site.scanner.run()
    return site


@pytest.fixture
def site(content_dir: Path, make_settings, store_url: str) -> Iterator[Site]:
    found = make_site(content_dir, make_settings, store_url, websub_allow_loopback="true")
    yield found
    found.store.close()


@pytest.fixture
def strict_site(content_dir: Path, make_settings, store_url: str) -> Iterator[Site]:
    found = make_site(content_dir, make_settings, store_url)  # the allowance is off
    yield found
    found.store.close()


def run_jobs(dispatcher: Dispatcher, until: Callable[[], Any], what: str) -> Any:
    """Step the dispatcher (its pool sends) until ``until()`` holds."""

    def stepped() -> Any:
        dispatcher.step()
        return until()

    return wait_until(stepped, what=what)


def queue_empty(site: Site) -> bool:
    s = site.status()
    return s["pending_verifications"] == 0 and s["pending_deliveries"] == 0


# ------------------------------------------------------------------- refused addresses


@pytest.mark.parametrize(
    ("callback", "reason"),
    [
        ("http://127.0.0.1:9/cb", "loopback"),
        ("http://[::1]:9/cb", "loopback"),
        ("http://localhost:9/cb", "this machine"),
        ("http://10.0.0.1/cb", "private"),
        ("http://192.168.1.20/cb", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://0.0.0.0:9/cb", "unspecified"),
        ("http://[fe80::1]/cb", "link-local"),
        ("ftp://example.com/cb", "http or https"),
        ("http://user:pw@example.com/cb", "user name"),
    ],
)
def test_callbacks_to_forbidden_addresses_are_refused_at_once(
    strict_site: Site, callback: str, reason: str
) -> None:
    form = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": callback}
    response = strict_site.client.post("/websub", data=form)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert strict_site.status()["pending_verifications"] == 0


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
    ],
)
def test_a_name_resolving_to_a_forbidden_address_is_never_connected_to(
    strict_site: Site, address: str, reason: str
) -> None:
    network = Network({"innocent.example.net": address})
    assert strict_site.subscribe("http://innocent.example.net/cb") == 202  # only DNS can tell
    dispatcher = strict_site.dispatcher(network)
    try:
        run_jobs(dispatcher, lambda: queue_empty(strict_site), "the verification to end")
    finally:
        dispatcher.stop()
    assert network.attempts == []  # refused before any connection
    status = strict_site.status()
    assert status["subscriptions"] == 0
    assert status["refused_callbacks_total"] == 1


def test_every_address_of_a_name_is_checked_not_only_the_first() -> None:
    network = Network()

    def two_addresses(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port)),
        ]

    client = CallbackClient(
        allow_loopback=True, timeout=1, resolve=two_addresses, connect=network.connect
    )
    with pytest.raises(CallbackRefused, match=r"10\.0\.0\.1 is a private address"):
        client.request("GET", "http://mixed.example.net/cb")
    assert network.attempts == []


def test_redirects_are_not_followed(site: Site, callbacks: Callbacks) -> None:
    network = Network()
    assert site.subscribe(callbacks.url + "/redirect") == 202
    dispatcher = site.dispatcher(network)
    try:
        run_jobs(dispatcher, lambda: queue_empty(site), "the verification to end")
    finally:
        dispatcher.stop()
    assert {address[0] for address in network.attempts} == {"127.0.0.1"}
    assert site.status()["subscriptions"] == 0  # a redirect is no confirmation

    client = CallbackClient(allow_loopback=True, timeout=1, connect=network.connect)
    with pytest.raises(CallbackFailed, match="redirects are not followed"):
        client.request("POST", callbacks.url + "/redirect", body=b"x")
    assert {address[0] for address in network.attempts} == {"127.0.0.1"}


# ------------------------------------------------------------------- slow and hostile peers


def test_a_callback_that_never_answers_stalls_neither_others_nor_scans(
    site: Site, callbacks: Callbacks, black_hole: str, content_dir: Path
) -> None:
    network = Network()
    # Verified subscriptions for both, then a change: the hole holds one thread.
    assert site.subscribe(callbacks.url + "/echo") == 202
    dispatcher = site.dispatcher(network)
    try:
        run_jobs(dispatcher, lambda: site.status()["subscriptions"] == 1, "the subscription")
        assert site.subscribe(black_hole) == 202
        started = time.monotonic()
        dispatcher.step()  # the hole's verification is now in flight, for up to 1 s

        (content_dir / "fresh.md").write_text("---\ntitle: Fresh\n---\nNew.\n", encoding="utf-8")
        site.clock.now = NOW + timedelta(seconds=5)  # past content.settle_seconds
        report = site.scanner.run()
        assert report.added == 1  # the scan ran while the hole was being waited on
        run_jobs(dispatcher, lambda: callbacks.posts("/echo"), "the honest subscriber's copy")
        assert b"Fresh" in callbacks.posts("/echo")[0]
        run_jobs(dispatcher, lambda: queue_empty(site), "the hole's verification to time out")
        assert time.monotonic() - started < 20  # the 1 s deadline, with room for a busy box
    finally:
        dispatcher.stop()
    assert site.status()["subscriptions"] == 1  # the hole never confirmed


def test_a_failing_subscriber_is_retried_with_backoff_then_dropped(
    site: Site, callbacks: Callbacks, content_dir: Path
) -> None:
    network = Network()
    assert site.subscribe(callbacks.url + "/echo?then=fail") == 202
    dispatcher = site.dispatcher(network)
    try:
        run_jobs(dispatcher, lambda: site.status()["subscriptions"] == 1, "the subscription")
        callbacks.server.shutdown()  # the subscriber goes away: every delivery fails
        callbacks.server.server_close()
        (content_dir / "fresh.md").write_text("---\ntitle: Fresh\n---\nNew.\n", encoding="utf-8")
        site.clock.now += timedelta(seconds=5)
        site.scanner.run()
        attempts = site.settings.websub.max_attempts
        for n in range(1, attempts):
            run_jobs(
                dispatcher,
                lambda n=n: site.status()["failed_deliveries_total"] >= n,
                f"failed delivery {n}",
            )
            status = site.status()
            assert status["failing_deliveries"] == 1
            assert status["subscriptions"] == 1
            # Not due before its backoff: retry_seconds * 2^(n-1).
            dispatcher.step()
            assert site.status()["failed_deliveries_total"] == n
            site.clock.now += timedelta(seconds=2 ** (n - 1) + 0.5)
        run_jobs(dispatcher, lambda: site.status()["subscriptions"] == 0, "it to be dropped")
    finally:
        dispatcher.stop()
    status = site.status()
    assert status["dropped_subscriptions_total"] == 1
    assert status["pending_deliveries"] == status["failing_deliveries"] == 0


def test_410_gone_ends_the_subscription(
    site: Site, callbacks: Callbacks, content_dir: Path
) -> None:
    network = Network()
    assert site.subscribe(callbacks.url + "/gone") == 202
    dispatcher = site.dispatcher(network)
    try:
        run_jobs(dispatcher, lambda: site.status()["subscriptions"] == 1, "the subscription")
        (content_dir / "fresh.md").write_text("---\ntitle: Fresh\n---\nNew.\n", encoding="utf-8")
        site.clock.now += timedelta(seconds=5)
        site.scanner.run()
        run_jobs(dispatcher, lambda: site.status()["subscriptions"] == 0, "the end of it")
    finally:
        dispatcher.stop()
    assert len(callbacks.posts("/gone")) == 1


# ------------------------------------------------------------------- floods and liars


def test_a_thousand_subscriptions_from_one_host_are_capped(
    site: Site, callbacks: Callbacks
) -> None:
    cap = site.settings.websub.max_subscriptions_per_host
    codes = [site.subscribe(f"{callbacks.url}/echo?n={n}") for n in range(1000)]
    assert codes.count(202) == cap
    assert codes.count(429) == 1000 - cap
    assert site.status()["pending_verifications"] == cap
    # Another host is not affected by this one's flood.
    assert site.subscribe("http://localhost:9/other") == 202
    # The scan is not held up by a queue of a thousand requests either.
    started = time.monotonic()
    site.scanner.run()
    assert time.monotonic() - started < 10


def test_an_unconfirmed_subscription_receives_nothing(
    site: Site, callbacks: Callbacks, content_dir: Path
) -> None:
    network = Network()
    assert site.subscribe(callbacks.url + "/wrong") == 202  # answers, but not the challenge
    assert site.subscribe(callbacks.url + "/echo") == 202
    dispatcher = site.dispatcher(network)
    try:
        run_jobs(dispatcher, lambda: queue_empty(site), "both verifications")
        assert site.status()["subscriptions"] == 1
        (content_dir / "fresh.md").write_text("---\ntitle: Fresh\n---\nNew.\n", encoding="utf-8")
        site.clock.now += timedelta(seconds=5)
        site.scanner.run()
        run_jobs(dispatcher, lambda: callbacks.posts("/echo"), "the confirmed one's delivery")
        run_jobs(dispatcher, lambda: queue_empty(site), "the queue to empty")
    finally:
        dispatcher.stop()
    assert callbacks.posts("/wrong") == []


def test_request_bodies_are_bounded(site: Site) -> None:
    form = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.callback": "http://localhost:9/" + "a" * 9000,
    }
    assert site.client.post("/websub", data=form).status_code == 413
    secret = {"hub.secret": "s" * 200}
    assert site.subscribe("http://localhost:9/cb", **secret) == 400
    assert site.subscribe("http://localhost:9/cb", topic=BASE + "/feeds/xx/none.atom") == 404
    assert site.subscribe("http://localhost:9/cb", topic="https://elsewhere.example/x") == 404
