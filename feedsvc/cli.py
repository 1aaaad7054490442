"""The ``feedsvc`` command: a thin layer over pipeline, publish, web and watcher.

Owns argument parsing, logging set-up, exit codes and what is printed. Each
command loads the settings once (``--config``, ``$FEEDSVC_CONFIG``, else
``config/feedsvc.toml``) and fails naming the key when one is wrong.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from feedsvc import __version__
from feedsvc.errors import ConfigError, ContentRootError, FeedsvcError, SourceError
from feedsvc.settings import Settings, load_settings

log = logging.getLogger("feedsvc")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _progress(stream: object) -> object:
    """A one-line progress bar for terminals; None (no output) otherwise."""
    if not getattr(stream, "isatty", lambda: False)():
        return None

    def show(done: int, total: int) -> None:
        if total < 200 and done != total:
            return
        if done % 100 and done != total:
            return
        width = 30
        filled = width * done // total
        print(
            f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total} files",
            end="",
            file=stream,
            flush=True,
        )  # type: ignore[call-overload]
        if done == total:
            print(file=stream)  # type: ignore[call-overload]

    return show


def cmd_scan(settings: Settings, args: argparse.Namespace) -> int:
    from feedsvc.pipeline import Scanner
    from feedsvc.store import open_store

    store = open_store(settings.store.url)
    try:
        report = Scanner(settings, store, utc_now).run(progress=_progress(sys.stderr))  # type: ignore[arg-type]
    finally:
        store.close()
    print(report.summary())
    for error in report.errors:
        print(f"  {error.path}: {error.error}")
    return 1 if args.strict and report.errors else 0


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    from feedsvc.dates import first_seen
    from feedsvc.discover import discover, read_source
    from feedsvc.normalise import normalise_document
    from feedsvc.normalise.conventions import not_an_item
    from feedsvc.parse import parse_document

    rules = settings.content.rules
    root = settings.content_root
    target = Path(args.path).absolute() if args.path else root
    if target.is_file():
        if not target.is_relative_to(root):
            root = target.parent
        found = discover(
            root, settings.content.ignore, settings.content.max_file_bytes, rules=rules
        )
        wanted = target.relative_to(root).as_posix()
        files = tuple(f for f in found.files if f.path == wanted)
        errors = tuple(e for e in found.errors if e.path == wanted)
        resources = tuple(r for r in found.resources if r == wanted)
        if not files and not errors and not resources:
            print(f"{target}: skipped (hidden, ignored, or not a regular file)")
            return 1
    else:
        found = discover(
            target, settings.content.ignore, settings.content.max_file_bytes, rules=rules
        )
        root, files, errors, resources = target, found.files, found.errors, found.resources
    problems = len(errors)
    skipped = 0
    for resource in resources:
        print(f"{resource}: skipped (resource: served, never an item)")
    for error in errors:
        print(f"{error.path}: ERROR {error.error}")
    now = utc_now()
    for source in files:
        try:
            raw = parse_document(
                source.path, read_source(root, source, settings.content.max_file_bytes)
            )
            reason = not_an_item(raw)
            if reason is not None:
                skipped += 1
                print(f"{source.path}: skipped ({reason})")
                continue
            # No store here: the file is seen for the first time, and has never changed.
            done = normalise_document(
                raw, settings.site, first_seen=first_seen(source.mtime_ns, now), changed_at=None
            )
        except SourceError as exc:
            problems += 1
            print(f"{source.path}: ERROR {exc.reason}")
            continue
        item, dates = done.item, done.dates
        print(f"{source.path}:")
        for warning in raw.warnings:
            print(f"  warning:    {warning}")
        print(f"  id:         {item.id}")
        print(f"  guid:       {item.guid}")
        print(f"  url:        {item.url}")
        print(f"  title:      {item.title}")
        print(f"  language:   {item.language}")
        cats = ", ".join(f"{c.name} ({c.slug})" for c in item.categories)
        print(f"  categories: {cats}")
        if item.tags:
            print(f"  tags:       {', '.join(item.tags)}")
        print(f"  authors:    {', '.join(item.authors)}")
        published = _dated(item.published, dates.published_from, dates.published_guessed)
        print(f"  published:  {published}")
        print(f"  updated:    {_dated(item.updated, dates.updated_from, dates.updated_guessed)}")
        print(f"  image:      {item.image or '-'}")
        print(f"  draft:      {'yes' if item.draft else 'no'}")
        summary = item.summary if len(item.summary) <= 120 else item.summary[:119] + "…"
        print(f"  summary:    {summary}")
        for warning in done.warnings:
            print(f"  WARNING     {warning}")
    print(
        f"{len(files) + len(errors) + len(resources)} files, {problems} with problems; "
        f"skipped: {len(resources)} resources, {skipped} not items"
    )
    return 1 if problems else 0


def _dated(moment: datetime, source: str, guessed: bool) -> str:
    """A date for ``check``: where it came from, and GUESSED when no author wrote it."""
    return f"{moment.isoformat()} ({'GUESSED from ' if guessed else 'from '}{source})"


def cmd_feeds(settings: Settings, args: argparse.Namespace) -> int:
    from feedsvc.publish import FeedCache, feed_url
    from feedsvc.render import FORMATS
    from feedsvc.store import open_store

    store = open_store(settings.store.url)
    try:
        grid = FeedCache(settings, store).grid()
    finally:
        store.close()
    if not grid:
        print("no feeds yet: run `feedsvc scan` first", file=sys.stderr)
    for info in grid:
        for fmt in FORMATS:
            print(f"{feed_url(settings, info.key, fmt)}\t{info.item_count}")
    return 0


def cmd_build(settings: Settings, args: argparse.Namespace) -> int:
    from feedsvc.build import build_site

    count = build_site(settings, Path(args.out_dir), clock=utc_now)
    print(f"wrote {count} files to {args.out_dir}")
    return 0


def cmd_watch(settings: Settings, args: argparse.Namespace) -> int:
    from feedsvc.watcher import run_watcher

    run_watcher(settings)
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from feedsvc.server import serve

    return serve(
        settings,
        host=args.host or settings.server.host,
        port=settings.server.port if args.port is None else args.port,
        watch=not args.no_watch,
        config=args.config,
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help="settings file (default: $FEEDSVC_CONFIG, else config/feedsvc.toml)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser = argparse.ArgumentParser(
        prog="feedsvc",
        description="Serve a folder of news content as RSS 2.0, Atom 1.0 and JSON Feed 1.1.",
        parents=[common],
        epilog="Every setting can also be given as FEEDSVC_<SECTION>_<KEY>, "
        "e.g. FEEDSVC_SERVER_REFRESH_TOKEN.",
    )
    parser.add_argument("--version", action="version", version=f"feedsvc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the feeds (and watch the folder)",
        description="Run the production web server and, unless --no-watch, "
        "the watcher that rescans the content folder.",
    )
    p.add_argument("--host", help="address to listen on (default: server.host)")
    p.add_argument(
        "--port", type=int, help="port to listen on, 0 for any free one (default: server.port)"
    )
    p.add_argument(
        "--no-watch", action="store_true", help="web only; run `feedsvc watch` elsewhere"
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "watch",
        parents=[common],
        help="rescan on a schedule, without serving",
        description="Rescan once now and then every watch.interval_seconds.",
    )
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "scan",
        parents=[common],
        help="rescan once and print the summary",
        description="Rescan the content folder once; print what changed and each file that failed.",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 if any file failed")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser(
        "check",
        parents=[common],
        help="parse and normalise without writing",
        description="Show each item's key fields and every problem; "
        "writes nothing. Exit 1 on problems.",
    )
    p.add_argument("path", nargs="?", help="a file or folder (default: content.path)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "build",
        parents=[common],
        help="write every feed as static files",
        description="Rescan, then write every feed, the index page and the "
        "OPML list into OUT_DIR, byte for byte as served.",
    )
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("feeds", parents=[common], help="list every feed URL with its item count")
    p.set_defaults(func=cmd_feeds)
    return parser


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Third-party chatter stays at warnings unless asked for.
    for noisy in ("apscheduler", "sqlalchemy", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        settings = load_settings(args.config, environ=os.environ)
    except ConfigError as exc:
        print(f"feedsvc: bad configuration: {exc}", file=sys.stderr)
        return 2
    try:
        result: int = args.func(settings, args)
    except ContentRootError as exc:
        print(f"feedsvc: {exc}", file=sys.stderr)
        return 2
    except FeedsvcError as exc:
        print(f"feedsvc: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result
