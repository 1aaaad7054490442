"""Body rendering on hostile shapes: feedsvc's Markdown + template tags against plain CommonMark.

    .venv/bin/python -m bench.bodies [--size 100000]

For each shape, a body of ``--size`` and of twice that many characters goes
through ``parse.markdown.render_markdown`` (template tags, mdit-py-plugins)
and, as the peer measured in the same run, markdown-it-py's bare CommonMark.
Two ratios per shape: ours / peer at the larger size (the price of the
plugins), and ours at 2x / ours at 1x (about 2 when linear, 4 when quadratic).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from markdown_it import MarkdownIt

from feedsvc.parse.markdown import render_markdown

SHAPES: dict[str, Callable[[int], str]] = {
    "prose": lambda n: ("Lorem ipsum dolor sit amet. " * (n // 28 + 1))[:n],
    "braces": lambda n: "{" * n,
    "escaped shortcodes": lambda n: ("{{</* x */>}}" * (n // 13 + 1))[:n],
    "unclosed shortcodes": lambda n: ("{{< highlight go >}}a\n" * (n // 22 + 1))[:n],
    "unclosed raw": lambda n: ("{% raw %}x " * (n // 11 + 1))[:n],
    "backtick runs": lambda n: "".join("`" * (i % 7 + 1) + "a " for i in range(n // 6))[:n],
    "colons": lambda n: "a:" * (n // 2),
    "http:": lambda n: ("http:" * (n // 5 + 1))[:n],
    "www.": lambda n: ("www.a " * (n // 6 + 1))[:n],
    "dollars": lambda n: ("$a$ $" * (n // 5 + 1))[:n],
}


def _seconds(render: Callable[[str], object], text: str) -> float:
    start = time.perf_counter()
    render(text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="characters (default 100000)")
    args = parser.parse_args()
    peer = MarkdownIt("commonmark", {"html": True})
    print(
        f"{'shape':22} {'ours 1x':>9} {'ours 2x':>9} {'peer 2x':>9} {'ours/peer':>9} {'2x/1x':>6}"
    )
    for name, make in SHAPES.items():
        small, large = make(args.size), make(2 * args.size)
        ours_small = _seconds(render_markdown, small)
        ours_large = _seconds(render_markdown, large)
        peer_large = _seconds(peer.render, large)
        print(
            f"{name:22} {ours_small:9.3f} {ours_large:9.3f} {peer_large:9.3f} "
            f"{ours_large / max(peer_large, 1e-6):9.2f} {ours_large / max(ours_small, 1e-6):6.2f}"
        )


if __name__ == "__main__":
    main()
