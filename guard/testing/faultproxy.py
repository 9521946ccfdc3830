"""A TCP proxy on 127.0.0.1 that makes the registry behind it misbehave, for fault tests and benchmarks.

``FaultProxy(target)`` forwards connections to ``target`` (``host:port``; ``retarget`` moves it,
e.g. to a restarted registry). ``mode`` applies at once, to new and open connections alike:

- ``pass``: forward as is;
- ``stall``: accept, read, answer nothing (a registry that hangs);
- ``slow``: answer ``slow_bytes_per_second`` at most (a congested link);
- ``drip``: answer one byte every ``drip_interval`` seconds (each read succeeds, so a per-read
  timeout never fires: only a total deadline does).

A connection that dripped or stalled keeps doing so until it closes (``pass`` heals new
connections only), as a bad path to a registry does.

A stopped registry needs no mode: the upstream connection is refused and the client's is closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Literal

Mode = Literal["pass", "stall", "slow", "drip"]


class FaultProxy:
    def __init__(
        self, target: str, *, slow_bytes_per_second: int = 20_000, drip_interval: float = 0.5
    ) -> None:
        self.retarget(target)
        self.mode: Mode = "pass"
        self.slow_bytes_per_second = slow_bytes_per_second
        self.drip_interval = drip_interval
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self._listener.settimeout(0.2)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopped = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)

    def retarget(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def _track(self, sock: socket.socket, add: bool = True) -> None:
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._track(client)
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            self._close(client)
            return
        upstream.settimeout(None)
        self._track(upstream)
        threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
        self._pump(upstream, client, True)

    def _close(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.close()
        self._track(sock, add=False)

    def _send(self, dst: socket.socket, data: bytes, stuck: list[Mode]) -> None:
        """Send ``data`` to the client as the mode says (re-read between pieces). A connection
        that once dripped or stalled keeps doing so (``stuck``) until it closes, as a bad path
        to a registry does: the mode going back to ``pass`` heals new connections only."""
        view = memoryview(data)
        while view:
            if self._stopped.is_set():
                raise OSError("stopped")
            if not stuck and self.mode in ("drip", "stall"):
                stuck.append(self.mode)
            mode = stuck[0] if stuck else self.mode
            if mode == "stall":
                time.sleep(0.05)
                continue
            if mode == "drip":
                dst.sendall(view[:1])
                view = view[1:]
                time.sleep(self.drip_interval)
                continue
            if mode == "slow":
                piece = max(1, self.slow_bytes_per_second // 20)
                dst.sendall(view[:piece])
                view = view[piece:]
                time.sleep(0.05)
                continue
            dst.sendall(view)
            return

    def _pump(self, src: socket.socket, dst: socket.socket, to_client: bool) -> None:
        stuck: list[Mode] = []
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if to_client:
                    self._send(dst, data, stuck)
                else:
                    dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        self._close(src)

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)
        self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
