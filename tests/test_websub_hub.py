"""The hub's rules on both stores: leases, unsubscribing, exactly-once delivery across
instances, and notifying external hubs for exactly the feeds whose bytes changed."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

from test_websub_abuse import (  # the abuse suite's local subscriber and site
    BASE,
    TOPIC,
    Callbacks,
    Network,
    Site,
    callbacks,
    make_site,
    queue_empty,
    run_jobs,
    site,
    wait_until,
)

from feedsvc.store import open_store

__all__ = ["callbacks", "site"]  # fixtures used below

STORY = "---\ntitle: Fresh\nlang: en\ncategories: [News Today]\n---\nA new story.\n"


def change(site: Site, content_dir: Path, name: str = "fresh.md", text: str = STORY) -> None:
    (content_dir / name).write_text(text, encoding="utf-8")
    site.clock.now += timedelta(seconds=5)  # past content.settle_seconds
    assert site.scanner.run().changed


def test_a_lease_ends_by_itself(site: Site, callbacks: Callbacks, content_dir: Path) -> None:
    assert site.subscribe(callbacks.url + "/echo", **{"hub.lease_seconds": "120"}) == 202
    dispatcher = site.dispatcher(Network())
    try:
        run_jobs(dispatcher, lambda: site.status()["subscriptions"] == 1, "the subscription")
        verification = next(p for m, p, _ in callbacks.requests if m == "GET")
        assert parse_qs(verification.split("?", 1)[1])["hub.lease_seconds"] == ["120"]
        site.clock.now += timedelta(seconds=121)
        assert site.status()["subscriptions"] == 0  # no longer live
        change(site, content_dir)
        dispatcher.step()
        assert site.store.hub().expire(site.clock()) == 1
        run_jobs(dispatcher, lambda: queue_empty(site), "nothing left to do")
    finally:
        dispatcher.stop()
    assert callbacks.posts("/echo") == []
    assert site.status()["expired_subscriptions_total"] == 1


def test_leases_are_capped_and_defaulted(site: Site, callbacks: Callbacks) -> None:
    ws = site.settings.websub
    assert site.subscribe(callbacks.url + "/echo?a", **{"hub.lease_seconds": "99999999"}) == 202
    assert site.subscribe(callbacks.url + "/echo?b") == 202
    assert site.subscribe(callbacks.url + "/echo?c", **{"hub.lease_seconds": "-5"}) == 400
    dispatcher = site.dispatcher(Network())
    try:
        run_jobs(dispatcher, lambda: site.status()["subscriptions"] == 2, "both subscriptions")
    finally:
        dispatcher.stop()
    hub = site.store.hub()
    a = hub.subscription(TOPIC, callbacks.url + "/echo?a")
    b = hub.subscription(TOPIC, callbacks.url + "/echo?b")
    assert a is not None and a.lease_seconds == ws.max_lease_seconds
    assert b is not None and b.lease_seconds == ws.lease_seconds


def test_unsubscribing_is_verified_and_ends_deliveries(
    site: Site, callbacks: Callbacks, content_dir: Path
) -> None:
    dispatcher = site.dispatcher(Network())
    try:
        assert site.subscribe(callbacks.url + "/echo") == 202
        run_jobs(dispatcher, lambda: site.status()["subscriptions"] == 1, "the subscription")
        form = {
            "hub.mode": "unsubscribe",
            "hub.topic": TOPIC,
            "hub.callback": callbacks.url + "/echo",
        }
        assert site.client.post("/websub", data=form).status_code == 202
        run_jobs(dispatcher, lambda: site.status()["subscriptions"] == 0, "the unsubscription")
        modes = [parse_qs(p.split("?", 1)[1])["hub.mode"] for m, p, _ in callbacks.requests]
        assert modes == [["subscribe"], ["unsubscribe"]]
        change(site, content_dir)
        run_jobs(dispatcher, lambda: queue_empty(site), "nothing left to do")
    finally:
        dispatcher.stop()
    assert callbacks.posts("/echo") == []


def test_two_instances_deliver_each_change_once(
    site: Site, callbacks: Callbacks, content_dir: Path
) -> None:
    other_store = open_store(site.settings.store.url)  # a second instance on the same store
    other = Site(site.settings, other_store, site.clock)
    first, second = site.dispatcher(Network()), other.dispatcher(Network())
    try:
        assert site.subscribe(callbacks.url + "/echo") == 202
        run_jobs(first, lambda: site.status()["subscriptions"] == 1, "the subscription")
        stop = threading.Event()

        def race(dispatcher) -> None:
            while not stop.is_set():
                dispatcher.step()

        threads = [threading.Thread(target=race, args=(d,)) for d in (first, second)]
        for thread in threads:
            thread.start()
        try:
            for n in range(5):
                change(site, content_dir, f"fresh-{n}.md", STORY.replace("Fresh", f"Fresh {n}"))
                wait_until(
                    lambda n=n: any(f"Fresh {n}".encode() in b for b in callbacks.posts("/echo")),
                    what=f"change {n} delivered",
                )
                wait_until(lambda: queue_empty(site), what="the queue to empty")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
    finally:
        first.stop()
        second.stop()
        other_store.close()
    newest = [
        next(line for line in b.decode().splitlines() if "<title>Fresh" in line)
        for b in callbacks.posts("/echo")
    ]
    assert len(newest) == 5, newest  # once per change, never twice
    wait_until(lambda: site.status()["delivered_total"] == 5, what="the count of deliveries")


def test_external_hubs_hear_of_exactly_the_feeds_that_changed(
    content_dir: Path, make_settings, store_url: str, callbacks: Callbacks
) -> None:
    site = make_site(content_dir, make_settings, store_url, websub_hubs=callbacks.url + "/hub")
    dispatcher = site.dispatcher(Network())
    try:
        dispatcher.step()  # the baseline: every feed's ETag as it is now
        assert callbacks.posts("/hub") == []
        change(site, content_dir)
        run_jobs(
            dispatcher,
            lambda: site.status()["pending_publishes"] == 0 and callbacks.posts("/hub"),
            "the pings",
        )
    finally:
        dispatcher.stop()
        site.store.close()
    pinged = set()
    for body in callbacks.posts("/hub"):
        form = parse_qs(body.decode())
        assert form["hub.mode"] == ["publish"]
        pinged.update(form["hub.url"])
    # The new English "News Today" story changes these cells, and no other.
    cells = ["all/all", "en/all", "all/news-today", "en/news-today"]
    assert pinged == {
        f"{BASE}/feeds/{cell}.{fmt}" for cell in cells for fmt in ("rss", "atom", "json")
    }
