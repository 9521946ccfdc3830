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

import logging
import os
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlparse

import oras.auth
import oras.auth.utils as auth_utils
import oras.container
import requests
from requests.utils import address_in_network, is_ipv4_address, is_valid_cidr

from guard.errors import NotFoundError, RegistryAuthError, RegistryError
from guard.oci.types import Opener, ProgressCallback

log = logging.getLogger(__name__)

_RETRIES = 4
_BACKOFF = 0.05


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach and authenticate to a registry. ``password`` is never logged nor written."""

    ca_file: Path | None = None
    insecure: bool = False
    username: str | None = None
    password: str | None = None
    docker_config: Path | None = None
    timeout: float = 60.0

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return (
            f"RegistryAccess(ca_file={self.ca_file!r}, insecure={self.insecure}, "
            f"username={self.username!r}, password={'***' if self.password else None}, "
            f"docker_config={self.docker_config!r})"
        )


def _docker_configs(explicit: Path | None) -> list[str]:
    if explicit is not None:
        if not explicit.is_file():
            raise RegistryAuthError(f"docker config {explicit} does not exist")
        return [str(explicit)]
    base = os.environ.get("DOCKER_CONFIG")
    path = Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"
    return [str(path)] if path.is_file() else []


def _oci_error(response: requests.Response) -> str:
    try:
        body = response.json()
        errors = body.get("errors", []) if isinstance(body, dict) else []
        parts = [
            f"{e.get('code', '?')}: {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)
        ]
        if parts:
            return "; ".join(parts)
    except ValueError:
        pass
    text = response.text.strip() if response.content and len(response.content) < 500 else ""
    return text or response.reason or ""


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


def _environment_ca_bundle() -> str | bool:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


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
        with self._lock:
            self._resolved[key] = proxies
        return dict(proxies)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("proxies") is None:
            text = url.decode() if isinstance(url, bytes) else url
            kwargs["proxies"] = self.proxies_for(text)
        return super().request(method, url, *args, **kwargs)


class RegistryClient:
    """The HTTP layer for one registry host: scheme choice, auth challenges, error mapping.
    Thread-safe: the auth state is guarded by a lock; requests' Session is shared."""

    def __init__(self, host: str, access: RegistryAccess, *, loopback: bool) -> None:
        self.host = host
        self.access = access
        self._loopback = loopback
        # --ca-file is authoritative; without it, the CA bundle variables requests honours
        # (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE: a TLS-inspecting proxy's CA), read once here.
        self._verify: str | bool = str(access.ca_file) if access.ca_file else _environment_ca_bundle()
        if access.ca_file is not None and not access.ca_file.is_file():
            raise RegistryError(f"--ca-file {access.ca_file} does not exist")
        # oras' auth backend on our session (not oras.provider.Registry: importing it pulls in
        # jsonschema's format checkers, seconds of start-up for nothing we use).
        self.session = ProxySession()
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._auth = oras.auth.get_auth_backend("token", self.session, False, tls_verify=self._verify)
        self._lock = threading.Lock()
        self._scheme: str | None = None
        self._authorization: str | None = None
        self._has_credentials = False
        auth = self._auth
        if access.username is not None:
            if access.password is None:
                raise RegistryAuthError("--username needs a password (--password-stdin)")
            auth.set_basic_auth(access.username, access.password)
            self._has_credentials = True
        else:
            configs = _docker_configs(access.docker_config)
            if configs:
                container = oras.container.Container("guard/probe", registry=host)
                auth.load_configs(container, configs=configs)
                self._has_credentials = bool(getattr(auth, "_basic_auth", None))

    # -- transport ------------------------------------------------------------------------

    def _scheme_for(self) -> str:
        with self._lock:
            if self._scheme is not None:
                return self._scheme
        scheme = "https"
        try:
            self.session.get(f"https://{self.host}/v2/", verify=self._verify, timeout=self.access.timeout)
        except requests.exceptions.SSLError as err:
            cert_problem = "CERTIFICATE_VERIFY_FAILED" in str(err) or isinstance(
                err.__context__, ssl.SSLCertVerificationError
            )
            if cert_problem or not (self._loopback or self.access.insecure):
                raise RegistryError(
                    f"TLS to {self.host} failed: {err}. Trust the registry's CA with --ca-file"
                    + ("" if cert_problem else ", or use --insecure for a plain-HTTP registry")
                ) from err
            scheme = "http"
        except requests.exceptions.ConnectionError as err:
            raise RegistryError(f"cannot connect to registry {self.host}: {err}") from err
        if scheme == "http":
            if self.access.insecure and not self._loopback:
                log.warning("using plain HTTP to %s (--insecure): traffic is not protected", self.host)
            else:
                log.info("registry %s is loopback and speaks plain HTTP", self.host)
        with self._lock:
            self._scheme = scheme
        return scheme

    def url(self, path: str) -> str:
        return f"{self._scheme_for()}://{self.host}{path}"

    def _authenticate(self, response: requests.Response) -> None:
        """Answer a 401 challenge: basic credentials, or a bearer token from the realm."""
        challenge = response.headers.get("Www-Authenticate", "")
        auth = self._auth
        basic = getattr(auth, "_basic_auth", None)
        scheme = challenge.split(" ", 1)[0].lower()
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
            header = auth_utils.parse_auth_header(challenge)
            if not header.realm:
                raise RegistryAuthError(f"registry {self.host} sent a bearer challenge without a realm")
            token = auth.request_token(header) if basic else auth.request_anonymous_token(header)
            if not token:
                who = "the given credentials" if basic else "anonymous access"
                raise RegistryAuthError(
                    f"token server {header.realm} refused {who} for scope {header.scope or '(none)'}"
                )
            with self._lock:
                self._authorization = f"Bearer {token}"
            return
        raise RegistryAuthError(
            f"registry {self.host} answered 401 with an unsupported challenge {challenge!r}"
        )

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
    ) -> requests.Response:
        """Send a request, answering one auth challenge; map failures to RegistryError kinds.
        ``replay`` reopens a streamed body if the first attempt was refused for auth. Idempotent
        requests (GET, HEAD) are retried a few times on 5xx answers and connection failures
        (distribution answers 500 to a read that races a write of the same tag)."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        idempotent = method in ("GET", "HEAD")
        for retry in range(_RETRIES if idempotent else 1):
            try:
                response = self._send(method, url, headers=headers, data=data, replay=replay, stream=stream)
            except RegistryAuthError:
                raise
            except RegistryError:
                if retry + 1 >= _RETRIES or not idempotent:
                    raise
                time.sleep(_BACKOFF * 2**retry)
                continue
            if idempotent and response.status_code in (500, 502, 503, 504) and retry + 1 < _RETRIES:
                response.close()
                time.sleep(_BACKOFF * 2**retry)
                continue
            break
        return self._check(response, method, url, ok, what)

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        data: Any,
        replay: Opener | None,
        stream: bool,
    ) -> requests.Response:
        for attempt in (1, 2):
            sent = dict(headers or {})
            with self._lock:
                if self._authorization:
                    sent["Authorization"] = self._authorization
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=sent,
                    data=data,
                    stream=stream,
                    verify=self._verify,
                    timeout=self.access.timeout,
                    allow_redirects=True,
                )
            except requests.exceptions.SSLError as err:
                raise RegistryError(f"TLS to {self.host} failed: {err}") from err
            except requests.exceptions.RequestException as err:
                raise RegistryError(f"{method} {url} failed: {err}") from err
            if response.status_code == 401 and attempt == 1:
                response.close()
                self._authenticate(response)
                if replay is not None:
                    data = replay()
                elif data is not None and not isinstance(data, bytes):
                    raise RegistryAuthError(
                        f"registry {self.host} asked for credentials again in the middle of an upload; retry"
                    )
                continue
            break
        return response

    def _check(
        self, response: requests.Response, method: str, url: str, ok: tuple[int, ...], what: str
    ) -> requests.Response:
        if response.status_code in ok:
            return response
        detail = _oci_error(response)
        response.close()
        target = what or urlparse(url).path
        if response.status_code == 401:
            user = f" for user {self.access.username!r}" if self.access.username else ""
            raise RegistryAuthError(f"registry {self.host} refused the credentials{user}: {detail}")
        if response.status_code == 403:
            raise RegistryAuthError(f"registry {self.host} denied {method} {target}: {detail}")
        if response.status_code == 404:
            raise NotFoundError(f"{target} not found on {self.host}: {detail}")
        raise RegistryError(
            f"{method} {target} on {self.host} failed with HTTP {response.status_code}: {detail}"
        )

    def location(self, response: requests.Response) -> str:
        loc = response.headers.get("Location", "")
        if not loc:
            raise RegistryError(f"registry {self.host} started an upload without a Location header")
        return urljoin(response.url, loc)
