"""The scan report as people read it: counts first, then each failure and warning.

Owns the text of ``feedsvc scan`` and the summary of ``feedsvc check``; the
JSON of ``POST /api/refresh`` and ``/api/status`` is ``ScanReport.as_json``,
with the same counts under the same names (docs/identity.md). Standard
library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from feedsvc.types import FileError, FileWarning, ScanReport

# Every count of the report, in order, with what it means for a newcomer.
MEANING = {
    "documents": "files read as documents",
    "items": "in the feeds now",
    "drafts": "draft: true or published: false",
    "scheduled": "appear by themselves at their publish time",
    "expired": "past their expiryDate",
    "not items": "section pages, headless bundles, redirect stubs",
    "pending": "still being written: read by a later scan",
    "resources": "images, code, data: served, never items",
    "ignored": "hidden names and content.ignore",
    "failed": "could not be used: each is listed with its reason",
    "warnings": "used anyway: each is listed with its reason",
}


def count_lines(counts: Mapping[str, int]) -> list[str]:
    """One aligned line per count: ``  items        12  in the feeds now``."""
    width = max(len(name) for name in counts)
    digits = max(len(str(n)) for n in counts.values())
    return [
        f"  {name:<{width}}  {n:>{digits}}  {MEANING.get(name, '')}".rstrip()
        for name, n in counts.items()
    ]


def problem_lines(errors: Iterable[FileError], warnings: Iterable[FileWarning]) -> list[str]:
    """Each failure, then each warning, with its file and reason."""
    lines = [f"  {e.path}: {e.error}" for e in errors]
    return lines + [f"  {w.path}: warning: {w.warning}" for w in warnings]


def scan_lines(report: ScanReport) -> list[str]:
    """What ``feedsvc scan`` prints: what changed, the counts, then each problem."""
    problems = problem_lines(report.errors, report.warnings)
    return [report.summary(), *count_lines(report.counts()), *problems]
