"""The feedgen internals ``render/_feedgen.py`` relies on are still where it expects them.

Each test names the internal it checks, so a feedgen upgrade that moves one
fails here with that name, not as a wrong byte in a golden file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import pytest
from feedgen.feed import FeedGenerator
from lxml import etree

from feedsvc.render._feedgen import (
    _EXTENSION,
    _RSS_LAST_BUILD,
    ATOM,
    FeedBuilder,
    _EntryExtras,
    _FeedExtras,
    extension_of,
    unset_rss_last_build_date,
)
from feedsvc.render.model import FeedDocument
from feedsvc.types import FeedKey

LOCKS = Path(__file__).parent.parent / "requirements"


def _doc() -> FeedDocument:
    return FeedDocument(
        key=FeedKey(language="all", category="all"),
        title="Internals",
        description="feedgen internals",
        feed_id="tag:example.org,2024:feeds/all/all",
        self_url="https://example.org/feeds/all/all.rss",
        home_url="https://example.org/",
        language=None,
        author="Example",
        ttl_minutes=0,
        items=(),
    )


def _plain_feed() -> FeedGenerator:
    fg = FeedGenerator()
    fg.title("t")
    fg.link(href="https://example.org/")
    fg.description("d")
    return fg


def test_the_installed_feedgen_is_the_locked_one() -> None:
    installed = f"feedgen=={version('feedgen')} "
    for lock in ("main.lock", "test.lock"):
        assert installed in (LOCKS / lock).read_text(), (
            f"feedgen {version('feedgen')} is not the version in requirements/{lock}: "
            "check render/_feedgen.py's reach-ins before changing the pin"
        )


def test_feedgen_still_keeps_last_build_date_in_its_mangled_attribute() -> None:
    fg = _plain_feed()
    assert _RSS_LAST_BUILD in vars(fg), (
        f"feedgen renamed {_RSS_LAST_BUILD}: unset_rss_last_build_date must follow"
    )
    # Without the reach-in feedgen stamps the wall clock into every RSS feed.
    assert b"<lastBuildDate>" in fg.rss_str()


def test_unsetting_last_build_date_leaves_the_channel_without_one() -> None:
    fg = _plain_feed()
    unset_rss_last_build_date(fg)
    assert b"lastBuildDate" not in fg.rss_str()


def test_unsetting_fails_loudly_when_the_attribute_is_gone() -> None:
    fg = _plain_feed()
    del vars(fg)[_RSS_LAST_BUILD]
    with pytest.raises(RuntimeError, match="feedgen no longer has"):
        unset_rss_last_build_date(fg)


def test_feedgen_sets_our_extension_as_an_attribute_of_feeds_and_entries() -> None:
    fg = FeedGenerator()
    fg.register_extension(_EXTENSION, _FeedExtras, _EntryExtras, atom=False, rss=True)
    fe = fg.add_entry(order="append")
    assert isinstance(extension_of(fg), _FeedExtras), "feedgen's register_extension changed"
    assert isinstance(extension_of(fe), _EntryExtras), "feedgen's add_entry changed"
    with pytest.raises(RuntimeError, match="extension attribute"):
        extension_of(FeedGenerator())


@pytest.mark.parametrize("flavour", ["rss", "atom"])
def test_elements_added_through_the_extension_come_out(flavour: str) -> None:
    builder = FeedBuilder(_doc(), flavour, self_type="application/xml")  # type: ignore[arg-type]
    fe = builder.entry(
        "one",
        published=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        updated=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    fe.title("one")
    fe.id("tag:example.org,2024:one")
    fe.link(href="https://example.org/one")
    fe.description("one") if flavour == "rss" else fe.summary("one")
    builder.element(fe, "{https://example.org/ns}mark", "entry")
    builder.attribute(fe, "{http://www.w3.org/XML/1998/namespace}lang", "en")
    builder.channel_element("{https://example.org/ns}mark", "feed")
    root = etree.fromstring(builder.to_bytes())
    marks = sorted(element.text for element in root.iter("{https://example.org/ns}mark"))
    assert marks == ["entry", "feed"], "feedgen no longer calls the extension's extend_*"
    entry = next(root.iter("item", f"{{{ATOM}}}entry"))
    assert entry.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    if flavour == "rss":  # the feed date is ours (no items: the epoch), not feedgen's clock
        assert root.findall("channel/lastBuildDate")[0].text == "Thu, 01 Jan 1970 00:00:00 +0000"
        assert len(root.findall("channel/lastBuildDate")) == 1
