"""Server TLS whose certificate and key are reloaded when they change on disk.

uvicorn is given one ``ssl.SSLContext`` for the life of the server (``ssl_context_factory``);
when the files change (a cert-manager renewal, a Secret volume's symlink swap), the new pair is
first loaded into a scratch context from a snapshot of both files, and only when it loads (the
key matches the certificate) into the live one, on the event loop's thread. New connections get
the new certificate; connections already open keep theirs; no request is dropped. A broken pair
is refused with an error log and the previous certificate stays in service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import ssl
import tempfile
from pathlib import Path

from guard.errors import ConfigError

log = logging.getLogger("webhook.tls")

_Stamp = tuple[tuple[int, int, int], tuple[int, int, int]]


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _new_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class ReloadingCertificate:
    """An SSLContext serving ``cert_file`` / ``key_file``, reloaded by ``reload_if_changed``."""

    def __init__(self, cert_file: Path, key_file: Path, *, poll_seconds: float = 2.0) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.poll_seconds = poll_seconds
        self.reloads = 0
        self.failures = 0
        self.context = _new_context()
        try:
            stamp = self._stamp()
            self._load(self.context)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(
                f"cannot serve TLS with certificate {cert_file} and key {key_file}: {err}; expected a "
                f"PEM certificate (chain) and the PEM private key that matches it"
            ) from err
        self._stamp_loaded: _Stamp = stamp
        self._stamp_failed: _Stamp | None = None

    def _stamp(self) -> _Stamp:
        return (_stat(self.cert_file), _stat(self.key_file))

    def _load(self, ctx: ssl.SSLContext) -> None:
        ctx.load_cert_chain(certfile=self.cert_file, keyfile=self.key_file)

    def reload_if_changed(self) -> bool:
        """Reload when either file changed; True when a new pair is now served."""
        try:
            stamp = self._stamp()
        except OSError as err:
            if self._stamp_failed is None:
                log.error("TLS files unreadable, keeping the current certificate: %s", err)
            self._stamp_failed = ((0, 0, 0), (0, 0, 0))
            return False
        if stamp in (self._stamp_loaded, self._stamp_failed):
            return False
        with tempfile.TemporaryDirectory(prefix="guard-tls-") as tmp:
            cert = Path(tmp, "tls.crt")
            key = Path(tmp, "tls.key")
            try:
                # A snapshot of both files, so the pair checked is the pair loaded.
                shutil.copyfile(self.cert_file, cert)
                shutil.copyfile(self.key_file, key)
                os.chmod(key, 0o600)
                _new_context().load_cert_chain(certfile=cert, keyfile=key)
            except (OSError, ssl.SSLError) as err:
                self._stamp_failed = stamp
                self.failures += 1
                log.error(
                    "new TLS certificate %s / key %s refused, keeping the current one: %s",
                    self.cert_file,
                    self.key_file,
                    err,
                )
                return False
            self.context.load_cert_chain(certfile=cert, keyfile=key)
        self._stamp_loaded = stamp
        self._stamp_failed = None
        self.reloads += 1
        log.info("reloaded the TLS certificate from %s", self.cert_file)
        return True

    async def watch(self) -> None:
        """Poll the files until cancelled (run as a task on the server's event loop)."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                self.reload_if_changed()
            except Exception:
                log.exception("checking the TLS files failed; will retry")


# --- one per process, for uvicorn's multi-process mode --------------------------------------

_PROCESS_CERTIFICATES: dict[tuple[str, str], ReloadingCertificate] = {}


def process_certificate(cert_file: Path, key_file: Path) -> ReloadingCertificate:
    """The process's reloading certificate for these files (made on first use, not at import)."""
    key = (str(cert_file), str(key_file))
    found = _PROCESS_CERTIFICATES.get(key)
    if found is None:
        found = _PROCESS_CERTIFICATES[key] = ReloadingCertificate(cert_file, key_file)
    return found
