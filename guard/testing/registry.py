"""A real OCI registry for tests: Debian's ``docker-registry`` (CNCF distribution 2.8).

``RegistryServer.start(tmp_dir, auth=..., tls=...)`` writes a config, starts the binary on a free
loopback port, waits until ``/v2/`` answers and stops it by PID on ``stop()`` (or ``with``).
Variants: plain HTTP, htpasswd basic auth (``auth=("user", "password")``), the bearer-token
flow (``auth=(...)`` with ``token=True``: a small token server on another loopback port issues
ES256 JWTs the registry trusts), and TLS with a certificate from a throwaway CA (``tls=True``;
``ca_file`` is its PEM bundle).

Distribution 2.8 has no Referrers API, so clients must use the fallback tag scheme against it.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from guard.testing.processes import stop_process

# Debian's name for CNCF distribution, then upstream's; found on PATH (GUARD_REGISTRY_BINARY wins)
REGISTRY_NAMES = ("docker-registry", "registry")


def registry_binary() -> Path | None:
    """The registry executable: $GUARD_REGISTRY_BINARY, else the first of REGISTRY_NAMES on PATH."""
    explicit = os.environ.get("GUARD_REGISTRY_BINARY")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    for name in REGISTRY_NAMES:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    return None


HTPASSWD_BINARY = "htpasswd"
_START_TIMEOUT_S = 20.0


def registry_available(*, auth: bool = False) -> str | None:
    """None when a registry (with basic auth if asked) can be started here, else the reason."""
    if registry_binary() is None:
        return "docker-registry is not on PATH (apt-get install docker-registry)"
    if auth and shutil.which(HTPASSWD_BINARY) is None:
        return "htpasswd is not installed (apt-get install apache2-utils)"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd line (distribution accepts bcrypt only), made by apache2-utils."""
    exe = shutil.which(HTPASSWD_BINARY)
    if exe is None:
        raise RuntimeError("htpasswd (apache2-utils) is needed for a registry with basic auth")
    out = subprocess.run(  # noqa: S603 - fixed argv, test-only helper
        [exe, "-nbB", username, password], check=True, capture_output=True, text=True
    )
    return out.stdout.strip() + "\n"


@dataclass
class RegistryServer:
    """A running ``docker-registry``; ``host`` is ``127.0.0.1:<port>``."""

    root: Path
    host: str
    process: subprocess.Popen[bytes]
    tls: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    log_path: Path | None = None
    token_server: TokenServer | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @classmethod
    def start(
        cls,
        root: Path,
        *,
        auth: tuple[str, str] | None = None,
        tls: bool = False,
        token: bool = False,
    ) -> RegistryServer:
        reason = registry_available(auth=auth is not None and not token)
        if reason is not None:
            raise RuntimeError(reason)
        root.mkdir(parents=True, exist_ok=True)
        storage = root / "storage"
        storage.mkdir(exist_ok=True)
        port = _free_port()
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {storage}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{port}",
            "  secret: guard-test-secret",
        ]
        ca_file: Path | None = None
        if tls:
            import trustme  # noqa: PLC0415 - a test dependency, only for TLS

            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            ca_file = root / "ca.pem"
            ca.cert_pem.write_to_path(str(ca_file))
            cert_file, key_file = root / "server.pem", root / "server.key"
            cert.cert_chain_pems[0].write_to_path(str(cert_file))
            for extra in cert.cert_chain_pems[1:]:
                extra.write_to_path(str(cert_file), append=True)
            cert.private_key_pem.write_to_path(str(key_file))
            lines += ["  tls:", f"    certificate: {cert_file}", f"    key: {key_file}"]
        token_server: TokenServer | None = None
        if token:
            if auth is None:
                raise ValueError("token=True needs auth=(user, password) for the token server")
            token_server = TokenServer.start(root / "token", auth)
            lines += [
                "auth:",
                "  token:",
                f"    realm: {token_server.realm}",
                f"    service: {TokenServer.SERVICE}",
                f"    issuer: {TokenServer.ISSUER}",
                f"    rootcertbundle: {token_server.cert_file}",
            ]
        elif auth is not None:
            htpasswd = root / "htpasswd"
            htpasswd.write_text(_htpasswd_line(*auth), encoding="utf-8")
            lines += ["auth:", "  htpasswd:", "    realm: guard-test", f"    path: {htpasswd}"]
        config = root / "config.yml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        log_path = root / "registry.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed binary and generated config
                [str(registry_binary() or "docker-registry"), "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        server = cls(
            root=root,
            host=f"127.0.0.1:{port}",
            process=process,
            tls=tls,
            ca_file=ca_file,
            username=auth[0] if auth else None,
            password=auth[1] if auth else None,
            log_path=log_path,
            token_server=token_server,
        )
        atexit.register(server.stop)  # even if the caller never gets to stop it
        try:
            server._wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log_path.read_text(errors="replace") if self.log_path else ""
                raise RuntimeError(f"docker-registry exited with {self.process.returncode}: {log}")
            try:
                urllib.request.urlopen(f"{self.url}/v2/", timeout=2, context=context)  # noqa: S310
                return
            except urllib.error.HTTPError:
                return  # 401 from an auth-enabled registry: it is up
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer on {self.url} within {_START_TIMEOUT_S}s")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.token_server is not None:
            self.token_server.stop()
        stop_process(self.process)

    def blob_path(self, repository: str, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (for tests that tamper with storage)."""
        algorithm, hexdigest = digest.split(":", 1)
        return self.root / "storage/docker/registry/v2/blobs" / algorithm / hexdigest[:2] / hexdigest / "data"

    def __enter__(self) -> RegistryServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            self.stop()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A docker-registry token server (the bearer flow) on 127.0.0.1 for tests: ``GET /token``
    with basic auth gives an ES256 JWT granting the requested scope; without valid credentials
    it answers 401. The registry trusts the signing certificate (``rootcertbundle``)."""

    SERVICE = "guard-test-registry"
    ISSUER = "guard-test-token-issuer"

    def __init__(self, root: Path, auth: tuple[str, str]) -> None:
        from cryptography import x509  # noqa: PLC0415 - test-only
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.x509.oid import NameOID  # noqa: PLC0415

        root.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "guard test token issuer")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_file = root / "token-issuer.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
                authorized = self.headers.get("Authorization") == server.expected
                server.requests.append({**query, "authorized": str(authorized)})
                if not authorized:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": server.issue(query.get("scope", ""))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="token-server")

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    @classmethod
    def start(cls, root: Path, auth: tuple[str, str]) -> TokenServer:
        server = cls(root, auth)
        server.thread.start()
        return server

    def issue(self, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - test-only
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: PLC0415

        access = []
        for item in scope.split(" ") if scope else []:
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"alg": "ES256", "typ": "JWT", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {
            "iss": self.ISSUER,
            "sub": "guard",
            "aud": self.SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def push_test_image(store: Any, tag: str, content: bytes) -> str:
    """Push a small container image (an OCI config and one layer of ``content``) to ``store``
    (a ``guard.oci.types.Store``) under ``tag``; return its manifest digest."""
    from guard.oci.push import push_bytes  # noqa: PLC0415
    from guard.oci.types import OCI_MANIFEST  # noqa: PLC0415

    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": push_bytes(store, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": push_bytes(store, content),
                "size": len(content),
            }
        ],
    }
    digest: str = store.push_manifest(json.dumps(manifest).encode(), OCI_MANIFEST, tag).digest
    return digest
