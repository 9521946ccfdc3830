"""The HTTP layer to one registry host: scheme choice, authentication, retries, error mapping.

Credentials and the token flow come from oras-py: its auth backend reads docker ``config.json``
(``auths``, ``credHelpers``, ``credsStore``), encodes basic auth and runs the bearer-token
exchange on our ``requests`` session. The request loop is ours: oras-py's retries every failure
with multi-second sleeps and cannot stream a bounded upload.

TLS is always verified: ``ca_file`` (``--ca-file``) is passed explicitly to every request so that
``REQUESTS_CA_BUNDLE`` cannot replace it. The session never reads the environment per request
(``trust_env`` off: no per-request proxy lookup, ~0.1 ms each, and no ``~/.netrc``): proxies
(``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) are read once when the client is
made and resolved once per host, and without ``--ca-file`` the ``REQUESTS_CA_BUNDLE`` /
``CURL_CA_BUNDLE`` requests would honour is read once too. Plain HTTP is used only for a loopback
registry that does not speak TLS, or with ``insecure=True`` (logged as a warning). Credentials are
never logged.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlparse

import oras.auth
import oras.container
import requests
from requests.utils import address_in_network, is_ipv4_address, is_valid_cidr

from guard.errors import (
    ConfigError,
    DeadlineExceeded,
    GuardError,
    NotFoundError,
    RefusedTargetError,
    RegistryAnswerError,
    RegistryAuthError,
    RegistryError,
    RegistryTlsError,
)
from guard.memo import keep
from guard.oci.answers import MAX_RESPONSE_BYTES, MAX_TOKEN_BYTES, oci_error, parse_challenge, read_capped
from guard.oci.reference import DOCKER_HUB_ENDPOINT
from guard.oci.targets import TargetPolicy
from guard.oci.transport import GuardAdapter, Operation, hand_over, shared_context
from guard.oci.types import Opener, ProgressCallback
from guard.textfile import read_user_text

log = logging.getLogger(__name__)

_RETRIES = 4
_PROXY_HOSTS_KEPT = 256  # (scheme, host) pairs whose proxy a session remembers
_BACKOFF = 0.05
DEFAULT_DEADLINE_S = 120.0
DEFAULT_MIN_BYTES_PER_SECOND = 64 * 1024.0
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
PRECONNECT_BYTES = 64 * 1024  # of a pre-connect's GET /v2/ answer (distribution's: 2 bytes)


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach and authenticate to a registry. ``password`` is never logged nor written."""

    ca_file: Path | None = None
    insecure: bool = False
    username: str | None = None
    password: str | None = None
    docker_config: Path | None = None
    timeout: float = 60.0  # one connect or one read
    # the total deadline of one registry operation (connect, auth, redirects, retries, all reads);
    # a streamed blob earns 1/min_bytes_per_second more per byte received
    deadline: float = DEFAULT_DEADLINE_S
    min_bytes_per_second: float | None = DEFAULT_MIN_BYTES_PER_SECOND  # None: no extra time
    redirect_hosts: tuple[str, ...] = ()  # blob-storage hosts redirects may go to (globs)
    token_hosts: tuple[str, ...] = ()  # token servers a bearer realm may name besides the registry
    trusted_hosts: tuple[str, ...] = ()  # registries the trust rules name (both of the above)
    allowed_networks: tuple[str, ...] = ()  # CIDRs allowed although private / link-local
    mirrors: tuple[tuple[str, str], ...] = ()  # (host, directory): read from OCI layouts there

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return (
            f"RegistryAccess(ca_file={self.ca_file!r}, insecure={self.insecure}, "
            f"username={self.username!r}, password={'***' if self.password else None}, "
            f"docker_config={self.docker_config!r}, deadline={self.deadline!r})"
        )


def _docker_auth_config(explicit: Path | None) -> dict[str, Any] | None:
    """The docker ``config.json`` guard reads credentials from, checked, in the shape oras-py's
    auth backend reads (``auths``, ``credsStore``, ``credHelpers``): ``explicit`` (which must
    exist), else ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json`` when there is one;
    None without either. This file alone: oras-py's own loader adds the default file to the one
    given and merges them in an order that changes from one process to the next, so a
    ``--docker-config`` did not reliably win."""
    if explicit is not None:
        if not explicit.is_file():
            # a ConfigError, not an auth failure: no fail-open rule covers a mistake in the setup
            raise ConfigError(
                f"docker config {explicit}: expected a docker config.json file, found {_what_is(explicit)}"
            )
        path = explicit
    else:
        base = os.environ.get("DOCKER_CONFIG")
        path = Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"
        if not path.is_file():
            return None
    where = f"docker config {path}"
    shape = "a docker config.json (a JSON object)"
    text = read_user_text(path, what="docker config", expected=shape, error=ConfigError)
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ConfigError(f"{where}: expected {shape}, found no JSON ({err})") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected {shape}, found {type(doc).__name__}")
    auths = doc.get("auths") or {}
    if not isinstance(auths, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("auth", ""), str) for entry in auths.values()
    ):
        raise ConfigError(f'{where}: auths: expected an object of registry -> {{"auth": "<base64>"}}')
    helpers = doc.get("credHelpers") or {}
    if not isinstance(helpers, dict) or not all(isinstance(name, str) for name in helpers.values()):
        raise ConfigError(f"{where}: credHelpers: expected an object of registry -> helper name")
    store = doc.get("credsStore") or None
    if store is not None and not isinstance(store, str):
        raise ConfigError(f"{where}: credsStore: expected a helper name, found {type(store).__name__}")
    return {"auths": dict(auths), "credsStore": store, "credHelpers": dict(helpers)}


class FileWindow:
    """A file-like view of ``length`` bytes of an open file from its current offset (bounded
    memory: requests streams it in blocks, reporting progress)."""

    def __init__(self, fh: BinaryIO, length: int, progress: ProgressCallback | None) -> None:
        self._fh = fh
        self._left = length
        self._length = length
        self._progress = progress

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._fh.read(want)
        self._left -= len(data)
        if self._progress is not None and data:
            self._progress(len(data))
        return data


def _bypasses(host: str, port: int | None, no_proxy: str) -> bool:
    """``NO_PROXY`` as requests reads it: host suffixes (with or without port), IPv4 CIDRs, ``*``."""
    entries = [e for e in no_proxy.replace(" ", "").split(",") if e]
    if "*" in entries:
        return True
    if is_ipv4_address(host):
        return any(address_in_network(host, e) if is_valid_cidr(e) else host == e for e in entries)
    with_port = f"{host}:{port}" if port else host
    return any(host.endswith(e) or with_port.endswith(e) for e in entries)


def _certificate_problem(err: requests.exceptions.SSLError) -> bool:
    """The TLS failure is the registry's certificate not verifying (not: no TLS spoken)."""
    verify_failed = isinstance(err.__context__, ssl.SSLCertVerificationError)
    return verify_failed or "CERTIFICATE_VERIFY_FAILED" in str(err)


def _tls_hint(err: requests.exceptions.SSLError) -> str:
    """What to do about a failed TLS first contact with a registry."""
    if _certificate_problem(err):
        return ". Trust the registry's CA with --ca-file"
    return ". Trust the registry's CA with --ca-file, or use --insecure for a plain-HTTP registry"


def _what_is(path: Path) -> str:
    if path.is_dir():
        return "a directory"
    return "no file there" if not path.exists() else "something that is not a regular file"


def _ca_bundle(access: RegistryAccess) -> str | bool:
    """What requests verifies the registry's TLS with: ``ca_file`` (a PEM file), else the CA
    bundle variables requests honours (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``: a file or a
    directory of CAs), else True (requests' default bundle). A bundle named that is not there is
    a ConfigError: without it nothing verifies, and the requests that fail are no registry's
    outage (a fail-open rule does not cover them)."""
    if access.ca_file is not None:
        if not access.ca_file.is_file():
            raise ConfigError(
                f"CA bundle {access.ca_file}: expected a PEM file of the CAs to trust, found "
                f"{_what_is(access.ca_file)}"
            )
        return str(access.ca_file)
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        named = os.environ.get(variable)
        if named:
            if not os.path.exists(named):
                raise ConfigError(
                    f"{variable}={named}: expected a PEM file (or a directory) of the CAs to trust, "
                    "found no file there"
                )
            return named
    return True


def warm_up(access: RegistryAccess) -> ssl.SSLContext | None:
    """Check the files ``access`` names (its CA bundle, its docker config) and load the CA bundle
    it verifies with (``ca_file``, else the bundle variables) now, at start-up, so that a mistake
    fails the start-up and the first registry request of the process does not pay for parsing
    the bundle. None when there is no bundle file (requests' own default context)."""
    _docker_auth_config(access.docker_config)
    return shared_context(_ca_bundle(access))


def warm_up_started(access: RegistryAccess) -> Callable[[], GuardError | None]:
    """``warm_up(access)`` on a thread of its own: OpenSSL parses a CA bundle without holding the
    GIL, so the caller's own start-up work runs meanwhile on the other core. The function returned
    waits for it and returns its error (a ConfigError for a bundle that holds no certificate),
    None when the bundle loaded or there is none."""
    failed: list[GuardError] = []

    def load() -> None:
        try:
            warm_up(access)
        except GuardError as err:
            failed.append(err)

    thread = threading.Thread(target=load, name="guard-ca-bundle", daemon=True)
    thread.start()

    def wait() -> GuardError | None:
        thread.join()
        return failed[0] if failed else None

    return wait


class ProxySession(requests.Session):
    """A requests Session that reads the environment once, not on every request.

    ``trust_env`` is off, so requests consults neither proxy variables, nor ``~/.netrc``, nor
    ``REQUESTS_CA_BUNDLE`` per request. The proxy variables as they were when the session was
    made are resolved once per (scheme, host) and passed as ``proxies=`` to each request that
    does not give its own (the registry's, and the token server's of an auth challenge).
    """

    def __init__(self, environment: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.trust_env = False
        # {"https": "http://proxy:3128", "no": "localhost,.internal", ...}, lower-cased schemes
        self.environment: dict[str, str] = dict(
            urllib.request.getproxies_environment() if environment is None else environment
        )
        self._resolved: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxies a request to ``url`` goes through (empty: direct)."""
        parsed = urlparse(url)
        key = (parsed.scheme, parsed.netloc)
        with self._lock:
            found = self._resolved.get(key)
        if found is not None:
            return dict(found)
        proxies = {k: v for k, v in self.environment.items() if k != "no"}
        host = parsed.hostname
        if host is None or _bypasses(host, parsed.port, self.environment.get("no", "")):
            proxies = {}
        with self._lock:  # bounded: a registry names the hosts it redirects to
            keep(self._resolved, key, proxies, _PROXY_HOSTS_KEPT)
        return dict(proxies)

    def get_redirect_target(self, resp: requests.Response) -> None:
        """None: requests never follows (nor parses) a Location itself; ``RegistryClient``
        follows redirects after checking them (requests parses it even with redirects off)."""
        return None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("proxies") is None:
            text = url.decode() if isinstance(url, bytes) else url
            kwargs["proxies"] = self.proxies_for(text)
        return super().request(method, url, *args, **kwargs)


def _netloc(url: str) -> tuple[str, int]:
    """(host, port) of a URL; ("", -1) for one that does not parse (never the registry's)."""
    try:
        parsed = urlparse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return (parsed.hostname or "").lower().rstrip("."), port
    except ValueError:
        return "", -1


_ADAPTERS: dict[tuple[str, RegistryAccess, bool], GuardAdapter] = {}
_ADAPTERS_LOCK = threading.Lock()
_MAX_ADAPTERS = 256  # distinct (registry host, access settings) pairs kept; the oldest is dropped


def _shared_adapter(host: str, access: RegistryAccess, loopback: bool) -> GuardAdapter:
    """The connection pools of one registry host, shared by every client of it with the same
    access settings (so the same target policy): a repository not seen before reuses the host's
    keep-alive connections instead of a new TCP connection and TLS handshake. Every connection
    was opened to an address that policy allowed; credentials are per request, never per
    connection, and each request still runs under its own client's operation and deadline."""
    key = (host, access, loopback)
    with _ADAPTERS_LOCK:
        adapter = _ADAPTERS.get(key)
        if adapter is None:
            if len(_ADAPTERS) >= _MAX_ADAPTERS:
                del _ADAPTERS[next(iter(_ADAPTERS))]
            adapter = _ADAPTERS[key] = GuardAdapter()
        return adapter


class RegistryClient:
    """The HTTP layer for one registry host: scheme choice, auth challenges, error mapping.
    Thread-safe: the auth state is guarded by a lock; requests' Session is shared.

    Every ``request`` is one operation under ``access.deadline`` (see ``guard.oci.transport``):
    connect, TLS, the auth challenge and token exchange, redirects, retries and every read of the
    body, streamed bodies included. Redirects, token realms and upload locations are checked by
    the client's ``TargetPolicy`` before anything is sent there; credentials are sent to the
    registry's own host and to an allowed token realm, never with a redirect to another host."""

    def __init__(self, host: str, access: RegistryAccess, *, loopback: bool) -> None:
        self.host = host
        self.access = access
        self._loopback = loopback
        # --ca-file is authoritative; without it, the CA bundle variables requests honours
        # (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE: a TLS-inspecting proxy's CA), read once here.
        self._verify: str | bool = _ca_bundle(access)
        if access.deadline <= 0 or (access.min_bytes_per_second or 1) <= 0:
            raise ConfigError(
                f"registry deadline and min_bytes_per_second must be positive, found "
                f"{access.deadline} and {access.min_bytes_per_second}"
            )
        try:
            self.policy = TargetPolicy.build(
                host,
                redirect_hosts=access.redirect_hosts,
                token_hosts=access.token_hosts,
                trusted_hosts=access.trusted_hosts,
                allowed_networks=access.allowed_networks,
            )
        except ValueError as err:
            raise ConfigError(f"registry allowed_networks: expected CIDRs such as 10.0.0.0/8: {err}") from err
        self.policy.check_registry()
        # oras' auth backend on our session (not oras.provider.Registry: importing it pulls in
        # jsonschema's format checkers, seconds of start-up for nothing we use). Only its
        # credential lookup is used; the token exchange is ours (bounded, realm checked).
        self.session = ProxySession()
        self._adapter = _shared_adapter(host, access, loopback)
        for prefix in ("https://", "http://"):
            self.session.mount(prefix, self._adapter)
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._auth = oras.auth.get_auth_backend("token", self.session, False, tls_verify=self._verify)
        self._lock = threading.Lock()
        self._scheme: str | None = None
        # Plain HTTP is possible only for a loopback registry or with --insecure: only then is
        # the scheme probed. Otherwise the first request is the first contact (verified TLS).
        self._may_use_http = loopback or access.insecure
        self._answered = False  # the host answered this client (its probe, or any request)
        self._authorization: str | None = None
        self._has_credentials = False
        auth = self._auth
        if access.username is not None:
            if access.password is None:
                raise RegistryAuthError("--username needs a password (--password-stdin)")
            auth.set_basic_auth(access.username, access.password)
            self._has_credentials = True
        else:
            docker_config = _docker_auth_config(access.docker_config)
            if docker_config is not None:
                # set before load_configs, which then reads no file itself (see _docker_auth_config)
                auth._auth_config = docker_config
                auth.load_configs(oras.container.Container("guard/probe", registry=host))
                if host == DOCKER_HUB_ENDPOINT and not getattr(auth, "_basic_auth", None):
                    # `docker login` files Docker Hub's credentials under its index URL
                    for alias in ("https://index.docker.io/v1/", "index.docker.io", "docker.io"):
                        if auth._load_auth(alias):
                            break
                self._has_credentials = bool(getattr(auth, "_basic_auth", None))

    # -- transport ------------------------------------------------------------------------

    def _timeouts(self, operation: Operation) -> tuple[float, float]:
        step = operation.timeout(self.access.timeout)
        return step, step

    def _first_contact(self) -> bool:
        """Nothing has answered from the host yet: neither this client's probe or requests, nor
        (over verified TLS) another client of the same host and access."""
        return not (self._answered or self._adapter.https_answered)

    def _failure(self, operation: Operation, err: Exception, what: str) -> GuardError:
        """The error for a failed exchange. The first contact with a host (the scheme probe, or
        the first request where there is no probe) says what to check: its CA, its address."""
        if operation.expired or operation.remaining() <= 0:
            operation.expired = True
            return operation.error()
        first = what == "probe" or self._first_contact()
        if isinstance(err, requests.exceptions.SSLError):
            text = f"TLS to {self.host} failed: {err}" + (_tls_hint(err) if first else "")
            return RegistryTlsError(text) if _certificate_problem(err) else RegistryError(text)
        if isinstance(err, requests.exceptions.ConnectionError) and first:
            return RegistryError(f"cannot connect to registry {self.host}: {err}")
        return RegistryError(f"registry {self.host}: {what} failed: {err}")

    def _scheme_for(self, operation: Operation) -> str:
        with self._lock:
            if self._scheme is None and (self._adapter.https_answered or not self._may_use_http):
                # HTTPS is the only scheme this client may use (its first request verifies the
                # TLS, as a probe would: one round trip less), or another client of this host
                # and access found the host speaking verified TLS
                self._scheme = "https"
            if self._scheme is not None:
                return self._scheme
        scheme = "https"
        try:
            probe = self.session.get(
                f"https://{self.host}/v2/",
                verify=self._verify,
                timeout=self._timeouts(operation),
                allow_redirects=False,
                stream=True,
            )
            probe.close()
            operation.release()
        except requests.exceptions.SSLError as err:
            if operation.expired:
                raise operation.error() from err
            if _certificate_problem(err):
                raise RegistryTlsError(f"TLS to {self.host} failed: {err}{_tls_hint(err)}") from err
            scheme = "http"  # something answered, not in TLS: this client may fall back
        except requests.exceptions.RequestException as err:
            raise self._failure(operation, err, "probe") from err
        self._answered = True
        if scheme == "http":
            if self.access.insecure and not self._loopback:
                log.warning("using plain HTTP to %s (--insecure): traffic is not protected", self.host)
            else:
                log.info("registry %s is loopback and speaks plain HTTP", self.host)
        with self._lock:
            self._scheme = scheme
        if scheme == "https":
            self._adapter.https_answered = True
        return scheme

    def preconnect(self) -> int:
        """Connect to the host now (DNS, TCP, verified TLS) and leave the connection in the
        host's pool, shared by every client of the same host and access: what ``guard serve``
        does, after it says ready, for the hosts its trust rules name, so that the first
        admission there does not pay the handshake. One ``GET /v2/`` without credentials (the
        version check every client may send; its answer, 200 or 401, says nothing here and is
        read, at most ``PRECONNECT_BYTES``, only to free the connection), under this client's
        deadline and target policy like any request: an address the policy refuses is never
        connected to. Returns the status code; raises the RegistryError kinds ``request`` does."""
        operation = self.operation("GET /v2/ (pre-connect)")
        try:
            with operation.active():
                response = self._follow("GET", self._url("/v2/", operation), None, None, operation)
                read_capped(response, PRECONNECT_BYTES)
                return response.status_code
        finally:
            operation.finish()

    def url(self, path: str) -> str:
        operation = self.operation(f"GET {path}")
        try:
            with operation.active():
                return self._url(path, operation)
        finally:
            operation.finish()

    def _url(self, path: str, operation: Operation) -> str:
        return f"{self._scheme_for(operation)}://{self.host}{path}"

    def operation(self, what: str, *, body: Any = None, stream: bool = False) -> Operation:
        """One operation of this client under its total deadline (an upload body adds its size
        at ``min_bytes_per_second``; a streamed answer earns time as its bytes arrive)."""
        rate = self.access.min_bytes_per_second
        size = len(body) if body is not None and hasattr(body, "__len__") and rate else 0
        seconds = self.access.deadline + (size / rate if rate else 0.0)
        per_byte = 1.0 / rate if stream and rate else 0.0
        return Operation(self.host, what, seconds, extend_per_byte=per_byte, policy=self.policy)

    def _own_host(self, url: str) -> bool:
        return _netloc(url) == _netloc(f"https://{self.host}") or _netloc(url) == _netloc(
            f"http://{self.host}"
        )

    def _authenticate(self, response: requests.Response, operation: Operation) -> None:
        """Answer a 401 challenge: basic credentials, or a bearer token from the realm."""
        scheme, params = parse_challenge(response.headers.get("Www-Authenticate", ""))
        basic = getattr(self._auth, "_basic_auth", None)
        if scheme == "basic":
            if not basic:
                raise RegistryAuthError(
                    f"registry {self.host} requires credentials and none were found: run "
                    "`docker login`, or pass --username with --password-stdin"
                )
            with self._lock:
                self._authorization = f"Basic {basic}"
            return
        if scheme == "bearer":
            token = self._bearer_token(params, basic, operation)
            with self._lock:
                self._authorization = f"Bearer {token}"
            return
        raise RegistryAuthError(f"registry {self.host} answered 401 with an unsupported challenge {scheme!r}")

    def _bearer_token(self, params: dict[str, str], basic: str | None, operation: Operation) -> str:
        """The token exchange, with the realm checked like a redirect (the registry names it)."""
        realm = params.get("realm", "")
        if not realm:
            raise RegistryAuthError(f"registry {self.host} sent a bearer challenge without a realm")
        self.policy.check_realm(realm)
        if urlparse(realm).scheme == "http" and not realm.startswith(f"http://{self.host}/"):
            registry_scheme = self._scheme or "https"
            if registry_scheme == "https" or not (self._loopback or self.access.insecure):
                raise RefusedTargetError(
                    f"registry {self.host}: refused token realm {realm!r}: plain HTTP would expose "
                    "the credentials and the token (only a plain-HTTP registry may name one)"
                )
        query = {k: params[k] for k in ("service", "scope") if params.get(k)}
        headers = {"Accept": "application/json"}
        if basic:
            headers["Authorization"] = f"Basic {basic}"
        try:
            answer = self.session.get(
                realm,
                params=query,
                headers=headers,
                verify=self._verify,
                timeout=self._timeouts(operation),
                allow_redirects=False,
                stream=True,
            )
            body = read_capped(answer, MAX_TOKEN_BYTES)
        except requests.exceptions.RequestException as err:
            raise self._failure(operation, err, f"token request to {urlparse(realm).hostname}") from err
        finally:
            operation.release()
        who = "the given credentials" if basic else "anonymous access"
        refused = RegistryAuthError(
            f"token server {realm} refused {who} for scope {params.get('scope') or '(none)'}"
        )
        if answer.status_code != 200:
            raise refused
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as err:
            raise RegistryAuthError(f"token server {realm} answered something that is not JSON") from err
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or len(token) > 65536 or not token.isprintable():
            raise refused
        return token

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        replay: Opener | None = None,
        stream: bool = False,
        ok: tuple[int, ...] = (200,),
        what: str = "",
        limit: int = MAX_RESPONSE_BYTES,
    ) -> requests.Response:
        """Send a request, answering one auth challenge; map failures to RegistryError kinds.
        ``replay`` reopens a streamed body if the first attempt was refused for auth. Idempotent
        requests (GET, HEAD) are retried a few times on 5xx answers and connection failures
        (distribution answers 500 to a read that races a write of the same tag).

        One operation under the total deadline; a ``stream`` response keeps it until the body
        is read or the response closed. Without ``stream`` the body is read here, at most
        ``limit`` bytes."""
        label = (
            f"{method} {what or (path_or_url if '://' not in path_or_url else urlparse(path_or_url).path)}"
        )
        operation = self.operation(label, body=data, stream=stream)
        handed_over = False
        try:
            with operation.active():
                if "://" in path_or_url:
                    url = path_or_url
                    if not self._own_host(url):  # an upload Location the registry chose
                        self.policy.check_redirect(url, "upload location")
                else:
                    url = self._url(path_or_url, operation)
                response = self._retrying(
                    method, url=url, headers=headers, data=data, replay=replay, operation=operation
                )
                response = self._check(response, method, url, ok, what)
                if stream:
                    hand_over(response, operation)
                    handed_over = True
                    return response
                read_capped(response, limit)
                operation.check()
                return response
        finally:
            if not handed_over:
                operation.finish()

    def _retrying(
        self,
        method: str,
        *,
        url: str,
        headers: Mapping[str, str] | None,
        data: Any,
        replay: Opener | None,
        operation: Operation,
    ) -> requests.Response:
        idempotent = method in ("GET", "HEAD")
        for retry in range(_RETRIES if idempotent else 1):
            try:
                response = self._send(
                    method, url, headers=headers, data=data, replay=replay, operation=operation
                )
            except (RegistryAuthError, RefusedTargetError, RegistryTlsError, DeadlineExceeded):
                raise  # the same again on a retry
            except RegistryError:
                # the first contact is not retried (a host that never answered, a certificate
                # that does not verify): as the scheme probe, it fails at once with its hint
                if retry + 1 >= _RETRIES or not idempotent or self._first_contact():
                    raise
                self._pause(retry, operation)
                continue
            if idempotent and response.status_code in (500, 502, 503, 504) and retry + 1 < _RETRIES:
                response.close()
                operation.release()
                self._pause(retry, operation)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _pause(retry: int, operation: Operation) -> None:
        time.sleep(max(0.0, min(_BACKOFF * 2**retry, operation.remaining())))
        operation.check()

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        data: Any,
        replay: Opener | None,
        operation: Operation,
    ) -> requests.Response:
        for attempt in (1, 2):
            response = self._follow(method, url, headers, data, operation)
            if response.status_code == 401 and attempt == 1 and self._own_host(response.url):
                response.close()
                operation.release()
                self._authenticate(response, operation)
                if replay is not None:
                    data = replay()
                elif data is not None and not isinstance(data, bytes):
                    raise RegistryAuthError(
                        f"registry {self.host} asked for credentials again in the middle of an upload; retry"
                    )
                continue
            break
        return response

    def _follow(
        self, method: str, url: str, headers: Mapping[str, str] | None, data: Any, operation: Operation
    ) -> requests.Response:
        """One exchange, following redirects itself: each target is checked before it is sent
        anything, and credentials go only to the registry's own host."""
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            if self._own_host(url):
                with self._lock:
                    if self._authorization:
                        sent["Authorization"] = self._authorization
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=sent,
                    data=data,
                    stream=True,
                    verify=self._verify,
                    timeout=self._timeouts(operation),
                    allow_redirects=False,
                )
            except requests.exceptions.RequestException as err:
                raise self._failure(operation, err, f"{method} {urlparse(url).path}") from err
            if not self._answered and self._own_host(url):
                self._answered = True
                if url.startswith("https://"):
                    self._adapter.https_answered = True
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            response.close()
            operation.release()
            try:
                target = urljoin(url, location)
            except ValueError as err:
                raise RefusedTargetError(
                    f"registry {self.host}: refused a redirect to {location[:200]!r}"
                ) from err
            if not self._own_host(target):
                self.policy.check_redirect(target)
            if urlparse(url).scheme == "https" and urlparse(target).scheme != "https":
                raise RefusedTargetError(f"registry {self.host}: refused a redirect from HTTPS to {target!r}")
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, data = "GET", None
            elif data is not None and not isinstance(data, bytes):
                raise RefusedTargetError(
                    f"registry {self.host}: refused a redirect of an upload body to {target!r}"
                )
            url = target
        raise RefusedTargetError(
            f"registry {self.host}: more than {MAX_REDIRECTS} redirects for {method} {url}"
        )

    def _check(
        self, response: requests.Response, method: str, url: str, ok: tuple[int, ...], what: str
    ) -> requests.Response:
        if response.status_code in ok:
            return response
        detail = oci_error(response)
        response.close()
        target = what or urlparse(url).path
        if response.status_code == 401:
            user = f" for user {self.access.username!r}" if self.access.username else ""
            raise RegistryAuthError(f"registry {self.host} refused the credentials{user}: {detail}")
        if response.status_code == 403:
            raise RegistryAuthError(f"registry {self.host} denied {method} {target}: {detail}")
        if response.status_code == 404:
            raise NotFoundError(f"{target} not found on {self.host}: {detail}")
        text = f"{method} {target} on {self.host} failed with HTTP {response.status_code}: {detail}"
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise RegistryAnswerError(text, status=response.status_code)
        raise RegistryError(text)  # the registry's own failure (5xx), or busy (408, 429)

    def location(self, response: requests.Response) -> str:
        loc = response.headers.get("Location", "")
        if not loc:
            raise RegistryError(f"registry {self.host} started an upload without a Location header")
        if len(loc) > 8192:
            raise RegistryError(f"registry {self.host} sent an upload Location longer than 8192 characters")
        try:
            return urljoin(response.url, loc)
        except ValueError as err:
            raise RegistryError(f"registry {self.host} sent an upload Location that is not a URL") from err
