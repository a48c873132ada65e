"""A webhook receiver for tests: a real HTTP server on localhost that records
what it was sent and answers with a scripted status (or stalls)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)


@dataclass
class Receiver:
    """``statuses`` are answered in order (then 200 for ever); ``stall`` seconds before answering;
    ``trickle`` > 0: the answer is sent one byte every ``trickle`` seconds (a hostile receiver);
    ``reply_headers`` are added to every answer (a ``Location`` to try redirects);
    ``tls`` (a certificate and key PEM file): serve https, recording the TLS server names
    (SNI) clients asked for in ``server_names``."""

    statuses: list[int] = field(default_factory=list)
    stall: float = 0.0
    trickle: float = 0.0
    reply_headers: dict[str, str] = field(default_factory=dict)
    tls: tuple[str, str] | None = None
    #: Bytes of response body to send (0: an empty body), in 64 KiB writes.
    reply_bytes: int = 0
    #: How many body bytes were written before the client went away.
    sent_bytes: int = 0
    server_names: list[str | None] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(Received(dict(self.headers.items()), raw))
                receiver.arrived.set()
                if receiver.stall:
                    time.sleep(receiver.stall)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.trickle:
                    answer = receiver.trickled_answer(status)
                    try:
                        for byte in answer:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(receiver.trickle)
                    except OSError:
                        pass  # the client hung up: what a deadline is for
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in receiver.reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(receiver.reply_bytes))
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    while receiver.sent_bytes < receiver.reply_bytes:
                        self.wfile.write(chunk)
                        receiver.sent_bytes += len(chunk)
                except OSError:
                    pass  # the client stopped reading

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            context.sni_callback = lambda _sock, name, _ctx: receiver.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def trickled_answer(status: int = 200) -> bytes:
        """What a trickling receiver sends, a byte at a time (about 80 bytes)."""
        return f"HTTP/1.1 {status} OK\r\nX-Padding: {'.' * 40}\r\nContent-Length: 0\r\n\r\n".encode()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, n: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received) >= n:
                return True
            time.sleep(0.05)
        return False
