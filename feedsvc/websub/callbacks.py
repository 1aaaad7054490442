"""Requests to URLs that strangers chose: the one way the hub reaches a callback.

Owns refusing callbacks that would turn the hub into a weapon against the
network it runs in, and bounding what one callback can cost:

- the host is resolved here and EVERY address it resolves to is checked
  before any connection; the connection then goes to a checked address (a
  second lookup could answer differently: DNS rebinding). Refused:
  loopback (unless ``websub.allow_loopback``), private, link-local (which
  holds the cloud metadata address 169.254.169.254), unspecified, multicast,
  reserved and every other address that is not global unicast;
- redirects are never followed (a 3xx is a failed request);
- the whole request has one deadline (``websub.timeout_seconds``): a
  callback that never answers, or answers a byte at a time, is cut off;
- at most ``MAX_RESPONSE_BYTES`` of an answer are read.

``resolve`` and ``connect`` are injectable, so tests prove that a refused
address is never connected to.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from feedsvc.errors import FeedsvcError

MAX_RESPONSE_BYTES = 64 * 1024
MAX_URL_LENGTH = 2048
# Named apart from "link-local" because that is what an operator must know.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]
Connector = Callable[[tuple[str, int], float], socket.socket]


class CallbackRefused(FeedsvcError):
    """A callback URL the hub will not send to; ``reason`` says why (safe to show)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CallbackFailed(FeedsvcError):
    """A request to an accepted callback did not succeed (network, timeout, redirect)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes  # at most MAX_RESPONSE_BYTES


def address_refusal(ip: Address, *, allow_loopback: bool) -> str | None:
    """Why the hub must not connect to ``ip``, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    if ip in METADATA_ADDRESSES:
        return f"{ip} is the cloud metadata address"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_link_local, "link-local"),
        (ip.is_private, "private"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
    )
    for refused, what in checks:
        if refused:
            return f"{ip} is a {what} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def parse_callback(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable callback URL, else ``CallbackRefused``.

    Only the URL's shape is checked here (cheap, in the web request); the
    addresses are checked by ``CallbackClient`` before it connects.
    """
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"callback URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRefused(f"callback is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("callback must be an absolute http or https URL")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback URL must not carry a user name or password")
    if parts.fragment:
        raise CallbackRefused("callback URL must not have a fragment")
    if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        raise CallbackRefused("callback URL must be ASCII without spaces (percent-encode it)")
    host = parts.hostname.lower()
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def literal_refusal(host: str, *, allow_loopback: bool) -> str | None:
    """A refusal that needs no DNS: an address literal, or a name for this machine."""
    if host == "localhost" or host.endswith(".localhost"):
        return None if allow_loopback else f"{host} is this machine"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return address_refusal(ip, allow_loopback=allow_loopback)


def _connect(address: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


class CallbackClient:
    """HTTP requests to callbacks: checked addresses, one deadline, no redirects."""

    def __init__(
        self,
        *,
        allow_loopback: bool,
        timeout: float,
        resolve: Resolver = socket.getaddrinfo,
        connect: Connector = _connect,
        check_addresses: bool = True,
    ) -> None:
        self._check = check_addresses
        self._allow_loopback = allow_loopback
        self._timeout = timeout
        self._resolve = resolve
        self._connect = connect

    def addresses(self, host: str, port: int) -> list[Address]:
        """Every address of ``host``; ``CallbackRefused`` if any one is refused."""
        reason = literal_refusal(host, allow_loopback=self._allow_loopback) if self._check else None
        if reason is not None:
            raise CallbackRefused(reason)
        try:
            infos = self._resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise CallbackFailed(f"cannot resolve {host}: {exc}") from exc
        found: list[Address] = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            reason = (
                address_refusal(ip, allow_loopback=self._allow_loopback) if self._check else None
            )
            if reason is not None:
                raise CallbackRefused(f"{host}: {reason}")
            if ip not in found:
                found.append(ip)
        if not found:
            raise CallbackFailed(f"{host} has no address")
        return found

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; ``CallbackRefused`` before any connection to a refused
        address, ``CallbackFailed`` on any network error, timeout or redirect."""
        scheme, host, port = parse_callback(url)
        ips = self.addresses(host, port)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sock = self._open(ips, port)
        # One deadline for the whole exchange: every read also times out on its own,
        # and the timer cuts a peer that keeps sending a byte just in time.
        timer = threading.Timer(self._timeout, _cut, (sock,))
        timer.daemon = True
        timer.start()
        try:
            if scheme == "https":
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
            conn = _OnSocket(sock, host, port)
            sent = {"Host": parts.netloc.rpartition("@")[2], "User-Agent": "feedsvc-websub"}
            sent.update(headers or {})
            sent["Connection"] = "close"
            conn.request(method, target, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read(MAX_RESPONSE_BYTES)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            if not timer.is_alive():
                raise CallbackFailed(f"no answer within {self._timeout:g} s") from exc
            raise CallbackFailed(f"request failed: {exc}") from exc
        finally:
            timer.cancel()
            sock.close()
        if 300 <= response.status < 400:
            raise CallbackFailed(f"answered {response.status} (redirects are not followed)")
        return Answer(response.status, data)

    def _open(self, ips: list[Address], port: int) -> socket.socket:
        last: OSError | None = None
        for ip in ips:
            try:
                return self._connect((str(ip), port), self._timeout)
            except OSError as exc:
                last = exc
        raise CallbackFailed(f"cannot connect: {last}")


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: the exchange ended in time
        sock.shutdown(socket.SHUT_RDWR)


class _OnSocket(http.client.HTTPConnection):
    """http.client on a socket already connected to a checked address."""

    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        super().__init__(host, port)
        self.sock = sock

    def connect(self) -> None:  # never resolve or connect again
        return
