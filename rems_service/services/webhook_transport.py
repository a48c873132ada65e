"""Posting one webhook delivery: pinned to the checked address, bounded in time and size.

The target is checked again (``webhook_targets.check``) and the connection is made
to the address that check accepted, with the URL's host kept for the ``Host`` header
and, over https, for SNI and certificate verification (urllib3's connection classes:
``server_hostname``/``assert_hostname``). Redirects are never followed (a 3xx is the
receiver's answer). Three deadlines bound an attempt: connecting, each read, and the
whole attempt — a receiver trickling a byte at a time is cut off when the total
deadline passes (a watchdog shuts the socket). At most ``max_response_bytes`` of the
response body are read.

The outcome is one of four coarse classes (what a subscriber may see): ``delivered``
(2xx), ``refused`` (any other status, which is shown), ``unreachable`` (refused
target, DNS, connection, TLS or protocol failure) and ``timed_out``. The raw error
is kept for operators only.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import certifi
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from . import webhook_targets

#: The coarse delivery outcomes (API.md, Webhooks).
DELIVERED, REFUSED, UNREACHABLE, TIMED_OUT = "delivered", "refused", "unreachable", "timed_out"
OUTCOMES = (DELIVERED, REFUSED, UNREACHABLE, TIMED_OUT)


@dataclass(frozen=True)
class Limits:
    connect_seconds: float
    read_seconds: float
    total_seconds: float
    max_response_bytes: int
    #: PEM file of the CAs https targets are verified against (None: certifi's bundle).
    ca_bundle: str | None = None

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Limits:
        return cls(
            connect_seconds=float(settings["WEBHOOK_CONNECT_TIMEOUT_SECONDS"]),
            read_seconds=float(settings["WEBHOOK_TIMEOUT_SECONDS"]),
            total_seconds=float(settings["WEBHOOK_TOTAL_TIMEOUT_SECONDS"]),
            max_response_bytes=int(settings["WEBHOOK_MAX_RESPONSE_BYTES"]),
            ca_bundle=settings.get("WEBHOOK_CA_BUNDLE") or None,
        )


@dataclass(frozen=True)
class PostResult:
    outcome: str
    status_code: int | None
    error: str | None  # for operators: never shown to the subscriber
    duration_ms: int


class _Watchdog:
    """Shuts the connection's socket when the attempt's total deadline passes."""

    def __init__(self, connection: HTTPConnection, seconds: float):
        self.connection = connection
        self.fired = False
        self.timer = threading.Timer(max(seconds, 0.0), self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = self.connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to cut
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()


def _connection(target: webhook_targets.Target, limits: Limits) -> HTTPConnection:
    if target.scheme == "https":
        return HTTPSConnection(
            target.address,
            target.port,
            timeout=limits.connect_seconds,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=limits.ca_bundle or certifi.where(),
        )
    return HTTPConnection(target.address, target.port, timeout=limits.connect_seconds)


def post(
    url: str, body: bytes, headers: Mapping[str, str], policy: webhook_targets.TargetPolicy, limits: Limits
) -> PostResult:
    """POST ``body`` to ``url`` once, within ``limits``; never raises for the receiver's faults."""
    started = time.monotonic()

    def result(outcome: str, status: int | None = None, error: str | None = None) -> PostResult:
        return PostResult(outcome, status, error, int((time.monotonic() - started) * 1000))

    try:
        target = webhook_targets.check(url, policy)
    except webhook_targets.TargetRefused as exc:
        return result(UNREACHABLE, error=f"target refused: {exc}")
    connection = _connection(target, limits)
    watchdog = _Watchdog(connection, limits.total_seconds)
    try:
        with watchdog:
            connection.connect()
            connection.timeout = limits.read_seconds  # getresponse() applies it to the socket
            connection.request(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Host": target.host_header, "Content-Length": str(len(body))},
                chunked=False,
                preload_content=False,  # never the whole body: at most the cap is read below
                decode_content=False,  # nor a decompression bomb
            )
            response = connection.getresponse()
            status = response.status
            remaining = limits.max_response_bytes
            while remaining > 0:  # read (and drop) at most the cap; the rest is never read
                chunk = response.read(min(remaining, 8192), decode_content=False)
                if not chunk:
                    break
                remaining -= len(chunk)
    except NewConnectionError as exc:  # refused or unroutable (urllib3 derives it from its connect timeout)
        return result(UNREACHABLE, error=f"{type(exc).__name__}: {exc}"[:500])
    except (TimeoutError, Urllib3Timeout) as exc:
        return result(TIMED_OUT, error=f"{type(exc).__name__}: {exc}"[:500])
    except (OSError, ssl.SSLError, http.client.HTTPException, Urllib3Error, ValueError) as exc:
        if watchdog.fired:
            return result(TIMED_OUT, error=f"total deadline of {limits.total_seconds:g}s passed")
        return result(UNREACHABLE, error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()
    if 200 <= status < 300:
        return result(DELIVERED, status)
    return result(REFUSED, status, f"HTTP {status}")
