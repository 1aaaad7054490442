"""Atom 1.0 (RFC 4287): owns which field goes in which element; feedgen quirks live elsewhere.

feedgen's quirks are fixed in ``_feedgen.py``, shared field rules in ``_common.py``.

Feed: xml:lang (omitted for the ``all`` column), id, title, subtitle,
updated (the newest item's ``updated``), author, links self and alternate,
generator. Entries: xml:lang (always, so mixed-language feeds are labelled
per entry), id, title, updated, published, authors, ``content type="html"``,
alternate link, ``summary type="text"``, categories (term = slug, label =
name, then tags as bare terms) and the image as ``link rel="enclosure"``.
"""

from __future__ import annotations

from feedsvc.render._common import (
    feed_author,
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
from feedsvc.render._feedgen import XML_LANG, FeedBuilder
from feedsvc.render.model import FeedDocument, Format

MEDIA_TYPE = "application/atom+xml"


def render(doc: FeedDocument) -> bytes:
    builder = FeedBuilder(doc, "atom", self_type=MEDIA_TYPE)
    # RFC 4287 §4.1.1: a feed without an author needs one in every entry;
    # the feed-level author makes every entry valid on its own.
    builder.feed.author({"name": feed_author(doc)})

    for item in doc.items:
        fe = builder.entry(item.id, published=item.published, updated=item.updated)
        fe.id(item_id(item))  # RFC 4287 §4.2.6: a permanent IRI
        fe.title(title(item.title))  # §4.2.14; no type attribute means text
        builder.entry_link(fe, item_url(item, doc))  # §4.1.2: exactly one rel="alternate"
        authors = item_authors(item)
        if authors:
            fe.author([{"name": name} for name in authors])  # §3.2 person construct
        summary = text(item.summary).strip()
        if summary:
            fe.summary(summary, type="text")  # §4.2.13, plain text as written
        # §4.1.3.1 type="html": escaped HTML. Never feedgen's type="CDATA",
        # which writes a type the RFC 4287 schema rejects. An empty body still
        # gets an element: it is what docs/item-fields.md promises every entry has.
        fe.content(text(item.content_html), type="html")

        # §4.2.2: term = slug (what the feed URLs use), label = the display name;
        # then the item's own tags as bare terms. First occurrence wins.
        categories: dict[str, dict[str, str]] = {}
        for category in item.categories:
            term = line(category.slug) or line(category.name)
            if term and term not in categories:
                categories[term] = {"term": term, "label": line(category.name) or term}
        named = set(categories) | {c["label"] for c in categories.values()}
        extra = [{"term": tag} for tag in tags(item) if tag not in named]
        if categories or extra:
            fe.category([*categories.values(), *extra])

        image = uri(item.image or "")
        if image:
            # §4.2.7.2 rel="enclosure"; length is optional in Atom (§4.2.7.6).
            builder.entry_link(fe, image, rel="enclosure", media_type=image_type(image))

        language = line(item.language)
        if language:
            builder.attribute(fe, XML_LANG, language)  # XML 1.0 §2.12

    return builder.to_bytes()


FORMAT = Format(name="atom", label="Atom 1.0", media_type=MEDIA_TYPE, render=render, styled=True)
