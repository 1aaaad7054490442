"""Front-matter documents: python-frontmatter behind guards; owns YAML and TOML, not bodies.

docs/content-formats.md ("Front-matter documents") says what is accepted.

python-frontmatter splits the block and calls the handler's ``load``; every
trap it has (measured with python-frontmatter 1.3 and PyYAML 6) is closed
around it, never left to luck:

- decoding, the BOM and line ends are settled before it (``parse.decode``),
  so a BOM or CR-only line ends never turn the block into body text;
- the handler is always passed explicitly (YAML for a ``---`` first line,
  TOML for ``+++``): no handler guessing, so a first line ``{`` never makes
  the file JSON;
- the handler's ``split`` refuses an unclosed block (a half-written file must
  not publish its raw YAML) and an oversized one (``MAX_FRONT_MATTER_BYTES``)
  before anything is loaded. It raises an error the package does not catch:
  the package turns a ``ValueError`` from ``split`` into "no front matter";
- the handler's ``load`` is ours, never PyYAML's loader or the package's.

YAML is never *loaded*. We iterate parser events (``yaml.parse``; libyaml's
event parser is iterative, unlike the C composer that segfaults on deep
nesting) and build values ourselves with an explicit stack, so that:

- aliases and anchors are refused (no billion-laughs expansion later);
- depth (``MAX_DEPTH``), node count (``MAX_NODES``) and size
  (``MAX_FRONT_MATTER_BYTES``) are capped;
- every scalar stays a ``str``: YAML 1.1 never turns ``no`` into False,
  ``0123`` into 83, ``12:30:00`` into 45000 or a date into ``date``. Only a
  plain (unquoted, untagged) ``~``, ``null``, ``Null``, ``NULL`` or empty
  value becomes ``None``;
- a tag other than YAML's standard ones (``STANDARD_TAGS``: ``!!str``,
  ``!!int``, ``!!float``, ``!!bool``, ``!!null``, ``!!timestamp``, ``!!map``,
  ``!!seq``) is refused, naming the tag and its line: ``!!python/...``,
  ``!include``, ``!!binary`` or any custom ``!tag`` asks a loader to do
  something, and a value built anyway would not be what the author meant.
  A standard tag changes nothing (``!!int 5`` is ``"5"``);
- mapping keys are strings (``on:``, ``null:``, ``2024:`` are ``"on"``,
  ``"null"``, ``"2024"``); a key that is a list or mapping is refused;
  a repeated key: the last one wins, as with PyYAML and python-frontmatter.

TOML keeps its own types (RawDocument's contract); nothing TOML can express
is dangerous.
"""

from __future__ import annotations

import re
import tomllib
from types import MappingProxyType
from typing import Any, TypeAlias

import frontmatter
import yaml
from frontmatter.default_handlers import BaseHandler

from feedsvc.errors import SourceError
from feedsvc.parse import bodies, templates
from feedsvc.types import RawDocument

MAX_FRONT_MATTER_BYTES = 256 * 1024
MAX_DEPTH = 20
MAX_NODES = 10_000

# Front-matter fields read as plain text, from which template tags are removed.
TEXT_FIELDS = ("title", "excerpt", "summary", "description")

_YAML_CORE = "tag:yaml.org,2002:"
STANDARD_TAGS = frozenset(
    _YAML_CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
) | {"!"}  # `!` alone: the non-specific tag, "just a string"

_YAML_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_OPEN = re.compile(r"---[ \t]*")
_TOML_OPEN = re.compile(r"\+\+\+[ \t]*")
_TOML_LINE = re.compile(r"\bline (\d+)")

# libyaml's event parser when present (fast, iterative); else pure Python,
# whose event parser is iterative too. Neither composes nodes.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Value: TypeAlias = str | list["Value"] | dict[str, "Value"] | None


def has_front_matter(text: str) -> bool:
    """Whether the text opens a ``---`` or ``+++`` front-matter block."""
    first = text.partition("\n")[0]
    return bool(_YAML_OPEN.fullmatch(first) or _TOML_OPEN.fullmatch(first))


class _Refused(Exception):
    """A block refused by a handler; ``reason`` is the whole message for SourceError.

    Deliberately not a ValueError: python-frontmatter reads a ValueError from
    ``split`` as "no front matter" and would publish the block as body text.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _YamlRefused(Exception):
    """Raised inside the event loop; turned into a _Refused with its file line."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


class _FencedHandler(BaseHandler):
    """Splits at fence lines only, refusing unclosed and oversized blocks; loads nothing.

    ``FM_BOUNDARY`` matches a whole fence line with its line end, so the
    block starts on the file's second line (error lines stay file lines).
    Stateless: one instance per format serves every file.
    """

    START_DELIMITER: str

    def split(self, text: str) -> tuple[str, str]:
        assert self.FM_BOUNDARY is not None
        parts = self.FM_BOUNDARY.split(text, 2)
        if len(parts) < 3 or parts[0]:
            raise _Refused(
                f"front matter opened with {self.START_DELIMITER} is never closed"
                " (file incomplete?)"
            )
        _, front, body = parts
        front = front.removesuffix("\n")  # the closing fence's line start
        size = len(front.encode("utf-8"))
        if size > MAX_FRONT_MATTER_BYTES:
            raise _Refused(
                f"front matter is {size:,} bytes, over the limit of {MAX_FRONT_MATTER_BYTES:,}"
            )
        return front, body


class YamlHandler(_FencedHandler):
    """``---`` blocks (``...`` also closes one), built from parser events by ``_build_yaml``."""

    FM_BOUNDARY = re.compile(r"^(?:---|\.\.\.)[ \t]*$\n?", re.MULTILINE)
    START_DELIMITER = END_DELIMITER = "---"

    def load(self, fm: str) -> dict[str, Any]:
        offset = 1  # the opening `---` line
        try:
            return _build_yaml(fm) or {}
        except _YamlRefused as exc:
            raise _Refused(
                f"bad YAML front matter: {exc.reason} (line {exc.line + offset})"
            ) from exc
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f" (line {mark.line + 1 + offset})" if mark is not None else ""
            problem = exc.problem or exc.context or "not valid YAML"
            raise _Refused(f"bad YAML front matter: {problem}{where}") from exc
        except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
            # Belt and braces: the event parser raises YAMLError, but a wrapped
            # library must never turn one bad file into a failed scan.
            raise _Refused(f"bad YAML front matter: {exc}") from exc


class TomlHandler(_FencedHandler):
    """``+++`` blocks, read by ``tomllib`` (TOML keeps its own types)."""

    FM_BOUNDARY = re.compile(r"^\+\+\+[ \t]*$\n?", re.MULTILINE)
    START_DELIMITER = END_DELIMITER = "+++"

    def load(self, fm: str) -> dict[str, Any]:
        try:
            return tomllib.loads(fm)
        except tomllib.TOMLDecodeError as exc:
            # tomllib counts lines from the block; report file lines.
            message = _TOML_LINE.sub(lambda m: f"line {int(m.group(1)) + 1}", str(exc))
            raise _Refused(f"bad TOML front matter: {message}") from exc


# Constants, not state: a handler holds only its compiled fence pattern.
_YAML = YamlHandler()
_TOML = TomlHandler()


def _event_line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 0


def _shown_tag(tag: str) -> str:
    """A tag as the author wrote it: ``tag:yaml.org,2002:binary`` -> ``!!binary``."""
    shown = "!!" + tag.removeprefix(_YAML_CORE) if tag.startswith(_YAML_CORE) else tag
    return shown if len(shown) <= 80 else shown[:80] + "…"


def _build_yaml(source: str) -> dict[str, Value] | None:
    """YAML text -> plain values, strings only, without ever composing nodes."""
    # Each frame: the container being filled, and for mappings the pending key.
    stack: list[tuple[list[Value] | dict[str, Value], list[str | None]]] = []
    root: Value = None
    documents = 0
    nodes = 0

    def add(value: Value, event: yaml.Event) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        container, pending = stack[-1]
        if isinstance(container, list):
            container.append(value)
        elif pending[0] is None:
            # A key keeps its text as written: `null:`, `~:`, `on:`, `2024:` are strings.
            if not isinstance(event, yaml.ScalarEvent):
                raise _YamlRefused("mapping keys must be plain text", _event_line(event))
            pending[0] = event.value
        else:
            container[pending[0]] = value
            pending[0] = None

    for event in yaml.parse(source, Loader=_YamlLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _YamlRefused("YAML aliases/anchors are not allowed", _event_line(event))
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _YamlRefused("more than one YAML document", _event_line(event))
        elif isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
            if event.tag is not None and event.tag not in STANDARD_TAGS:
                raise _YamlRefused(
                    f"the tag {_shown_tag(event.tag)} is not allowed (only plain values)",
                    _event_line(event),
                )
            nodes += 1
            if nodes > MAX_NODES:
                raise _YamlRefused(f"more than {MAX_NODES:,} YAML values", _event_line(event))
            if isinstance(event, yaml.ScalarEvent):
                plain = event.implicit[0] and event.tag is None
                add(None if plain and event.value in _YAML_NULLS else event.value, event)
                continue
            if len(stack) >= MAX_DEPTH:
                raise _YamlRefused(f"nested deeper than {MAX_DEPTH} levels", _event_line(event))
            is_mapping = isinstance(event, yaml.MappingStartEvent)
            container: list[Value] | dict[str, Value] = {} if is_mapping else []
            # Attach first (a key position refuses it), then descend.
            add(container, event)
            stack.append((container, [None]))
        elif isinstance(event, yaml.CollectionEndEvent):
            stack.pop()
    if root is None:
        return None
    if not isinstance(root, dict):
        raise _YamlRefused("front matter must be a mapping of keys to values", 1)
    return root


def _meta_and_body(path: str, text: str) -> tuple[dict[str, object], str]:
    """``(meta, body)`` of text that opens a block (``has_front_matter``).

    The handler is chosen by the first line, never guessed by the package.
    """
    handler = _TOML if text.startswith("+") else _YAML
    try:
        meta, body = frontmatter.parse(text, handler=handler)
    except _Refused as exc:
        raise SourceError(path, exc.reason) from exc
    return meta, body


def parse_front_matter(path: str, text: str) -> RawDocument:
    """A front-matter document -> RawDocument (its ``meta`` is the front matter).

    The body's format is decided by ``parse.bodies`` (front matter's
    ``markup``, the extension, else HTML only when it starts with a tag).
    Title, dates and the rest stay in ``meta``: normalise reads them.
    """
    meta, body = _meta_and_body(path, text)
    declared = next((meta[key] for key in bodies.FORMAT_KEYS if key in meta), None)
    body_format = bodies.front_matter_format(path, declared, body)
    for key in TEXT_FIELDS:  # template tags never reach a reader, in fields neither
        value = meta.get(key)
        if isinstance(value, str):
            meta[key] = templates.plain(value)
    html = bodies.render(body, body_format)
    return RawDocument(path, html, MappingProxyType(meta))
