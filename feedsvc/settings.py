"""Settings: declared once, read from TOML and the environment, validated eagerly.

Each setting is one dataclass field carrying its default, its parser and its
help text. The CLI, ``config/feedsvc.toml``, the README and the tests all
derive from these declarations. Nothing here reads files or the environment
at import time: ``load_settings`` is called once, at the top (CLI or
``create_app``), and the frozen ``Settings`` is passed down.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedsvc.classify import DOCUMENT_EXTENSIONS, RESOURCE_EXTENSIONS, ContentRules
from feedsvc.errors import ConfigError

ENV_PREFIX = "FEEDSVC_"
CONFIG_ENV = "FEEDSVC_CONFIG"
DEFAULT_CONFIG_PATH = Path("config/feedsvc.toml")

Parser = Callable[[object], Any]


def _setting(default: Any, parse: Parser, help: str) -> Any:
    return field(default=default, metadata={"parse": parse, "help": help})


# -- parsers: each takes a TOML value or an environment string -------------


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value.strip()


def _nonempty_text(value: object) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _base_url(value: object) -> str:
    url = _text(value).rstrip("/")
    if not url:
        return ""  # follow the address `feedsvc serve` listens on (Settings.listening_on)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an absolute http(s) URL, e.g. https://news.example.com")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return url


def _id_prefix(value: object) -> str:
    prefix = _nonempty_text(value)
    # RFC 4151: tag:authority,date:specific -- the prefix is everything before `specific`.
    if not re.fullmatch(r"tag:[A-Za-z0-9.\-@]+,\d{4}(-\d{2}(-\d{2})?)?:", prefix):
        raise ValueError("expected a tag URI prefix such as 'tag:news.example.com,2024:'")
    return prefix


def _timezone(value: object) -> str:
    name = _nonempty_text(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


def _language(value: object) -> str:
    code = _nonempty_text(value).lower()
    if not re.fullmatch(r"[a-z]{2,3}", code):
        raise ValueError("expected a BCP 47 primary language subtag such as 'en' or 'ko'")
    return code


def _int_range(low: int, high: int) -> Parser:
    def parse(value: object) -> int:
        if isinstance(value, bool):
            raise ValueError("expected a whole number")
        if isinstance(value, str):
            if not re.fullmatch(r"\s*-?\d+\s*", value):
                raise ValueError("expected a whole number")
            value = int(value)
        if not isinstance(value, int):
            raise ValueError("expected a whole number")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _text_list(what: str) -> Parser:
    """A list of strings: a TOML list, or from the environment a TOML/JSON list or a comma list.

    ``'["*.txt", "*.bak"]'`` and ``'*.txt, *.bak'`` give the same list; a value
    that starts like a list but is not one is refused, never read as one odd item.
    """

    def parse(value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            value = _list_from_text(value, what)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of {what}")
        return tuple(v.strip() for v in value if v.strip())

    return parse


def _list_from_text(text: str, what: str) -> list[object]:
    text = text.strip()
    if not text.startswith(("[", "{", '"', "'")):
        return [part for part in text.split(",")]
    # Written like a TOML or JSON value: read it as one (a JSON list is TOML too).
    try:
        found = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        try:
            found = json.loads(text)
        except ValueError:
            found = None
    if isinstance(found, str):
        found = [found]
    if not isinstance(found, list):
        raise ValueError(
            f"expected a list of {what}: a TOML/JSON list such as "
            '["*.txt", "drafts/*"], or a comma list such as *.txt,drafts/*'
        )
    return found


_globs = _text_list("glob patterns")


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _hub_urls(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in _list_from_text(value, "hub URLs") if str(part).strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of hub URLs")
    urls = tuple(v.strip() for v in value)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise ValueError(f"{url!r} is not an absolute http(s) URL without a fragment")
    if len(set(urls)) != len(urls):
        raise ValueError("a hub is listed twice")
    return urls


def _extensions(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = _list_from_text(value, "file extensions")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of file extensions such as ['.md', '.txt']")
    found: list[str] = []
    for raw in value:
        ext = raw.strip().lower()
        if not ext:
            continue
        if not re.fullmatch(r"\.[^./\s]+", ext):
            raise ValueError(f"{raw!r} is not a file extension such as '.md'")
        found.append(ext)
    return tuple(dict.fromkeys(found))


def _optional_base_url(value: object) -> str:
    return _base_url(value) if _text(value) else ""


def _store_url(value: object) -> str:
    url = _nonempty_text(value)
    if not re.match(r"(sqlite|postgresql)(\+\w+)?://", url):
        raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST/DB")
    return url


# -- the declarations ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteSettings:
    title: str = _setting(
        "feedsvc news", _nonempty_text, "Site name, used as the title of every feed."
    )
    description: str = _setting(
        "News feeds by category and language.", _text, "One sentence describing the site."
    )
    base_url: str = _setting(
        "",
        _base_url,
        "Public URL of the service. Every absolute link (self links, item pages) is built "
        "from it, never from the request's Host header. Empty: http://HOST:PORT where "
        "`feedsvc serve` listens (server.host and server.port, or --host and --port; the "
        "real port for --port 0). Set it whenever the service is reached by another name.",
    )
    id_prefix: str = _setting(
        "tag:feedsvc.localhost,2024:",
        _id_prefix,
        "Tag URI prefix for permanent entry ids (RFC 4151). Choose once: changing it "
        "changes every id and readers show every item again.",
    )
    author: str = _setting("feedsvc", _nonempty_text, "Author for items whose file names none.")
    timezone: str = _setting(
        "Asia/Seoul", _timezone, "IANA time zone of dates written without an offset."
    )
    default_language: str = _setting(
        "en", _language, "Language of items whose language cannot be told from the text."
    )
    default_category: str = _setting(
        "General", _nonempty_text, "Category of items that name none and sit at the root."
    )
    source_base_url: str = _setting(
        "",
        _optional_base_url,
        "URL of the site the content was written for (e.g. the Hugo or Jekyll site). "
        "Root-relative references in documents (/img/x.png) resolve against it; empty: "
        "against the content folder as served at /files/.",
    )


@lru_cache(maxsize=8)
def _content_rules(documents: tuple[str, ...], resources: tuple[str, ...]) -> ContentRules:
    """The rules of two extension lists, built once: a scan asks for them per file."""
    return ContentRules(frozenset(documents), frozenset(resources))


@dataclass(frozen=True, slots=True)
class ContentSettings:
    path: str = _setting(
        "content",
        _nonempty_text,
        "Content folder, scanned recursively (relative to the working directory).",
    )
    ignore: tuple[str, ...] = _setting(
        ("*.tmp", "*.swp", "*.part", "*~", "#*#"),
        _globs,
        "Glob patterns of files to skip, matched against the relative path and the file "
        "name. Hidden names (leading '.') are always skipped.",
    )
    max_file_bytes: int = _setting(
        2_000_000, _int_range(1, 1 << 30), "Files larger than this are reported and skipped."
    )
    settle_seconds: int = _setting(
        2,
        _int_range(0, 3600),
        "A new or changed file is read only once its size and modification time have not "
        "changed for this long; until then it is reported as pending and its last good "
        "version stays published (docs/operations.md). 0 reads files at once.",
    )
    file_budget_seconds: int = _setting(
        2,
        _int_range(1, 600),
        "Most seconds parsing, rendering and sanitising one file may take; a file over it "
        "is reported and its last good version kept (docs/operations.md).",
    )
    file_memory_mb: int = _setting(
        1024,
        _int_range(64, 1 << 20),
        "Most memory (MB) a parse process may add for one file; a file needing more is "
        "reported and its last good version kept (docs/operations.md).",
    )

    document_extensions: tuple[str, ...] = _setting(
        DOCUMENT_EXTENSIONS,
        _extensions,
        "File extensions of documents (parsed, may become items). A file with an extension "
        "in neither list is told by its first bytes (docs/documents-and-resources.md).",
    )
    resource_extensions: tuple[str, ...] = _setting(
        RESOURCE_EXTENSIONS,
        _extensions,
        "File extensions of resources: never items, never failures, served at /files/. "
        "A document extension wins over the same resource extension.",
    )

    @property
    def rules(self) -> ContentRules:
        return _content_rules(self.document_extensions, self.resource_extensions)


@dataclass(frozen=True, slots=True)
class WatchSettings:
    interval_seconds: int = _setting(
        300, _int_range(1, 7 * 86400), "Seconds between rescans of the content folder."
    )
    file_events: bool = _setting(
        True,
        _bool,
        "Rescan as soon as files under the content folder are written (inotify). The "
        "scheduled rescan stays as the safety net; network filesystems send no events.",
    )
    debounce_ms: int = _setting(
        250,
        _int_range(10, 60_000),
        "After a file event, wait until the folder has been quiet this long, then scan once.",
    )


@dataclass(frozen=True, slots=True)
class FeedsSettings:
    max_items: int = _setting(50, _int_range(1, 1000), "Most items in one feed, newest first.")
    cache_seconds: int = _setting(
        300, _int_range(0, 86400), "Cache-Control max-age for feeds, in seconds."
    )
    term_cache_bytes: int = _setting(
        32 * 1024 * 1024,
        _int_range(0, 4 * 1024**3),
        "Bytes of tag and author feeds kept rendered per process (rendered on first "
        "request, least recently used dropped first; 0 renders every request).",
    )


@dataclass(frozen=True, slots=True)
class StoreSettings:
    url: str = _setting(
        "sqlite:///var/feedsvc.sqlite3",
        _store_url,
        "Where items are kept: sqlite:///RELATIVE/PATH (one file, the default) or "
        "postgresql://USER@HOST:PORT/DB for several instances sharing one store.",
    )


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = _setting("127.0.0.1", _nonempty_text, "Address `feedsvc serve` listens on.")
    port: int = _setting(8080, _int_range(0, 65535), "Port `feedsvc serve` listens on.")
    workers: int = _setting(
        2,
        _int_range(1, 64),
        "Web worker processes of `feedsvc serve` (one per core is a good start).",
    )
    refresh_token: str = _setting(
        "",
        _text,
        "Bearer token for POST /api/refresh. Empty disables the endpoint (403). "
        "Prefer setting it by FEEDSVC_SERVER_REFRESH_TOKEN.",
    )
    max_connections: int = _setting(
        4096,
        _int_range(16, 1_000_000),
        "Connections one web worker serves at once, idle ones included; more wait in the "
        "listen queue. Far above what a client holding many idle connections reaches "
        'before they time out (docs/operations.md, "Connection limits").',
    )
    backlog: int = _setting(
        4096,
        _int_range(16, 65535),
        "Connections the kernel queues before a worker accepts them (capped by "
        "net.core.somaxconn).",
    )


@dataclass(frozen=True, slots=True)
class WebSubSettings:
    hub: bool = _setting(
        True,
        _bool,
        "Run the built-in WebSub hub at {site.base_url}/websub and name it in every feed.",
    )
    hubs: tuple[str, ...] = _setting(
        (),
        _hub_urls,
        "Other WebSub hubs to name in every feed and to notify when a feed's bytes change.",
    )
    lease_seconds: int = _setting(
        864_000,
        _int_range(60, 365 * 86400),
        "Lease of a subscription that asks for none (10 days).",
    )
    max_lease_seconds: int = _setting(
        2_592_000,
        _int_range(60, 365 * 86400),
        "Longest lease granted (30 days); longer requests get this.",
    )
    timeout_seconds: int = _setting(
        5,
        _int_range(1, 120),
        "Whole-request time limit of each verification and delivery to a subscriber.",
    )
    workers: int = _setting(
        8, _int_range(1, 256), "Deliveries in flight at once (threads of the watcher process)."
    )
    max_attempts: int = _setting(
        6,
        _int_range(1, 100),
        "Failed deliveries in a row after which a subscription is dropped; retries back off "
        "exponentially from retry_seconds.",
    )
    retry_seconds: int = _setting(
        15, _int_range(1, 86400), "Wait before the first retry of a failed delivery."
    )
    max_subscriptions_per_host: int = _setting(
        50,
        _int_range(1, 1_000_000),
        "Subscriptions (pending or active) one callback host may hold.",
    )
    allow_loopback: bool = _setting(
        False,
        _bool,
        "Accept callbacks on 127.0.0.0/8 and ::1 (for tests on one machine). Private, "
        "link-local and metadata addresses are refused whatever this says.",
    )


@dataclass(frozen=True, slots=True)
class Settings:
    site: SiteSettings = field(default_factory=SiteSettings)
    content: ContentSettings = field(default_factory=ContentSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    feeds: FeedsSettings = field(default_factory=FeedsSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    websub: WebSubSettings = field(default_factory=WebSubSettings)
    # True when site.base_url was left empty: links follow where `serve` listens.
    base_url_follows_server: bool = False

    def listening_on(self, host: str, port: int) -> Settings:
        """These settings for a server on ``host:port``: an explicit base_url wins."""
        if not self.base_url_follows_server:
            return self
        site = dataclasses.replace(self.site, base_url=listen_url(host, port))
        return dataclasses.replace(self, site=site)

    @property
    def content_root(self) -> Path:
        return Path(self.content.path).expanduser().absolute()


SECTIONS: Mapping[str, type[Any]] = {
    "site": SiteSettings,
    "content": ContentSettings,
    "watch": WatchSettings,
    "feeds": FeedsSettings,
    "store": StoreSettings,
    "server": ServerSettings,
    "websub": WebSubSettings,
}


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """One declared setting, for documentation and the CLI."""

    section: str
    key: str
    default: object
    help: str

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section}_{self.key}".upper()


def declared() -> Iterator[SettingInfo]:
    """Every setting, in declaration order."""
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            yield SettingInfo(section, f.name, f.default, f.metadata["help"])


# Raw values by section, before parsing, and where each came from (for errors:
# "site.title" or "FEEDSVC_SITE_TITLE (site.title)").
_RawValues = dict[str, dict[str, object]]
_Origins = dict[tuple[str, str], str]


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build ``Settings`` from a TOML file and ``FEEDSVC_<SECTION>_<KEY>`` variables.

    ``path`` defaults to ``$FEEDSVC_CONFIG``, else ``config/feedsvc.toml``; the
    default file may be absent (defaults apply), a named one may not.
    Raises ``ConfigError`` naming the first unknown key or bad value.
    """
    env = os.environ if environ is None else environ
    config_path, raw = _read_config_file(path, env)
    values: _RawValues = {name: {} for name in SECTIONS}
    origins: _Origins = {}
    _add_file_values(values, raw, config_path)
    _add_env_values(values, origins, env)
    settings = Settings(**_parse_sections(values, origins))  # type: ignore[arg-type]
    if not settings.site.base_url:
        settings = dataclasses.replace(settings, base_url_follows_server=True)
        settings = settings.listening_on(settings.server.host, settings.server.port)
    return settings


def _read_config_file(
    path: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> tuple[Path, dict[str, Any]]:
    """The settings file's path and its TOML tables (none when the default file is absent)."""
    explicit = path is not None or bool(env.get(CONFIG_ENV))
    config_path = Path(path if path is not None else env.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
    if not (config_path.exists() or explicit):
        return config_path, {}
    try:
        return config_path, tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(str(config_path), "configuration file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(config_path), f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(config_path), f"not valid TOML: {exc}") from exc


def _add_file_values(values: _RawValues, raw: dict[str, Any], config_path: Path) -> None:
    for section, table in raw.items():
        if section not in SECTIONS:
            raise ConfigError(section, f"unknown section in {config_path}")
        if not isinstance(table, dict):
            raise ConfigError(section, "expected a table of settings")
        for key, value in table.items():
            values[section][key] = value


def _add_env_values(values: _RawValues, origins: _Origins, env: Mapping[str, str]) -> None:
    """``FEEDSVC_<SECTION>_<KEY>`` variables, over the file's values."""
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
        if section not in SECTIONS or not key:
            raise ConfigError(name, "unknown setting in the environment")
        values[section][key] = value
        origins[(section, key)] = f"{name} ({section}.{key})"


def _parse_sections(values: _RawValues, origins: _Origins) -> dict[str, object]:
    """Every section built from its parsed values; the first bad one raises, named."""
    sections: dict[str, object] = {}
    for section, cls in SECTIONS.items():
        known = {f.name: f for f in dataclasses.fields(cls)}
        parsed: dict[str, object] = {}
        for key, value in values[section].items():
            f = known.get(key)
            if f is None:
                raise ConfigError(f"{section}.{key}", "unknown setting")
            try:
                parsed[key] = f.metadata["parse"](value)
            except ValueError as exc:
                where = origins.get((section, key), f"{section}.{key}")
                raise ConfigError(where, str(exc)) from exc
        sections[section] = cls(**parsed)
    return sections


def listen_url(host: str, port: int) -> str:
    """``http://host:port`` as a browser on this machine reaches it.

    Every-address binds (``0.0.0.0``, ``::``) are reached on loopback; an IPv6
    literal is bracketed (RFC 3986 §3.2.2).
    """
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):  # noqa: S104 - a name for the address, nothing is bound here
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
