"""Documents and resources: the one rule that tells them apart; owns nothing else.

Every regular file under the content root (hidden and ignored names aside)
is either a *document*, which is parsed and may become an item, or a
*resource* (an image, a PDF, an archive, SVG, source code, data), which is
never an item and never a failure, and is served at ``/files/...`` so the
relative references of documents work (docs/documents-and-resources.md).

The rule, in this order:

1. the file name's last extension (lowercase) is in
   ``content.document_extensions``: a document;
2. it is in ``content.resource_extensions``: a resource;
3. any other name (no extension, or one in neither list) is decided by the
   first ``SNIFF_BYTES`` of the file: a known binary signature (``MAGIC``),
   a NUL byte (without a UTF-16 byte-order mark), an XML or SVG start that
   is not XHTML, or a ``#!`` interpreter line make it a resource; anything
   else is a document, so extensionless text stays a document.

Discovery, the scan, ``feedsvc check`` and the file server all ask here;
nothing else decides. Only the standard library is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["document", "resource"]

# Written content: what a person reads as a post. Front matter and transcript
# headers are recognised in any of these (the samples are .txt).
DOCUMENT_EXTENSIONS: tuple[str, ...] = (
    *(".md", ".markdown", ".mdown", ".mkd", ".mkdn", ".mdwn"),
    *(".html", ".htm", ".txt", ".text"),
)

RESOURCE_EXTENSIONS: tuple[str, ...] = (
    # images
    *(".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp", ".avif", ".apng", ".bmp", ".ico"),
    *(".tif", ".tiff", ".heic", ".heif", ".jxl", ".svg", ".svgz", ".psd", ".xcf", ".raw"),
    # audio and video
    *(".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac", ".mid", ".midi"),
    *(".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi", ".ogv", ".mpg", ".mpeg", ".3gp"),
    *(".vtt", ".srt"),
    # documents that are not posts: PDF, e-books, office files
    *(".pdf", ".epub", ".mobi", ".ps", ".eps", ".rtf", ".doc", ".docx", ".xls", ".xlsx"),
    *(".ppt", ".pptx", ".odt", ".ods", ".odp", ".odg", ".key", ".numbers", ".pages"),
    # archives, disk images, binaries
    *(".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".jar", ".war"),
    *(".apk", ".dmg", ".iso", ".img", ".deb", ".rpm", ".exe", ".dll", ".so", ".dylib"),
    *(".o", ".a", ".class", ".pyc", ".wasm", ".bin", ".dat", ".db", ".sqlite", ".sqlite3"),
    # fonts
    *(".woff", ".woff2", ".ttf", ".otf", ".eot"),
    # source code and templates
    *(".py", ".pyi", ".ipynb", ".java", ".kt", ".kts", ".scala", ".groovy", ".gradle"),
    *(".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".m", ".mm", ".cs", ".fs", ".vb"),
    *(".go", ".rs", ".swift", ".dart", ".zig", ".nim", ".d", ".hs", ".ml", ".clj", ".ex"),
    *(".exs", ".erl", ".elm", ".lua", ".pl", ".pm", ".rb", ".php", ".r", ".jl", ".sql"),
    *(".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd", ".awk", ".sed", ".vim"),
    *(".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".vue", ".svelte", ".coffee"),
    *(".css", ".scss", ".sass", ".less", ".styl", ".map"),
    *(".gotmpl", ".tmpl", ".tpl", ".liquid", ".njk", ".hbs", ".mustache", ".ejs", ".erb"),
    *(".j2", ".jinja", ".twig", ".pug", ".haml", ".slim"),
    # data and configuration
    *(".json", ".jsonl", ".ndjson", ".geojson", ".yaml", ".yml", ".toml", ".ini", ".cfg"),
    *(".conf", ".properties", ".env", ".lock", ".xml", ".xsl", ".xslt", ".xsd", ".dtd"),
    *(".rss", ".atom", ".opml", ".csv", ".tsv", ".ics", ".vcf", ".gpx", ".kml", ".bib"),
    *(".diff", ".patch", ".log", ".pem", ".crt", ".asc", ".gpg", ".sig"),
)

# How much of a file's start decides a name the lists do not.
SNIFF_BYTES = 512

# Binary signatures at offset 0 (file(1) magic, the common ones on websites).
MAGIC: tuple[bytes, ...] = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"%PDF-",
    b"PK\x03\x04",  # zip, and everything built on it (docx, epub, jar)
    b"PK\x05\x06",  # empty zip
    b"\x1f\x8b",  # gzip
    b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c",
    b"\x28\xb5\x2f\xfd",  # zstd
    b"Rar!\x1a\x07",
    b"\x7fELF",
    b"\xca\xfe\xba\xbe",  # Java class, Mach-O fat
    b"\x00asm",  # WebAssembly
    b"OggS",
    b"fLaC",
    b"\x1aE\xdf\xa3",  # Matroska, WebM
    b"II*\x00",  # TIFF
    b"MM\x00*",
    b"\x00\x00\x01\x00",  # ICO
    b"wOFF",
    b"wOF2",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # old Office files
    b"SQLite format 3\x00",
    b"%!PS",
)
# Signatures too short or too textual to trust alone (MZ, ID3, BZh) are left
# out: those files carry a NUL byte in their first bytes, which rule 3 catches.
# RIFF containers (WebP, WAV, AVI) and ISO media (MP4, MOV, HEIC, AVIF).
_RIFF = re.compile(rb"RIFF....(?:WEBP|WAVE|AVI )", re.S)
_ISO_MEDIA = re.compile(rb"....ftyp", re.S)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_XML_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*<(?:\?xml|svg[\s>]|!DOCTYPE\s+svg)", re.I)
_XHTML = re.compile(rb"<(?:!DOCTYPE\s+)?html[\s>]", re.I)


def extension(name: str) -> str:
    """The last extension of a file name, lowercase with its dot; "" for none.

    A leading dot is not an extension (hidden names never get here anyway).
    """
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return ""
    return "." + ext.lower()


def sniff(head: bytes) -> Kind:
    """What the first bytes of a file say it is (rule 3 of the module docstring)."""
    if head.startswith(MAGIC) or _RIFF.match(head) or _ISO_MEDIA.match(head):
        return "resource"
    if head.startswith(_UTF16_BOMS):
        return "document"  # UTF-16 text (decode.py reads it); its NULs are not binary
    if b"\x00" in head or head.startswith(b"#!"):
        return "resource"
    if _XML_START.match(head) and not _XHTML.search(head):
        return "resource"
    return "document"


@dataclass(frozen=True, slots=True)
class ContentRules:
    """The document and resource extensions in force (``content.*_extensions``).

    A document extension wins over the same resource extension, so a site
    that writes posts in ``.xml`` adds it to the document list only.
    """

    document_extensions: frozenset[str] = frozenset(DOCUMENT_EXTENSIONS)
    resource_extensions: frozenset[str] = frozenset(RESOURCE_EXTENSIONS)

    def by_name(self, name: str) -> Kind | None:
        """Rules 1 and 2: the kind the name alone decides, else None (ask ``sniff``)."""
        # ``extension`` inlined: discovery asks this once per file of every walk.
        dot = name.rfind(".")
        if dot <= 0:
            return None
        ext = name[dot:].lower()
        if ext in self.document_extensions:
            return "document"
        if ext in self.resource_extensions:
            return "resource"
        return None

    def classify(self, name: str, head: bytes) -> Kind:
        """The kind of a file called ``name`` whose first bytes are ``head``."""
        return self.by_name(name) or sniff(head)


DEFAULT_RULES = ContentRules()
