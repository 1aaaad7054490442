"""Parsing: the bytes of one content file -> RawDocument; owns no site rules.

``parse_document`` is the only entry point. The format is recognised from
the text, never the extension (docs/content-formats.md), in this order:

1. front matter: the text starts with a ``---`` (YAML) or ``+++`` (TOML)
   line -> ``parse.frontmatter`` (the only module touching YAML/TOML);
2. broadcast transcript: the first non-empty line is
   ``date YYYY-MM-DD [Category] Title`` -> ``parse.transcript``;
3. anything else: HTML, Markdown or plain text -> ``parse.plain``.

Decoding (``parse.decode``) comes first, so no format parser ever sees a
BOM, a CR, or bytes. Every failure is a ``SourceError`` naming the reason;
sanitising, ids, dates and languages belong to normalise.
"""

from __future__ import annotations

import dataclasses

from feedsvc.parse.decode import decode_text
from feedsvc.parse.frontmatter import has_front_matter, parse_front_matter
from feedsvc.parse.plain import parse_plain
from feedsvc.parse.transcript import is_transcript, parse_transcript
from feedsvc.types import RawDocument

__all__ = ["decode_text", "parse_document"]


def parse_document(path: str, data: bytes) -> RawDocument:
    """Bytes of the file at ``path`` (relative, for messages) -> RawDocument.

    Raises ``SourceError`` (with ``path``) for anything not understandable:
    empty, binary, truncated or undecodable text, bad or hostile front matter,
    impossible transcript dates.
    """
    warnings: list[str] = []
    text = decode_text(path, data, warnings)
    if has_front_matter(text):
        raw = parse_front_matter(path, text)
    elif is_transcript(text):
        raw = parse_transcript(path, text)
    else:
        raw = parse_plain(path, text)
    return dataclasses.replace(raw, warnings=tuple(warnings)) if warnings else raw
