"""The ASGI app: parse the AdmissionReview, ask guard.admission, answer.

Routes: ``POST /validate`` (AdmissionReview v1), ``POST /mutate`` (digest pinning, a JSON Patch:
guard.admission.pinning; always allowed, the validating webhook decides), ``GET /healthz``
(the process answers),
``GET /readyz`` (config, policies and trust roots are loaded and the server is not draining),
``GET /metrics`` (Prometheus text format).

A body over the limit gets 413, a malformed review 400 with the reason; neither is ever an
allow (the API server applies the webhook's ``failurePolicy: Fail``). Large bodies (over 256 KiB)
held at once, from their first byte to their answer, share a budget of four maximal reviews: one
that would exceed it gets 503 (guard is busy; failurePolicy again), so a flood of large requests,
each finished within the deadline, cannot hold more memory than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from guard.admission.metrics import AdmissionMetrics
from guard.admission.pinning import DigestPinner, mutation_answer
from guard.admission.pipeline import AdmissionEngine
from guard.admission.response import response_json
from guard.admission.review import MalformedReviewError, parse_review
from webhook.tls import ReloadingCertificate

log = logging.getLogger("webhook")

EngineLoader = Callable[[], Awaitable[AdmissionEngine]]
PinnerFactory = Callable[[AdmissionEngine], DigestPinner]

_JSON = "application/json"
# Bodies larger than this are parsed, and their references extracted, on a worker thread: a
# hostile 3 MiB object costs seconds of CPU, which must not stop the event loop answering others.
_OFF_LOOP_BYTES = 256 * 1024
# Bytes of large bodies (over _OFF_LOOP_BYTES) held at once, in maximal reviews: a parsed review
# takes several times its size in Python objects, and a process has hundreds of MiB.
LARGE_BODIES_IN_FLIGHT = 4


class _Busy(Exception):
    pass


class LargeBodies:
    """The bytes of large request bodies held at once, from their first byte to their answer (one
    event loop: no lock). ``hold()`` gives a request its ``_Hold``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def hold(self) -> _Hold:
        return _Hold(self)


class _Hold:
    """One request's share of ``LargeBodies``: ``grow(n)`` when its body reaches ``n`` bytes
    (nothing is counted under ``_OFF_LOOP_BYTES``: the common case costs nothing), ``_Busy`` when
    the budget cannot take it; ``release()`` once answered."""

    __slots__ = ("_budget", "_taken")

    def __init__(self, budget: LargeBodies) -> None:
        self._budget = budget
        self._taken = 0

    def grow(self, size: int) -> None:
        if size <= _OFF_LOOP_BYTES or size <= self._taken:
            return
        budget = self._budget
        if budget.held - self._taken + size > budget.limit:
            raise _Busy
        budget.held += size - self._taken
        self._taken = size

    def release(self) -> None:
        self._budget.held -= self._taken
        self._taken = 0


@dataclass
class WebhookState:
    engine: AdmissionEngine | None = None
    draining: bool = False


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _error(status: int, message: str) -> Response:
    return Response(_error_body(message), status_code=status, media_type=_JSON)


async def _answer(send: Send, status: int, body: bytes) -> None:
    """A JSON response, as Starlette's ``Response(body, media_type="application/json")`` sends it."""
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Disconnected(Exception):
    pass


async def _read_asgi_body(scope: Scope, receive: Receive, limit: int, hold: _Hold) -> bytes:
    """The request body, refused (``_TooLarge``) as soon as it is over ``limit`` bytes, whether
    its Content-Length says so or its chunks do, and (``_Busy``) as soon as ``hold`` cannot
    grow to it."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            if int(value) > limit:
                raise _TooLarge
            hold.grow(int(value))
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        first: bytes = message.get("body", b"")  # the whole body at once: the common case
        if len(first) > limit:
            raise _TooLarge
        hold.grow(len(first))
        return first
    body = bytearray()  # many small chunks: appended in place, not copied each time
    while True:
        if message["type"] == "http.disconnect":
            raise _Disconnected
        body += message.get("body", b"")
        if len(body) > limit:
            raise _TooLarge
        hold.grow(len(body))
        if not message.get("more_body", False):
            return bytes(body)
        message = await receive()


class _Admission:
    """The webhook's ASGI app: ``POST /validate`` answered directly, everything else (the other
    routes, the lifespan, ``/validate`` with another method: 405) by the Starlette app."""

    def __init__(self, app: Starlette, validate: ASGIApp) -> None:
        self.app = app
        self._validate = validate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/validate":
            if scope["method"] == "POST":
                return await self._validate(scope, receive, send)
            headers = [
                (b"allow", b"POST"),
                (b"content-length", b"18"),
                (b"content-type", b"text/plain; charset=utf-8"),
            ]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            return await send({"type": "http.response.body", "body": b"Method Not Allowed"})
        return await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int, hold: _Hold) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise _TooLarge
        hold.grow(int(declared))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
        hold.grow(len(body))
    return bytes(body)


def _busy_body(budget: LargeBodies) -> bytes:
    return _error_body(
        f"guard is busy: large AdmissionReviews of {budget.held} bytes in all are being read or decided "
        f"(at most {budget.limit} bytes at once); retry (the API server applies the failurePolicy)"
    )


def _mutate_route(
    state: WebhookState,
    pinner: PinnerFactory | None,
    metrics: AdmissionMetrics,
    max_body_bytes: int,
    budget: LargeBodies,
) -> Callable[[Request], Awaitable[Response]]:
    """``POST /mutate``: the digest-pinning JSON Patch of guard.admission.pinning."""
    pinners: dict[int, DigestPinner] = {}

    async def mutate(request: Request) -> Response:
        engine = state.engine
        if engine is None:
            return _error(503, "guard is not ready: config, policies and trust roots are loading")
        if pinner is None:
            return _error(404, "digest pinning is not configured in this server")
        hold = budget.hold()
        try:
            return await pin(request, engine, hold, pinner)
        finally:
            hold.release()

    async def pin(request: Request, engine: AdmissionEngine, hold: _Hold, make: PinnerFactory) -> Response:
        try:
            body = await _read_body(request, max_body_bytes, hold)
        except _TooLarge:
            metrics.malformed.labels(reason="too_large").inc()
            return _error(
                413, f"expected an AdmissionReview of at most {max_body_bytes} bytes, found a larger body"
            )
        except _Busy:
            metrics.malformed.labels(reason="busy").inc()
            return Response(_busy_body(budget), status_code=503, media_type=_JSON)
        large = len(body) > _OFF_LOOP_BYTES
        try:
            review = await asyncio.to_thread(parse_review, body) if large else parse_review(body)
        except MalformedReviewError as err:
            metrics.malformed.labels(reason="malformed").inc()
            return _error(400, str(err))
        pins = pinners.get(id(engine))
        if pins is None:
            pinners.clear()
            pins = pinners[id(engine)] = make(engine)
        answer = await mutation_answer(pins, review.request, frozenset(engine.settings.exempt_namespaces))
        document = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}
        return Response(json.dumps(document), media_type=_JSON)

    return mutate


def _validate_route(
    state: WebhookState, metrics: AdmissionMetrics, max_body_bytes: int, budget: LargeBodies
) -> ASGIApp:
    """``POST /validate``: the admission decision of guard.admission."""

    async def validate(scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /validate`` as a plain ASGI app: the one route every admission takes, without
        Starlette's request, routing and response objects (~0.03-0.05 ms a request, measured)."""
        engine = state.engine
        if engine is None:
            return await _answer(
                send, 503, _error_body("guard is not ready: config, policies and trust roots are loading")
            )
        hold = budget.hold()
        try:
            return await decide(scope, receive, send, engine, hold)
        finally:
            hold.release()

    async def decide(
        scope: Scope, receive: Receive, send: Send, engine: AdmissionEngine, hold: _Hold
    ) -> None:
        try:
            body = await _read_asgi_body(scope, receive, max_body_bytes, hold)
        except _Busy:
            metrics.malformed.labels(reason="busy").inc()
            log.warning("refused a large AdmissionReview: %d bytes of large ones held already", budget.held)
            return await _answer(send, 503, _busy_body(budget))
        except _TooLarge:
            metrics.malformed.labels(reason="too_large").inc()
            log.warning("refused an AdmissionReview larger than %d bytes", max_body_bytes)
            return await _answer(
                send,
                413,
                _error_body(
                    f"expected an AdmissionReview of at most {max_body_bytes} bytes, found a larger body"
                ),
            )
        except _Disconnected:
            return None  # the client went away: nobody to answer
        large = len(body) > _OFF_LOOP_BYTES  # parsed and walked on a worker thread
        try:
            review = await asyncio.to_thread(parse_review, body) if large else parse_review(body)
        except MalformedReviewError as err:
            metrics.malformed.labels(reason="malformed").inc()
            log.warning("refused a malformed AdmissionReview: %s", err)
            return await _answer(send, 400, _error_body(str(err)))
        outcome = await engine.review(review.request, large=large)
        warn_only = engine.settings.mode == "warn"
        return await _answer(send, 200, response_json(outcome, warn_only=warn_only))

    return validate


def create_app(
    load_engine: EngineLoader,
    *,
    metrics: AdmissionMetrics,
    max_body_bytes: int,
    certificate: ReloadingCertificate | None = None,
    startup_errors: list[BaseException] | None = None,
    pinner: PinnerFactory | None = None,
    metrics_route: bool = True,
) -> ASGIApp:
    """The webhook app. ``metrics_route``: also serve ``GET /metrics`` here (in-process use:
    tests, the demo); ``guard serve`` serves it on its own plain-HTTP port instead.
    ``load_engine`` runs at startup on the server's event loop (it loads the
    config's policies and trust roots); the app is ready once it returns. If it raises, the error
    is appended to ``startup_errors`` (so the caller can report it with the right exit code) and
    the server does not start."""
    state = WebhookState()

    budget = LargeBodies(LARGE_BODIES_IN_FLIGHT * max_body_bytes)
    validate = _validate_route(state, metrics, max_body_bytes, budget)

    async def healthz(_request: Request) -> Response:
        return Response("ok\n", media_type="text/plain")

    async def readyz(_request: Request) -> Response:
        if state.draining:
            return Response("draining\n", status_code=503, media_type="text/plain")
        if state.engine is None:
            return Response("loading\n", status_code=503, media_type="text/plain")
        return Response("ready\n", media_type="text/plain")

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        watcher = asyncio.create_task(certificate.watch()) if certificate is not None else None
        try:
            state.engine = await load_engine()
        except Exception as err:
            if startup_errors is not None:
                startup_errors.append(err)
            if watcher is not None:
                watcher.cancel()
            raise
        # What start-up loaded (policies, trust roots, pydantic schemas, modules) lives as long as
        # the process: move it out of the collector's sight. A full collection scanned it all and
        # stopped the event loop for ~50 ms every few thousand requests (the p99 at concurrency).
        # `guard serve` starts with the collector off (webhook.server.start_up_without_gc): start-up
        # leaves ~2,000 unreachable objects (< 1 MB), frozen with the rest rather than found by a
        # full collection that cost 35-60 ms of start-up. The collector runs from here on.
        gc.freeze()
        gc.enable()
        log.info("guard webhook ready")
        try:
            yield
        finally:
            state.draining = True
            gc.unfreeze()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            engine, state.engine = state.engine, None
            if engine is not None:
                await engine.aclose()

    routes = [
        Route("/mutate", _mutate_route(state, pinner, metrics, max_body_bytes, budget), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *([Route("/metrics", metrics_endpoint, methods=["GET"])] if metrics_route else []),
    ]
    return _Admission(Starlette(routes=routes, lifespan=lifespan), validate)
