"""Language detection on a labelled set of short, code-heavy posts (docs/language.md).

``tests/data/language-eval.jsonl``: 210 texts written for this test, 70 each
in ko, en and ja; a third technical posts with a code block, inline code and
display math, a third news briefs with a URL and code, a third one-line
bodies. Each goes through ``parse_document`` and ``normalise`` as a file
would. The site's default language is one the set never uses, so an
"unsure" answer counts as a miss, never as a lucky hit.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from feedsvc.normalise import normalise
from feedsvc.parse import parse_document
from feedsvc.settings import SiteSettings

EVAL_SET = Path(__file__).parent / "data" / "language-eval.jsonl"
REQUIRED_ACCURACY = 0.99
SEEN = datetime(2024, 11, 14, tzinfo=UTC)
SITE = SiteSettings(default_language="fr")


def detected(title: str, body: str) -> str:
    text = f"---\ntitle: {json.dumps(title, ensure_ascii=False)}\n---\n{body}"
    raw = parse_document("post.md", text.encode("utf-8"))
    return normalise(raw, SITE, first_seen=SEEN, changed_at=SEEN).language


def test_language_accuracy_on_the_evaluation_set() -> None:
    entries = [json.loads(line) for line in EVAL_SET.read_text(encoding="utf-8").splitlines()]
    assert len(entries) >= 200
    assert Counter(e["lang"] for e in entries) == {"en": 70, "ko": 70, "ja": 70}
    misses = []
    for entry in entries:
        got = detected(entry["title"], entry["body"])
        if got != entry["lang"]:
            misses.append((entry["lang"], got, entry["kind"], entry["title"]))
    accuracy = 1 - len(misses) / len(entries)
    print(f"language accuracy: {accuracy:.2%} ({len(entries) - len(misses)}/{len(entries)})")
    assert accuracy >= REQUIRED_ACCURACY, misses
