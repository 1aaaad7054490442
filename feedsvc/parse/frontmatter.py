"""Front-matter documents (docs/content-formats.md); the ONLY module that touches YAML or TOML.

Splitting is done here, not by python-frontmatter: its handler guessing lets
a first line ``{`` hijack the file as JSON and turns an unclosed ``---``
block into silent body text (each measured with python-frontmatter 1.3 and PyYAML 6). Here the
text (already decoded, BOM dropped, line ends ``\\n``) must start with a
``---`` line (YAML) or ``+++`` line (TOML), and the block must be closed by
the same line (``...`` also closes YAML), or the file is refused: a
half-written file must not publish its raw YAML.

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
from collections.abc import Callable
from types import MappingProxyType
from typing import TypeAlias

import yaml

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
_YAML_CLOSE = re.compile(r"(?:---|\.\.\.)[ \t]*")
_TOML_FENCE = re.compile(r"\+\+\+[ \t]*")
_TOML_LINE = re.compile(r"\bline (\d+)")

# libyaml's event parser when present (fast, iterative); else pure Python,
# whose event parser is iterative too.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Value: TypeAlias = str | list["Value"] | dict[str, "Value"] | None


def has_front_matter(text: str) -> bool:
    """Whether the text opens a ``---`` or ``+++`` front-matter block."""
    first = text.partition("\n")[0]
    return bool(_YAML_OPEN.fullmatch(first) or _TOML_FENCE.fullmatch(first))


class _YamlRefused(Exception):
    """Raised inside the event loop; turned into a SourceError with its line."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


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


def _load_yaml(path: str, source: str) -> dict[str, Value]:
    offset = 1  # the opening `---` line
    try:
        return _build_yaml(source) or {}
    except _YamlRefused as exc:
        raise SourceError(
            path, f"bad YAML front matter: {exc.reason} (line {exc.line + offset})"
        ) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1 + offset})" if mark is not None else ""
        problem = exc.problem or exc.context or "not valid YAML"
        raise SourceError(path, f"bad YAML front matter: {problem}{where}") from exc
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        # Belt and braces: the event parser raises YAMLError, but a wrapped
        # library must never turn one bad file into a failed scan.
        raise SourceError(path, f"bad YAML front matter: {exc}") from exc


def _load_toml(path: str, source: str) -> dict[str, object]:
    try:
        return tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        # tomllib counts lines from the block; report file lines.
        message = _TOML_LINE.sub(lambda m: f"line {int(m.group(1)) + 1}", str(exc))
        raise SourceError(path, f"bad TOML front matter: {message}") from exc


def _split(path: str, text: str) -> tuple[str, str, str]:
    """``(syntax, front matter, body)``; refuses an unclosed or oversized block."""
    lines = text.split("\n")
    fence = lines[0].strip()
    closes: Callable[[str], bool]
    if fence == "+++":
        syntax, closes = "toml", lambda line: _TOML_FENCE.fullmatch(line) is not None
    else:
        syntax, closes = "yaml", lambda line: _YAML_CLOSE.fullmatch(line) is not None
    for index in range(1, len(lines)):
        if closes(lines[index]):
            front = "\n".join(lines[1:index])
            body = "\n".join(lines[index + 1 :])
            break
    else:
        raise SourceError(
            path, f"front matter opened with {fence} is never closed (file incomplete?)"
        )
    size = len(front.encode("utf-8"))
    if size > MAX_FRONT_MATTER_BYTES:
        raise SourceError(
            path,
            f"front matter is {size:,} bytes, over the limit of {MAX_FRONT_MATTER_BYTES:,}",
        )
    return syntax, front, body


def parse_front_matter(path: str, text: str) -> RawDocument:
    """A front-matter document -> RawDocument (kind ``frontmatter``).

    The body's format is decided by ``parse.bodies`` (front matter's
    ``markup``, the extension, else HTML only when it starts with a tag).
    Title, dates and the rest stay in ``meta``: normalise reads them.
    """
    syntax, front, body = _split(path, text)
    meta: dict[str, object] = dict(
        _load_toml(path, front) if syntax == "toml" else _load_yaml(path, front)
    )
    body = body.strip()
    declared = next((meta[key] for key in bodies.FORMAT_KEYS if key in meta), None)
    body_format = bodies.front_matter_format(path, declared, body)
    for key in TEXT_FIELDS:  # template tags never reach a reader, in fields neither
        value = meta.get(key)
        if isinstance(value, str):
            meta[key] = templates.plain(value)
    html = bodies.render(body, body_format)
    return RawDocument(path, "frontmatter", html, body_format, MappingProxyType(meta))
