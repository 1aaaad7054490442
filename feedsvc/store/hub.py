"""The WebSub hub's state: subscriptions, the job queue, topic versions, counters.

Owns the hub's transactions and decisions (``websub/`` owns HTTP). The tables
are ``hub_schema.py``'s, the queue's values and SQL steps ``hub_jobs.py``'s;
the connections are the item store's (``engine.py``).

The queue holds three kinds of job, at most ONE pending per (kind, topic,
callback): a newer request or change updates the pending job instead of
adding another, so a burst of changes is one delivery of the newest bytes.

- ``verify``: a subscribe/unsubscribe request waiting for its verification
  of intent (WebSub §5.3); the web workers add them, the watcher runs them.
- ``deliver``: the topic changed; ``generation`` is the store generation the
  subscriber must get at least (a change during a delivery in flight makes the
  job due again instead of being lost).
- ``publish``: the topic changed; ping the external hub named in ``callback``.

Exactly one process runs each job: ``claim`` marks due rows as taken for a
while, in one write transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
instances never wait on each other's claims; SQLite's write transactions are
serialised anyway). A claim that is not finished in time (a killed process)
is taken again. Who notifies is decided by ``note_topics``: the conditional
UPDATE of a topic's ETag succeeds in one process only.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from feedsvc.store import hub_jobs, hub_schema
from feedsvc.store.codec import dump_dt, load_dt, sort_key
from feedsvc.store.engine import Connections
from feedsvc.store.hub_jobs import DELIVER, PUBLISH, VERIFY, Intent, Job, host_of
from feedsvc.store.hub_schema import counters, jobs, subscriptions, topics

# Latency buckets of deliveries (seconds from the change being noticed).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

_SUBSCRIBE_LOCK = "feedsvc.websub.requests"


@dataclass(frozen=True, slots=True)
class Subscription:
    topic: str
    callback: str
    secret: str | None
    lease_seconds: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HubStats:
    """What /api/status and /metrics say about the hub (the same from every process)."""

    subscriptions: int
    subscriptions_by_topic: Mapping[str, int]
    jobs: Mapping[tuple[str, str], int]  # (kind, "due" | "retrying" | "in_flight") -> count
    counters: Mapping[str, float]


class HubStore:
    """The hub's tables on the item store's connections (SQLite or PostgreSQL)."""

    def __init__(self, db: Connections) -> None:
        self._db = db
        self._backend = db.backend
        with self._db.write("create the WebSub tables") as conn:
            self._backend.setup_lock(conn)
            hub_schema.metadata.create_all(conn)

    # -- requests (web workers) --

    def request(self, intent: Intent, *, now: datetime, per_host: int) -> bool:
        """Queue ``intent`` for verification; False (nothing queued) when its callback
        host already holds ``per_host`` subscriptions and pending requests.

        A newer request for the same (topic, callback) replaces a pending one.
        Unsubscribing and renewing are never refused by the cap.
        """
        with self._db.write("queue a WebSub request") as conn:
            self._backend.transaction_lock(conn, _SUBSCRIBE_LOCK)
            # Only a new subscription counts against the cap, not a renewal.
            capped = intent.mode == "subscribe" and not hub_jobs.known_pair(
                conn, intent.topic, intent.callback
            )
            if capped and hub_jobs.host_count(conn, intent.callback_host) >= per_host:
                return False
            row = hub_jobs.verify_row(intent, now)
            ins = self._backend.insert(jobs)
            keep = ("kind", "topic", "callback", "callback_host", "created_at")
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["kind", "topic", "callback"],
                    set_={k: ins.excluded[k] for k in row if k not in keep},
                ),
                row,
            )
        return True

    # -- the dispatcher (watcher process) --

    def next_due(self) -> str | None:
        """The earliest ``due_key`` of any job (claimed or not): a cheap read, no lock."""
        q = sa.select(sa.func.min(jobs.c.due_key))
        value = self._db.single("read the WebSub queue", lambda c: c.execute(q).scalar())
        return None if value is None else str(value)

    def claim(self, now: datetime, limit: int, hold_seconds: float) -> list[Job]:
        """Take up to ``limit`` due jobs for ``hold_seconds``, oldest first."""
        if limit <= 0:
            return []
        key = sort_key(now)
        token = secrets.token_hex(8)
        free = sa.or_(jobs.c.claimed_until_key.is_(None), jobs.c.claimed_until_key < key)
        q = (
            sa.select(jobs)
            .where(jobs.c.due_key <= key, free)
            .order_by(jobs.c.due_key, jobs.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite ignores it
        )
        until = sort_key(now + timedelta(seconds=hold_seconds))
        with self._db.write("claim WebSub jobs") as conn:
            rows = conn.execute(q).all()
            if not rows:
                return []
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id.in_([r.id for r in rows]))
                .values(claim=token, claimed_until_key=until)
            )
        return [hub_jobs.load_job(r, token) for r in rows]

    def done(self, job: Job, now: datetime) -> bool:
        """The job succeeded: remove it, unless a newer change or request arrived while it
        ran (then it is due again now, its attempts reset). True when it was removed."""
        mine = sa.and_(jobs.c.id == job.id, jobs.c.claim == job.claim)
        with self._db.write("finish a WebSub job") as conn:
            removed = conn.execute(
                sa.delete(jobs).where(
                    mine,
                    jobs.c.generation == job.generation,
                    sa.func.coalesce(jobs.c.mode, "") == (job.mode or ""),
                    sa.func.coalesce(jobs.c.secret, "") == (job.secret or ""),
                )
            ).rowcount
            if removed:
                return True
            conn.execute(
                sa.update(jobs)
                .where(mine)
                .values(
                    claim=None,
                    claimed_until_key=None,
                    attempts=0,
                    due_key=sort_key(now),
                    created_at=dump_dt(now),
                )
            )
        return False

    def retry(self, job: Job, due: datetime, error: str) -> None:
        """The job failed and will be tried again at ``due``."""
        with self._db.write("reschedule a WebSub job") as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job.id, jobs.c.claim == job.claim)
                .values(
                    claim=None,
                    claimed_until_key=None,
                    attempts=jobs.c.attempts + 1,
                    due_key=sort_key(due),
                    last_error=error[:500],
                )
            )

    def drop(self, job: Job) -> None:
        """Forget the job (given up, or nothing left to do)."""
        with self._db.write("drop a WebSub job") as conn:
            conn.execute(sa.delete(jobs).where(jobs.c.id == job.id, jobs.c.claim == job.claim))

    def activate(
        self, job: Job, *, lease_seconds: int, now: datetime, etag: str | None, generation: int
    ) -> None:
        """A verified subscribe: the subscription starts (or is renewed) now.

        ``etag``: the topic's current ETag (rendered after ``generation`` was
        read), the baseline its first change is compared with.
        """
        expires = now + timedelta(seconds=lease_seconds)
        row = {
            "topic": job.topic,
            "callback": job.callback,
            "callback_host": hub_jobs.host_of(job.callback),
            "secret": job.secret,
            "lease_seconds": lease_seconds,
            "expires_key": sort_key(expires),
            "expires_at": dump_dt(expires),
            "created_at": dump_dt(now),
        }
        with self._db.write("store a WebSub subscription") as conn:
            others = conn.execute(
                sa.select(sa.func.count()).where(
                    subscriptions.c.topic == job.topic,
                    subscriptions.c.callback != job.callback,
                    subscriptions.c.expires_key > sort_key(now),
                )
            ).scalar_one()
            conn.execute(self._backend.upsert(subscriptions, ["topic", "callback"]), row)
            if etag is not None:
                # A topic nobody follows may have kept an old ETag: start from today's.
                # One others follow keeps its own, so a change not yet noted is not lost.
                ins = self._backend.insert(topics)
                baseline = {"topic": job.topic, "etag": etag, "generation": generation}
                if others:
                    conn.execute(ins.on_conflict_do_nothing(index_elements=["topic"]), baseline)
                else:
                    conn.execute(self._backend.upsert(topics, ["topic"]), baseline)

    def unsubscribe(self, topic: str, callback: str) -> bool:
        """End a subscription and its pending deliveries; True if there was one."""
        with self._db.write("remove a WebSub subscription") as conn:
            return hub_jobs.remove(conn, topic, callback) > 0

    def subscription(self, topic: str, callback: str) -> Subscription | None:
        q = sa.select(subscriptions).where(
            subscriptions.c.topic == topic, subscriptions.c.callback == callback
        )
        row = self._db.single("read a WebSub subscription", lambda c: c.execute(q).first())
        if row is None:
            return None
        return Subscription(
            topic=row.topic,
            callback=row.callback,
            secret=row.secret,
            lease_seconds=int(row.lease_seconds),
            expires_at=load_dt(row.expires_at),
        )

    def subscribed_topics(self, now: datetime) -> tuple[str, ...]:
        q = (
            sa.select(subscriptions.c.topic)
            .where(subscriptions.c.expires_key > sort_key(now))
            .distinct()
            .order_by(subscriptions.c.topic)
        )
        found = self._db.single("read WebSub topics", lambda c: c.execute(q).scalars().all())
        return tuple(found)

    def note_topics(
        self,
        etags: Mapping[str, str],
        *,
        generation: int,
        now: datetime,
        hubs: Sequence[str],
    ) -> tuple[str, ...]:
        """Record each topic's current ETag; queue a delivery to every live subscriber and a
        ping to every external hub for the topics whose ETag moved. Return those topics.

        A topic seen for the first time is recorded, not notified: nothing is known
        of its bytes before. Two processes noting the same change at once: the
        conditional UPDATE moves the row in one of them only, which notifies.
        """
        changed: list[str] = []
        with self._db.write("note WebSub topic versions") as conn:
            for topic, etag in sorted(etags.items()):
                # A process that read the store before the last change (a slow
                # step) must not move the ETag back: readings only go forward.
                moved = conn.execute(
                    sa.update(topics)
                    .where(
                        topics.c.topic == topic,
                        topics.c.etag != etag,
                        topics.c.generation <= generation,
                    )
                    .values(etag=etag, generation=generation)
                ).rowcount
                if not moved:
                    conn.execute(
                        self._backend.insert(topics).on_conflict_do_nothing(
                            index_elements=["topic"]
                        ),
                        {"topic": topic, "etag": etag, "generation": generation},
                    )
                    continue
                changed.append(topic)
                change = hub_jobs.Change(topic, generation, now)
                hub_jobs.queue_deliveries(conn, self._backend, change)
                for hub in hubs:
                    hub_jobs.queue_publish(conn, self._backend, change, hub)
        return tuple(changed)

    def expire(self, now: datetime) -> int:
        """Remove subscriptions whose lease ended, with their pending deliveries."""
        key = sort_key(now)
        with self._db.write("expire WebSub subscriptions") as conn:
            ended = conn.execute(
                sa.select(subscriptions.c.topic, subscriptions.c.callback).where(
                    subscriptions.c.expires_key <= key
                )
            ).all()
            for topic, callback in ended:
                hub_jobs.remove(conn, topic, callback)
        if ended:
            self.count({"subscriptions_expired": len(ended)})
        return len(ended)

    # -- counters --

    def count(self, amounts: Mapping[str, float]) -> None:
        """Add to named counters (created at 0)."""
        if not amounts:
            return
        ins = self._backend.insert(counters)
        stmt = ins.on_conflict_do_update(
            index_elements=["name"], set_={"value": counters.c.value + ins.excluded.value}
        )
        with self._db.write("count WebSub events") as conn:
            conn.execute(stmt, [{"name": k, "value": v} for k, v in sorted(amounts.items())])

    def stats(self, now: datetime) -> HubStats:
        key = sort_key(now)
        live = subscriptions.c.expires_key > key
        by_topic = (
            sa.select(subscriptions.c.topic, sa.func.count())
            .where(live)
            .group_by(subscriptions.c.topic)
        )
        in_flight = sa.and_(jobs.c.claimed_until_key.is_not(None), jobs.c.claimed_until_key >= key)
        state = sa.case(
            (in_flight, "in_flight"), (jobs.c.attempts > 0, "retrying"), else_="due"
        ).label("state")
        by_job = sa.select(jobs.c.kind, state, sa.func.count()).group_by(jobs.c.kind, state)
        with self._db.snapshot("read WebSub figures") as conn:
            topics_n = {str(t): int(n) for t, n in conn.execute(by_topic)}
            job_n = {(str(k), str(s)): int(n) for k, s, n in conn.execute(by_job)}
            counted = {str(n): float(v) for n, v in conn.execute(sa.select(counters))}
        return HubStats(
            subscriptions=sum(topics_n.values()),
            subscriptions_by_topic=topics_n,
            jobs=job_n,
            counters=counted,
        )


def latency_counts(seconds: float) -> dict[str, float]:
    """Counter increments for one delivery latency (a cumulative Prometheus histogram)."""
    found = {f"latency_le_{le:g}": 1.0 for le in LATENCY_BUCKETS if seconds <= le}
    return {**found, "latency_count": 1.0, "latency_sum": seconds}


__all__ = [
    "DELIVER",
    "LATENCY_BUCKETS",
    "PUBLISH",
    "VERIFY",
    "HubStats",
    "HubStore",
    "Intent",
    "Job",
    "Subscription",
    "host_of",
    "latency_counts",
]
