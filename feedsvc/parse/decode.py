"""Bytes of a content file -> clean text; owns encoding detection, not formats.

Order of attempts (docs/content-formats.md, "Encodings and line ends"):

1. refuse empty / whitespace-only files and binary files (NUL bytes or many
   control characters);
2. a UTF-16 byte-order mark means UTF-16; a UTF-8 BOM is dropped;
3. strict UTF-8;
4. valid UTF-8 except for a cut sequence at the very end: a half-written
   file, refused so the next scan retries, never decoded as CP949 mojibake;
5. almost UTF-8 (``almost_utf8``): a few bad sequences among many good
   multi-byte ones is UTF-8 with U+FFFD for each bad sequence and a warning
   naming their byte offsets, never another code page's mojibake
   (charset-normalizer read four bad bytes in Korean UTF-8 as a Cyrillic
   code page);
6. strict CP949 (a superset of EUC-KR) *before* any generic detector:
   charset-normalizer reads a mostly-English CP949 transcript as cp1252;
7. charset-normalizer, as a last resort.

Every decoded result must look like text (almost no C0 controls), and line
ends are normalised to ``\\n`` so no later stage meets CR or CRLF.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from feedsvc.errors import SourceError

# Share of control bytes (C0 other than tab, LF, VT, FF, CR, ESC; and DEL) above
# which a file is binary rather than text with a stray control character. None
# of them is ever a trail byte in UTF-8 or CP949, so counting bytes is exact.
MAX_CONTROL_SHARE = 0.02

_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def _control_share(data: bytes) -> float:
    # bytes.translate with a deletion table counts in C: fast on 2 MB files.
    return (len(data) - len(data.translate(None, _CONTROL_BYTES))) / len(data)


def _plausible(text: str) -> bool:
    """Decoded text with (almost) no control characters and no replacement marks."""
    if not text:
        return False
    bad = len(_CONTROL_CHARS.findall(text)) + text.count("\ufffd")
    return bad / len(text) <= MAX_CONTROL_SHARE / 2


def _truncated_utf8(data: bytes) -> bool:
    """Valid UTF-8 up to an incomplete multi-byte sequence at the very end."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True  # callers only ask after a strict, final decode failed


# Almost UTF-8: at most this many bad sequences, and at least this many good
# multi-byte characters for each. CP949 Korean, read as UTF-8, has far more
# bad sequences than accidental good ones, so it never passes.
MAX_BAD_SEQUENCES = 64
GOOD_PER_BAD = 4
_SHOWN_OFFSETS = 10


def almost_utf8(data: bytes) -> tuple[str, tuple[int, ...]] | None:
    """UTF-8 text with U+FFFD for a few bad sequences, and their byte offsets.

    None when the bytes are not almost UTF-8. Each bad sequence costs one
    decode of the rest of the data, hence the cap.
    """
    pieces: list[str] = []
    offsets: list[int] = []
    good = 0
    pos = 0
    while True:
        try:
            piece = data[pos:].decode("utf-8")
        except UnicodeDecodeError as exc:
            piece = data[pos : pos + exc.start].decode("utf-8")
            offsets.append(pos + exc.start)
            if len(offsets) > MAX_BAD_SEQUENCES:
                return None
            pos += exc.end
            pieces.append(piece)
            pieces.append("\ufffd")
            good += len(piece) - len(piece.encode("ascii", "ignore"))
            continue
        pieces.append(piece)
        good += len(piece) - len(piece.encode("ascii", "ignore"))
        break
    if not offsets or good < GOOD_PER_BAD * len(offsets):
        return None
    return "".join(pieces), tuple(offsets)


def _offsets_warning(offsets: tuple[int, ...]) -> str:
    shown = ", ".join(str(offset) for offset in offsets[:_SHOWN_OFFSETS])
    more = f" and {len(offsets) - _SHOWN_OFFSETS} more" if len(offsets) > _SHOWN_OFFSETS else ""
    count = len(offsets)
    return (
        f"not valid UTF-8 at byte offset{'s' if count > 1 else ''} {shown}{more}: "
        f"{'each' if count > 1 else 'the'} bad sequence replaced with U+FFFD"
    )


def _decode_utf16(path: str, data: bytes) -> str:
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError as exc:
        raise SourceError(path, "starts with a UTF-16 byte-order mark but is not UTF-16") from exc
    if not _plausible(text):
        raise SourceError(path, "binary file, not text")
    return text


def _decode_legacy(path: str, data: bytes) -> str:
    """Steps 6 and 7: strict CP949 when it reads as text, else charset-normalizer."""
    try:
        text = data.decode("cp949")
    except UnicodeDecodeError:
        pass
    else:
        if _plausible(text):
            return text
    best = from_bytes(data).best()
    if best is None:
        raise SourceError(path, "not text in any known encoding")
    text = str(best)
    if not _plausible(text):
        raise SourceError(path, f"text encoding unclear (best guess {best.encoding} looks wrong)")
    return text


def _decode(path: str, data: bytes, warnings: list[str]) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode_utf16(path, data)
    if b"\x00" in data or _control_share(data) > MAX_CONTROL_SHARE:
        raise SourceError(path, "binary file, not text")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _truncated_utf8(data):
        raise SourceError(
            path, "truncated UTF-8 sequence at the end; the file may still be being written"
        )
    nearly = almost_utf8(data)
    if nearly is not None:
        warnings.append(_offsets_warning(nearly[1]))
        return nearly[0]
    return _decode_legacy(path, data)


def decode_text(path: str, data: bytes, warnings: list[str] | None = None) -> str:
    """The text of a content file, line ends normalised to ``\\n``.

    Raises ``SourceError`` for an empty, binary, truncated or undecodable file.
    What was decoded with losses (almost UTF-8) is appended to ``warnings``.
    """
    if not data.strip():
        raise SourceError(path, "empty file")
    text = _decode(path, data, warnings if warnings is not None else [])
    text = text.removeprefix("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise SourceError(path, "empty file")
    return text
