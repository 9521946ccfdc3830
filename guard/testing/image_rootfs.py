"""Run a built container image's root filesystem as a container runtime would with guard's
chart securityContext: uid/gid 65532, the root read-only, only /tmp writable (a tmpfs), the
image's own ENTRYPOINT and Env; and ``guard serve`` in it over TLS. Needs root (mount namespaces,
chroot) and ``unshare``; used by tests/image (``make image-test``)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import trustme

from guard.testing.admission import admission_review, pod
from guard.testing.processes import stop_process_group

# Mount the image's root read-only with a tmpfs /tmp (files copied in, owned by 65532), /dev and
# /proc, then run the entrypoint as 65532:65532 with exactly the image's environment.
RUNNER = r"""
set -eu
root=$1; files=$2; shift 2
mount --bind "$root" "$root"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$root/tmp"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
if [ -n "$files" ]; then cp -r "$files"/. "$root/tmp/"; chown -R 65532:65532 "$root/tmp"; fi
mount -o remount,bind,ro "$root"
exec chroot --userspec=65532:65532 "$root" "$@"
"""


class Image:
    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.env = list(config.get("Env") or [])
        self.entrypoint = list(config.get("Entrypoint") or [])
        self.user = str(config.get("User", ""))
        self.labels = dict(config.get("Labels") or {})

    def command(self, *args: str, files: Path | None = None) -> list[str]:
        return [
            "unshare",
            "--mount",
            "--fork",
            "--",
            "sh",
            "-c",
            RUNNER,
            "runner",
            str(self.root),
            str(files or ""),
            "/usr/bin/env",
            "-i",
            *self.env,
            *self.entrypoint,
            *args,
        ]

    def run(
        self, *args: str, files: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = self.command(*args, files=files)
        process = subprocess.Popen(  # noqa: S603 (the image's own entrypoint, our arguments)
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            out, err = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:  # timed out (or interrupted): the group goes, not only unshare
                stop_process_group(process, grace=5)
        return subprocess.CompletedProcess(argv, process.returncode, out, err)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tls_files(files: Path) -> ssl.SSLContext:
    """A serving certificate for 127.0.0.1 in ``files`` (tls.crt, tls.key); a client context
    trusting it."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(files / "tls.key"))
    cert.cert_chain_pems[0].write_to_path(str(files / "tls.crt"))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@contextmanager
def serving(image: Image, files: Path) -> Iterator[httpx.Client]:
    """``guard serve --config /tmp/config.yaml`` in the image over TLS, once /readyz answers."""
    context = tls_files(files)
    port = _free_port()
    # /tmp inside the image: the tmpfs the runner fills with ``files``
    args = ["serve", "--config", "/tmp/config.yaml", "--tls-cert", "/tmp/tls.crt"]  # noqa: S108
    args += ["--tls-key", "/tmp/tls.key"]  # noqa: S108
    process = subprocess.Popen(  # noqa: S603 (the image's own entrypoint, our arguments)
        image.command(*args, "--host", "127.0.0.1", "--port", str(port), files=files),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: unshare's child is stopped with it
    )
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=30) as client:
            deadline = time.monotonic() + 90
            while True:
                assert process.poll() is None, process.communicate()[1].decode()
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "guard serve in the image did not become ready"
                time.sleep(0.2)
            yield client
    finally:
        stop_process_group(process, grace=20)
        left = _serving_on(port)
        assert not left, f"guard serve on port {port} still runs after it was stopped: pids {left}"


def _serving_on(port: int) -> list[int]:
    """The processes whose command line serves ``--port PORT``."""
    marker = f"\0--port\0{port}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:  # ended meanwhile
                continue
            if marker in cmdline and b"serve" in cmdline:
                found.append(int(entry.name))
    return found


def review(client: httpx.Client, *images: str) -> dict[str, Any]:
    answer = client.post("/validate", json=admission_review(pod(*images)))
    response: dict[str, Any] = answer.json()["response"]
    return response
