"""python-frontmatter behind our guards (docs/content-formats.md), and UAX #29 summary cuts.

Each case is one of the package's own behaviours that must not reach a reader:
its fence pattern, its handler guessing, its loaders, its silent fallbacks.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedsvc.errors import SourceError
from feedsvc.normalise import normalise
from feedsvc.parse import parse_document
from feedsvc.settings import SiteSettings
from feedsvc.types import RawDocument

SITE = SiteSettings(base_url="https://news.example.com", id_prefix="tag:news.example.com,2024:")
NOW = datetime(2024, 3, 1, tzinfo=UTC)


def parse(text: str, path: str = "x.md") -> RawDocument:
    return parse_document(path, text.encode("utf-8"))


def refused(text: str) -> str:
    with pytest.raises(SourceError) as info:
        parse(text)
    return info.value.reason


def test_a_rule_in_the_body_stays_in_the_body() -> None:
    doc = parse("---\ntitle: x\n---\nAbove\n\n---\n\nBelow\n")
    assert doc.meta == {"title": "x"}
    assert doc.body_html == "<p>Above</p>\n<hr />\n<p>Below</p>\n"


def test_only_three_dashes_fence_the_block() -> None:
    # The package's own YAML pattern takes any run of three or more dashes as a fence.
    doc = parse("---\ntitle: x\n---\nText\n\n-----\n\nMore\n")
    assert doc.meta == {"title": "x"}
    assert "<hr />" in doc.body_html
    assert "never closed" in refused("---\ntitle: x\n----\nbody\n")


def test_yaml_document_end_marker_closes_the_block() -> None:
    doc = parse("---\ntitle: Dots\n...\nBody\n")
    assert (doc.meta, doc.body_html) == ({"title": "Dots"}, "<p>Body</p>\n")


def test_a_toml_fence_inside_yaml_is_body() -> None:
    doc = parse("---\ntitle: x\n---\n+++\nnot = 'toml'\n+++\n")
    assert doc.meta == {"title": "x"}
    assert "not = 'toml'" in doc.body_html


def test_json_inside_the_fences_is_yaml_flow_and_never_guessed() -> None:
    doc = parse('---\n{"title": "Flow", "lang": no}\n---\nBody\n')
    assert doc.meta == {"title": "Flow", "lang": "no"}


def test_yaml_1_1_values_stay_as_written_through_to_the_item() -> None:
    doc = parse("---\ntitle: Hei\nlang: no\nid: 0123\ndate: 2024-01-02\n---\nTekst her.\n")
    assert doc.meta == {"title": "Hei", "lang": "no", "id": "0123", "date": "2024-01-02"}
    item = normalise(doc, SITE, first_seen=NOW, changed_at=None)
    assert (item.language, item.id) == ("no", "0123")


def test_unclosed_block_with_a_rule_later_is_still_refused() -> None:
    # A half-written file: the first `---` after the opener is the only candidate.
    assert "never closed" in refused("---\ntitle: half\nbody: text\n")
    assert "never closed" in refused("+++\ntitle = 'half'\n---\n")


def test_empty_blocks_give_empty_meta() -> None:
    assert parse("---\n---\nBody\n").meta == {}
    assert parse("+++\n+++\nBody\n").meta == {}


def test_the_block_size_cap_counts_bytes_of_the_block_only() -> None:
    korean = "가" * (256 * 1024 // 3 - 20)  # under 256 KiB in UTF-8
    assert parse(f"---\ntitle: {korean}\n---\nx\n").meta["title"] == korean
    over = "가" * (256 * 1024 // 3 + 1)
    assert "over the limit" in refused(f"---\ntitle: {over}\n---\nx\n")


def _summary(paragraph: str) -> str:
    raw = RawDocument(path="a.md", body_html=f"<p>{paragraph}</p>")
    return normalise(raw, SITE, first_seen=NOW, changed_at=None).summary


@pytest.mark.parametrize(
    "unit",
    [
        "क्ष",  # Devanagari conjunct KA + VIRAMA + SSA: one cluster since Unicode 15.1
        "👩\u200d💻",  # emoji ZWJ sequence
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # subdivision flag
        "\u1112\u1161\u11ab",  # Hangul syllable as jamo
    ],
)
def test_a_summary_without_spaces_never_splits_a_cluster(unit: str) -> None:
    summary = _summary("Run:" + unit * 400)  # a word, so the paragraph counts as prose
    assert summary.startswith("Run:") and summary.endswith("…")
    kept = summary[len("Run:") : -1]
    assert kept and kept == unit * (len(kept) // len(unit))
