"""Subscription requests (WebSub §5.1): what the hub accepts, decided without I/O.

Owns reading the form fields of ``POST /websub`` into an ``Intent`` or a
refusal with its HTTP status. It does not resolve names or send anything:
the callback's addresses are checked again, after DNS, by ``callbacks.py``
before the verification request (§5.3) goes out from the watcher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from feedsvc.errors import FeedsvcError
from feedsvc.settings import WebSubSettings
from feedsvc.store.hub import Intent, host_of
from feedsvc.websub.callbacks import CallbackRefused, literal_refusal, parse_callback

# §5.1: "hub.secret ... MUST be less than 200 bytes in length".
MAX_SECRET_BYTES = 199
MODES = ("subscribe", "unsubscribe")


@dataclass(frozen=True, slots=True)
class RequestRefused(FeedsvcError):
    """A request the hub refuses at once (§5.1.1: answered with a 4xx status)."""

    status: int
    reason: str

    def __str__(self) -> str:
        return self.reason


def granted_lease(requested: str | None, settings: WebSubSettings) -> int:
    """§5.1: the hub decides the lease; a request's own value is a hint."""
    longest = settings.max_lease_seconds
    default = min(settings.lease_seconds, longest)
    if requested is None or not requested.strip():
        return default
    try:
        wanted = int(requested.strip())
    except ValueError:
        raise RequestRefused(400, "hub.lease_seconds must be a whole number of seconds") from None
    if wanted <= 0:
        raise RequestRefused(400, "hub.lease_seconds must be positive")
    return min(wanted, longest)


def read_request(
    form: Mapping[str, str], settings: WebSubSettings, topic_exists: Callable[[str], bool]
) -> Intent:
    """The ``Intent`` of a form-encoded request, or ``RequestRefused``."""
    mode = form.get("hub.mode", "").strip()
    if mode not in MODES:
        raise RequestRefused(400, "hub.mode must be subscribe or unsubscribe")
    topic = form.get("hub.topic", "").strip()
    if not topic:
        raise RequestRefused(400, "hub.topic is missing")
    if not topic_exists(topic):
        raise RequestRefused(404, "hub.topic is not a feed of this site: use a feed's self URL")
    callback = form.get("hub.callback", "").strip()
    if not callback:
        raise RequestRefused(400, "hub.callback is missing")
    try:
        parse_callback(callback)
    except CallbackRefused as exc:
        raise RequestRefused(400, f"hub.callback refused: {exc.reason}") from exc
    host = host_of(callback)
    refusal = literal_refusal(host, allow_loopback=settings.allow_loopback)
    if refusal is not None:
        raise RequestRefused(400, f"hub.callback refused: {refusal}")
    secret = form.get("hub.secret")
    if secret is not None and len(secret.encode("utf-8")) > MAX_SECRET_BYTES:
        raise RequestRefused(400, "hub.secret must be less than 200 bytes")
    lease = granted_lease(form.get("hub.lease_seconds"), settings) if mode == "subscribe" else None
    return Intent(
        mode=mode,
        topic=topic,
        callback=callback,
        callback_host=host,
        lease_seconds=lease,
        secret=secret or None,
    )
