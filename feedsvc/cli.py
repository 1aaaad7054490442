"""The ``feedsvc`` command: a thin layer over pipeline, check, publish, web and watcher.

Owns argument parsing, logging set-up, exit codes and what is printed. Each
command loads the settings once (``--config``, ``$FEEDSVC_CONFIG``, else
``config/feedsvc.toml``) and fails naming the key when one is wrong.
"""

from __future__ import annotations

import os
import signal
import sys


def _stop_quietly_until_serving() -> None:
    """Until the server installs its own handlers, a stop ends ``serve`` at once, exit 0.

    SIGTERM's default action would kill the process with nothing cleaned up
    (exit -15), and SIGINT would read as an interrupted command (130): a stop
    asked for while it starts is a stop, not a failure.
    """

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)


def _started_as_serve(argv: list[str]) -> bool:
    """Whether this process is ``feedsvc serve`` or ``python -m feedsvc serve``: its
    command word, the first argument that is neither an option nor ``--config``'s value."""
    program = os.path.normpath(argv[0]) if argv else ""
    if os.path.basename(program) != "feedsvc" and not program.endswith(
        os.path.join("feedsvc", "__main__.py")
    ):
        return False  # imported by another program (a test run, an embedding app)
    words = iter(argv[1:])
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word == "serve"
    return False


# docs/cli.md: a stop that comes while `serve` starts ends it with exit 0. The
# imports below take a second on a loaded machine, and until a handler is in
# SIGTERM kills the process (exit -15): so the handler goes in first.
if _started_as_serve(sys.argv):
    _stop_quietly_until_serving()

import argparse  # noqa: E402
import logging  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

from feedsvc import __version__  # noqa: E402
from feedsvc.dates import utc_now  # noqa: E402
from feedsvc.errors import ConfigError, FeedsvcError  # noqa: E402
from feedsvc.report import scan_lines  # noqa: E402
from feedsvc.settings import Settings, load_settings  # noqa: E402

log = logging.getLogger("feedsvc")
Command = Callable[[Settings, argparse.Namespace], int]


def cmd_scan(settings: Settings, args: argparse.Namespace) -> int:
    from feedsvc.progress import ScanProgress
    from feedsvc.scanner import Scanner
    from feedsvc.store import open_store

    store = open_store(settings.store.url)
    try:
        report = Scanner(settings, store, utc_now).run(progress=ScanProgress(sys.stderr))
    finally:
        store.close()
    print("\n".join(scan_lines(report)))
    return 1 if args.strict and report.errors else 0


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    from feedsvc.check import run_check

    return run_check(settings, args.path, utc_now())


def cmd_feeds(settings: Settings, args: argparse.Namespace) -> int:
    from feedsvc.feed_cache import FeedCache
    from feedsvc.publish import feed_url
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


# name -> (one-line help, description, examples): each command's --help shows
# its description and examples, `feedsvc --help` the one-line help.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": (
        "serve the feeds (and watch the folder)",
        "Run the production web server (server.workers processes) and, unless\n"
        "--no-watch, one watcher that rescans the content folder. Refuses a port\n"
        "another program already listens on. Without site.base_url, links point\n"
        "at the address and port it listens on.",
        "feedsvc serve\n"
        "  feedsvc serve --port 0 --no-watch          # any free port, web only\n"
        "  feedsvc serve --config site.toml --host 0.0.0.0",
    ),
    "watch": (
        "rescan on a schedule, without serving",
        "Rescan once now and then every watch.interval_seconds, for deployments\n"
        "that run the web processes (feedsvc serve --no-watch) apart.",
        "feedsvc watch --config site.toml",
    ),
    "scan": (
        "rescan once and print the summary",
        "Rescan the content folder once; print what changed and each file that\n"
        "failed. A long scan shows progress on a terminal, and logs a line every\n"
        "few seconds otherwise.",
        "feedsvc scan\n  feedsvc scan --strict -v        # exit 1 if a file failed; debug log",
    ),
    "check": (
        "parse and normalise without writing",
        "Show each item's key fields and every problem; writes nothing.\nExit 1 on problems.",
        "feedsvc check\n  feedsvc check content/politics/budget-2025.md",
    ),
    "build": (
        "write every feed as static files",
        "Rescan, then write every feed, the index page, the OPML list and the\n"
        "item pages into OUT_DIR, byte for byte as served. The folder is built\n"
        "beside OUT_DIR and swapped in, so a web server reading it never sees a\n"
        "half-written or missing file, and nothing stale is left.",
        "feedsvc build public/",
    ),
    "feeds": (
        "list every feed URL with its item count",
        "Print every feed URL of the grid (every format), a tab, and its item\n"
        "count, from the store as the last scan left it.",
        "feedsvc feeds\n  feedsvc feeds | grep /en/",
    ),
}


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command takes, before or after the command name.

    On the subcommands they default to SUPPRESS: argparse would otherwise let
    the subparser's default overwrite a value given before the command.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help="settings file (default: $FEEDSVC_CONFIG, else config/feedsvc.toml)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default(False), help="log debug details"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feedsvc",
        description="Serve a folder of news content as RSS 2.0, Atom 1.0 and JSON Feed 1.1.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every setting can also be given as FEEDSVC_<SECTION>_<KEY>, "
        "e.g. FEEDSVC_SERVER_REFRESH_TOKEN.\n"
        "`feedsvc COMMAND --help` describes each command, with examples.",
    )
    _add_common(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"feedsvc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Command) -> argparse.ArgumentParser:
        summary, description, examples = _COMMANDS[name]
        p = sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=f"example:\n  {examples}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(p, suppress=True)
        p.set_defaults(func=func)
        return p

    p = command("serve", cmd_serve)
    p.add_argument("--host", help="address to listen on (default: server.host)")
    p.add_argument(
        "--port", type=int, help="port to listen on, 0 for any free one (default: server.port)"
    )
    p.add_argument(
        "--no-watch", action="store_true", help="web only; run `feedsvc watch` elsewhere"
    )
    command("watch", cmd_watch)
    p = command("scan", cmd_scan)
    p.add_argument("--strict", action="store_true", help="exit 1 if any file failed")
    p = command("check", cmd_check)
    p.add_argument("path", nargs="?", help="a file or folder (default: content.path)")
    p = command("build", cmd_build)
    p.add_argument("out_dir", metavar="OUT_DIR", help="the folder to write (made or replaced)")
    command("feeds", cmd_feeds)
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
    """Run one command; every failure a user can cause ends in one line, never a traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, where a closed pipe is handled, not at exit
        return code
    except KeyboardInterrupt:
        print("feedsvc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`feedsvc feeds | head -1`): stop quietly.
        # Point stdout at /dev/null so the flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a command killed by the signal reports


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        _stop_quietly_until_serving()
    setup_logging(args.verbose)
    try:
        settings = load_settings(args.config, environ=os.environ)
    except ConfigError as exc:
        print(f"feedsvc: bad configuration: {exc}", file=sys.stderr)
        return 2
    try:
        result: int = args.func(settings, args)
    except FeedsvcError as exc:
        print(f"feedsvc: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise
    except OSError as exc:
        # A file or folder the command was pointed at: say which and why.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"feedsvc: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return result
