"""The remote-registry ``Store``: OCI distribution API over HTTPS (or loopback HTTP).

Credentials and the token flow come from oras-py: its auth backend reads docker ``config.json``
(``auths``, ``credHelpers``, ``credsStore``), encodes basic auth and runs the bearer-token
exchange on the shared ``requests`` session. The request loop, uploads, manifests, indexes and
referrers are ours: oras-py cannot push an index nor choose a Content-Type, reads a whole blob
into memory for a monolithic upload, and retries every failure with multi-second sleeps.

TLS is always verified: ``ca_file`` (``--ca-file``) is passed explicitly to every request so that
``REQUESTS_CA_BUNDLE`` cannot replace it. Plain HTTP is used only for a loopback registry that does
not speak TLS, or with ``insecure=True`` (logged as a warning). Credentials are never logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlencode, urljoin, urlparse, urlunparse

import oras.auth
import oras.auth.utils as auth_utils
import oras.container
import requests

from guard.errors import IntegrityError, NotFoundError, RegistryAuthError, RegistryError
from guard.oci.types import (
    MANIFEST_MEDIA_TYPES,
    Descriptor,
    FetchedManifest,
    Opener,
    ProgressCallback,
    check_digest,
    sha256_digest,
)

log = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024 * 1024  # bytes per PATCH; streamed from disk, never held in memory
READ_SIZE = 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_RETRIES = 4
_BACKOFF = 0.05
_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


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


class _Window:
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


class RegistryClient:
    """The HTTP layer for one registry host: scheme choice, auth challenges, error mapping.
    Thread-safe: the auth state is guarded by a lock; requests' Session is shared."""

    def __init__(self, host: str, access: RegistryAccess, *, loopback: bool) -> None:
        self.host = host
        self.access = access
        self._loopback = loopback
        self._verify: str | bool = str(access.ca_file) if access.ca_file else True
        if access.ca_file is not None and not access.ca_file.is_file():
            raise RegistryError(f"--ca-file {access.ca_file} does not exist")
        # oras' auth backend on our session (not oras.provider.Registry: importing it pulls in
        # jsonschema's format checkers, seconds of start-up for nothing we use).
        self.session = requests.Session()
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


def _with_query(url: str, **params: str) -> str:
    parts = urlparse(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunparse(parts._replace(query=urlencode(query)))


class RegistryStore:
    """A repository in a remote registry (implements ``guard.oci.types.Store``)."""

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client = client
        self.repository = repository
        self._referrers_api: bool | None = None

    @classmethod
    def open(cls, host: str, repository: str, access: RegistryAccess, *, loopback: bool) -> RegistryStore:
        return cls(RegistryClient(host, access, loopback=loopback), repository)

    def describe(self) -> str:
        return f"{self.client.host}/{self.repository}"

    def _path(self, kind: str, ref: str = "") -> str:
        return f"/v2/{self.repository}/{kind}/{ref}"

    # -- manifests ------------------------------------------------------------------------

    def resolve(self, reference: str) -> Descriptor:
        response = self.client.request(
            "HEAD",
            self._path("manifests", reference),
            headers={"Accept": _ACCEPT},
            what=f"{self.describe()}:{reference}",
        )
        digest = response.headers.get("Docker-Content-Digest")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        size = int(response.headers.get("Content-Length", "0") or 0)
        if not digest:  # registries may omit it on HEAD: fall back to the body
            return self.fetch_manifest(reference).descriptor
        return Descriptor(media_type, check_digest(digest, "Docker-Content-Digest"), size)

    def fetch_manifest(self, reference: str) -> FetchedManifest:
        response = self.client.request(
            "GET",
            self._path("manifests", reference),
            headers={"Accept": _ACCEPT},
            stream=True,
            what=f"{self.describe()}:{reference}",
        )
        with contextlib.closing(response):
            body = b""
            for chunk in response.iter_content(READ_SIZE):
                body += chunk
                if len(body) > MAX_MANIFEST_BYTES:
                    raise RegistryError(
                        f"manifest {reference} is larger than {MAX_MANIFEST_BYTES} bytes: refused"
                    )
        digest = sha256_digest(body)
        if reference.startswith("sha256:") and digest != reference:
            raise IntegrityError(
                f"manifest {self.describe()}@{reference}: the registry served bytes whose digest is {digest}",
                changed=[reference],
            )
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise IntegrityError(
                f"manifest {self.describe()}:{reference}: the registry says {claimed}, "
                f"its bytes hash to {digest}",
                changed=[reference],
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            declared = json.loads(body).get("mediaType")
        except (ValueError, AttributeError):
            declared = None
        return FetchedManifest(Descriptor(declared or media_type, digest, len(body)), body)

    def push_manifest(self, body: bytes, media_type: str, tag: str | None = None) -> Descriptor:
        descriptor, _ = self._put_manifest(body, media_type, tag)
        return descriptor

    def _put_manifest(self, body: bytes, media_type: str, tag: str | None) -> tuple[Descriptor, bool]:
        digest = sha256_digest(body)
        response = self.client.request(
            "PUT",
            self._path("manifests", tag or digest),
            headers={"Content-Type": media_type},
            data=body,
            ok=(200, 201),
            what=f"manifest {self.describe()}:{tag or digest}",
        )
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise RegistryError(f"registry stored manifest as {claimed}, expected {digest}")
        return Descriptor(media_type, digest, len(body)), bool(response.headers.get("OCI-Subject"))

    def push_referrer(self, body: bytes, media_type: str) -> tuple[Descriptor, bool]:
        return self._put_manifest(body, media_type, None)

    def referrers(self, digest: str) -> list[Descriptor] | None:
        if self._referrers_api is False:
            return None
        try:
            response = self.client.request(
                "GET",
                self._path("referrers", digest),
                headers={"Accept": "application/vnd.oci.image.index.v1+json"},
                what=f"referrers of {digest}",
            )
        except NotFoundError:
            self._referrers_api = False
            return None
        self._referrers_api = True
        try:
            index = response.json()
        except ValueError as err:
            raise RegistryError(f"referrers of {digest}: not JSON: {err}") from err
        manifests = index.get("manifests", []) if isinstance(index, dict) else []
        return [Descriptor.from_json(m, f"referrers[{i}]") for i, m in enumerate(manifests or [])]

    # -- blobs ----------------------------------------------------------------------------

    def blob_exists(self, digest: str) -> bool:
        try:
            self.client.request("HEAD", self._path("blobs", digest), what=f"blob {digest}")
        except NotFoundError:
            return False
        return True

    def push_blob(
        self, digest: str, size: int, opener: Opener, progress: ProgressCallback | None = None
    ) -> None:
        check_digest(digest)
        start = self.client.request(
            "POST",
            self._path("blobs", "uploads/"),
            headers={"Content-Length": "0"},
            ok=(202,),
            what=f"upload of {digest}",
        )
        session_url = self.client.location(start)
        with opener() as fh:
            offset = 0
            while size - offset > CHUNK_SIZE:
                window = _Window(fh, CHUNK_SIZE, progress)
                response = self.client.request(
                    "PATCH",
                    session_url,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + CHUNK_SIZE - 1}",
                        "Content-Length": str(CHUNK_SIZE),
                    },
                    data=window,
                    ok=(202,),
                    what=f"upload of {digest}",
                )
                offset += CHUNK_SIZE
                session_url = self.client.location(response)
            last = size - offset
            self.client.request(
                "PUT",
                _with_query(session_url, digest=digest),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(last)},
                data=_Window(fh, last, progress),
                ok=(201,),
                what=f"upload of {digest}",
            )

    @contextlib.contextmanager
    def fetch_blob(self, digest: str) -> Iterator[Iterator[bytes]]:
        check_digest(digest)
        response = self.client.request(
            "GET", self._path("blobs", digest), stream=True, what=f"blob {self.describe()}@{digest}"
        )
        with contextlib.closing(response):
            yield response.iter_content(READ_SIZE)
