"""The docs in the repo: the configuration page is generated, and links resolve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from feedsvc.settings import declared
from feedsvc.settings_doc import PAGE, REGENERATE, markdown

ROOT = Path(__file__).resolve().parents[1]


def test_the_configuration_page_is_generated_from_the_settings() -> None:
    committed = PAGE.read_text(encoding="utf-8")
    assert committed == markdown(), (
        f"docs/configuration.md is stale: run `{REGENERATE}` (e.g. `.venv/bin/{REGENERATE}`)"
        " and commit the result"
    )


def test_every_setting_is_on_the_configuration_page_with_its_variable() -> None:
    page = PAGE.read_text(encoding="utf-8")
    for setting in declared():
        assert f"| `{setting.key}` | `{setting.env}` |" in page, setting.name


def test_the_generator_runs_as_documented() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "feedsvc.settings_doc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert printed.stdout == markdown()
