"""A server that accepts and resets at once: whenever the RST lands, Windows reports
FD_CONNECT(0), FD_WRITE(0), then FD_CLOSE(WSAECONNABORTED) -- never a failed connect."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct

import pytest

from wspasync import (
    AF_INET,
    FD_CLOSE,
    FD_CONNECT,
    FD_WRITE,
    SOCK_STREAM,
    WSAECONNABORTED,
    WSAECONNRESET,
    WSAEWOULDBLOCK,
    WSAGETSELECTERROR,
    WSAGETSELECTEVENT,
    Errno,
    WSABuf,
    Window,
    sockaddr_in,
)


@pytest.mark.parametrize("round_", range(5))
async def test_accept_then_reset_is_a_connect_then_a_close(wsp, round_):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    port = server.getsockname()[1]
    loop = asyncio.get_running_loop()
    err = Errno()
    window = Window()
    s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
    wsp.WSPAsyncSelect(s, window, 0x401, FD_CONNECT | FD_WRITE | FD_CLOSE, err)
    try:
        rc = await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err)
        assert (rc, err.value) == (-1, WSAEWOULDBLOCK)
        conn, _ = await loop.sock_accept(server)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        got = []
        async with asyncio.timeout(5):
            while len(got) < 3:
                message = await window.get_message()
                got.append((WSAGETSELECTEVENT(message.lParam), WSAGETSELECTERROR(message.lParam)))
        assert got == [(FD_CONNECT, 0), (FD_WRITE, 0), (FD_CLOSE, WSAECONNABORTED)]
    finally:
        wsp.WSPCloseSocket(s, err)
        server.close()


async def test_reset_seen_by_the_connect_check_is_still_a_success(wsp, pending_listener):
    """The engine reads ECONNRESET from SO_ERROR when the peer accepted and aborted
    before the completion was looked at (white-box: that race cannot be forced on
    loopback). The attempt succeeds and FD_CLOSE(WSAECONNABORTED) follows."""
    err = Errno()
    window = Window()
    s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
    wsp.WSPAsyncSelect(s, window, 0x401, FD_CONNECT | FD_WRITE | FD_CLOSE, err)
    port = pending_listener.getsockname()[1]
    try:
        await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err)
        rec = wsp._sockets[s]
        engine = wsp._engine
        engine.finish(rec, engine._attempt_ended(rec, errno.ECONNRESET), False)
        got = [
            (WSAGETSELECTEVENT(m.lParam), WSAGETSELECTERROR(m.lParam)) for m in window.messages()
        ]
        assert got == [(FD_CONNECT, 0), (FD_WRITE, 0), (FD_CLOSE, WSAECONNABORTED)]
        buf = bytearray(4)
        rc = await wsp.WSPRecv(s, [WSABuf(4, buf)], 1, Errno(), Errno(0), None, None, None, err)
        assert (rc, err.value) == (-1, WSAECONNRESET)
    finally:
        wsp.WSPCloseSocket(s, err)
