"""Peers on the same corpus, converted to their native input: Hugo and Pelican.

Both build feeds only (no article pages): Hugo RSS for the home page, each
category and each language (a ``lang`` taxonomy); Pelican Atom + RSS for all,
each category and each language. Each is timed cold, then again after one
changed file (Hugo has no incremental build; Pelican's content cache is on).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import corpus

PELICAN_VENV = "pelican-venv"


def pelican_version(work: Path) -> str:
    exe = work.resolve() / PELICAN_VENV / "bin" / "pelican"
    if not exe.exists():
        return "not installed (see bench/README.md)"
    return subprocess.run(
        [str(exe), "--version"], check=False, capture_output=True, text=True
    ).stdout.strip()


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_hugo_site(files: list[corpus.CorpusFile], site: Path) -> Path:
    if site.exists():
        shutil.rmtree(site)
    posts = site / "content" / "posts"
    posts.mkdir(parents=True)
    (site / "config.toml").write_text(
        """baseURL = "https://news.example.com/"
title = "peer"
disableKinds = ["sitemap", "robotsTXT", "404"]
rssLimit = 50
[taxonomies]
category = "categories"
lang = "langs"
[outputs]
home = ["RSS"]
section = ["RSS"]
taxonomy = ["RSS"]
term = ["RSS"]
""",
        encoding="utf-8",
    )
    for f in files:
        (posts / (f.name.removesuffix(".txt") + ".html")).write_text(
            "---\n"
            f"title: {_yaml_str(f.title)}\n"
            f"date: {f.published:%Y-%m-%dT%H:%M:%S}+09:00\n"
            f"categories: [{_yaml_str(f.category)}]\n"
            f"langs: [{f.language}]\n"
            f"summary: {_yaml_str(f.summary)}\n"
            # Feeds only: the page is listed (so it reaches the feeds), never rendered.
            "_build: {render: never, list: always}\n"
            "---\n"
            f"{f.body_html}\n",
            encoding="utf-8",
        )
    return posts


def write_pelican_site(files: list[corpus.CorpusFile], site: Path) -> Path:
    if site.exists():
        shutil.rmtree(site)
    content = site / "content"
    content.mkdir(parents=True)
    none = "''"
    (site / "pelicanconf.py").write_text(
        f"""SITENAME = "peer"
SITEURL = "https://news.example.com"
PATH = "content"
TIMEZONE = "Asia/Seoul"
DEFAULT_LANG = "en"
FEED_DOMAIN = SITEURL
FEED_MAX_ITEMS = 50
FEED_ALL_ATOM = "feeds/all.atom.xml"
FEED_ALL_RSS = "feeds/all.rss.xml"
CATEGORY_FEED_ATOM = "feeds/{{slug}}.atom.xml"
CATEGORY_FEED_RSS = "feeds/{{slug}}.rss.xml"
TRANSLATION_FEED_ATOM = "feeds/all-{{lang}}.atom.xml"
TRANSLATION_FEED_RSS = "feeds/all-{{lang}}.rss.xml"
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
# Feeds only: no article, page, index, archive, category, tag or author HTML.
ARTICLE_SAVE_AS = {none}
ARTICLE_LANG_SAVE_AS = {none}
PAGE_SAVE_AS = {none}
PAGE_LANG_SAVE_AS = {none}
DRAFT_SAVE_AS = {none}
INDEX_SAVE_AS = {none}
ARCHIVES_SAVE_AS = {none}
AUTHORS_SAVE_AS = {none}
CATEGORIES_SAVE_AS = {none}
TAGS_SAVE_AS = {none}
CATEGORY_SAVE_AS = {none}
TAG_SAVE_AS = {none}
AUTHOR_SAVE_AS = {none}
DIRECT_TEMPLATES = []
THEME_STATIC_PATHS = []
CACHE_CONTENT = True
LOAD_CONTENT_CACHE = True
CACHE_PATH = "cache"
""",
        encoding="utf-8",
    )
    for f in files:
        (content / (f.name.removesuffix(".txt") + ".md")).write_text(
            f"Title: {f.title}\n"
            f"Date: {f.published:%Y-%m-%d %H:%M:%S}\n"
            f"Category: {f.category}\n"
            f"Lang: {f.language}\n"
            f"Slug: {f.name.removesuffix('.txt')}\n"
            f"Summary: {f.summary}\n\n"
            f"{f.body_html}\n",
            encoding="utf-8",
        )
    return content


def _time(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def _touch_one(folder: Path, ext: str, round_: int) -> None:
    first = sorted(folder.glob(f"*{ext}"))[0]
    with first.open("a", encoding="utf-8") as out:
        out.write(f"\n<p>changed {round_}</p>\n")


def _peak_cmd(cmd: list[str]) -> list[str]:
    return ["/usr/bin/time", "-f", "PEAK_KB=%M", *cmd] if Path("/usr/bin/time").exists() else cmd


def bench_hugo(content: Path, n: int, seed: int, runs: int, work: Path) -> dict[str, Any]:
    hugo = shutil.which("hugo")
    if hugo is None:
        return {"error": "hugo not installed"}
    site = work / f"hugo-{n}"
    posts = write_hugo_site(corpus.generate(n, seed), site)
    cold, rebuild = [], []
    for r in range(runs):
        shutil.rmtree(site / "public", ignore_errors=True)
        shutil.rmtree(site / "resources", ignore_errors=True)
        cold.append(_time([hugo, "--quiet"], site))
        _touch_one(posts, ".html", r)
        rebuild.append(_time([hugo, "--quiet"], site))
    feeds = len(list((site / "public").rglob("*.xml")))
    return {
        "cold_s": statistics.median(cold),
        "rebuild_s": statistics.median(rebuild),
        "feeds": feeds,
    }


def bench_pelican(content: Path, n: int, seed: int, runs: int, work: Path) -> dict[str, Any]:
    exe = work.resolve() / PELICAN_VENV / "bin" / "pelican"
    if not exe.exists():
        return {"error": "pelican not installed"}
    site = work / f"pelican-{n}"
    src = write_pelican_site(corpus.generate(n, seed), site)
    cmd = [str(exe), "-q", "-s", "pelicanconf.py", "-o", "output", "content"]
    cold, rebuild = [], []
    for r in range(runs):
        shutil.rmtree(site / "output", ignore_errors=True)
        shutil.rmtree(site / "cache", ignore_errors=True)
        cold.append(_time(cmd, site))
        _touch_one(src, ".md", r)
        rebuild.append(_time(cmd, site))
    feeds = len(list((site / "output").rglob("*.xml")))
    return {
        "cold_s": statistics.median(cold),
        "rebuild_s": statistics.median(rebuild),
        "feeds": feeds,
    }
