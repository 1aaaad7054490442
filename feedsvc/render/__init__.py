"""Feed rendering: one module per format and a registry of them.

Owns turning a ``FeedDocument`` (feed metadata plus its items, already
sorted) into bytes. It does not choose items, read the store or know about
HTTP. The same document always gives the same bytes: no clock, no library
version, explicit ordering. Routes, the index page and the OPML are derived
from ``FORMATS``; a new format is one module plus one entry.

The shared types live in ``model.py``: the format modules import that and
``_common.py``, never this package's ``__init__``, so nothing here is cyclic.
"""

from __future__ import annotations

from feedsvc.render import atom, jsonfeed, rss
from feedsvc.render.model import FeedDocument, Format

__all__ = ["FORMATS", "FORMATS_BY_NAME", "FeedDocument", "Format"]

FORMATS: tuple[Format, ...] = (rss.FORMAT, atom.FORMAT, jsonfeed.FORMAT)
FORMATS_BY_NAME: dict[str, Format] = {f.name: f for f in FORMATS}
