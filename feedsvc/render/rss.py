"""RSS 2.0: owns which field goes in which element; feedgen quirks live elsewhere.

Spec: https://www.rssboard.org/rss-specification. feedgen's quirks are fixed
in ``_feedgen.py``, shared field rules in ``_common.py``.

Channel: title, link (home page), description, ``atom:link rel="self"``,
language (omitted for the ``all`` column), ttl, generator, lastBuildDate
(the newest item's ``updated``). Items: title, link, description (the
summary, as escaped HTML), ``content:encoded`` (the full HTML), guid,
category (category names, then tags), pubDate, ``dc:creator`` per author,
``dc:language`` and the image as ``media:content``.
"""

from __future__ import annotations

from html import escape

from feedsvc.render._common import (
    image_type,
    item_authors,
    item_id,
    item_url,
    line,
    tags,
    text,
    title,
    uri,
)
from feedsvc.render._feedgen import FeedBuilder
from feedsvc.render.model import FeedDocument, Format

MEDIA_TYPE = "application/rss+xml"

DC = "http://purl.org/dc/elements/1.1/"
MEDIA = "http://search.yahoo.com/mrss/"


def render(doc: FeedDocument) -> bytes:
    builder = FeedBuilder(doc, "rss", self_type=MEDIA_TYPE, namespaces={"dc": DC, "media": MEDIA})
    if doc.ttl_minutes > 0:
        builder.feed.ttl(doc.ttl_minutes)  # minutes a reader may cache the channel

    for item in doc.items:
        fe = builder.entry(item.id, published=item.published, updated=item.updated)
        url = item_url(item, doc)
        guid = item_id(item)
        fe.title(title(item.title))
        builder.entry_link(fe, url)
        # isPermaLink="true" promises a URL a browser can open: only when the
        # guid IS the item's url (a tag: IRI as permalink is a validator error).
        fe.guid(guid, permalink=guid == url)

        # <description> is HTML by convention; our summary is plain text, so it
        # is escaped once to read exactly as written ("a < b", "<b>" literally).
        # Without a summary the full HTML stands in, so every item keeps both
        # <description> and <content:encoded> (feedgen would otherwise move
        # the content into <description> and drop <content:encoded>).
        summary = text(item.summary).strip()
        content = text(item.content_html)
        if summary:
            fe.description(escape(summary, quote=False))
        elif content.strip():
            fe.description(content)
        if content.strip():
            # Escaped, not CDATA: equivalent for readers, and lxml refuses a
            # CDATA section containing "]]>".
            fe.content(content)

        names = tags(item)
        if names:
            fe.category([{"term": name} for name in names])

        # RSS <author> must be an e-mail address; names go in dc:creator,
        # which the W3C validator accepts (and never both: a warning).
        for name in item_authors(item):
            builder.element(fe, f"{{{DC}}}creator", name)
        language = line(item.language)
        if language:
            # RSS has no per-item language; Dublin Core fills the gap, which
            # matters in the mixed-language "all" feeds.
            builder.element(fe, f"{{{DC}}}language", language)
        image = uri(item.image or "")
        if image:
            # Media RSS, not <enclosure>: an enclosure needs a length > 0 for
            # the W3C validator and we do not know the image's size.
            attributes = {"url": image, "medium": "image"}
            media_type = image_type(image)
            if media_type:
                attributes["type"] = media_type
            builder.element(fe, f"{{{MEDIA}}}content", None, attributes)

    return builder.to_bytes()


FORMAT = Format(name="rss", label="RSS 2.0", media_type=MEDIA_TYPE, render=render, styled=True)
