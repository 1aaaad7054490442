"""WebSub end to end, through real processes: ``feedsvc serve`` with its watcher and
hub, and an independent subscriber (Flask-WebSub, ``tests/websub_subscriber.py``).

The subscriber discovers the hub from the feeds, subscribes (§5.1), confirms the
verification of intent (§5.3); a file is then written into the content folder
with no refresh call, and only the subscribers of the feeds that changed receive
the new Atom document, signed with their secret (§7, §8).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
import requests
from conftest import metric_samples, wait_until
from requests.utils import parse_header_links

HERE = Path(__file__).parent


class SubscriberProcess:
    """``tests/websub_subscriber.py`` on 127.0.0.1 and a port of its own choosing."""

    def __init__(self, state_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "websub_subscriber.py"), str(state_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"subscriber did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def subscribe(self, feed_url: str) -> dict[str, str]:
        control = self.url + "/control/subscribe"
        response = requests.post(control, json={"url": feed_url}, timeout=30)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        return requests.get(self.url + "/control/state", timeout=10).json()

    def received(self, callback_id: str) -> list[dict[str, Any]]:
        return [n for n in self.state()["received"] if n["callback_id"] == callback_id]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def subscriber(tmp_path: Path) -> Iterator[SubscriberProcess]:
    started = SubscriberProcess(tmp_path / "subscriber")
    yield started
    started.stop()


def start_hub_server(serve, content: Path, **env: str):
    # No site.base_url: links (the hub's and the topics') follow the port serve
    # listens on, which subscribers must reach to discover the hub.
    server = serve(
        content,
        site_base_url="",
        websub_allow_loopback="true",
        watch_interval_seconds="3600",  # only file events can bring a change in time
        content_settle_seconds="0",
        **env,
    )
    server.wait_for_log(r"scan finished")
    server.wait_for_log(r"websub: hub dispatcher on")
    return server


def hub_status(server) -> dict[str, Any]:
    return requests.get(server.url + "/api/status", timeout=10).json()["websub"]


STORY = (
    "---\ntitle: 'Flood barrier closes on the river'\nlang: en\ncategories: [News Today]\n"
    "date: 2025-06-01 10:00\n---\nThe barrier closed at dawn as the river rose.\n"
)


def test_a_written_file_reaches_only_the_subscribers_of_changed_feeds_signed(
    content_dir: Path, serve, subscriber: SubscriberProcess, tmp_path: Path
) -> None:
    server = start_hub_server(serve, content_dir)

    # Discovery, from the feed itself, is the library's: hub and self from the Link header.
    everything = subscriber.subscribe(server.url + "/feeds/all/all.atom")
    assert everything["hub_url"] == server.url + "/websub"
    assert everything["topic_url"] == server.url + "/feeds/all/all.atom"
    changed_category = subscriber.subscribe(server.url + "/feeds/all/news-today.atom")
    other_category = subscriber.subscribe(server.url + "/feeds/all/news.atom")
    ids = [s["callback_id"] for s in (everything, changed_category, other_category)]

    # §5.3: the hub verifies each one with the subscriber before it counts.
    wait_until(
        lambda: set(subscriber.state()["confirmed"]) == set(ids),
        what=lambda: f"three confirmed subscriptions: {subscriber.state()}",
    )
    wait_until(lambda: hub_status(server)["subscriptions"] == 3, what="the hub's subscriptions")
    secrets = {cid: s["secret"] for cid, s in subscriber.state()["confirmed"].items()}
    assert all(secrets.values()), "the subscriber chose a secret for every subscription"

    (content_dir / "barrier.md").write_text(STORY, encoding="utf-8")  # no refresh call

    for callback_id in ids[:2]:
        wait_until(
            lambda cid=callback_id: subscriber.received(cid),
            what=lambda: f"a notification: {subscriber.state()}\n{''.join(server.log)}",
        )
    # Every delivery of that change was queued in one transaction: once the queue
    # is empty, the other category's subscriber has had everything it will get.
    wait_until(
        lambda: hub_status(server)["pending_deliveries"] == 0,
        what=lambda: json.dumps(hub_status(server)),
    )
    assert subscriber.received(other_category["callback_id"]) == []
    status = hub_status(server)
    assert status["delivered_total"] == 2
    assert status["failed_deliveries_total"] == 0

    documents: dict[str, bytes] = {}
    for callback_id, subscription in zip(ids[:2], (everything, changed_category), strict=True):
        [note] = subscriber.received(callback_id)
        body = base64.b64decode(note["body"])
        # §8: the signature is HMAC-SHA256 of the body with this subscription's secret.
        expected = hmac.new(secrets[callback_id].encode(), body, hashlib.sha256).hexdigest()
        assert note["signature"] == f"sha256={expected}"
        assert note["content_type"] == "application/atom+xml; charset=utf-8"
        links = {link["rel"]: link["url"] for link in parse_header_links(note["link"])}
        assert links == {"hub": server.url + "/websub", "self": subscription["topic_url"]}
        # The very bytes the feed serves now, and a valid feed with the new entry.
        assert body == requests.get(subscription["topic_url"], timeout=10).content
        parsed = feedparser.parse(body)
        assert not parsed.bozo
        assert "Flood barrier closes on the river" in [e.title for e in parsed.entries]
        documents[callback_id] = body

    from test_readers import jing_errors

    labelled = {f"notification-{n}.atom": body for n, body in enumerate(documents.values())}
    assert jing_errors(labelled, tmp_path) == []

    metrics = requests.get(server.url + "/metrics", timeout=10).text
    samples = metric_samples(metrics)
    assert samples[("feedsvc_websub_deliveries_total", (("outcome", "ok"),))] == 2
    assert samples[("feedsvc_websub_deliveries_total", (("outcome", "failed"),))] == 0
    assert samples[("feedsvc_websub_delivery_latency_seconds_count", ())] == 2
    assert samples[("feedsvc_websub_delivery_latency_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("feedsvc_websub_subscriptions", ())] >= 1
