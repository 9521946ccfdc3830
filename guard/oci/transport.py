"""How long guard waits for a registry: the total deadline of one registry operation, and the
connection classes that connect only to addresses ``guard.oci.targets`` allowed.

``requests``' timeout is per read: a registry sending one byte a second never times out. Here an
``Operation`` is one registry operation (the TLS probe, the auth challenge and token exchange,
redirects, retries and every read of the body): it has a total deadline, and a watchdog thread
shuts down the sockets of an operation whose deadline passed, so a blocked read returns at once
and the operation fails with ``DeadlineExceeded``. A streamed blob earns more time as bytes arrive
(``min_bytes_per_second``), so a large download is not cut while a drip still is.

Every connection is made by ``GuardAdapter``'s connection classes: the host name is resolved, each
address checked (``guard.oci.targets.TargetPolicy``) and only an allowed address is connected to (no
second resolution, so DNS rebinding cannot swap the address after the check). Through a proxy
(``HTTPS_PROXY``) the proxy resolves; the host-name checks still hold.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import http.client
import itertools
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import urlparse

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import PoolManager
from urllib3.util.ssl_ import create_urllib3_context

from guard.buffers import page_aligned
from guard.errors import ConfigError, DeadlineExceeded, GuardError, RegistryError
from guard.oci.targets import TargetPolicy

log = logging.getLogger(__name__)

# --- the total deadline ------------------------------------------------------------------------

_CURRENT: contextvars.ContextVar[Operation | None] = contextvars.ContextVar("guard_operation", default=None)


class Operation:
    """One registry operation under a total deadline (monotonic clock). ``extend_per_byte``:
    seconds of extra time each byte received earns (streamed blobs)."""

    def __init__(
        self,
        host: str,
        what: str,
        seconds: float,
        *,
        extend_per_byte: float = 0.0,
        policy: TargetPolicy | None = None,
    ) -> None:
        self.host = host
        self.policy = policy
        self.what = what
        self.seconds = seconds
        self.start = time.monotonic()
        self.deadline = self.start + seconds
        self.extend_per_byte = extend_per_byte
        self.received = 0
        self.expired = False
        self.done = False
        self._connections: set[_GuardedConnection] = set()
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def error(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"registry {self.host}: {self.what} did not complete within its total deadline of "
            f"{self.seconds:g} s (connect, auth and all reads; a registry that answers too slowly "
            "is treated as unreachable)"
        )

    def check(self) -> None:
        """Raise DeadlineExceeded when the deadline has passed."""
        if self.expired or time.monotonic() >= self.deadline:
            self.expired = True
            raise self.error()

    def timeout(self, per_read: float) -> float:
        """The socket timeout for the next step: the per-read timeout, cut to what remains."""
        self.check()
        return max(0.001, min(per_read, self.remaining()))

    def progress(self, count: int) -> None:
        self.received += count
        if self.extend_per_byte:
            self.deadline = max(
                self.deadline, self.start + self.seconds + self.received * self.extend_per_byte
            )

    def attach(self, connection: _GuardedConnection) -> None:
        with self._lock:
            if not self.done:
                self._connections.add(connection)

    def release(self, keep: object = None) -> None:
        """Forget the connections of a finished exchange (they go back to the pool), but
        ``keep`` (the connection a streamed answer is still read from)."""
        with self._lock:
            kept = {c for c in self._connections if c is keep}
            self._connections = kept

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._connections.clear()

    def fire(self) -> None:
        """The watchdog's call at the deadline: shut the sockets down so blocked reads return."""
        with self._lock:
            if self.done:
                return
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            connection.shut_down()

    @contextlib.contextmanager
    def active(self) -> Iterator[Operation]:
        token = _CURRENT.set(self)
        _WATCHDOG.watch(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)


def current_operation() -> Operation | None:
    return _CURRENT.get()


class _Watchdog:
    """One daemon thread for every operation's deadline (started on first use)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Operation]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._counter = itertools.count()

    def watch(self, operation: Operation) -> None:
        with self._wake:
            heapq.heappush(self._heap, (operation.deadline, next(self._counter), operation))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="guard-registry-deadlines", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is operation:  # the earliest deadline now: the sleeper must know
                self._wake.notify()

    def _run(self) -> None:
        while True:
            due: list[Operation] = []
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, operation = heapq.heappop(self._heap)
                    if operation.done:
                        continue
                    if operation.deadline > now:  # it earned more time: watch it again
                        heapq.heappush(self._heap, (operation.deadline, next(self._counter), operation))
                        continue
                    due.append(operation)
                if not due:
                    self._wake.wait(max(0.0, self._heap[0][0] - now) if self._heap else None)
            for operation in due:
                try:
                    operation.fire()
                except Exception:  # the watchdog must outlive any one operation
                    log.exception("could not cut the connections of %s", operation.what)


_WATCHDOG = _Watchdog()


# --- the connection classes --------------------------------------------------------------------


class _GuardedConnection(HTTPConnection):
    """An urllib3 connection that resolves and checks addresses itself, and belongs to the
    current operation while it is used (so the watchdog can shut it down)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._guard_lock = threading.Lock()
        self._guard_handle: socket.socket | None = None
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        operation = current_operation()
        if operation is None:
            # a bug, not an unreachable registry: no fail-open rule may cover it (a RuntimeError
            # is judged as one: denied, logged with its traceback)
            raise RuntimeError("internal error: a registry connection outside of an operation")
        policy = operation.policy
        if self.proxy is not None or policy is None:  # the proxy (from the environment) resolves
            sock = super()._new_conn()
        else:
            sock = self._connect_checked(operation, policy)
        operation.attach(self)
        with self._guard_lock:
            self._guard_handle = socket.fromfd(sock.fileno(), sock.family, sock.type)
        return sock

    def _connect_checked(self, operation: Operation, policy: TargetPolicy) -> socket.socket:
        host = self._dns_host.strip("[]")
        infos = policy.addresses(host, self.port)
        last: OSError | None = None
        for family, kind, proto, _, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(operation.timeout(self.timeout if isinstance(self.timeout, float) else 60.0))
                sock.connect(sockaddr)
                return sock
            except TimeoutError as err:
                sock.close()
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from err
            except OSError as err:
                sock.close()
                last = err
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")

    def request(self, *args: Any, **kwargs: Any) -> None:
        operation = current_operation()
        if operation is not None:
            operation.attach(self)
        super().request(*args, **kwargs)

    def shut_down(self) -> None:
        with self._guard_lock:
            handle = self._guard_handle
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._guard_lock:
            if self._guard_handle is not None:
                self._guard_handle.close()
                self._guard_handle = None
        super().close()


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}


class GuardedResponse(requests.Response):
    """A response whose body is read under its operation's deadline: a read the watchdog cut,
    or any transport failure while reading, is guard's error (never a requests traceback, never
    a truncated body taken for a whole one)."""

    guard_operation: Operation | None = None
    guard_owner: bool = False

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
        return _guarded(self, super().iter_content(chunk_size, decode_unicode))

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.guard_owner and self.guard_operation is not None:
                self.guard_operation.finish()


_READ_ERRORS = (requests.RequestException, OSError, urllib3.exceptions.HTTPError, http.client.HTTPException)


def _read_failure(response: requests.Response, err: BaseException) -> GuardError:
    """A failed read of ``response``'s body as guard's error: the deadline's when it passed."""
    operation: Operation | None = getattr(response, "guard_operation", None)
    if operation is not None and (operation.expired or operation.remaining() <= 0):
        operation.expired = True
        return operation.error()
    host = operation.host if operation is not None else urlparse(response.url).netloc
    return RegistryError(f"registry {host}: reading the answer to {response.url} failed: {err}")


def _body_read(response: GuardedResponse) -> None:
    """The whole body was read (or reading stopped): the operation is over."""
    operation = response.guard_operation
    if response.guard_owner and operation is not None and operation.done is False:
        operation.finish()


def _guarded(response: GuardedResponse, chunks: Iterator[Any]) -> Iterator[Any]:
    operation = response.guard_operation
    try:
        for chunk in chunks:
            if operation is not None:
                operation.progress(len(chunk))
                operation.check()
            yield chunk
        if operation is not None:
            operation.check()
    except _READ_ERRORS as err:
        raise _read_failure(response, err) from err
    finally:
        _body_read(response)


class BodyReader:
    """A streamed answer's body, under its operation's deadline: iterate for chunks of
    ``chunk_size`` bytes, or ``readinto`` a buffer the caller reuses.

    An answer without a content coding is read by ``http.client`` straight into the caller's
    buffer: no allocation per chunk and none of the copies ``iter_content`` makes (http.client's
    ``read`` copies out of a fresh buffer, urllib3 queues the result). ``http.client`` still does
    the framing (Content-Length, chunked) and raises on a short body; the caller checks size and
    digest as ever. Anything else (a coded body, a response urllib3 does not expose that way)
    goes through ``iter_content``."""

    def __init__(self, response: requests.Response, chunk_size: int) -> None:
        self._response = response
        self._chunk_size = chunk_size
        raw = response.raw
        fp = getattr(raw, "_fp", None)
        coding = response.headers.get("Content-Encoding", "").strip().lower()
        self._fp: http.client.HTTPResponse | None = (
            fp
            if isinstance(raw, urllib3.HTTPResponse)
            and isinstance(fp, http.client.HTTPResponse)
            and coding in ("", "identity")
            and getattr(raw, "_fp_bytes_read", None) == 0
            else None
        )
        # http.client returns 0 at a body cut short of its Content-Length (urllib3 raises then)
        self._expected = self._fp.length if self._fp is not None else None
        self._received = 0
        self._chunks: Iterator[bytes] | None = None
        self._pending = memoryview(b"")  # the rest of a chunk ``readinto`` did not take
        self._done = False
        self._buffer: memoryview | None = None  # what iteration reads into

    def __iter__(self) -> BodyReader:
        return self

    def __next__(self) -> bytes:
        if self._fp is None:
            if self._chunks is None:
                self._chunks = self._response.iter_content(self._chunk_size)
            return next(self._chunks)
        if self._buffer is None:  # one page-aligned buffer the socket fills (guard.buffers)
            self._buffer = page_aligned(self._chunk_size)
        count = self.readinto(self._buffer)
        if not count:
            raise StopIteration
        return bytes(self._buffer[:count])

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` with the next bytes of the body; 0 at its end."""
        if self._fp is None:
            return self._readinto_chunks(buffer)
        if self._done or not len(buffer):
            return 0
        response = self._response
        operation = getattr(response, "guard_operation", None)
        try:
            count = self._fp.readinto(buffer)
            self._received += count
            if count == 0 and self._expected is not None and self._received < self._expected:
                raise http.client.IncompleteRead(b"", self._expected - self._received)
            if operation is not None:
                operation.progress(count)
                operation.check()
        except _READ_ERRORS as err:
            self._done = True
            _body_read(cast(GuardedResponse, response))
            raise _read_failure(response, err) from err
        if count == 0:
            self._done = True
            if self._fp.isclosed():  # the whole body: the connection can serve the next request
                response.raw.release_conn()
            _body_read(cast(GuardedResponse, response))
        return count

    def _readinto_chunks(self, buffer: bytearray | memoryview) -> int:
        while not self._pending:  # an empty chunk is not the end
            chunk = next(self, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def hand_over(response: requests.Response, operation: Operation) -> None:
    """A streamed answer leaves ``request``: its operation ends when the body is read or the
    response closed; connections of earlier exchanges are released now."""
    raw_connection = getattr(response.raw, "connection", None)
    operation.release(keep=raw_connection)
    if isinstance(response, GuardedResponse):
        response.guard_owner = True


# --- TLS: one context per CA bundle ------------------------------------------------------------

_CONTEXTS: dict[str, tuple[tuple[int, int], ssl.SSLContext]] = {}
_CONTEXTS_LOCK = threading.Lock()


def verify_context(ca_file: str) -> ssl.SSLContext:
    """The TLS context that verifies against the CA bundle file ``ca_file``, its certificates
    parsed once per process (a system bundle takes ~20 ms to load; urllib3 loads it again for
    every new connection when it is given the path). A file replaced on disk (another size or
    modification time: a rotated Secret) is loaded again. The context is urllib3's own default
    (``create_urllib3_context``, certificates and host names verified), shared by all threads.
    A file that holds no certificate OpenSSL can read is a ConfigError naming it."""
    path = os.path.abspath(ca_file)
    try:
        stat = os.stat(path)
    except OSError as err:
        raise ConfigError(f"CA bundle {ca_file}: cannot be read ({err.strerror})") from err
    version = (stat.st_size, stat.st_mtime_ns)
    with _CONTEXTS_LOCK:
        found = _CONTEXTS.get(path)
    if found is not None and found[0] == version:
        return found[1]
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as err:
        if err.reason == "NO_CERTIFICATE_OR_CRL_FOUND":
            found_text = "no certificate (no -----BEGIN CERTIFICATE----- block)"
        else:  # "[X509] PEM lib (_ssl.c:4154)": OpenSSL's words without CPython's source line
            detail = f"{err.library}: {err.reason}" if err.reason else str(err.args[-1]).split(" (_ssl")[0]
            found_text = f"a certificate OpenSSL cannot read ({detail})"
        raise ConfigError(
            f"CA bundle {ca_file}: expected PEM certificates of the CAs to trust, found {found_text}"
        ) from err
    except OSError as err:
        raise ConfigError(f"CA bundle {ca_file}: cannot be read ({err.strerror or err})") from err
    with _CONTEXTS_LOCK:
        _CONTEXTS[path] = (version, context)
    return context


def shared_context(verify: object) -> ssl.SSLContext | None:
    """The shared context for requests' ``verify`` when it names a CA bundle file, else None
    (True: requests' own preloaded default context; False: no verification; a directory)."""
    if isinstance(verify, str) and os.path.isfile(verify):
        return verify_context(verify)
    return None


class GuardAdapter(HTTPAdapter):
    """requests' adapter with guard's connection classes (direct and through a proxy).

    A CA bundle given as a path (``--ca-file``, ``REQUESTS_CA_BUNDLE``) becomes one shared
    ``ssl.SSLContext`` per file (``verify_context``), so a new connection pool (a new registry
    client, a repository not seen before) does not parse the bundle again.

    ``https_answered``: a registry client sharing this adapter found the host speaking verified
    TLS, so the others skip their scheme probe (plain HTTP is never shared: each client that
    may fall back to it probes for itself), and their first request is not a first contact
    (retried like any other when it fails)."""

    https_answered = False

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: str | tuple[str, str] | None = None
    ) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        context = shared_context(verify) if host_params["scheme"] == "https" else None
        if context is not None and pool_kwargs.get("ca_certs") == verify:
            del pool_kwargs["ca_certs"]
            pool_kwargs["ssl_context"] = context
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        # requests sets the path on the pool too; the pool's context already holds those CAs
        if getattr(conn, "conn_kw", {}).get("ssl_context") is not None and conn.ca_certs == verify:
            conn.ca_certs = None

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = super().build_response(req, resp)
        response.__class__ = GuardedResponse
        assert isinstance(response, GuardedResponse)
        response.guard_operation = current_operation()
        return response

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._use_guarded(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        self._use_guarded(manager)
        return manager

    @staticmethod
    def _use_guarded(manager: PoolManager) -> None:
        manager.pool_classes_by_scheme = dict(_POOLS)
        manager.key_fn_by_scheme = dict(manager.key_fn_by_scheme)
