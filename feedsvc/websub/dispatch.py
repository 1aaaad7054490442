"""The hub's work in the watcher process: verify, notice changes, distribute, retry.

Owns running the queue of ``store/hub.py``: one thread that notices a new
store generation (whoever scanned: this watcher, a refresh in a web worker,
another instance) and claims due jobs, and a bounded pool of threads that
send. Scans never wait on it and it never waits on a scan: a subscriber that
never answers holds one pool thread for ``websub.timeout_seconds``, no more.

- Verification of intent (WebSub §5.3): GET the callback with ``hub.mode``,
  ``hub.topic``, ``hub.challenge`` (and ``hub.lease_seconds``) appended to its
  query; only a 2xx whose body is exactly the challenge confirms. Unconfirmed
  requests change nothing.
- Changes (§7): for every topic with live subscribers (and every feed when
  ``websub.hubs`` names external hubs), the feed's ETag is compared with the
  one last noted; only feeds whose bytes changed are queued.
- Content distribution (§7, §8): POST the feed's current bytes with its
  content type, ``Link: <hub>; rel="hub", <self>; rel="self"`` and, when the
  subscription has a secret, ``X-Hub-Signature: sha256=HMAC(secret, body)``.
  A 2xx is success; 410 Gone ends the subscription; anything else is retried
  after ``websub.retry_seconds`` x 2^(n-1), and ``websub.max_attempts``
  failures in a row drop the subscription.
- External hubs are pinged with ``hub.mode=publish&hub.url=<topic>``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from urllib.parse import urlencode

from feedsvc.errors import StoreError
from feedsvc.feed_cache import FeedCache
from feedsvc.publish import RenderedFeed, feed_at, feed_url
from feedsvc.render import FORMATS
from feedsvc.settings import Settings
from feedsvc.store import Store
from feedsvc.store.hub import DELIVER, PUBLISH, VERIFY, HubStore, Job, latency_counts
from feedsvc.store.schema import sort_key
from feedsvc.websub.callbacks import CallbackClient, CallbackFailed, CallbackRefused

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# How often the queue and the store generation are looked at when nothing wakes
# the dispatcher (a scan in this process does, at once).
POLL_SECONDS = 0.25
EXPIRE_EVERY_SECONDS = 30.0
# Longest wait between retries, whatever the backoff says.
MAX_RETRY_SECONDS = 6 * 3600


class Dispatcher:
    """The hub's sending side; ``start`` it once per watcher process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        client: CallbackClient | None = None,
        publisher: CallbackClient | None = None,
    ) -> None:
        ws = settings.websub
        self._settings = settings
        self._store = store
        self._hub: HubStore = store.hub()
        self._clock = clock
        self._feeds = FeedCache(settings, store)
        self._client = client or CallbackClient(
            allow_loopback=ws.allow_loopback, timeout=ws.timeout_seconds
        )
        # External hubs are the operator's choice, not a stranger's: no address rules.
        self._publisher = publisher or CallbackClient(
            allow_loopback=True, timeout=ws.timeout_seconds, check_addresses=False
        )
        self._pool = ThreadPoolExecutor(ws.workers, thread_name_prefix="feedsvc-websub")
        self._slots = threading.BoundedSemaphore(ws.workers)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._seen_generation: int | None = None
        self._expired_at = -EXPIRE_EVERY_SECONDS
        self._thread = threading.Thread(target=self._loop, name="feedsvc-websub", daemon=True)

    # -- lifecycle --

    def start(self) -> None:
        self._thread.start()
        log.info("websub: hub dispatcher on (%d deliveries at once)", self._settings.websub.workers)

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        # Jobs not started are dropped (their claims run out and another process,
        # or the next start, takes them); jobs in flight end within their own
        # deadline (websub.timeout_seconds), so the store can be closed after this.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        """Look at the store now (a scan just finished)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            try:
                self.step()
            except StoreError as exc:
                log.warning("websub: the store is not available: %s", exc)
            except Exception:  # a bug must not end distribution for good
                log.exception("websub: dispatcher step failed")
            self._wake.wait(POLL_SECONDS)

    # -- one round --

    def step(self) -> None:
        """Expire leases now and then, notice changed feeds, start due jobs."""
        now = self._clock()
        if time.monotonic() - self._expired_at >= EXPIRE_EVERY_SECONDS:
            self._expired_at = time.monotonic()
            ended = self._hub.expire(now)
            if ended:
                log.info("websub: %d subscriptions reached the end of their lease", ended)
        self.notice_changes(now)
        self._start_due(now)

    def notice_changes(self, now: datetime) -> tuple[str, ...]:
        """Queue notifications for the topics whose bytes changed since last noted."""
        generation = self._store.generation()
        if generation == self._seen_generation:
            return ()
        topics = set(self._hub.subscribed_topics(now))
        if self._settings.websub.hubs:
            topics.update(
                feed_url(self._settings, info.key, fmt)
                for info in self._feeds.grid()
                for fmt in FORMATS
            )
        etags: dict[str, str] = {}
        for topic in topics:
            rendered = self._rendered(topic)
            if rendered is not None:
                etags[topic] = rendered.etag
        changed = self._hub.note_topics(
            etags, generation=generation, now=now, hubs=self._settings.websub.hubs
        )
        self._seen_generation = generation
        if changed:
            log.info("websub: %d feeds changed: %s", len(changed), ", ".join(changed[:5]))
        return changed

    def _start_due(self, now: datetime) -> None:
        due = self._hub.next_due()
        if due is None or due > sort_key(now):
            return
        free = 0
        while self._slots.acquire(blocking=False):
            free += 1
        if not free:
            return
        hold = self._settings.websub.timeout_seconds * 2 + 30
        claimed: list[Job] = []
        try:
            claimed = self._hub.claim(now, free, hold)
        finally:  # slots not used (or a store error) go back, or they would be lost
            for _ in range(free - len(claimed)):
                self._slots.release()
        for job in claimed:
            self._pool.submit(self._run, job)

    def _run(self, job: Job) -> None:
        try:
            if job.kind == VERIFY:
                self.verify(job)
            elif job.kind == DELIVER:
                self.deliver(job)
            elif job.kind == PUBLISH:
                self.publish(job)
            else:
                self._hub.drop(job)
        except StoreError as exc:
            log.warning("websub: job for %s left to retry: %s", job.callback, exc)
        except Exception:
            log.exception("websub: job for %s failed", job.callback)
        finally:
            self._slots.release()
            self._wake.set()

    # -- the three kinds of job --

    def verify(self, job: Job) -> None:
        """§5.3 verification of intent; a confirmed request takes effect."""
        challenge = secrets.token_urlsafe(24)
        params = {"hub.mode": job.mode or "", "hub.topic": job.topic, "hub.challenge": challenge}
        if job.mode == "subscribe" and job.lease_seconds is not None:
            params["hub.lease_seconds"] = str(job.lease_seconds)
        # §5.3: keep the callback's own query, append ours with "&".
        url = job.callback + ("&" if "?" in job.callback else "?") + urlencode(params)
        try:
            answer = self._client.request("GET", url)
            confirmed = 200 <= answer.status < 300 and answer.body == challenge.encode("ascii")
            outcome = "confirmed" if confirmed else f"not confirmed (answered {answer.status})"
        except CallbackRefused as exc:
            confirmed, outcome = False, f"refused: {exc.reason}"
            self._hub.count({"callbacks_refused": 1})
        except CallbackFailed as exc:
            confirmed, outcome = False, f"failed: {exc.reason}"
        now = self._clock()
        if confirmed and job.mode == "subscribe":
            generation = self._store.generation()  # read before rendering: see note_topics
            rendered = self._rendered(job.topic)
            lease = job.lease_seconds or self._settings.websub.lease_seconds
            etag = rendered.etag if rendered else None
            self._hub.activate(job, lease_seconds=lease, now=now, etag=etag, generation=generation)
        elif confirmed:
            self._hub.unsubscribe(job.topic, job.callback)
        self._hub.done(job, now)
        self._hub.count({f"verifications_{'confirmed' if confirmed else 'failed'}": 1})
        log.info("websub: %s of %s for %s %s", job.mode, job.topic, job.callback, outcome)

    def deliver(self, job: Job) -> None:
        """§7 content distribution of the feed's current bytes to one subscriber."""
        now = self._clock()
        sub = self._hub.subscription(job.topic, job.callback)
        rendered = self._rendered(job.topic)
        if sub is None or sub.expires_at <= now or rendered is None:
            self._hub.drop(job)  # unsubscribed, lease over, or the feed is gone
            return
        headers = {"Content-Type": rendered.content_type, "Link": rendered.link}
        if sub.secret:
            digest = hmac.new(sub.secret.encode("utf-8"), rendered.body, hashlib.sha256)
            headers["X-Hub-Signature"] = "sha256=" + digest.hexdigest()  # §8
        try:
            answer = self._client.request("POST", job.callback, body=rendered.body, headers=headers)
        except CallbackRefused as exc:
            # The name now resolves somewhere the hub must not go: end it for good.
            self._hub.unsubscribe(job.topic, job.callback)
            self._hub.count({"callbacks_refused": 1, "subscriptions_dropped": 1})
            log.warning("websub: dropped %s: %s", job.callback, exc.reason)
            return
        except CallbackFailed as exc:
            self._failed(job, exc.reason)
            return
        if 200 <= answer.status < 300:
            finished = self._clock()
            self._hub.done(job, finished)
            latency = max(0.0, (finished - job.created_at).total_seconds())
            self._hub.count({"deliveries_ok": 1, **latency_counts(latency)})
            return
        if answer.status == 410:  # §7: the subscriber says it is gone
            self._hub.unsubscribe(job.topic, job.callback)
            self._hub.count({"subscriptions_dropped": 1})
            log.info("websub: %s answered 410 Gone: subscription ended", job.callback)
            return
        self._failed(job, f"answered {answer.status}")

    def publish(self, job: Job) -> None:
        """Tell an external hub that a topic changed (the hub then fetches it)."""
        body = urlencode({"hub.mode": "publish", "hub.url": job.topic}).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            answer = self._publisher.request("POST", job.callback, body=body, headers=headers)
        except (CallbackRefused, CallbackFailed) as exc:
            self._failed(job, exc.reason)
            return
        if 200 <= answer.status < 300:
            self._hub.done(job, self._clock())
            self._hub.count({"publishes_ok": 1})
        else:
            self._failed(job, f"answered {answer.status}")

    def _failed(self, job: Job, reason: str) -> None:
        attempts = job.attempts + 1
        ws = self._settings.websub
        if attempts >= ws.max_attempts:
            if job.kind == DELIVER:
                self._hub.unsubscribe(job.topic, job.callback)
                self._hub.count({"deliveries_failed": 1, "subscriptions_dropped": 1})
            else:
                self._hub.drop(job)
                self._hub.count({"publishes_failed": 1})
            log.warning(
                "websub: gave up on %s after %d failed attempts (%s)",
                job.callback,
                attempts,
                reason,
            )
            return
        wait = min(ws.retry_seconds * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
        self._hub.retry(job, self._clock() + timedelta(seconds=wait), reason)
        self._hub.count({"deliveries_failed" if job.kind == DELIVER else "publishes_failed": 1})
        log.info("websub: %s failed (%s), retry %d in %d s", job.callback, reason, attempts, wait)

    def _rendered(self, topic: str) -> RenderedFeed | None:
        found = feed_at(self._settings, topic)
        if found is None:
            return None
        return self._feeds.get(found[0], found[1].name)
