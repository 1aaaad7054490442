"""The hub's job queue: its values and the SQL steps run in hub.py's transactions; no connections.

``hub.py`` opens the transactions and decides; each function here is one step
run on the connection it is given. At most ONE job is pending per (kind,
topic, callback): queueing again updates the pending job instead of adding
another (the ``uq_websub_jobs_pending`` constraint).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from feedsvc.store.backend import Backend
from feedsvc.store.codec import dump_dt, load_dt, sort_key
from feedsvc.store.hub_schema import jobs, subscriptions

VERIFY = "verify"
DELIVER = "deliver"
PUBLISH = "publish"


@dataclass(frozen=True, slots=True)
class Intent:
    """A subscribe or unsubscribe request (WebSub §5.1), accepted and awaiting verification."""

    mode: str
    topic: str
    callback: str
    callback_host: str
    lease_seconds: int | None
    secret: str | None


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed job. ``claim`` identifies this process's claim in every later write."""

    id: int
    kind: str
    topic: str
    callback: str
    mode: str | None
    secret: str | None
    lease_seconds: int | None
    generation: int
    attempts: int
    created_at: datetime
    claim: str


def load_job(row: Any, claim: str) -> Job:
    """A ``jobs`` row just claimed under ``claim``."""
    return Job(
        id=row.id,
        kind=row.kind,
        topic=row.topic,
        callback=row.callback,
        mode=row.mode,
        secret=row.secret,
        lease_seconds=row.lease_seconds,
        generation=int(row.generation),
        attempts=int(row.attempts),
        created_at=load_dt(row.created_at),
        claim=claim,
    )


def verify_row(intent: Intent, now: datetime) -> dict[str, Any]:
    """The pending ``verify`` job of ``intent``, due now."""
    return {
        "kind": VERIFY,
        "topic": intent.topic,
        "callback": intent.callback,
        "callback_host": intent.callback_host,
        "mode": intent.mode,
        "secret": intent.secret,
        "lease_seconds": intent.lease_seconds,
        "generation": 0,
        "attempts": 0,
        "due_key": sort_key(now),
        "claim": None,
        "claimed_until_key": None,
        "created_at": dump_dt(now),
        "last_error": None,
    }


def host_of(url: str) -> str:
    """The host a callback URL names, as the per-host cap counts it."""
    return (urlsplit(url).hostname or "").lower()


def known_pair(conn: sa.Connection, topic: str, callback: str) -> bool:
    """Whether ``callback`` already subscribes to ``topic`` (a renewal is never capped)."""
    q = sa.select(sa.literal(1)).where(
        subscriptions.c.topic == topic, subscriptions.c.callback == callback
    )
    return conn.execute(q).first() is not None


def host_count(conn: sa.Connection, host: str) -> int:
    """Subscriptions and pending subscribe requests of one callback host."""
    subs = sa.select(sa.func.count()).where(subscriptions.c.callback_host == host)
    pending = sa.select(sa.func.count()).where(
        jobs.c.callback_host == host, jobs.c.kind == VERIFY, jobs.c.mode == "subscribe"
    )
    return int(conn.execute(subs).scalar_one()) + int(conn.execute(pending).scalar_one())


def remove(conn: sa.Connection, topic: str, callback: str) -> int:
    """End a subscription and its pending deliveries; return subscriptions removed."""
    conn.execute(
        sa.delete(jobs).where(
            jobs.c.kind == DELIVER, jobs.c.topic == topic, jobs.c.callback == callback
        )
    )
    return int(
        conn.execute(
            sa.delete(subscriptions).where(
                subscriptions.c.topic == topic, subscriptions.c.callback == callback
            )
        ).rowcount
    )


@dataclass(frozen=True, slots=True)
class Change:
    """A topic whose bytes moved at ``at``: its subscribers get ``generation`` at least."""

    topic: str
    generation: int
    at: datetime


def queue_deliveries(conn: sa.Connection, backend: Backend, change: Change) -> None:
    """One pending delivery per live subscriber of the topic (an existing one is updated:
    it keeps its schedule, so a failing subscriber's backoff holds)."""
    s = subscriptions
    key = sort_key(change.at)
    source = sa.select(
        sa.literal(DELIVER),
        s.c.topic,
        s.c.callback,
        s.c.callback_host,
        sa.literal(change.generation, sa.BigInteger),
        sa.literal(0),
        sa.literal(key),
        sa.literal(dump_dt(change.at)),
    ).where(s.c.topic == change.topic, s.c.expires_key > key)
    columns = ["kind", "topic", "callback", "callback_host", "generation", "attempts"]
    ins = backend.insert(jobs).from_select([*columns, "due_key", "created_at"], source)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["kind", "topic", "callback"],
            set_={"generation": ins.excluded.generation},
        )
    )


def queue_publish(conn: sa.Connection, backend: Backend, change: Change, hub: str) -> None:
    """One pending ping of the external ``hub`` about the topic."""
    ins = backend.insert(jobs)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["kind", "topic", "callback"],
            set_={"generation": ins.excluded.generation},
        ),
        {
            "kind": PUBLISH,
            "topic": change.topic,
            "callback": hub,
            "callback_host": host_of(hub),
            "generation": change.generation,
            "attempts": 0,
            "due_key": sort_key(change.at),
            "created_at": dump_dt(change.at),
        },
    )
