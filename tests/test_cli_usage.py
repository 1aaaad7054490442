"""The `feedsvc` command as a new operator meets it: options, help, errors, progress.

Every case runs the real command in a subprocess, as a shell would.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import feedsvc_env

COMMANDS = ["serve", "watch", "scan", "check", "build", "feeds"]


def env_for(tmp_path: Path, content: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **feedsvc_env(tmp_path, content, **extra)}


def run(
    tmp_path: Path, content: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", *args],
        env=env if env is not None else env_for(tmp_path, content),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_is_honoured_before_and_after_the_command(
    tmp_path: Path, content_dir: Path, where: str
) -> None:
    missing = str(tmp_path / "nonexistent.toml")
    args = ["--config", missing, "feeds"] if where == "before" else ["feeds", "--config", missing]
    result = run(tmp_path, content_dir, *args)
    assert result.returncode == 2, result
    assert f"{missing}: configuration file not found" in result.stderr
    assert "Traceback" not in result.stderr

    # A real file: its content folder is the one scanned, wherever --config stands.
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "only.md").write_text("# Only this one\n\nBody text here.\n", encoding="utf-8")
    site = tmp_path / "site.toml"
    site.write_text(f'[content]\npath = "{other}"\n', encoding="utf-8")
    env = env_for(tmp_path, content_dir)
    del env["FEEDSVC_CONTENT_PATH"]
    args = ["--config", str(site), "scan"] if where == "before" else ["scan", "--config", str(site)]
    scanned = run(tmp_path, content_dir, *args, env=env)
    assert scanned.returncode == 0, scanned.stderr
    assert scanned.stdout.startswith("1 added,"), scanned.stdout


@pytest.mark.parametrize("args", [["-v", "scan"], ["scan", "-v"], ["--verbose", "scan"]])
def test_verbose_is_honoured_before_and_after_the_command(
    tmp_path: Path, content_dir: Path, args: list[str]
) -> None:
    result = run(tmp_path, content_dir, *args)
    assert result.returncode == 0, result.stderr
    assert " DEBUG " in result.stderr
    quiet = run(tmp_path, content_dir, "scan")
    assert " DEBUG " not in quiet.stderr


def test_option_given_twice_the_later_one_wins(tmp_path: Path, content_dir: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("", encoding="utf-8")
    result = run(
        tmp_path,
        content_dir,
        "--config",
        str(tmp_path / "nope.toml"),
        "feeds",
        "--config",
        str(good),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_a_description_and_an_example(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    usage, _, rest = result.stdout.partition("\n\n")
    assert usage.startswith(f"usage: feedsvc {command}")
    description = rest.partition("\n\n")[0]
    assert len(description.split()) >= 6, result.stdout  # a sentence, not the option list
    assert not description.startswith(("positional arguments", "options"))
    example = result.stdout.partition("example:\n")[2]
    assert re.search(rf"^  feedsvc {command}\b", example, re.MULTILINE), result.stdout
    assert "--config" in result.stdout and "--verbose" in result.stdout


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path, content_dir: Path) -> None:
    assert run(tmp_path, content_dir, "scan").returncode == 0
    # The reader is gone before a byte is written: every write meets EPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "feedsvc", "feeds"],
            env=env_for(tmp_path, content_dir),
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""

    # As a person types it: the first line, and nothing on stderr.
    shell = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m feedsvc feeds | head -1"],
        env=env_for(tmp_path, content_dir),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shell.stdout.startswith("https://news.example.com/feeds/"), shell
    assert len(shell.stdout.splitlines()) == 1
    assert shell.stderr == ""


def many_files(root: Path, count: int) -> None:
    for n in range(count):
        (root / f"note-{n:04}.md").write_text(
            f"---\ntitle: Note {n}\ndate: 2024-01-01\n---\nThe body of note {n}.\n",
            encoding="utf-8",
        )


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def spawned_children(pid: int) -> list[int]:
    """Pool worker processes of ``pid``: spawned by it, or forked by its pool's fork
    server (a child of ``pid`` whose workers show the server's command line)."""
    found = []
    for child in _children(pid):
        cmdline = _cmdline(child)
        if b"spawn_main" in cmdline:
            found.append(child)
        elif b"multiprocessing.forkserver" in cmdline:
            found += _children(child)
    return found


def test_an_interrupted_scan_exits_130_without_a_traceback(
    tmp_path: Path, content_dir: Path
) -> None:
    many_files(content_dir, 3000)  # enough for the scan to use its worker processes
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "scan", "-v"],
        env=env_for(tmp_path, content_dir),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    # Wait until the scan is reading files in its worker processes.
    deadline = time.monotonic() + 120
    while not spawned_children(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, "the scan never used its pool"
        time.sleep(0.02)
    # Ctrl-C on a terminal: SIGINT to the whole group, scan workers included.
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "feedsvc: interrupted" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_progress_bar_on_a_terminal_only(tmp_path: Path, content_dir: Path) -> None:
    many_files(content_dir, 250)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "scan"],
            env=env_for(tmp_path, content_dir),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=follower,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(leader)
    assert proc.returncode == 0
    assert b"] 252/252 files" in shown, shown[-500:]
    assert b"\r[" in shown
    assert out.startswith(b"252 added")

    # Into a log (a pipe): no bar (progress lines there: the next test).
    env = env_for(tmp_path, content_dir, store_url=f"sqlite:///{tmp_path / 'other.sqlite3'}")
    logged = run(tmp_path, content_dir, "scan", env=env)
    assert logged.stdout.startswith("252 added")
    assert "\r" not in logged.stderr and "[#" not in logged.stderr


def test_progress_in_a_log_is_a_line_every_few_seconds(caplog: pytest.LogCaptureFixture) -> None:
    from feedsvc.progress import LOG_EVERY_SECONDS, ScanProgress

    now = [0.0]

    class NotATerminal:
        def isatty(self) -> bool:
            return False

    progress = ScanProgress(NotATerminal(), clock=lambda: now[0])  # type: ignore[arg-type]
    caplog.set_level("INFO", logger="feedsvc.scan")
    for done in range(1, 1001):
        now[0] = done / 16  # 16 files a second: 62.5 s in all
        progress(done, 1000)
    lines = [r.getMessage() for r in caplog.records]
    every = int(LOG_EVERY_SECONDS * 16)
    assert lines[0] == f"reading files: {every}/1000 ({every // 10}%)"
    assert len(lines) == 1000 // every + 1, lines  # one every 5 s, and the last one
    assert lines[-1] == "read 1000/1000 files in 62 s"


@pytest.mark.parametrize(
    "value", ['["*.txt"]', "['*.txt']", '"*.txt"', "*.txt", '["*.txt", "*.bak"]', "*.txt, *.bak"]
)
def test_list_settings_from_the_environment(tmp_path: Path, content_dir: Path, value: str) -> None:
    (content_dir / "keep.md").write_text("# Kept\n\nA note.\n", encoding="utf-8")
    (content_dir / "skip.bak").write_text("# Skipped\n\nA backup.\n", encoding="utf-8")
    env = env_for(tmp_path, content_dir, content_ignore=value)
    result = run(tmp_path, content_dir, "check", env=env)
    files = re.findall(r"^(\S+):$", result.stdout, re.MULTILINE)
    # Both sample files are .txt: only the Markdown file is left (and the backup
    # when the list does not name it).
    assert "keep.md" in files
    assert not any(name.endswith(".txt") for name in files), result.stdout
    assert ("skip.bak" in files) == ("bak" not in value)


@pytest.mark.parametrize("value", ['["*.txt"', "[*.txt]", '{"a": 1}', "[1, 2]"])
def test_a_list_setting_that_cannot_be_read_is_refused_naming_the_variable(
    tmp_path: Path, content_dir: Path, value: str
) -> None:
    env = env_for(tmp_path, content_dir, content_ignore=value)
    result = run(tmp_path, content_dir, "check", env=env)
    assert result.returncode == 2
    assert "FEEDSVC_CONTENT_IGNORE (content.ignore)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_environment_value_names_the_variable(tmp_path: Path, content_dir: Path) -> None:
    env = env_for(tmp_path, content_dir, feeds_max_items="lots")
    result = run(tmp_path, content_dir, "feeds", env=env)
    assert result.returncode == 2
    assert "FEEDSVC_FEEDS_MAX_ITEMS (feeds.max_items): expected a whole number" in result.stderr


def test_json_list_and_comma_list_give_the_same_settings() -> None:
    from feedsvc.settings import load_settings

    def ignore(value: str) -> tuple[str, ...]:
        env = {"FEEDSVC_CONFIG": os.devnull, "FEEDSVC_CONTENT_IGNORE": value}
        return load_settings(None, environ=env).content.ignore

    assert ignore('["*.txt", "drafts/*"]') == ignore("*.txt,drafts/*") == ("*.txt", "drafts/*")
    assert json.loads('["*.txt"]') == list(ignore('["*.txt"]'))
