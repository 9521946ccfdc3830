"""Accepted connections get TCP_NODELAY: without it, a response written in two parts (headers,
body) waits ~40 ms for the client's delayed ACK (Nagle), on every admission request."""

from __future__ import annotations

import asyncio
import socket

from webhook.server import _TcpConfig, tcp_socket


async def _nodelay_of_accepted(listener: socket.socket) -> int:
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=listener)
    host, port = listener.getsockname()[:2]
    _, writer = await asyncio.open_connection(host, port)
    value = await asyncio.wait_for(seen, 10)
    writer.close()
    server.close()
    await server.wait_closed()
    return value


async def test_a_proto_0_listener_leaves_nagle_on_and_tcp_socket_fixes_it() -> None:
    plain = socket.socket()  # proto 0, as uvicorn's bind_socket makes it
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    assert await _nodelay_of_accepted(plain) == 0
    fixed = socket.socket()
    fixed.bind(("127.0.0.1", 0))
    fixed.listen()
    assert await _nodelay_of_accepted(tcp_socket(fixed)) != 0


async def test_the_workers_config_binds_a_tcp_socket() -> None:
    config = _TcpConfig("webhook.server:app_from_environment", host="127.0.0.1", port=0, factory=True)
    listener = config.bind_socket()
    try:
        assert listener.proto == socket.IPPROTO_TCP
        assert await _nodelay_of_accepted(listener) != 0
    finally:
        listener.close()
