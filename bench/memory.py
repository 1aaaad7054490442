"""``feedsvc serve`` memory with a large store: RSS of each process after every feed was served."""

from __future__ import annotations

import re
from pathlib import Path

from bench import change


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids = (task / "children").read_text().split()
        out += [int(k) for k in kids]
    return out


def serve_memory(content: Path, db: Path, work: Path) -> dict[str, object]:
    proc, base = change._start(content, db, work / "memory-server.log")
    try:
        opml = change._get(base + "/feeds.opml").decode()
        urls = re.findall(r'xmlUrl="https://news\.example\.com([^"]+)"', opml)
        for _ in range(4):  # several rounds, so every worker renders every feed
            for path in urls:
                change._get(base + path)
        rss = {"main": _rss_mb(proc.pid)}
        for i, kid in enumerate(sorted(_children(proc.pid)), 1):
            rss[f"child {i}"] = _rss_mb(kid)
        rss["total"] = sum(rss.values())
        items = int(change._refresh(base)["unchanged"])
    finally:
        change._stop(proc)
    return {"items": items, "feeds": len(urls), "rss_mb": rss}
