"""The persisted form of the status records (last scan, failure, file events); owns no SQL.

Each record is one JSON text in a ``meta`` or ``scan_state`` row that every
process reads back. The layout is the store's own: ``ScanReport.as_json`` is
the API's shape (docs/api.md) and may change with the API; what is written
here must stay readable by the next feedsvc, so fields are only ever added,
and a reader gives a missing field its default.
"""

from __future__ import annotations

import json
from typing import Any

from feedsvc.store.codec import dump_dt, dumps, load_dt
from feedsvc.types import (
    FileError,
    FileEventsState,
    FileWarning,
    ItemCounts,
    ScanFailure,
    ScanReport,
)


def dump_failure(failure: ScanFailure) -> str:
    return dumps({"reason": failure.reason, "failed_at": dump_dt(failure.failed_at)})


def load_failure(text: str) -> ScanFailure:
    d = json.loads(text)
    return ScanFailure(reason=str(d["reason"]), failed_at=load_dt(d["failed_at"]))


def dump_file_events(state: FileEventsState) -> str:
    return dumps(
        {"available": state.available, "reason": state.reason, "since": dump_dt(state.since)}
    )


def load_file_events(text: str) -> FileEventsState:
    d = json.loads(text)
    return FileEventsState(
        available=bool(d["available"]), reason=d.get("reason"), since=load_dt(d["since"])
    )


def dump_report(report: ScanReport) -> str:
    """Every field of ``report``, in the layout ``load_report`` reads.

    Rows written by earlier versions hold the API's JSON plus ``started_at``
    and ``generation``; this layout is a superset of what they hold, so both
    read back the same way.
    """
    items = report.items
    body: dict[str, Any] = {
        "added": report.added,
        "updated": report.updated,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "errors": [{"path": e.path, "error": e.error} for e in report.errors],
        "warnings": [{"path": w.path, "warning": w.warning} for w in report.warnings],
        "duration_ms": report.duration_ms,
        "started_at": None if report.started_at is None else dump_dt(report.started_at),
        "generation": report.generation,
        "pending": list(report.pending),
        "resources": report.resources,
        "skipped": report.skipped,
        "counts": {
            "documents": report.documents,
            "ignored": report.ignored,
            "items": items.listed,
            "drafts": items.drafts,
            "scheduled": items.scheduled,
            "expired": items.expired,
        },
    }
    return dumps(body)


def load_report(text: str) -> ScanReport:
    d = json.loads(text)
    started = d.get("started_at")
    counts = d.get("counts", {})
    return ScanReport(
        added=d["added"],
        updated=d["updated"],
        removed=d["removed"],
        unchanged=d["unchanged"],
        errors=tuple(FileError(path=e["path"], error=e["error"]) for e in d["errors"]),
        warnings=tuple(
            FileWarning(path=w["path"], warning=w["warning"]) for w in d.get("warnings", ())
        ),
        duration_ms=d["duration_ms"],
        started_at=None if started is None else load_dt(started),
        generation=d.get("generation", 0),
        pending=tuple(d.get("pending", ())),
        resources=d.get("resources", 0),
        skipped=d.get("skipped", 0),
        documents=counts.get("documents", 0),
        ignored=counts.get("ignored", 0),
        items=ItemCounts(
            listed=counts.get("items", 0),
            drafts=counts.get("drafts", 0),
            scheduled=counts.get("scheduled", 0),
            expired=counts.get("expired", 0),
        ),
    )
