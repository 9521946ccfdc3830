"""Where guard connects and for how long: the total deadline of one registry operation, and the
checks on every address a registry makes guard connect to.

``requests``' timeout is per read: a registry sending one byte a second never times out. Here an
``Operation`` is one registry operation (the TLS probe, the auth challenge and token exchange,
redirects, retries and every read of the body): it has a total deadline, and a watchdog thread
shuts down the sockets of an operation whose deadline passed, so a blocked read returns at once
and the operation fails with ``DeadlineExceeded``. A streamed blob earns more time as bytes arrive
(``min_bytes_per_second``), so a large download is not cut while a drip still is.

Every connection is made by ``GuardAdapter``'s connection classes: the host name is resolved, each
address checked (``TargetPolicy.check_address``) and only an allowed address is connected to (no
second resolution, so DNS rebinding cannot swap the address after the check). Through a proxy
(``HTTPS_PROXY``) the proxy resolves; the host-name checks still hold.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import heapq
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import PoolManager

from guard.errors import DeadlineExceeded, RefusedTargetError, RegistryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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
                operation.fire()


_WATCHDOG = _Watchdog()


# --- where guard may connect -------------------------------------------------------------------

# Cloud instance metadata: never a registry, never a redirect target (unless configured).
METADATA_NAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)

# Well-known registries' token servers and blob storage (documented in the README; a config adds more).
KNOWN_TOKEN_HOSTS: dict[str, tuple[str, ...]] = {
    "registry-1.docker.io": ("auth.docker.io",),
}
KNOWN_BLOB_HOSTS: dict[str, tuple[str, ...]] = {
    "registry-1.docker.io": ("production.cloudflare.docker.com",),
    "ghcr.io": ("pkg-containers.githubusercontent.com",),
    "quay.io": ("cdn.quay.io", "cdn01.quay.io", "cdn02.quay.io", "cdn03.quay.io"),
    "*.dkr.ecr.*.amazonaws.com": ("prod-*-starport-layer-bucket.s3.*.amazonaws.com",),
}

Resolver = Callable[[str, int], Sequence[tuple[Any, ...]]]


def _default_resolver(host: str, port: int) -> Sequence[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def host_matches(pattern: str, host: str) -> bool:
    """``*`` matches within one DNS label (``*.example.com`` covers ``a.example.com``, not
    ``a.b.example.com``); ports must be equal when the pattern has one."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if ":" in pattern.rsplit("]", 1)[-1]:
        return fnmatch.fnmatchcase(host, pattern) and pattern.count(".") == host.count(".")
    name = _hostname(host)
    return fnmatch.fnmatchcase(name, pattern) and pattern.count(".") == name.count(".")


def _hostname(host_port: str) -> str:
    if host_port.startswith("["):
        return host_port[1 : host_port.find("]")]
    return host_port.rsplit(":", 1)[0] if host_port.count(":") == 1 else host_port


def _literal(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_class(address: IPAddress) -> str | None:
    """Why an address is not an ordinary public one (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if address.is_link_local:
        return "link-local"
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "unspecified, multicast or reserved"
    if not address.is_global:
        return "private"
    return None


@dataclass
class TargetPolicy:
    """What one registry client may connect to. The registry itself: any address but cloud
    metadata, link-local, unspecified, multicast. Another host (a redirect, a token realm, an
    upload location): only a host the policy allows, never metadata or link-local, loopback only
    when the registry is on loopback, private addresses only when the registry is on one; any of
    it allowed by ``allowed_networks``."""

    registry: str
    redirect_hosts: tuple[str, ...] = ()
    token_hosts: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = _default_resolver
    _registry_classes: set[str | None] | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        registry: str,
        *,
        redirect_hosts: Iterable[str] = (),
        token_hosts: Iterable[str] = (),
        trusted_hosts: Iterable[str] = (),
        allowed_networks: Iterable[str] = (),
        resolver: Resolver | None = None,
    ) -> TargetPolicy:
        known_blobs = [h for p, hosts in KNOWN_BLOB_HOSTS.items() if host_matches(p, registry) for h in hosts]
        known_tokens = [
            h for p, hosts in KNOWN_TOKEN_HOSTS.items() if host_matches(p, registry) for h in hosts
        ]
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)
        return cls(
            registry=registry,
            redirect_hosts=(*redirect_hosts, *known_blobs),
            token_hosts=(*token_hosts, *known_tokens),
            trusted_hosts=tuple(trusted_hosts),
            allowed_networks=networks,
            resolver=resolver or _default_resolver,
        )

    @property
    def registry_hostname(self) -> str:
        return _hostname(self.registry).lower()

    def is_registry(self, hostname: str) -> bool:
        return hostname.lower().rstrip(".") == self.registry_hostname

    # -- host names (before anything is sent) ----------------------------------------------

    def check_target(self, url: str, purpose: str, *, allowed: Sequence[str], config_key: str) -> None:
        """Refuse ``url`` (a redirect, realm or upload location) unless its host is the registry's
        or allowed; raise RefusedTargetError naming the rule."""
        parsed = urlparse(url)
        hostname = (parsed.hostname or "").lower().rstrip(".")
        if parsed.scheme not in ("http", "https") or not hostname:
            raise RefusedTargetError(
                f"registry {self.registry}: refused {purpose} {url!r}: expected an http(s) URL with a host"
            )
        netloc = parsed.netloc.rsplit("@", 1)[-1].lower()
        if "@" in parsed.netloc:
            raise RefusedTargetError(
                f"registry {self.registry}: refused {purpose} {url!r}: a URL with credentials in it"
            )
        self.check_name(hostname, f"{purpose} {url!r}")
        if self.is_registry(hostname):
            return
        candidates = (*allowed, *self.trusted_hosts)
        if not any(host_matches(p, netloc) or host_matches(p, hostname) for p in candidates):
            raise RefusedTargetError(
                f"registry {self.registry}: refused {purpose} to {hostname}: only the registry's own "
                f"host, hosts a trust rule names, and {config_key} may be connected to "
                f"(allowed here: {sorted(set(candidates)) or 'none'})"
            )
        literal = _literal(hostname)
        if literal is not None:
            self.check_address(hostname, literal)

    def check_redirect(self, url: str, purpose: str = "redirect") -> None:
        self.check_target(url, purpose, allowed=self.redirect_hosts, config_key="registry.redirect_hosts")

    def check_realm(self, url: str) -> None:
        self.check_target(url, "token realm", allowed=self.token_hosts, config_key="registry.token_hosts")

    def check_name(self, hostname: str, what: str) -> None:
        if hostname.lower().rstrip(".") in METADATA_NAMES:
            raise RefusedTargetError(
                f"registry {self.registry}: refused {what}: {hostname} is a cloud metadata service"
            )

    def check_registry(self) -> None:
        """The registry's own name: never a cloud metadata name or address, nor link-local
        (checked before any connection, a proxy or not)."""
        hostname = self.registry_hostname
        self.check_name(hostname, f"registry host {hostname}")
        literal = _literal(hostname)
        if literal is not None:
            self.check_address(hostname, literal)

    # -- addresses (at connect time) ---------------------------------------------------------

    def _allowed_by_config(self, address: IPAddress) -> bool:
        return any(
            address in network for network in self.allowed_networks if network.version == address.version
        )

    def registry_classes(self) -> set[str | None]:
        if self._registry_classes is None:
            hostname = self.registry_hostname
            literal = _literal(hostname)
            if literal is not None:
                self._registry_classes = {address_class(literal)}
            elif hostname == "localhost":
                self._registry_classes = {"loopback"}
            else:
                try:
                    infos = self.resolver(hostname, 443)
                except OSError:
                    infos = []
                self._registry_classes = {address_class(_literal(str(i[4][0])) or _UNKNOWN) for i in infos}
        return self._registry_classes

    def check_address(self, hostname: str, address: IPAddress) -> None:
        """Raise RefusedTargetError when guard must not connect to ``address`` for ``hostname``."""
        kind = address_class(address)
        if kind is None or self._allowed_by_config(address):
            return
        own = self.is_registry(hostname)
        if kind in ("cloud metadata", "link-local", "unspecified, multicast or reserved"):
            refused = True
        elif own:
            refused = False  # the registry the user (or a trust rule) named: loopback and private allowed
        else:
            refused = kind not in self.registry_classes()
        if refused:
            whose = "the registry" if own else f"{hostname}, which the registry pointed guard to,"
            raise RefusedTargetError(
                f"registry {self.registry}: refused to connect: {whose} resolves to {address}, a {kind} "
                "address; guard connects to cloud metadata and link-local addresses never, and to "
                "loopback or private addresses of another host only when the registry is on one "
                "(registry.allowed_networks lists networks to allow)"
            )

    def addresses(self, hostname: str, port: int) -> list[tuple[Any, ...]]:
        """Resolve ``hostname`` and return the address infos guard may connect to."""
        self.check_name(hostname, f"connection to {hostname}")
        literal = _literal(hostname)
        if literal is not None:
            self.check_address(hostname, literal)
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            sockaddr: tuple[Any, ...] = (
                (str(literal), port) if family == socket.AF_INET else (str(literal), port, 0, 0)
            )
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]
        try:
            infos = list(self.resolver(hostname, port))
        except OSError as err:
            raise RegistryError(
                f"cannot connect to registry {self.registry}: cannot resolve {hostname}: {err}"
            ) from err
        allowed, refusal = [], None
        for info in infos:
            address = _literal(str(info[4][0]))
            if address is None:
                continue
            try:
                self.check_address(hostname, address)
            except RefusedTargetError as err:
                refusal = err
                continue
            allowed.append(info)
        if not allowed:
            if refusal is not None:
                raise refusal
            raise RegistryError(f"cannot connect to registry {self.registry}: {hostname} has no address")
        return allowed


_UNKNOWN = ipaddress.ip_address("0.0.0.0")  # noqa: S104 - a placeholder class, never connected to


# --- the connection classes --------------------------------------------------------------------


class _GuardedConnection(HTTPConnection):
    """An urllib3 connection that resolves and checks addresses itself, and belongs to the
    current operation while it is used (so the watchdog can shut it down)."""

    _guard_handle: socket.socket | None = None
    _guard_lock: threading.Lock

    def _new_conn(self) -> socket.socket:
        operation = current_operation()
        if operation is None:
            raise RegistryError("internal error: a registry connection outside of an operation")
        policy = operation.policy
        self._guard_lock = threading.Lock()
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
        lock = getattr(self, "_guard_lock", None)
        if lock is not None:
            with lock:
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
    except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as err:
        if operation is not None and (operation.expired or operation.remaining() <= 0):
            operation.expired = True
            raise operation.error() from err
        host = operation.host if operation is not None else urlparse(response.url).netloc
        raise RegistryError(f"registry {host}: reading the answer to {response.url} failed: {err}") from err
    finally:
        if response.guard_owner and operation is not None and operation.done is False:
            # the whole body was read (or reading stopped): the operation is over
            operation.finish()


def hand_over(response: requests.Response, operation: Operation) -> None:
    """A streamed answer leaves ``request``: its operation ends when the body is read or the
    response closed; connections of earlier exchanges are released now."""
    raw_connection = getattr(response.raw, "connection", None)
    operation.release(keep=raw_connection)
    if isinstance(response, GuardedResponse):
        response.guard_owner = True


class GuardAdapter(HTTPAdapter):
    """requests' adapter with guard's connection classes (direct and through a proxy)."""

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
