"""What gets installed: the lock files against pyproject.toml, and the PostgreSQL extra.

``requirements/main.lock`` (feedsvc[postgresql]) is what the image and ``./dev serve``
install, ``requirements/test.lock`` adds the test tools; both are installed with
``--require-hashes``, so pip itself refuses a lock whose dependencies are not all pinned.
These tests catch the other drift: a dependency added to or tightened in pyproject.toml
without ``requirements/update``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import SAMPLES
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
LOCKS = REPO / "requirements"
FIX = "run requirements/update and commit both lock files"


def lock_pins(path: Path) -> dict[str, str]:
    """``{name: version}`` of a pip-compile lock; every pin must carry its hashes."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    pins: dict[str, str] = {}
    for line in logical:
        spec, *options = line.split()
        name, eq, version = spec.partition("==")
        assert eq, f"{path.name}: {spec!r} is not pinned with =="
        assert any(o.startswith("--hash=sha256:") for o in options), (
            f"{path.name}: {name} has no hash"
        )
        pins[canonicalize_name(name)] = version
    return pins


def wanted(*extras: str) -> list[Requirement]:
    """feedsvc's requirements with these extras, its own ``feedsvc[...]`` expanded."""
    project = PYPROJECT["project"]
    pending = [*project["dependencies"]]
    for extra in extras:
        pending += project["optional-dependencies"][extra]
    out: list[Requirement] = []
    while pending:
        req = Requirement(pending.pop())
        if canonicalize_name(req.name) == project["name"]:
            for extra in req.extras:
                pending += project["optional-dependencies"][extra]
        else:
            out.append(req)
    return out


def assert_locked(lock: Path, requirements: list[Requirement]) -> dict[str, str]:
    pins = lock_pins(lock)
    for req in requirements:
        name = canonicalize_name(req.name)
        assert name in pins, f"{lock.name} lacks {req}: {FIX}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{lock.name} pins {name}=={pins[name]}, pyproject.toml asks {req}: {FIX}"
        )
    return pins


def test_main_lock_pins_feedsvc_with_its_postgresql_extra() -> None:
    pins = assert_locked(LOCKS / "main.lock", wanted("postgresql"))
    assert "psycopg" in pins
    # Nothing of the test tools in what the image installs.
    test_only = {canonicalize_name(r.name) for r in wanted("test")} - {
        canonicalize_name(r.name) for r in wanted("postgresql")
    }
    assert not test_only & set(pins), sorted(test_only & set(pins))


def test_test_lock_adds_the_test_tools_to_the_same_runtime_pins() -> None:
    pins = assert_locked(LOCKS / "test.lock", wanted("postgresql", "test"))
    runtime = lock_pins(LOCKS / "main.lock")
    moved = {n: (v, pins.get(n)) for n, v in runtime.items() if pins.get(n) != v}
    assert not moved, f"tests would run other versions than the image: {moved}; {FIX}"


def test_a_postgresql_store_without_its_extra_names_the_extra(tmp_path: Path) -> None:
    # As if installed without [postgresql]: the driver cannot be imported.
    without_driver = (
        "import sys; sys.modules['psycopg'] = None; "
        "from feedsvc.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    env = {
        **os.environ,
        "FEEDSVC_CONFIG": str(empty),
        "FEEDSVC_CONTENT_PATH": str(SAMPLES),
        "FEEDSVC_STORE_URL": "postgresql://feedsvc@127.0.0.1:1/feedsvc",
    }
    for command in ("scan", "feeds", "serve"):
        done = subprocess.run(
            [sys.executable, "-c", without_driver, command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, (command, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert "psycopg is not installed" in done.stderr, done.stderr
        assert "pip install 'feedsvc[postgresql]'" in done.stderr, done.stderr
