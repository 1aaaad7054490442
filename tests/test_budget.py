"""A budget for every file (issue #13, point 5): slow shapes finish or are refused.

Markdown shapes built to be slow (runs of ``_a``, ``![``, ``[``, ``*a``...) are
refused by a pre-check when they are big, and otherwise parsed under a time and
memory budget, in a helper process (serial scans) or in the pool processes.
A file over budget is a per-file error, keeps its last good version, and the
scan goes on. Times are bounded by the budget, and asserted through outcomes.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc import budget
from feedsvc.budget import REFUSE_DELIMITERS, BudgetRunner, delimiter_count
from feedsvc.pipeline import scan
from feedsvc.store import open_store

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SLOW_UNITS = ["_a", "![", "[", "*a", "`a", "[a](", "<div>", "**a", "> ", "  - ", "<a"]
BUDGET_REASONS = ("refused:", "over its time budget", "over its memory budget")
MAX_BYTES = 1_990_000


def _front(title: str) -> str:
    return f"---\ntitle: {title}\ndate: 2025-01-01\n---\n"


shape = st.tuples(
    st.sampled_from(SLOW_UNITS),
    st.integers(min_value=1, max_value=MAX_BYTES),
    st.sampled_from(["", "Some prose first. ", "# Heading\n\n"]),
)


@settings(
    max_examples=6,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shapes=st.lists(shape, min_size=2, max_size=5))
def test_slow_shapes_are_parsed_within_budget_or_refused(
    shapes: list[tuple[str, int, str]], tmp_path_factory: pytest.TempPathFactory, make_settings
) -> None:
    tmp = tmp_path_factory.mktemp("shapes")
    content = tmp / "content"
    content.mkdir()
    (content / "plain.md").write_text(_front("Plain") + "An ordinary story.\n", "utf-8")
    for n, (unit, size, lead) in enumerate(shapes):
        body = lead + unit * max(1, (size - 40) // len(unit))
        (content / f"shape{n}.md").write_text(_front(f"Shape {n}") + body, "utf-8")
    cfg = make_settings(
        content, f"sqlite:///{tmp / 'store.sqlite3'}", content_file_budget_seconds="1"
    )
    store = open_store(cfg.store.url)
    try:
        report = scan(cfg, store, now=NOW, workers=1)
        errors = {e.path: e.error for e in report.errors}
        assert "plain.md" not in errors  # the scan goes on past every slow file
        for n, (unit, _size, _lead) in enumerate(shapes):
            path = f"shape{n}.md"
            data = (content / path).read_bytes()
            if path in errors:
                # Only the budget refuses these shapes, and says which limit.
                assert errors[path].startswith(BUDGET_REASONS), errors[path]
                if errors[path].startswith("refused:"):
                    assert delimiter_count(data) > REFUSE_DELIMITERS
            else:
                item = store.item(f"shape{n}")
                assert item is not None and item.title == f"Shape {n}", (unit, errors)
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("workers", [1, 2], ids=["helper", "pool"])
def test_a_file_over_its_time_budget_keeps_its_last_good_version(
    tmp_path: Path, make_settings, workers: int
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    slow = content / "slow.md"
    slow.write_text(_front("Good version") + "Fine at first.\n", "utf-8")
    (content / "other.md").write_text(_front("Other") + "Another story.\n", "utf-8")
    cfg = make_settings(content, content_file_budget_seconds="1")
    store = open_store(cfg.store.url)
    try:
        assert scan(cfg, store, now=NOW, workers=workers).added == 2
        # Under the pre-check's bound, and far over a second of markdown-it's time.
        slow.write_text(_front("Slow version") + "[" * (REFUSE_DELIMITERS - 1000), "utf-8")
        (content / "new.md").write_text(_front("New") + "Written meanwhile.\n", "utf-8")
        report = scan(cfg, store, now=NOW, workers=workers)
        assert [(e.path, e.error) for e in report.errors] == [
            ("slow.md", "over its time budget: parsing and rendering took more than 1 s")
        ]
        assert report.added == 1  # new.md: the scan went on
        item = store.item("slow")
        assert item is not None and item.title == "Good version"
        # Unchanged since, it is reported again without being parsed again.
        again = scan(cfg, store, now=NOW, workers=workers)
        assert [e.path for e in again.errors] == ["slow.md"] and again.unchanged == 3
    finally:
        store.close()


def test_the_two_megabyte_shapes_are_refused_at_once(tmp_path: Path, make_settings) -> None:
    content = tmp_path / "content"
    content.mkdir()
    for n, unit in enumerate(["_a", "![", "["]):
        (content / f"big{n}.md").write_text(unit * (MAX_BYTES // len(unit)), "utf-8")
    cfg = make_settings(content)
    store = open_store(cfg.store.url)
    try:
        report = scan(cfg, store, now=NOW, workers=1)
    finally:
        store.close()
    assert len(report.errors) == 3
    for error in report.errors:
        assert error.error.startswith("refused: "), error
        assert "Markdown delimiter characters" in error.error


def hungry(megabytes: int) -> int:
    """Allocate ``megabytes`` (for the memory budget test; runs in the helper)."""
    try:
        block = bytearray(megabytes * 1024 * 1024)
    except MemoryError:
        return -1
    return len(block)


def test_the_helper_caps_memory_and_time() -> None:
    runner = BudgetRunner(hungry, seconds=30, memory_mb=256, warm_up=(1,))
    try:
        assert runner.run(16) == (True, 16 * 1024 * 1024)
        assert runner.run(2048) == (True, -1)  # refused by the address-space cap
    finally:
        runner.close()
    sleeper = BudgetRunner(time.sleep, seconds=0.5, memory_mb=256, warm_up=(0,))
    try:
        assert sleeper.run(600) == (False, None)  # killed at its budget, not after 600 s
        assert sleeper.run(0) == (True, None)  # a new helper takes the next call
    finally:
        sleeper.close()


def test_a_one_off_load_is_not_charged_to_the_file_that_needs_it() -> None:
    """Loading lingua's models of every length (a second of CPU) happens inside the
    first file with a short sample: ``not_counted`` pauses that file's budget for
    it, and the rest of the file is still timed, with what was left."""
    with budget.under_budget(0.3):
        time.sleep(0.1)
        with budget.not_counted():
            time.sleep(0.5)  # over the whole budget, but not charged
        time.sleep(0.1)
    with pytest.raises(budget.OverBudget), budget.under_budget(0.3):
        time.sleep(0.1)
        with budget.not_counted():
            time.sleep(0.1)
        time.sleep(1.0)  # what was left (about 0.2 s) runs out here
    with budget.not_counted():  # no budget running: nothing to pause
        time.sleep(0.01)


@pytest.mark.parametrize("workers", [1, 2], ids=["helper", "pool"])
def test_a_heavy_file_with_a_short_sample_is_not_charged_for_the_language_models(
    tmp_path: Path, make_settings, workers: int
) -> None:
    """A heavy file (many Markdown delimiters, parsed under the budget) whose
    prose is one short line: lingua reads it with its models of every length,
    which take over a second to load once per process (docs/language.md). That
    load belongs to the process, not to the file: with a 1 s budget the file
    is still an item, read serially (the helper's budget is timed from the
    scan's process) or in the pool."""
    content = tmp_path / "content"
    content.mkdir()
    # Brackets are delimiters but not letters: the sample stays "Brief Short line".
    body = "Short line. " + "[ " * (budget.HEAVY_DELIMITERS + 10) + "\n"
    (content / "heavy.md").write_text(_front("Brief") + body, "utf-8")
    cfg = make_settings(content, content_file_budget_seconds="1")
    store = open_store(cfg.store.url)
    try:
        report = scan(cfg, store, now=NOW, workers=workers)
        assert [(e.path, e.error) for e in report.errors] == []
        assert report.added == 1
    finally:
        store.close()
