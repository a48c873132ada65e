"""Where a webhook may be delivered (OWASP API Security 2023, API7 "Server Side Request Forgery").

A target URL is checked when it is subscribed and again before every delivery:
its host is resolved (so decimal, hexadecimal, octal and short-form IPv4 hosts
and IPv4-mapped IPv6 addresses are judged by the address they really reach),
and every address it resolves to must be a public unicast address. Loopback is
allowed only when the ``WEBHOOK_ALLOW_LOOPBACK`` setting says so (development
and sandbox receivers on the same machine); link-local (cloud metadata),
private, shared (CGNAT), unique-local, unspecified, multicast and reserved
addresses never are. ``https`` is required where ``WEBHOOK_REQUIRE_HTTPS`` is
set (production). URLs carrying credentials are refused. The delivery then
connects to the address that was checked (``webhook_transport``), so a second
DNS answer cannot swap it for an internal one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Characters never accepted in a target URL (parsers disagree about them).
FORBIDDEN_CHARACTERS = frozenset("\\ \t\r\n\x00")
DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetRefused(ValueError):
    """The URL may not be a webhook target; the message says why (safe to show the subscriber)."""


@dataclass(frozen=True)
class TargetPolicy:
    require_https: bool
    allow_loopback: bool
    #: How long a name may take to resolve (the system resolver has no deadline of its own:
    #: a name served slowly on purpose must not hold a request or a delivery thread).
    resolve_timeout: float = 2.0

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> TargetPolicy:
        return cls(
            require_https=bool(settings.get("WEBHOOK_REQUIRE_HTTPS", True)),
            allow_loopback=bool(settings.get("WEBHOOK_ALLOW_LOOPBACK", False)),
            resolve_timeout=float(settings.get("WEBHOOK_RESOLVE_TIMEOUT_SECONDS", 2.0)),
        )


@dataclass(frozen=True)
class Target:
    """A checked target: where to connect (``address``) and what to say (``host`` for
    the ``Host`` header and TLS server name, ``path`` with its query)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver; ``inet_aton`` rules for numbers)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


#: The resolver the checks use (a module attribute so tests can give names fixed answers).
resolve: Callable[[str, int], list[str]] = system_resolve

#: Lookups run here, so that a caller waits at most the policy's ``resolve_timeout`` (a lookup
#: past it finishes in the background; while this pool is full, further lookups time out).
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rems-resolve")


def resolve_within(host: str, port: int, timeout: float) -> list[str]:
    """``resolve(host, port)`` within ``timeout`` seconds; ``TimeoutError`` past it."""
    future = _lookups.submit(resolve, host, port)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        future.cancel()
        raise TimeoutError(f"resolving {host!r} took longer than {timeout:g}s") from None


def address_problem(address: IPAddress, policy: TargetPolicy) -> str | None:
    """Why ``address`` may not be connected to, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return address_problem(mapped, policy)
        if address.teredo is not None:
            return "a Teredo tunnel address"
    if address.is_loopback:
        return None if policy.allow_loopback else "a loopback address"
    for flag, name in (
        ("is_unspecified", "the unspecified address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private or unique-local address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(address, flag):
            return name
    if not address.is_global:
        return "not a public address"
    return None


def parse(url: str, policy: TargetPolicy) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of an acceptable URL; ``TargetRefused`` otherwise."""
    if any(ch in FORBIDDEN_CHARACTERS for ch in url) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise TargetRefused("The URL may not contain spaces, backslashes or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"Not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise TargetRefused("The URL must be http or https.")
    if policy.require_https and scheme != "https":
        raise TargetRefused("The URL must be https.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("The URL may not carry credentials: authenticate deliveries by their signature.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("The URL has no host.")
    if port == 0:
        raise TargetRefused("The URL's port must be between 1 and 65535.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or DEFAULT_PORTS[scheme], path


def check(url: str, policy: TargetPolicy) -> Target:
    """Parse ``url``, resolve its host and check every address; the target to connect to.

    Raises ``TargetRefused`` naming the reason (the URL's form, a name that does not
    resolve, or the kind of address it resolves to)."""
    scheme, host, port, path = parse(url, policy)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve_within(host, port, policy.resolve_timeout)
        except TimeoutError:
            raise TargetRefused(f"The host {host!r} did not resolve in time.") from None
        except (OSError, UnicodeError):
            raise TargetRefused(f"The host {host!r} does not resolve.") from None
    if not addresses:
        raise TargetRefused(f"The host {host!r} does not resolve.")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        problem = address_problem(address, policy)
        if problem is not None:
            raise TargetRefused(f"The URL's host resolves to {problem}, which may not receive webhooks.")
    return Target(scheme, host, port, path, addresses[0])
