"""``python -m feedsvc``: the same as the ``feedsvc`` console script."""

from __future__ import annotations

from feedsvc.cli import main

raise SystemExit(main())
