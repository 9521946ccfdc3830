"""Real OPA for tests: OPA's Go library in process (PyPI ``opa-golib-python-bindings``), and an
HTTP server speaking OPA's Data API that answers with it.

``new_opa(modules)`` loads Rego modules into OPA's own evaluator (``github.com/open-policy-agent/
opa/v1/rego``, the version built into the wheel: ``opa_version()``); ``evaluate_raw(opa, document)``
returns the ``deny`` / ``warn`` sets of every policy, in the shape of
``EmbeddedEngine.evaluate_raw``, so the two engines can be compared rule by rule and message by
message.

``OpaServer``: ``POST /v1/data/<path>`` with ``{"input": ...}`` answers ``{"result": <data.path>}``
(or ``{}`` when the document is undefined, 500 with OPA's error on an evaluation error), like OPA's
server. The evaluation is OPA's; the HTTP front is this module's (``http.server``), not OPA's
server, so OPA's own HTTP layer (authentication, bundle loading, decision logs) is not tested here.
``ssl_context`` serves HTTPS (the URL then names ``localhost``, for certificates issued to it).
Knobs for failure tests: ``status`` (answer every request with this HTTP status), ``hang`` (never
answer until the server stops), and loading only some policies (a bundle with packages missing).

The bindings declare ``Requires-Python >=3.14`` (their authors' toolchain) but are a ctypes wrapper
around a Go c-shared library and run on 3.11: pip's resolver refuses them as a dependency, so they
are installed on their own with ``pip install --ignore-requires-python`` (Makefile, ``.ci/run``).
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from guard.policy.library import RegoFile
from guard.policy.opa import collect_decision_sets

INSTALL_HINT = (
    "install OPA's Go library bindings: .venv/bin/python -m pip install --ignore-requires-python "
    "'opa-golib-python-bindings==0.4.4' (see the Makefile)"
)


class OpaUnavailableError(RuntimeError):
    """The bindings are not installed or their shared library does not load on this machine."""


def bindings() -> Any:
    """The ``opa_bindings`` module (``OpaEngine``, ``OpaError``, ``OpaUndefinedError``)."""
    try:
        import opa_bindings  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
    except ImportError as err:
        raise OpaUnavailableError(f"{err}: {INSTALL_HINT}") from err
    return opa_bindings


def opa_version() -> str:
    """The OPA module version linked into the bindings' libopabridge.so, from its Go build info
    (the tab-separated line ``dep github.com/open-policy-agent/opa v1.20.2 h1:...``)."""
    library = Path(bindings().__file__).parent / "libopabridge.so"
    pattern = rb"\tgithub\.com/open-policy-agent/opa\t(v[0-9][0-9A-Za-z.+-]*)\t"
    found = re.search(pattern, library.read_bytes())
    if found is None:
        raise OpaUnavailableError(f"{library}: no Go build info naming github.com/open-policy-agent/opa")
    return found.group(1).decode()


def new_opa(modules: Sequence[RegoFile]) -> Any:
    """An OPA engine (``opa_bindings.OpaEngine``) with the modules loaded; ``close()`` it."""
    module = bindings()
    try:
        engine = module.OpaEngine()
    except OSError as err:  # libopabridge.so: wrong platform, glibc older than 2.34
        raise OpaUnavailableError(f"OPA's Go library does not load here: {err}") from err
    for rego in modules:
        engine.add_policy(str(rego.path), rego.text)
    return engine


def evaluate_raw(opa: Any, document: Mapping[str, Any], package_root: str = "guard") -> dict[str, Any]:
    """``{"<bundle>.<policy>": {"deny": [...], "warn": [...]}}`` as OPA evaluates ``data.guard``
    (the query guard's OPA engine sends). Raises ``opa_bindings.OpaError`` on evaluation errors."""
    return collect_decision_sets(opa.eval_document(package_root, dict(document)))


class OpaServer:
    """``with OpaServer(library.modules()) as opa: opa.url``; binds 127.0.0.1 on a free port."""

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
        self._opa: Any = new_opa(self.modules)
        self._server = HTTPServer(("127.0.0.1", 0), self._handler())
        self._scheme = "http"
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, name="opa-data-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{'localhost' if self._scheme == 'https' else host!s}:{port}"

    def __enter__(self) -> OpaServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        if self._opa is not None:
            self._opa.close()
            self._opa = None

    def _evaluate(self, path: str, document: Any) -> tuple[int, dict[str, Any]]:
        module = bindings()
        try:
            return 200, {"result": self._opa.eval_document(path.replace("/", "."), document)}
        except module.OpaUndefinedError:
            return 200, {}
        except module.OpaError as err:  # OPA's server: 500 {"code": "internal_error", "message": ...}
            return 500, {"code": "internal_error", "message": str(err)}

    def _answer(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if self.status is not None:
            return self.status, {"code": "internal_error", "message": "test OPA server told to fail"}
        if not path.startswith("/v1/data/"):
            return 404, {"code": "not_found", "message": f"no such API: {path}"}
        try:
            document = json.loads(body or b"{}")
        except ValueError as err:
            return 400, {"code": "invalid_parameter", "message": f"body is not JSON: {err}"}
        if not isinstance(document, dict):
            return 400, {"code": "invalid_parameter", "message": "body is not a JSON object"}
        self.requests.append(document)
        return self._evaluate(path.removeprefix("/v1/data/").strip("/"), document.get("input"))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if server.hang:
                    server._stop.wait()
                    return
                status, payload = server._answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
