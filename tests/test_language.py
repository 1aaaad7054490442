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
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from feedsvc.normalise import language, normalise
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


# Long samples (at least 120 letters each) in the languages the service detects.
LONG_TEXTS = (
    "Le gouvernement a annoncé hier une nouvelle réforme des retraites, qui doit entrer en "
    "vigueur l'année prochaine selon le ministre, malgré l'opposition des syndicats.",
    "Die Bundesregierung hat gestern eine neue Rentenreform angekündigt, die im nächsten Jahr "
    "in Kraft treten soll, sagte der Minister trotz des Widerstands der Gewerkschaften.",
    "El gobierno anunció ayer una nueva reforma de las pensiones, que entrará en vigor el "
    "próximo año, según el ministro, a pesar de la oposición de los sindicatos.",
    "O governo anunciou ontem uma nova reforma da previdência, que deve entrar em vigor no "
    "próximo ano, segundo o ministro, apesar da oposição dos sindicatos do país.",
    "Il governo ha annunciato ieri una nuova riforma delle pensioni, che dovrebbe entrare in "
    "vigore il prossimo anno secondo il ministro, nonostante l'opposizione dei sindacati.",
    "Chính phủ đã công bố một cải cách lương hưu mới vào hôm qua, sẽ có hiệu lực vào năm tới "
    "theo lời bộ trưởng, bất chấp sự phản đối của các công đoàn trong nước.",
    "Pemerintah kemarin mengumumkan reformasi pensiun baru yang akan mulai berlaku tahun depan "
    "menurut menteri, meskipun ada penolakan dari serikat pekerja di seluruh negeri.",
)
# 143 characters but 118 letters: short for lingua, which counts letters.
SHORT_TEXT = (
    "The government and the central bank reported that the exchange rates of the markets "
    "signed the treaty with the researchers and the media today."
)

# Resident MB now, not the peak: a child's peak starts at its parent's size at the fork.
_MEMORY_PROBE = """
import os, sys
from feedsvc.normalise.language import detect, load_models
def rss(): return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
load_models()
answers = [detect("", text) for text in sys.argv[2:]]
long_only = rss()
answers.append(detect("", sys.argv[1]))
print(long_only, rss(), *answers)
"""


def test_long_samples_alone_do_not_load_the_models_of_every_length() -> None:
    """A process that met only samples of 120 letters or more (and the warm-up)
    holds lingua's trigram models (18 MB); the first shorter sample loads the
    models of every length (about 200 MB more). docs/language.md."""
    assert all(sum(map(str.isalpha, text)) >= language.LONG_SAMPLE_LETTERS for text in LONG_TEXTS)
    assert sum(map(str.isalpha, SHORT_TEXT)) < language.LONG_SAMPLE_LETTERS < len(SHORT_TEXT)
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, SHORT_TEXT, *LONG_TEXTS],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    long_only, after_short, answers = int(out[0]), int(out[1]), out[2:]
    assert answers == ["fr", "de", "es", "pt", "it", "vi", "id", "en"]
    assert after_short - long_only > 100, (long_only, after_short)
    assert long_only < after_short / 2, (long_only, after_short)
