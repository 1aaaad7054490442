"""JSON Feed 1.1: owns the JSON layout and serialisation, not the field rules.

Spec: https://jsonfeed.org/version/1.1. Shared field rules live in ``_common.py``.

Top level: version, title, home_page_url, feed_url, description, language
(omitted for the ``all`` column), authors, hubs (WebSub), items. Items: id (the guid), url,
title, summary, content_html, content_text, image, date_published,
date_modified, tags (category names, then tags), authors, language.

Absent values are omitted, never ``null``: JSON Feed readers treat a present
key as a value. Serialised with ``allow_nan=False`` (a YAML ``.nan`` must
fail loudly, not become invalid JSON), keys in a fixed order, no spaces, and
every string through ``xml_safe`` (no lone surrogates, which strict parsers
reject, and the same text as the XML formats).
"""

from __future__ import annotations

import json

from feedsvc.render._common import (
    GENERATOR,
    feed_author,
    item_authors,
    item_id,
    item_url,
    line,
    rfc3339,
    tags,
    text,
    title,
    uri,
)
from feedsvc.render.model import FeedDocument, Format
from feedsvc.types import Item

MEDIA_TYPE = "application/feed+json"
VERSION = "https://jsonfeed.org/version/1.1"

JsonObject = dict[str, object]


def render(doc: FeedDocument) -> bytes:
    feed: JsonObject = {
        "version": VERSION,
        "title": title(doc.title, GENERATOR),
        "home_page_url": uri(doc.home_url),
        "feed_url": uri(doc.self_url),
    }
    _put(feed, "description", text(doc.description).strip())
    if doc.language:
        _put(feed, "language", line(doc.language))
    feed["authors"] = [{"name": feed_author(doc)}]
    if doc.hubs:
        feed["hubs"] = [{"type": "WebSub", "url": uri(hub)} for hub in doc.hubs]
    feed["items"] = [_item(item, doc) for item in doc.items]
    return json.dumps(
        feed,
        ensure_ascii=False,
        allow_nan=False,
        sort_keys=False,  # insertion order above is the documented order
        separators=(",", ":"),
    ).encode("utf-8")


def _item(item: Item, doc: FeedDocument) -> JsonObject:
    entry: JsonObject = {
        "id": item_id(item),  # JSON Feed 1.1: a string, unique, never changing
        "url": item_url(item, doc),
        "title": title(item.title),
    }
    _put(entry, "summary", text(item.summary).strip())
    content_html = text(item.content_html)
    content_text = text(item.content_text)
    _put(entry, "content_html", content_html if content_html.strip() else "")
    _put(entry, "content_text", content_text if content_text.strip() else "")
    if "content_html" not in entry and "content_text" not in entry:
        # 1.1: "content_html and content_text are each optional strings but
        # one or both must be present".
        entry["content_text"] = entry.get("summary") or entry["title"]
    _put(entry, "image", uri(item.image or ""))
    entry["date_published"] = rfc3339(item.published)
    entry["date_modified"] = rfc3339(item.updated)
    names = tags(item)
    if names:
        entry["tags"] = list(names)
    authors = item_authors(item)
    if authors:
        entry["authors"] = [{"name": name} for name in authors]
    _put(entry, "language", line(item.language))
    return entry


def _put(target: JsonObject, key: str, value: str) -> None:
    """Set ``key`` only when there is a value: JSON Feed omits absent fields."""
    if value:
        target[key] = value


FORMAT = Format(name="json", label="JSON Feed 1.1", media_type=MEDIA_TYPE, render=render)
