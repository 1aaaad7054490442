"""Just enough W3C WebDriver BiDi to open a page in Debian's Firefox ESR and read it.

Playwright drives Firefox only through its own patched build (never
downloaded here) or, experimentally, over BiDi with commands ESR 153 lacks
(``emulation.setMediaFeaturesOverride``), so the tests speak the standard
protocol themselves: https://w3c.github.io/webdriver-bidi/.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

_LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


class Firefox:
    """One headless Firefox with a fresh profile; ``close()`` ends it (by its PID)."""

    def __init__(self, executable: str, profile: Path) -> None:
        self._proc = subprocess.Popen(
            [executable, "--headless", "--remote-debugging-port=0", "--profile", str(profile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._ids = itertools.count(1)
        self._stack = contextlib.ExitStack()
        self._drain: threading.Thread | None = None
        try:
            url = self._wait_for_url(deadline=time.monotonic() + 120)
            self._ws: ClientConnection = self._stack.enter_context(
                connect(url + "/session", max_size=None)
            )
            self.call("session.new", capabilities={})
            self._context = self.call("browsingContext.getTree")["contexts"][0]["context"]
        except BaseException:
            self.close()
            raise

    def _wait_for_url(self, deadline: float) -> str:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:  # Firefox prints it once it listens
            match = _LISTENING.search(line)
            if match:
                # Keep reading what it logs, or a full pipe would stall it.
                self._drain = threading.Thread(target=self._proc.stderr.read, daemon=True)
                self._drain.start()
                return match.group(1)
            if time.monotonic() > deadline:
                break
        raise RuntimeError("Firefox did not start WebDriver BiDi")

    def call(self, method: str, **params: Any) -> Any:
        number = next(self._ids)
        self._ws.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=120))
            if message.get("id") != number:
                continue  # an event
            if message.get("type") == "error":
                raise RuntimeError(f"{method}: {message.get('error')}: {message.get('message')}")
            return message["result"]

    def open(self, url: str) -> None:
        self.call("browsingContext.navigate", context=self._context, url=url, wait="complete")

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "script.evaluate",
            expression=expression,
            target={"context": self._context},
            awaitPromise=True,
        )
        if result.get("type") == "exception":
            raise RuntimeError(result["exceptionDetails"]["text"])
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        shot = self.call(
            "browsingContext.captureScreenshot", context=self._context, origin="document"
        )
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # ending the process below is what matters
            self.call("session.end")
        with contextlib.suppress(Exception):
            self._stack.close()
        self._proc.terminate()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(30)
        if self._drain is not None:
            self._drain.join(30)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
