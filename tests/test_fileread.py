"""``feedsvc check`` reads each file with the scan's own per-file functions (fileread.py).

So what check says of a file is what a scan records for it: the same refusal,
the same first-seen date, the same item.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import feedsvc_env

from feedsvc.budget import REFUSE_DELIMITERS


def feedsvc(tmp_path: Path, content: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", *args],
        env={**os.environ, **feedsvc_env(tmp_path, content)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_refuses_a_pathological_file_exactly_as_the_scan_does(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "good.md").write_text("---\ntitle: Good\n---\nA body.\n", "utf-8")
    (content / "brackets.md").write_text("# Brackets\n\n" + "[" * (REFUSE_DELIMITERS + 10), "utf-8")

    checked = feedsvc(tmp_path, content, "check")
    assert checked.returncode == 1, checked.stderr
    said = [line for line in checked.stdout.splitlines() if line.startswith("brackets.md: ERROR")]
    assert len(said) == 1 and "refused:" in said[0]
    assert "good.md:" in checked.stdout and "title:      Good" in checked.stdout

    scanned = feedsvc(tmp_path, content, "scan")
    assert scanned.returncode == 0, scanned.stderr
    reason = said[0].removeprefix("brackets.md: ERROR ")
    assert f"  brackets.md: {reason}" in scanned.stdout.splitlines()
