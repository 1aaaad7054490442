"""The codec between table rows and feedsvc values (items, files, dates); owns no tables or SQL.

Dates are kept as ISO-8601 text *with their offset* (``2024-11-13T15:42:35+09:00``)
because feeds print them as written: a timestamptz column would hand back UTC
and lose the +09:00. Ordering uses a separate UTC key text that sorts in time
order (``sort_key``). The tables these rows fill are in ``schema.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from feedsvc.dates import shows_at

# The one slug rule (docs/ids-and-slugs.md): tag and author slugs are made like category slugs.
from feedsvc.normalise.slug import slugify
from feedsvc.types import (
    ALL,
    FACET_AUTHOR,
    FACET_CATEGORY,
    FACET_TAG,
    Category,
    FeedInfo,
    FeedKey,
    Item,
    ScheduledItem,
    StoredFile,
    item_fields,
)

# --- dates ---------------------------------------------------------------------------------


def dump_dt(value: datetime) -> str:
    """ISO-8601 with the value's own offset; refuses naive datetimes (a caller bug)."""
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime cannot be stored: {value!r}")
    return value.isoformat()


def load_dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def load_optional_dt(text: str | None) -> datetime | None:
    return None if text is None else load_dt(text)


def schedule_row(item: Item) -> dict[str, Any]:
    """The ``schedule`` row of an item the clock lists or unlists (``dates.is_timed``)."""
    starts = shows_at(item)
    ends = item.expiry_date
    return {
        "item_id": item.id,
        "shows_key": sort_key(starts),
        "hides_key": None if ends is None else sort_key(ends),
        "shows_at": dump_dt(starts),
        "hides_at": None if ends is None else dump_dt(ends),
    }


def load_scheduled(
    item_id: str, source_path: str, shows_at: str, hides_at: str | None
) -> ScheduledItem:
    return ScheduledItem(item_id, source_path, load_dt(shows_at), load_optional_dt(hides_at))


def sort_key(value: datetime) -> str:
    """Fixed-width UTC text that sorts in time order: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Built by hand: ``strftime('%Y')`` does not zero-pad years before 1000.
    """
    u = value.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
    )


def dumps(value: object) -> str:
    # allow_nan=False: NaN/Infinity are not JSON (json.dumps writes them by default).
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


# --- items ---------------------------------------------------------------------------------


def item_row(item: Item, *, listed: bool | None = None) -> dict[str, Any]:
    """The ``items`` row for one item (JSON encoded once, here).

    ``listed``: whether it is in the feeds now (None: unless it is a draft).
    """
    data = dumps({**item_fields(item, dump_dt), "content_hash": item.content_hash})
    # The store's change key. An item without a content_hash still gets one,
    # so "write only when the hash differs" never hides a real change.
    digest = item.content_hash or "data:" + hashlib.sha256(data.encode("utf-8")).hexdigest()
    return {
        "id": item.id,
        "source_path": item.source_path,
        "language": item.language,
        "published": dump_dt(item.published),
        "published_key": sort_key(item.published),
        "draft": item.draft if listed is None else not listed,
        "content_hash": digest,
        "data": data,
    }


def category_rows(item: Item, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``item_categories`` rows; a slug repeated in one item counts once (first name wins)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, cat in enumerate(item.categories):
        if cat.slug in seen:
            continue
        seen.add(cat.slug)
        out.append(
            {
                "item_id": item.id,
                "slug": cat.slug,
                "name": cat.name,
                "position": position,
                "language": row["language"],
                "draft": row["draft"],
                "published_key": row["published_key"],
            }
        )
    return out


def term_rows(item: Item, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``item_terms`` rows: the item's tags and authors by slug (first name wins)."""
    out: list[dict[str, Any]] = []
    for facet, names in ((FACET_TAG, item.tags), (FACET_AUTHOR, item.authors)):
        seen: set[str] = set()
        for name in names:
            slug = slugify(name)
            if not slug or slug in seen:
                continue
            seen.add(slug)
            out.append(
                {
                    "item_id": item.id,
                    "facet": facet,
                    "slug": slug,
                    "name": name,
                    "language": row["language"],
                    "draft": row["draft"],
                    "published_key": row["published_key"],
                }
            )
    return out


def known_feed_rows(item: Item) -> list[dict[str, Any]]:
    """Every feed this (non-draft) item puts on the map, in every facet and column."""
    if item.draft:
        return []
    named: list[tuple[str, str, str]] = [(FACET_CATEGORY, ALL, "")]
    named += [(FACET_CATEGORY, c.slug, c.name) for c in item.categories]
    for facet, names in ((FACET_TAG, item.tags), (FACET_AUTHOR, item.authors)):
        named += [(facet, slugify(name), name) for name in names]
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for facet, slug, name in named:
        if not slug:
            continue
        for language in (ALL, item.language):
            rows.setdefault(
                (facet, language, slug),
                {"facet": facet, "language": language, "slug": slug, "name": name},
            )
    return list(rows.values())


def load_item(data: str) -> Item:
    d = json.loads(data)
    return Item(
        id=d["id"],
        guid=d["guid"],
        source_path=d["source_path"],
        url=d["url"],
        title=d["title"],
        summary=d["summary"],
        content_html=d["content_html"],
        content_text=d["content_text"],
        language=d["language"],
        categories=tuple(Category(name=c["name"], slug=c["slug"]) for c in d["categories"]),
        tags=tuple(d["tags"]),
        image=d["image"],
        authors=tuple(d["authors"]),
        published=load_dt(d["published"]),
        updated=load_dt(d["updated"]),
        draft=bool(d["draft"]),
        publish_date=load_optional_dt(d.get("publish_date")),
        expiry_date=load_optional_dt(d.get("expiry_date")),
        content_hash=d["content_hash"],
    )


# --- feeds ---------------------------------------------------------------------------------


def feed_infos(
    langs: Iterable[tuple[str, int]], cats: Iterable[tuple[str, str, str, int]]
) -> tuple[FeedInfo, ...]:
    """Fold grouped non-draft counts into grid cells, sorted with ``all`` first.

    ``langs``: (language, items); ``cats``: (slug, display name, language,
    items). An item has one row per slug, so summing a slug's rows counts
    each of its items once.
    """
    counts: dict[tuple[str, str], int] = {}
    for lang, n in langs:
        counts[lang, "all"] = n
        counts["all", "all"] = counts.get(("all", "all"), 0) + n
    names: dict[str, dict[str, int]] = {}
    for slug, name, lang, n in cats:
        counts[lang, slug] = counts.get((lang, slug), 0) + n
        counts["all", slug] = counts.get(("all", slug), 0) + n
        per_slug = names.setdefault(slug, {})
        per_slug[name] = per_slug.get(name, 0) + n
    # The most common display name of a slug; ties go to the smallest name.
    best = {slug: min(ns, key=lambda name: (-ns[name], name)) for slug, ns in names.items()}
    keys = sorted(counts, key=lambda k: (k[0] != "all", k[0], k[1] != "all", k[1]))
    return tuple(
        FeedInfo(
            key=FeedKey(language=lang, category=cat),
            item_count=counts[lang, cat],
            category_name=None if cat == "all" else best[cat],
        )
        for lang, cat in keys
    )


def term_infos(facet: str, cats: Iterable[tuple[str, str, str, int]]) -> tuple[FeedInfo, ...]:
    """Tag or author feeds from grouped non-draft counts: ``all`` and per language.

    ``cats``: (slug, name, language, items). Sorted by slug, ``all`` first.
    """
    counts: dict[tuple[str, str], int] = {}
    names: dict[str, dict[str, int]] = {}
    for slug, name, lang, n in cats:
        counts[lang, slug] = counts.get((lang, slug), 0) + n
        counts[ALL, slug] = counts.get((ALL, slug), 0) + n
        per_slug = names.setdefault(slug, {})
        per_slug[name] = per_slug.get(name, 0) + n
    best = {slug: min(ns, key=lambda name: (-ns[name], name)) for slug, ns in names.items()}
    keys = sorted(counts, key=lambda k: (k[1], k[0] != ALL, k[0]))
    return tuple(
        FeedInfo(
            key=FeedKey(language=lang, category=slug, facet=facet),
            item_count=counts[lang, slug],
            category_name=best[slug],
        )
        for lang, slug in keys
    )


# --- files ---------------------------------------------------------------------------------


def file_row(f: StoredFile) -> dict[str, Any]:
    # "Never changed" is stored as changed_at = first_seen (the column is NOT
    # NULL): the same instant cannot be both the first sight and a change.
    # Rows written before honest dates hold changed_at = first_seen for every
    # file never edited since, so they read back as "never changed" too.
    return {
        "path": f.path,
        "size": f.size,
        "mtime_ns": f.mtime_ns,
        "file_hash": f.file_hash,
        "item_id": f.item_id,
        "first_seen": dump_dt(f.first_seen),
        "changed_at": dump_dt(f.first_seen if f.changed_at is None else f.changed_at),
        "error": f.error,
    }


def load_file(row: sa.Row[Any]) -> StoredFile:
    return StoredFile(
        path=row.path,
        size=row.size,
        mtime_ns=row.mtime_ns,
        file_hash=row.file_hash,
        item_id=row.item_id,
        first_seen=load_dt(row.first_seen),
        changed_at=None if row.changed_at == row.first_seen else load_dt(row.changed_at),
        error=row.error,
    )
