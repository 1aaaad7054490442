"""RawDocument -> Item: the rules of docs/item-fields.md; owns no parsing, storage or rendering.

Each field takes its value from the first source that yields one, in the
order of the table in docs/item-fields.md: front matter, then what the format itself says
(``RawDocument.title`` etc.), then the body, then the path, then the site's
defaults. Front-matter values are coerced in ``fields``; HTML is handled only
in ``html``. Time is passed in (``first_seen``, ``changed_at``), never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from feedsvc.classify import DEFAULT_RULES, ContentRules
from feedsvc.normalise.dates import ItemDates, item_dates
from feedsvc.normalise.fields import Meta, plain_text
from feedsvc.normalise.html import BodyFacts, extract, sanitise
from feedsvc.normalise.ids import checked_id
from feedsvc.normalise.language import InvalidLanguageTag, detect, primary_subtag
from feedsvc.normalise.references import References
from feedsvc.normalise.slug import categories_from_names
from feedsvc.normalise.summary import SUMMARY_LIMIT, cut
from feedsvc.normalise.urls import absolute_http_url, guid_for, id_from_path, item_page_url
from feedsvc.settings import SiteSettings
from feedsvc.text import collapse_whitespace, xml_safe
from feedsvc.types import Category, Item, RawDocument, item_fields, pure_path

__all__ = [
    "RULES_VERSION",
    "Normalised",
    "content_hash",
    "normalise",
    "normalise_document",
    "site_digest",
]

# Bump when a rule here changes the Items it makes: it is part of
# ``site_digest``, so the pipeline re-normalises every file once.
# 3: honest updated (docs/dates.md); 4: references resolve in the document's folder;
# 5: publishDate/expiryDate (docs/dates.md); 6: Jekyll's _drafts are drafts.
RULES_VERSION = 6

# An author's own excerpt is kept whole up to this length (it is their
# wording); only a derived first paragraph is cut near SUMMARY_LIMIT.
EXPLICIT_SUMMARY_LIMIT = 1000

# A title taken from the body's first line is cut like a summary, but shorter.
TITLE_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Normalised:
    """An Item with what normalising noticed: where its dates came from, and warnings."""

    item: Item
    dates: ItemDates

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.dates.warnings


_POST_FOLDERS = frozenset({"_posts", "_drafts"})


def normalise(
    raw: RawDocument,
    site: SiteSettings,
    *,
    first_seen: datetime,
    changed_at: datetime | None,
    rules: ContentRules = DEFAULT_RULES,
) -> Item:
    """The Item for ``raw`` under ``site``; ``normalise_document`` without the notes."""
    return normalise_document(
        raw, site, first_seen=first_seen, changed_at=changed_at, rules=rules
    ).item


def normalise_document(
    raw: RawDocument,
    site: SiteSettings,
    *,
    first_seen: datetime,
    changed_at: datetime | None,
    rules: ContentRules = DEFAULT_RULES,
) -> Normalised:
    """The Item for ``raw`` under ``site``, with its date sources and warnings.

    ``first_seen``: the file's first-seen time (``feedsvc.dates.first_seen``,
    stored by the pipeline so it never moves); ``changed_at``: when its
    content last really changed, None if it never did (docs/dates.md).
    ``rules``: the content rules, to tell links to documents from links to resources.
    Raises ``SourceError(raw.path, reason)`` for an unusable front-matter value.
    Deterministic: the same arguments always give an equal Item.
    """
    meta = Meta(raw.path, raw.meta)
    zone = ZoneInfo(site.timezone)

    item_id = _item_id(meta, raw)
    url = _item_url(meta, item_id, site)
    refs = document_references(raw.path, url, site, rules)
    content_html = sanitise(raw.body_html, url, refs)
    body = extract(content_html)
    title = _title(meta, raw, body)
    summary = _summary(meta, raw, body)
    dates = item_dates(meta, raw, zone, first_seen=first_seen, changed_at=changed_at)

    item = Item(
        id=item_id,
        guid=guid_for(item_id, site.id_prefix),
        source_path=raw.path,
        url=url,
        title=title,
        summary=summary,
        content_html=content_html,
        content_text=body.text,
        language=_language(meta, title, summary, body.prose, site),
        categories=_categories(meta, raw, site),
        tags=meta.names("tags") or (),
        image=_image(meta, refs, body),
        authors=meta.authors("author", "authors") or (collapse_whitespace(xml_safe(site.author)),),
        published=dates.published,
        updated=dates.updated,
        draft=_draft(meta, raw.path),
        publish_date=dates.publish_date,
        expiry_date=dates.expiry_date,
    )
    return Normalised(dataclasses.replace(item, content_hash=content_hash(item)), dates)


def _item_id(meta: Meta, raw: RawDocument) -> str:
    declared = meta.identifier("id", "guid")
    if declared is not None:
        return checked_id(raw.path, declared, "the front matter")
    return checked_id(raw.path, xml_safe(id_from_path(raw.path)), "the file name")


def document_references(
    path: str, item_url: str, site: SiteSettings, rules: ContentRules = DEFAULT_RULES
) -> References:
    """How the relative references of the document at ``path`` resolve (references.py)."""
    return References(path, item_url, site.base_url, site.source_base_url, rules)


def _item_url(meta: Meta, item_id: str, site: SiteSettings) -> str:
    declared = meta.text("url", "link", "permalink")
    if declared is not None:
        absolute = absolute_http_url(xml_safe(declared))
        if absolute is not None:
            return absolute
    return item_page_url(item_id, site.base_url)


def _title(meta: Meta, raw: RawDocument, body: BodyFacts) -> str:
    # Written text (front matter, the format's own header) may carry entities
    # or stray tags; text from the body was decoded by the HTML parser already
    # and must not be decoded twice ("&amp;lt;" is the literal text "&lt;").
    for written in (meta.text("title"), raw.title):
        title = plain_text(written) if written is not None else ""
        if title:
            return title
    first_line = next((line for line in body.text.splitlines() if line.strip()), None)
    from_body = (
        body.first_heading,
        cut(collapse_whitespace(first_line), TITLE_LIMIT) if first_line else None,  # may be long
        pure_path(raw.path).stem,
        raw.path,
    )
    for candidate in from_body:
        title = collapse_whitespace(xml_safe(candidate)) if candidate is not None else ""
        if title:
            return title
    return "untitled"  # only for an empty path, which discover never yields


def _summary(meta: Meta, raw: RawDocument, body: BodyFacts) -> str:
    for written in (meta.text("excerpt", "summary", "description"), raw.summary):
        text = plain_text(written) if written is not None else ""
        if text:
            return cut(text, EXPLICIT_SUMMARY_LIMIT)
    # Already decoded text (see _title): only tidied, then cut (docs/item-fields.md, summary).
    return cut(collapse_whitespace(body.first_paragraph or ""), SUMMARY_LIMIT)


def _language(meta: Meta, title: str, summary: str, prose: str, site: SiteSettings) -> str:
    found = meta.first("lang", "language")
    if found is not None:
        key, value = found
        if not isinstance(value, str):
            raise meta.error(key, f"expected a language tag such as 'ko', got {value!r}")
        try:
            declared = primary_subtag(value)
        except InvalidLanguageTag as exc:
            raise meta.error(key, exc.reason) from None
        if declared is not None:
            return declared
    # docs/language.md: detected from the prose (code, URLs and math left out), title first.
    return detect(title, prose or summary) or site.default_language


def _categories(meta: Meta, raw: RawDocument, site: SiteSettings) -> tuple[Category, ...]:
    # Jekyll's `_posts`/`_drafts` folders hold posts, they are not categories
    # (Jekyll itself takes categories from the folders above them).
    folders = tuple(f for f in pure_path(raw.path).parts[:-1] if f not in _POST_FOLDERS)
    sources = (
        meta.names("categories") or meta.names("category"),
        (raw.category,) if raw.category else None,
        folders[:1] or None,
        (site.default_category,),
    )
    for names in sources:
        if names:
            categories = categories_from_names(names)
            if categories:  # a source of only punctuation yields nothing: try the next
                return categories
    return ()


def _image(meta: Meta, refs: References, body: BodyFacts) -> str | None:
    declared = meta.text("image", "cover", "thumbnail")
    if declared is not None:
        absolute = refs.resolve(xml_safe(declared))
        if absolute is not None:
            return absolute
    return body.first_image


def _draft(meta: Meta, path: str) -> bool:
    # docs/item-fields.md: `draft: true` or `published: false`. A `published` date is no flag.
    # Jekyll publishes nothing from `_drafts/` (docs/documents-and-resources.md).
    return (
        bool(meta.flag("draft"))
        or meta.flag_if_boolean("published") is False
        or "_drafts" in pure_path(path).parts[:-1]
    )


def content_hash(item: Item) -> str:
    """blake2b of a canonical JSON of every field but ``content_hash`` itself.

    The field mapping is built by ``item_fields``, not ``dataclasses.asdict``,
    which deep-copies every value and cost as much as parsing the file. It is
    exactly what ``asdict`` gave (tests pin it), so stored hashes stay valid.
    """
    fields = item_fields(item)
    payload = json.dumps(fields, sort_keys=True, ensure_ascii=True, allow_nan=False)
    return hashlib.blake2b(payload.encode("ascii"), digest_size=20).hexdigest()


def site_digest(site: SiteSettings) -> str:
    """A stable hash of the site settings that shape Items (and of RULES_VERSION):
    when it changes, the pipeline re-normalises every file."""
    shaping = {
        "rules": RULES_VERSION,
        "base_url": site.base_url,
        "source_base_url": site.source_base_url,
        "id_prefix": site.id_prefix,
        "author": site.author,
        "timezone": site.timezone,
        "default_language": site.default_language,
        "default_category": site.default_category,
    }
    payload = json.dumps(shaping, sort_keys=True, ensure_ascii=True)
    return hashlib.blake2b(payload.encode("ascii"), digest_size=20).hexdigest()
