"""The WebSub hub's tables; owns their declarations, not their queries (hub.py, hub_jobs.py).

They have their own ``MetaData``, created when the hub store is first opened,
so the hub never changes the item store's schema version. Moments follow the
item store's shapes (``schema.moment`` and ``schema.moment_key``).
"""

from __future__ import annotations

import sqlalchemy as sa

from feedsvc.store.schema import moment, moment_key

metadata = sa.MetaData()

subscriptions = sa.Table(
    "websub_subscriptions",
    metadata,
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("callback", sa.Text, primary_key=True),
    sa.Column("callback_host", sa.Text, nullable=False, index=True),
    sa.Column("secret", sa.Text, nullable=True),
    sa.Column("lease_seconds", sa.Integer, nullable=False),
    moment_key("expires_key", index=True),
    moment("expires_at"),
    moment("created_at"),
)

jobs = sa.Table(
    "websub_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("callback", sa.Text, nullable=False),
    sa.Column("callback_host", sa.Text, nullable=False, index=True),
    sa.Column("mode", sa.String(16), nullable=True),
    sa.Column("secret", sa.Text, nullable=True),
    sa.Column("lease_seconds", sa.Integer, nullable=True),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    moment_key("due_key"),
    sa.Column("claim", sa.Text, nullable=True),
    moment_key("claimed_until_key", nullable=True),
    moment("created_at"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.UniqueConstraint("kind", "topic", "callback", name="uq_websub_jobs_pending"),
    sa.Index("ix_websub_jobs_due", "due_key"),
)

# The ETag of each topic as last notified: what "its bytes changed" compares with.
# ``generation``: the store generation read before that ETag was rendered (so the
# bytes are at least that new); an older reading never overwrites a newer one.
topics = sa.Table(
    "websub_topics",
    metadata,
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
)

counters = sa.Table(
    "websub_counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)
