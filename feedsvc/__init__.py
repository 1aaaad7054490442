"""feedsvc: a folder of news content served as RSS 2.0, Atom 1.0 and JSON Feed 1.1."""

from __future__ import annotations

__version__ = "0.1.0"
