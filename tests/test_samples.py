"""The user's two sample files, end to end: as docs/item-fields.md says, pinned by goldens.

Each golden is the complete normalised item; the explicit assertions beside it
restate those rules so a golden cannot lock in a bug.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import GOLDEN, SAMPLE_FRONTMATTER, SAMPLE_TRANSCRIPT, assert_golden, feedsvc_env

from feedsvc.normalise import normalise
from feedsvc.parse import parse_document
from feedsvc.settings import load_settings
from feedsvc.types import Category, Item

# A fixed "first seen" time: the front-matter sample has no date of its own.
SEEN = datetime(2024, 11, 14, 0, 30, tzinfo=UTC)


def sample_item(path: Path, tmp_path: Path) -> Item:
    settings = load_settings(None, environ=feedsvc_env(tmp_path, path.parent))
    raw = parse_document(path.name, path.read_bytes())
    return normalise(raw, settings.site, first_seen=SEEN, changed_at=SEEN)


def as_json(item: Item) -> str:
    def default(value: object) -> str:
        assert isinstance(value, datetime)
        return value.isoformat()

    return (
        json.dumps(dataclasses.asdict(item), default=default, ensure_ascii=False, indent=2) + "\n"
    )


@pytest.mark.parametrize(
    "sample", [SAMPLE_FRONTMATTER, SAMPLE_TRANSCRIPT], ids=["frontmatter", "transcript"]
)
def test_sample_item_golden(sample: Path, tmp_path: Path) -> None:
    assert_golden(GOLDEN / "items" / f"{sample.stem}.json", as_json(sample_item(sample, tmp_path)))


def test_frontmatter_sample_is_what_spec_expects(tmp_path: Path) -> None:
    item = sample_item(SAMPLE_FRONTMATTER, tmp_path)
    assert item.id == "000_a08af95bc486be6a"
    assert item.guid == "tag:news.example.com,2024:000_a08af95bc486be6a"
    assert item.url == "https://news.example.com/items/000_a08af95bc486be6a"
    assert item.title == "북한 전원회의로 북러 조약 후속조치 논의"
    assert item.language == "ko"
    assert item.categories == (Category("News", "news"),)
    assert item.summary.startswith("김정은, 러시아와 협력 확대 가능성 대두")
    assert item.image == "https://newsdao.kr/res/images/meta/newsdao_breakingnews.jpg"
    assert item.published == SEEN  # no date anywhere: first seen
    assert "<table>" in item.content_html and "style=" not in item.content_html
    assert "조약 내용" in item.content_text


def test_transcript_sample_is_what_spec_expects(tmp_path: Path) -> None:
    item = sample_item(SAMPLE_TRANSCRIPT, tmp_path)
    assert item.id == "002_ad53fbf95e7bb634"
    assert item.title == "N. KOREA RATIFIES TREATY WITH RUSSIA"
    assert item.language == "en"
    assert item.categories == (Category("News Today", "news-today"),)
    assert item.published.isoformat() == "2024-11-13T15:42:35+09:00"
    assert item.updated.isoformat() == "2024-11-13T15:43:40+09:00"
    assert item.summary.startswith("Following Russian President")
    html = item.content_html
    assert "[LEAD]" not in html and "[REPORT]" not in html
    assert "signed the treaty into law on Nov. 11, 2024." in html
    assert "<cite>N. Korean Central TV</cite>" in html
    assert "<cite>Prof. Park Won-gon / Ewha Womans Univ.</cite>" in html
    assert "N. Korean Central TV/" not in item.content_text.replace("— ", "")


def test_check_prints_the_key_fields_of_the_samples(tmp_path: Path, content_dir: Path) -> None:
    stamp = SEEN.timestamp()
    os.utime(content_dir / SAMPLE_FRONTMATTER.name, (stamp, stamp))
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc", "check"],
        env={**os.environ, **feedsvc_env(tmp_path, content_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_golden(GOLDEN / "check-samples.txt", result.stdout)
    out = result.stdout
    assert "  language:   ko\n" in out and "  categories: News (news)\n" in out
    assert "  categories: News Today (news-today)\n" in out
    assert "  published:  2024-11-13T15:42:35+09:00 (from transcript header)\n" in out
    assert "  updated:    2024-11-13T15:43:40+09:00 (from transcript header)\n" in out
    # The front-matter sample has no date: its file time is a guess, and says so.
    assert "  published:  2024-11-14T09:30:00+09:00 (GUESSED from first-seen file time)\n" in out


def test_check_exits_1_and_names_bad_files(tmp_path: Path, content_dir: Path) -> None:
    (content_dir / "bad.md").write_text("---\ntitle: [oops\n---\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc", "check", str(content_dir / "bad.md")],
        env={**os.environ, **feedsvc_env(tmp_path, content_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.startswith("bad.md: ERROR ")
    assert "YAML" in result.stdout
