"""What every request handler may use, built once per app; owns no route and no cache.

The blueprints import ``Services`` and ``services()`` from here, never from
``feedsvc.web`` (whose ``create_app`` imports them): the web package has no
import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from feedsvc.feed_cache import FeedCache
from feedsvc.metrics import Metrics
from feedsvc.scanner import Scanner
from feedsvc.settings import Settings
from feedsvc.store import Store

# The key of ``Services`` in ``app.extensions``.
EXTENSION = "feedsvc"


@dataclass(frozen=True, slots=True)
class Services:
    """What every request handler may use; built once per app."""

    settings: Settings
    store: Store
    feeds: FeedCache
    scanner: Scanner
    metrics: Metrics
    clock: Callable[[], datetime]


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION]
    return found
