"""``./dev``: serving installs the runtime only, testing adds the test tools.

The script runs for real in a copy of the repo's entry files, with a
``.venv`` whose programs only record how they were called, so what it
installs and runs is seen without installing anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDER = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$(dirname "$0")/../calls.log"
"""


def fake_checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dev", "pyproject.toml"):
        shutil.copy2(ROOT / name, repo / name)
    shutil.copytree(ROOT / "requirements", repo / "requirements")
    bin_dir = repo / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for program in ("python", "feedsvc", "ruff", "mypy", "pytest"):
        (bin_dir / program).write_text(RECORDER, encoding="utf-8")
        (bin_dir / program).chmod(0o755)
    return repo


def dev(repo: Path, *args: str) -> list[str]:
    log = repo / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    subprocess.run(
        ["bash", str(repo / "dev"), *args],
        cwd=repo,
        env={**os.environ},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_serve_installs_only_what_serving_needs(tmp_path: Path) -> None:
    repo = fake_checkout(tmp_path)
    calls = dev(repo, "serve", "--port", "0")
    # The pinned runtime set (docs/deployment.md), then feedsvc itself.
    assert "python -m pip install --quiet --require-hashes -r requirements/main.lock" in calls
    assert "python -m pip install --quiet -e ." in calls
    assert not any("test.lock" in call for call in calls), calls
    assert not any("[test]" in call for call in calls), calls
    assert calls[-1] == "feedsvc serve --port 0"
    # Installed once: the next start runs at once.
    assert dev(repo, "serve") == ["feedsvc serve"]
    assert dev(repo, "scan") == ["feedsvc scan"]


def test_test_adds_the_test_tools_and_runs_the_checks(tmp_path: Path) -> None:
    repo = fake_checkout(tmp_path)
    calls = dev(repo, "test", "-q")
    assert "python -m pip install --quiet --require-hashes -r requirements/test.lock" in calls
    assert "python -m pip install --quiet -e .[test]" in calls
    assert calls[-2:] == ["mypy ", "pytest -q"]
    assert any(call.startswith("ruff check") for call in calls)
    # The test set includes the runtime: serving needs no second install.
    assert dev(repo, "serve") == ["feedsvc serve"]
    # A changed pyproject.toml installs again.
    later = os.stat(repo / ".venv" / ".feedsvc-installed-runtime").st_mtime + 5
    os.utime(repo / "pyproject.toml", (later, later))
    assert "python -m pip install --quiet -e ." in dev(repo, "serve")


def test_a_changed_lock_file_installs_again(tmp_path: Path) -> None:
    repo = fake_checkout(tmp_path)
    dev(repo, "serve")
    assert dev(repo, "serve") == ["feedsvc serve"]
    later = os.stat(repo / ".venv" / ".feedsvc-installed-runtime").st_mtime + 5
    os.utime(repo / "requirements" / "main.lock", (later, later))
    calls = dev(repo, "serve")
    assert "python -m pip install --quiet --require-hashes -r requirements/main.lock" in calls
