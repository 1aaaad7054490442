"""The benchmark harness (issue #5): ``python -m bench.run [--smoke] [--sizes ...] [--only ...]``.

Writes ``bench/results/RESULTS.md`` (and ``results.json``): the machine, the
versions and each figure with its ratio to the peer measured in the same run.
Medians of ``--runs`` runs; every server it starts is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import corpus, peers, serving
from bench.ingest import bench_env

HERE = Path(__file__).parent
WORK = HERE / "work"
RESULTS = HERE / "results"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "n/a"


def machine() -> dict[str, str]:
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu} x {os.cpu_count()}",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "feedsvc": version("feedsvc"),
        "gunicorn": installed("gunicorn"),
        "granian": installed("granian"),
        "waitress": installed("waitress"),
        "flask": installed("flask"),
        "wrk": _sh(["wrk", "-v"]).splitlines()[0] if _sh(["wrk", "-v"]) else "n/a",
        "nginx": subprocess.run(
            ["nginx", "-v"], capture_output=True, text=True, check=False
        ).stderr.strip(),
        "hugo": _sh(["hugo", "version"]).split(" BuildDate")[0],
        "pelican": peers.pelican_version(WORK),
        "load average at start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def ensure_corpus(n: int, seed: int) -> Path:
    root = WORK / f"corpus-{n}-{seed}"
    stamp = root / ".complete"
    if not stamp.exists():
        corpus.write(corpus.generate(n, seed), root)
        stamp.write_text("ok")
    return root


# ---- ingest ---------------------------------------------------------------------------


def _ingest(mode: str, content: Path, db: Path) -> dict[str, Any]:
    """One ``bench.ingest`` child; ``process_s`` is its whole life, start-up and imports
    included, measured as the peers' builds are (``peers._time``)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.ingest", mode, str(content), f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    ).stdout
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = elapsed
    return result


def _empty(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)


def bench_ingest(sizes: list[int], runs: int, seed: int, peer_sizes: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        content = ensure_corpus(n, seed)
        db = WORK / f"store-{n}.sqlite3"
        cold: list[dict[str, Any]] = []
        memory: list[dict[str, Any]] = []
        rescan: list[float] = []
        rescan_warm: list[float] = []
        for _ in range(runs):
            # Timed with nothing watching it; the memory figures come from a run of
            # the same work with the process tree sampled (bench/ingest.py says why).
            _empty(db)
            cold.append(_ingest("cold", content, db))
            _empty(db)
            memory.append(_ingest("memory", content, db))
            again = _ingest("rescan", content, db)
            rescan.append(again["scan_s"])
            rescan_warm.append(again["warm_scan_s"])
        cold_s = _median([c["process_s"] for c in cold])
        entry: dict[str, Any] = {
            "cold_s": cold_s,
            "cold_in_process_s": _median([c["total_s"] for c in cold]),
            "cold_scan_s": _median([c["scan_s"] for c in cold]),
            "cold_render_s": _median([c["render_s"] for c in cold]),
            "items_per_s": n / cold_s,
            "peak_mb": _median([m["peak_mb"] for m in memory]),
            "peak_tree_mb": _median([m["peak_tree_mb"] for m in memory]),
            "peak_tree_pss_mb": _median([m["peak_tree_pss_mb"] for m in memory]),
            "runs": runs,
            "feeds": cold[0]["feeds"],
            "errors": cold[0]["errors"],
            "rescan_s": _median(rescan),
            "rescan_warm_s": _median(rescan_warm),
        }
        if n in peer_sizes:
            entry["hugo"] = peers.bench_hugo(content, n, seed, runs, WORK)
            entry["pelican"] = peers.bench_pelican(content, n, seed, runs, WORK)
        out[str(n)] = entry
        print(f"ingest {n}: {json.dumps(entry)}", flush=True)
    return out


def bench_change(n: int, runs: int, seed: int) -> dict[str, Any]:
    """One file changed among n: POST /api/refresh until /feeds/all/all.rss shows it."""
    from bench import change

    content = ensure_corpus(n, seed)
    db = WORK / f"store-{n}.sqlite3"
    if not db.exists():
        _ingest("cold", content, db)
    return change.measure(content, db, runs, WORK)


# ---- serving --------------------------------------------------------------------------


def bench_serving(n: int, runs: int, seconds: int, seed: int, workers: int) -> dict[str, Any]:
    from bench.ingest import bench_settings
    from feedsvc.feed_cache import FeedCache
    from feedsvc.store import open_store
    from feedsvc.types import FeedKey

    content = ensure_corpus(n, seed)
    db = WORK / f"store-{n}.sqlite3"
    if not db.exists():
        _ingest("cold", content, db)
    settings = bench_settings(content, f"sqlite:///{db}")
    store = open_store(settings.store.url)
    feed = FeedCache(settings, store).get(FeedKey("all", "all"), "rss")
    store.close()
    assert feed is not None
    env = {
        **os.environ,
        **bench_env(content, f"sqlite:///{db}", server_workers=str(workers)),
    }
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started: list[serving.Server] = []
    with serving.running(started):
        started.append(serving.start_nginx(WORK, feed.body, feed.gzip_body, workers))
        for name, cmd in serving.python_servers(WORK, env, workers).items():
            started.append(serving.start_python(name, cmd, env, logs))
        plans = {s.name: serving.scenarios(s) for s in started}
        samples: dict[str, dict[str, list[serving.WrkResult]]] = {
            s.name: {k: [] for k in plans[s.name]} for s in started
        }
        for round_ in range(runs):
            # Interleaved rounds: drift in the machine's load hits every server alike.
            for s in started:
                for scenario, headers in plans[s.name].items():
                    r = serving.wrk(s.base + serving.FEED, headers, seconds=seconds)
                    samples[s.name][scenario].append(r)
                    print(f"serve round {round_} {s.name} {scenario}: {r}", flush=True)
    out: dict[str, Any] = {}
    for name, per in samples.items():
        out[name] = {
            scenario: {
                "rps": _median([r.rps for r in rs]),
                "p99_ms": _median([r.p99_ms for r in rs]),
                "errors": sum(r.errors for r in rs),
            }
            for scenario, rs in per.items()
        }
    return out


def bench_serve_memory(n: int, seed: int) -> dict[str, float]:
    from bench import memory

    content = ensure_corpus(n, seed)
    db = WORK / f"store-{n}.sqlite3"
    if not db.exists():
        _ingest("cold", content, db)
    return memory.serve_memory(content, db, WORK)


# ---- report ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="50 files, ingest only, 1 run")
    ap.add_argument("--sizes", default="1000,10000,50000", help="corpus sizes for ingest")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--peer-sizes",
        default="1000,10000",
        help="sizes at which Hugo and Pelican are measured too (with --only peers)",
    )
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument(
        "--only",
        default="ingest,peers,change,serve,memory",
        help="comma-separated sections: ingest, peers, change, serve, memory",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    peer_sizes = {int(s) for s in args.peer_sizes.split(",")} if "peers" in only else set()
    if args.smoke:
        sizes, only, args.runs = [50], {"ingest"}, 1
    results: dict[str, Any] = {"machine": machine(), "args": vars(args) | {"out": str(args.out)}}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("ingest", lambda: bench_ingest(sizes, args.runs, args.seed, peer_sizes)),
        ("change", lambda: bench_change(max(sizes), args.runs, args.seed)),
        ("serve", lambda: bench_serving(1000, args.runs, args.seconds, args.seed, args.workers)),
        ("memory", lambda: bench_serve_memory(max(sizes), args.seed)),
    ]
    for name, step in steps:
        if name in only or (name == "ingest" and "peers" in only):
            t0 = time.monotonic()
            results[name] = step()
            print(f"{name} done in {time.monotonic() - t0:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    from bench import report

    (args.out / "RESULTS.md").write_text(report.markdown(results), encoding="utf-8")
    print(f"wrote {args.out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
