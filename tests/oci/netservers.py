"""Small HTTP servers on loopback addresses for the registry-network tests: a registry that
drips its answers, redirects, names token realms. Every server binds 127.0.0.x only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[["Handler"], None]


@dataclass
class Seen:
    """One request a server received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Server:
    host: str
    port: int
    seen: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    dripped: int = 0  # bytes a drip sent before the client hung up
    hung_up: threading.Event = field(default_factory=threading.Event)

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_info: Server
    route: Route

    def _handle(self) -> None:
        self.server_info.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length:
            self.rfile.read(length)
        type(self).route(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _handle

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drip(self, body: bytes, every: float, *, declared: int | None = None) -> None:
        """Answer 200 and send ``body`` one byte at a time, ``every`` seconds apart."""
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(declared if declared is not None else len(body)))
        self.end_headers()
        self.wfile.flush()
        for byte in body:
            if self.server_info.stop.is_set():
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                self.server_info.hung_up.set()  # the client hung up: what a deadline does
                return
            self.server_info.dripped += 1
            time.sleep(every)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(route: Route, host: str = "127.0.0.1") -> Iterator[Server]:
    """Run ``route`` for every request on ``host`` (a loopback address) and a free port."""
    assert host.startswith("127."), "test servers bind loopback addresses only"
    info = Server(host, 0)
    handler = type("RouteHandler", (Handler,), {"route": staticmethod(route), "server_info": info})
    httpd = ThreadingHTTPServer((host, 0), handler)
    httpd.daemon_threads = True
    info.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        info.stop.set()
        httpd.shutdown()
        httpd.server_close()
