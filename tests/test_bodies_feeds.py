"""Feeds of the bodies fixtures and the samples: ids, links and languages a validator accepts.

The W3C Feed Validation Service cannot be installed from a package registry,
so its rules that concern ids, links and feed language are checked here on
the bytes ``feedsvc build`` writes (docs/ids-and-slugs.md lists them):

- a ``tag:`` id is ``tag:authority,date:specific`` with only URI characters
  (RFC 4151 §2.1; the validator's "id is not a valid TAG" otherwise);
- every other id and every link is an absolute URI: ASCII, RFC 3986
  characters only, well-formed ``%XX`` escapes (RFC 3987 §3.1 maps IRIs so);
- every feed names its language (RSS ``<language>``, Atom feed ``xml:lang``,
  JSON Feed ``language``), an ISO 639 code; Atom entries keep their own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, SAMPLES, feedsvc_env
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DC_LANGUAGE = "{http://purl.org/dc/elements/1.1/}language"
# RFC 4151 §2.1 taggingEntity ("," date) ":" specific, specific in URI characters.
TAG = re.compile(
    r"tag:(?:[a-z0-9._-]+@)?[a-z0-9.-]+,\d{4}(?:-\d{2}(?:-\d{2})?)?:"
    r"(?:[A-Za-z0-9;/?:@&=+$._!~*'(),#-]|%[0-9A-Fa-f]{2})+"
)
# RFC 3986 absolute URI: scheme ":" then only unreserved, reserved or %XX.
URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9;/?:@&=+$._!~*'(),#\[\]-]|%[0-9A-Fa-f]{2})+"
)
LANGUAGE = re.compile(r"[a-z]{2,3}")


def valid_id(value: str) -> bool:
    if value.startswith("tag:"):
        return TAG.fullmatch(value) is not None
    return URI.fullmatch(value) is not None


def valid_link(value: str) -> bool:
    return URI.fullmatch(value) is not None and value.startswith(("http://", "https://"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bodies-site")
    content = tmp / "content"
    shutil.copytree(DATA / "bodies", content)
    for sample in SAMPLES.iterdir():
        shutil.copy2(sample, content / sample.name)
    env = {**os.environ, **feedsvc_env(tmp, content)}
    for command in (["scan", "--strict"], ["build", str(tmp / "site")]):
        done = subprocess.run(
            [sys.executable, "-m", "feedsvc", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return tmp / "site" / "feeds"


def problems_of(path: str, body: bytes) -> list[str]:
    """What the validator's id, link and language rules would report for one feed."""
    found: list[str] = []

    def check(kind: str, value: str | None, ok: bool) -> None:
        if not ok:
            found.append(f"{path}: {kind} {value!r}")

    if path.endswith(".json"):
        doc = json.loads(body)
        check("feed language", doc.get("language"), LANGUAGE.fullmatch(doc.get("language", "")))
        for key in ("feed_url", "home_page_url"):
            check(key, doc[key], valid_link(doc[key]))
        for item in doc["items"]:
            check("id", item["id"], valid_id(item["id"]))
            check("url", item["url"], valid_link(item["url"]))
            if "image" in item:
                check("image", item["image"], valid_link(item["image"]))
        return found
    root = etree.fromstring(body)
    if path.endswith(".atom"):
        check("feed xml:lang", root.get(XML_LANG), LANGUAGE.fullmatch(root.get(XML_LANG) or ""))
        for element in root.iter(f"{ATOM}id"):
            check("id", element.text, valid_id(element.text or ""))
        for link in root.iter(f"{ATOM}link"):
            check("link", link.get("href"), valid_link(link.get("href") or ""))
        for entry in root.iter(f"{ATOM}entry"):
            check("entry xml:lang", entry.get(XML_LANG), bool(entry.get(XML_LANG)))
        return found
    channel = root.find("channel")
    language = channel.findtext("language")
    check("channel language", language, LANGUAGE.fullmatch(language or ""))
    check("channel link", channel.findtext("link"), valid_link(channel.findtext("link") or ""))
    for link in channel.iter(f"{ATOM}link"):
        check("atom:link", link.get("href"), valid_link(link.get("href") or ""))
    for item in channel.iter("item"):
        check("guid", item.findtext("guid"), valid_id(item.findtext("guid") or ""))
        check("item link", item.findtext("link"), valid_link(item.findtext("link") or ""))
        check("item language", item.findtext(DC_LANGUAGE), bool(item.findtext(DC_LANGUAGE)))
    return found


def feeds(built: Path) -> dict[str, bytes]:
    return {p.relative_to(built).as_posix(): p.read_bytes() for p in sorted(built.rglob("*.*"))}


def test_every_feed_has_valid_ids_links_and_a_language(built: Path) -> None:
    every = feeds(built)
    assert len(every) >= 60  # the Hangul, C, C++ and C# cells are all there
    for cell in (
        "all/all",
        "ko/all",
        "ja/all",
        "en/c",
        "en/c_plus_plus",
        "en/c_sharp",
        "ko/뉴스-9",
    ):
        for fmt in ("rss", "atom", "json"):
            assert f"{cell}.{fmt}" in every, cell
    problems = [p for path, body in every.items() for p in problems_of(path, body)]
    assert problems == []


def test_feed_language_is_the_items_shared_one_else_the_default(built: Path) -> None:
    def atom_lang(path: str) -> str | None:
        return etree.fromstring((built / path).read_bytes()).get(XML_LANG)

    assert atom_lang("all/c_sharp.atom") == "en"  # one item, in English
    assert atom_lang("all/뉴스-9.atom") == "ko"  # the Hangul category: Korean only
    assert atom_lang("all/all.atom") == "en"  # mixed: site.default_language (en)
    assert atom_lang("ja/all.atom") == "ja"
    entries = etree.fromstring((built / "all/all.atom").read_bytes()).iter(f"{ATOM}entry")
    assert {e.get(XML_LANG) for e in entries} == {"en", "ja", "ko"}  # entries keep theirs


def test_hangul_paths_and_categories_become_ascii_ids(built: Path) -> None:
    root = etree.fromstring((built / "all/뉴스-9.atom").read_bytes())
    assert root.findtext(f"{ATOM}id") == (
        "tag:news.example.com,2024:feeds/all/%EB%89%B4%EC%8A%A4-9"
    )
    (entry_id,) = [e.text for e in root.iter(f"{ATOM}id")][1:]
    assert entry_id == (
        "tag:news.example.com,2024:%EB%89%B4%EC%8A%A4/9%EC%8B%9C-%EB%89%B4%EC%8A%A4"
    )


def test_the_rules_catch_what_the_validator_refused(built: Path) -> None:
    """Each rule above fails on the shape the W3C validator reported: no green by accident."""
    atom = (built / "all/all.atom").read_bytes().decode("utf-8")
    rss = (built / "all/all.rss").read_bytes().decode("utf-8")
    broken = {
        "all/all.atom": [
            atom.replace(
                "tag:news.example.com,2024:lang/c<", "tag:news.example.com,2024:cpp/이펙티브 C++<"
            ),
            re.sub(r' xml:lang="en"', "", atom, count=1),
        ],
        "all/all.rss": [
            re.sub(r"<language>[^<]*</language>", "", rss),
            rss.replace(
                "https://news.example.com/items/lang/c<", "https://news.example.com/items/뉴스<"
            ),
        ],
    }
    for path, bodies in broken.items():
        for body in bodies:
            assert body.encode() != (built / path).read_bytes(), "mutation did not apply"
            assert problems_of(path, body.encode()), path
