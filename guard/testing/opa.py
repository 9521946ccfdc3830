"""A stand-in OPA server for tests: speaks OPA's Data API, evaluates with regorus.

``POST /v1/data/<path>`` with ``{"input": ...}`` answers ``{"result": <data.path>}`` (or ``{}``
when the document is undefined), like OPA. Results are real (the same Rego, evaluated by the
embedded engine), but this is not OPA: guard's OPA engine is not tested against a real OPA here.

``ssl_context`` serves HTTPS (the URL then names ``localhost``, for certificates issued to it).
Knobs for failure tests: ``status`` (answer every request with this HTTP status), ``hang`` (never
answer until the server stops), and loading only some policies (a bundle with packages missing).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any

from guard.policy.embedded import new_regorus_engine, rust_error_text
from guard.policy.library import RegoFile


class FakeOpaServer:
    """``with FakeOpaServer(library.modules()) as opa: opa.url``; binds 127.0.0.1 on a free port."""

    def __init__(
        self,
        modules: Sequence[RegoFile],
        *,
        status: int | None = None,
        hang: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.modules = tuple(modules)
        self.status = status
        self.hang = hang
        self.requests: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._engine: Any = None  # created on the serving thread (regorus engines stay on one thread)
        self._server = HTTPServer(("127.0.0.1", 0), self._handler())
        self._scheme = "http"
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._serve, name="fake-opa", daemon=True)

    def _serve(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._engine = None  # a regorus engine must be dropped on the thread that made it

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{'localhost' if self._scheme == 'https' else host!s}:{port}"

    def __enter__(self) -> FakeOpaServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _answer(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if self.status is not None:
            return self.status, {"code": "internal_error", "message": "fake OPA told to fail"}
        if not path.startswith("/v1/data/"):
            return 404, {"code": "not_found", "message": f"no such API: {path}"}
        try:
            document = json.loads(body or b"{}")
        except ValueError as err:
            return 400, {"code": "invalid_parameter", "message": f"body is not JSON: {err}"}
        self.requests.append(document)
        if self._engine is None:
            self._engine = new_regorus_engine(self.modules)
        query = "data." + path.removeprefix("/v1/data/").strip("/").replace("/", ".")
        try:
            self._engine.set_input_json(json.dumps(document.get("input")))
            answer = json.loads(self._engine.eval_query_as_json(query))
        except RuntimeError as err:
            return 500, {"code": "internal_error", "message": rust_error_text(err)}
        results = answer.get("result") or []
        if not results:
            return 200, {}
        return 200, {"result": results[0]["expressions"][0]["value"]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if fake.hang:
                    fake._stop.wait()
                    return
                status, payload = fake._answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
