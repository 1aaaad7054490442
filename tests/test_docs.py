"""The docs in the repo: the configuration page is generated, and links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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


DOCS = sorted((ROOT / "docs").glob("*.md"))
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    found = set()
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return found


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_link_between_the_docs_resolves(page: Path) -> None:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check offline
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor in {resolved.name}")
    assert broken == [], f"{page.name}: {broken}"


def test_the_index_links_every_page() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    linked = set(_LINK.findall(index))
    missing = [p.name for p in DOCS if p.name != "index.md" and p.name not in linked]
    assert missing == [], f"docs/index.md does not link {missing}"


# Files the project's text may not point at: notes outside the repository, and
# paths of one machine. Spelled in pieces so this file does not match itself.
_OUTSIDE = re.compile(
    "|".join(
        [
            r"\bSP" + r"EC(?:\.md| §)",
            "PIT" + "FALLS",
            r"\bSTY" + r"LE\.md",
            r"(?<!\w)/wo" + "rk/",
            "/tmp/feedsvc" + "-team",
            r"\.\./sha" + "red",
        ]
    )
)
_DOC_CITED = re.compile(r"(?<![\w./-])docs/([\w-]+\.md)")


def _project_text() -> list[Path]:
    files = [p for part in ("feedsvc", "tests", "bench") for p in (ROOT / part).rglob("*.py")]
    return [*files, *DOCS, ROOT / "README.md", ROOT / "dev", ROOT / "Dockerfile"]


def test_nothing_cites_files_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _project_text()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert found == [], "cite a page of docs/ instead:\n" + "\n".join(found)


def test_every_docs_page_the_code_cites_exists() -> None:
    missing = sorted(
        f"{path.relative_to(ROOT)}: docs/{name}"
        for path in _project_text()
        for name in _DOC_CITED.findall(path.read_text(encoding="utf-8"))
        if not (ROOT / "docs" / name).exists()
    )
    assert missing == [], missing
