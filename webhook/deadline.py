"""A per-request deadline on the webhook's connections.

uvicorn closes a connection idle between requests (``timeout_keep_alive``), but any byte cancels
that timer, and nothing bounds the time a client takes to send a request's headers and body:
a client that reaches guard's Service (any pod, without a NetworkPolicy) could hold connections
open forever, each with up to ``maxBodyBytes`` buffered, until guard runs out of file descriptors
or memory and every admission is left to the webhook's ``failurePolicy``.

``DeadlineHttpToolsProtocol`` closes a connection that has not finished a request within
``request_deadline_seconds`` of its TLS handshake or of the request's first byte. The API server
never waits longer than the webhook's ``timeoutSeconds``, so that is the deadline ``guard serve``
sets: no answer it could still use is cut off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("webhook")

# Kubernetes' largest timeoutSeconds: the default where no webhook timeout is known.
DEFAULT_REQUEST_DEADLINE_SECONDS = 30.0


class DeadlineConfig(uvicorn.Config):
    """uvicorn's Config serving ``DeadlineHttpToolsProtocol`` with ``request_deadline_seconds``
    (module level and plain attributes: picklable for uvicorn's worker processes)."""

    def __init__(
        self, app: Any, *, request_deadline_seconds: float = DEFAULT_REQUEST_DEADLINE_SECONDS, **options: Any
    ) -> None:
        if request_deadline_seconds <= 0:
            raise ValueError(f"request_deadline_seconds: expected > 0, found {request_deadline_seconds}")
        super().__init__(app, http=DeadlineHttpToolsProtocol, **options)
        self.request_deadline_seconds = request_deadline_seconds


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline armed when the connection is made and when a
    request begins, cancelled when its response is complete and no other request has begun (the
    keep-alive timeout then rules)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._deadline_seconds = float(
            getattr(config, "request_deadline_seconds", DEFAULT_REQUEST_DEADLINE_SECONDS)
        )
        self._deadline: asyncio.TimerHandle | None = None
        self._begun = 0  # requests begun and not yet answered (more than one when pipelined)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self._deadline_seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.warning(
                "closed a connection from %s that did not finish a request within %s s",
                f"{self.client[0]}:{self.client[1]}" if self.client else "an unknown client",
                self._deadline_seconds,
            )
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun += 1
        self._arm()

    def on_response_complete(self) -> None:
        self._begun = max(0, self._begun - 1)
        if self._begun:
            self._arm()  # a pipelined request has begun: it gets its own deadline
        else:
            self._disarm()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
