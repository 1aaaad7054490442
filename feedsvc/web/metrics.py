"""Process-local counters exposed in the Prometheus text format (/metrics).

Owns counting requests; scan figures are read from the store, so they are
the same whichever process answers. Counters are per process: with several
server workers, a scrape sees the worker that answered it.
"""

from __future__ import annotations

import threading
from collections import Counter


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, int]] = Counter()

    def request(self, route: str, status: int) -> None:
        with self._lock:
            self._requests[(route, status)] += 1

    def lines(self) -> list[str]:
        with self._lock:
            requests = sorted(self._requests.items())
        out = [
            "# HELP feedsvc_http_requests_total HTTP requests answered by this process.",
            "# TYPE feedsvc_http_requests_total counter",
        ]
        for (route, status), n in requests:
            out.append(
                f'feedsvc_http_requests_total{{route="{_label(route)}",status="{status}"}} {n}'
            )
        feed_total = sum(n for (route, _), n in requests if route.startswith("/feeds/<"))
        feed_304 = sum(n for (route, s), n in requests if route.startswith("/feeds/<") and s == 304)
        out += [
            "# HELP feedsvc_feed_not_modified_ratio Share of feed requests answered 304.",
            "# TYPE feedsvc_feed_not_modified_ratio gauge",
            f"feedsvc_feed_not_modified_ratio {feed_304 / feed_total if feed_total else 0:.6f}",
        ]
        return out
