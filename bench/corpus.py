"""A deterministic synthetic corpus modelled on the two sample formats.

Half of the files are front-matter documents (YAML + HTML body, Korean, like
``tests/data/content/000_…``), half broadcast transcripts (English, like
``002_…``). About 8 categories, dates spread over two years, body lengths
drawn around the samples' own. The same ``(n, seed)`` always gives the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

CATEGORIES = (
    "News",
    "News Today",
    "Politics",
    "Economy",
    "World",
    "Culture",
    "Sports",
    "Science",
)
START = datetime(2023, 1, 1, 6, 0, 0)
SPAN_S = 2 * 365 * 24 * 3600

_KO_WORDS = (  # noqa: SIM905 - prose reads better than a word list
    "북한이 상반기를 결산하는 노동당 중앙위원회 전원회의를 개최할 예정이며 러시아와의 협력 "
    "확대 방안을 논의할 가능성이 제기되고 있습니다 김정은 국무위원장과 블라디미르 푸틴 "
    "대통령이 회담을 진행했고 조약을 체결하며 상호 협력 관계를 확대했습니다 정부는 경제 "
    "성장률 전망을 수정했으며 시장은 금리 인하 기대감에 반응했습니다 문화 행사와 스포츠 "
    "경기 과학 기술 연구 결과가 발표되었습니다 전문가들은 향후 방향성에 주목하고 있습니다"
).split()
_EN_WORDS = (  # noqa: SIM905
    "North Korean leader signed into law a treaty to establish a comprehensive and strategic "
    "partnership with Russia two days after the president did the same state media also "
    "reported that the treaty takes effect from the day both sides exchange ratification "
    "instruments the government believes the exchange is a formality and that all necessary "
    "procedures have been completed markets rallied as the central bank held rates while "
    "researchers announced results and the national team won its opening match"
).split()


@dataclass(frozen=True, slots=True)
class CorpusFile:
    """One generated file and what a peer needs to convert it."""

    name: str
    text: str
    language: str
    category: str
    title: str
    published: datetime
    summary: str
    body_html: str


def _sentence(rng: random.Random, words: tuple[str, ...] | list[str], lo: int, hi: int) -> str:
    return " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))


def _frontmatter(rng: random.Random, i: int, when: datetime) -> CorpusFile:
    category = rng.choice(CATEGORIES)
    title = _sentence(rng, _KO_WORDS, 4, 9) + f" ({i})"
    excerpt = _sentence(rng, _KO_WORDS, 25, 45) + "."
    paragraphs = [
        f'<p data-ke-size="size16">{_sentence(rng, _KO_WORDS, 15, 40)}.</p>'
        for _ in range(rng.randint(3, 10))
    ]
    if rng.random() < 0.5:
        paragraphs.insert(1, f"<h2>{_sentence(rng, _KO_WORDS, 2, 5)}</h2>")
    image = f"https://img.example.com/{i % 97}.jpg"
    body = f'<p><img src="{image}" alt="사진" /></p>\n\n' + "\n\n".join(paragraphs)
    text = (
        "---\n"
        f"title: {title}\n"
        "categories:\n"
        f"  - {category}\n"
        f"date: {when:%Y-%m-%d %H:%M:%S}\n"
        "excerpt: >\n"
        f"  {excerpt}\n"
        f"image: '{image}'\n"
        "---\n\n"
        f"{body}\n"
    )
    return CorpusFile(
        name=f"{i:06d}_fm.txt",
        text=text,
        language="ko",
        category=category,
        title=title,
        published=when,
        summary=excerpt,
        body_html=body,
    )


def _transcript(rng: random.Random, i: int, when: datetime) -> CorpusFile:
    category = rng.choice(CATEGORIES)
    title = _sentence(rng, _EN_WORDS, 4, 8).upper() + f" {i}"
    lead = _sentence(rng, _EN_WORDS, 30, 50).capitalize() + "."
    paragraphs = [
        _sentence(rng, _EN_WORDS, 20, 45).capitalize() + "." for _ in range(rng.randint(4, 10))
    ]
    updated = when + timedelta(seconds=rng.randint(30, 3600))
    report = "\n\n\n\n".join(paragraphs)
    text = (
        f" date {when:%Y-%m-%d} [{category}] {title}\n\n"
        f"입력 {when:%Y-%m-%d %H:%M:%S} 수정 {updated:%Y-%m-%d %H:%M:%S} {category}\n\n\n\n\n"
        f"[LEAD]\n\n{lead}\n\n\n\n[REPORT]\n\n{report}\n"
    )
    body = "".join(f"<p>{p}</p>\n" for p in [lead, *paragraphs])
    return CorpusFile(
        name=f"{i:06d}_tr.txt",
        text=text,
        language="en",
        category=category,
        title=title,
        published=when,
        summary=lead,
        body_html=body,
    )


def generate(n: int, seed: int = 1) -> list[CorpusFile]:
    """``n`` files, alternating Korean front matter and English transcripts."""
    rng = random.Random(seed)
    out: list[CorpusFile] = []
    for i in range(n):
        when = START + timedelta(seconds=rng.randrange(SPAN_S))
        make = _frontmatter if i % 2 == 0 else _transcript
        out.append(make(rng, i, when))
    return out


def write(files: list[CorpusFile], root: Path) -> None:
    """Write the corpus under ``root`` in 1000-file folders (like a real archive)."""
    root.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        folder = root / f"{i // 1000:03d}"
        folder.mkdir(exist_ok=True)
        (folder / f.name).write_text(f.text, encoding="utf-8")
