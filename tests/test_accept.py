"""WSPAccept on plain TCP: condition functions, addr/addrlen, blocking and nonblocking."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from wspasync import (
    AF_INET,
    AF_INET6,
    CF_ACCEPT,
    CF_DEFER,
    CF_REJECT,
    INVALID_SOCKET,
    SOCKET_ERROR,
    WSAECONNREFUSED,
    WSAEFAULT,
    WSAEINVAL,
    WSAEISCONN,
    WSAENOTSOCK,
    WSAEWOULDBLOCK,
    WSATRY_AGAIN,
    Errno,
    parse_sockaddr,
    sockaddr_in,
)
from wspasync.testing import settle
from wsp_support import close, make_listener, nonblocking, pending_accepts, tcp, wait_until


pytestmark = pytest.mark.timeout(30)


async def accept(wsp, lst, addr=None, addrlen=None, condition=None, data=0):
    err = Errno(value=-1)
    async with asyncio.timeout(5):
        h = await wsp.WSPAccept(lst, addr, addrlen, condition, data, err)
    return h, err.value


async def test_blocking_accept_waits_for_a_connection(wsp):
    lst, port = make_listener(wsp)
    task = asyncio.ensure_future(accept(wsp, lst))
    await settle()
    assert not task.done()
    c = socket.create_connection(("127.0.0.1", port))
    try:
        a, err = await task
        assert a != INVALID_SOCKET, err
        peer = bytearray(16)
        assert wsp.WSPGetPeerName(a, peer, Errno(value=16), Errno()) == 0
        assert parse_sockaddr(peer) == (AF_INET, "127.0.0.1", c.getsockname()[1])
        # the accepted socket is connected: data flows
        c.sendall(b"ping")
        close(wsp, a)
    finally:
        c.close()
    close(wsp, lst)


async def test_nonblocking_accept_without_connection(wsp):
    lst, _ = make_listener(wsp)
    nonblocking(wsp, lst)
    assert await accept(wsp, lst) == (INVALID_SOCKET, WSAEWOULDBLOCK)
    close(wsp, lst)


async def test_accept_on_non_listening_socket(wsp):
    s = tcp(wsp)
    assert await accept(wsp, s) == (INVALID_SOCKET, WSAEINVAL)
    assert await accept(wsp, 4242) == (INVALID_SOCKET, WSAENOTSOCK)
    close(wsp, s)


async def test_addr_and_addrlen(wsp):
    lst, port = make_listener(wsp)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        await wait_until(lambda: pending_accepts(wsp, lst) >= 2)
        # too little room: WSAEFAULT and the connection stays pending
        buf, box = bytearray(15), Errno(value=15)
        assert await accept(wsp, lst, buf, box) == (INVALID_SOCKET, WSAEFAULT)
        assert await accept(wsp, lst, None, Errno(value=16)) == (INVALID_SOCKET, WSAEFAULT)
        assert await accept(wsp, lst, bytearray(16), None) == (INVALID_SOCKET, WSAEFAULT)
        # room to spare: filled, and addrlen says how much
        buf, box = bytearray(32), Errno(value=32)
        a, err = await accept(wsp, lst, buf, box)
        assert a != INVALID_SOCKET, err
        assert box.value == 16
        assert parse_sockaddr(bytes(buf[:16])) == (AF_INET, "127.0.0.1", clients[0].getsockname()[1])
        assert bytes(buf[16:]) == bytes(16)
        b, err = await accept(wsp, lst, bytearray(16), Errno(value=16))
        assert b != INVALID_SOCKET
        for h in (a, b):
            close(wsp, h)
    finally:
        for c in clients:
            c.close()
    close(wsp, lst)


async def test_ipv6_addr(wsp):
    lst, port = make_listener(wsp, AF_INET6)
    c = socket.create_connection(("::1", port))
    try:
        buf, box = bytearray(28), Errno(value=28)
        a, err = await accept(wsp, lst, buf, box)
        assert a != INVALID_SOCKET, err
        assert box.value == 28
        assert parse_sockaddr(buf)[:3] == (AF_INET6, "::1", c.getsockname()[1])
        close(wsp, a)
    finally:
        c.close()
    close(wsp, lst)


# -- condition functions ------------------------------------------------------------------------


async def test_condition_accept_sees_caller_and_callee(wsp):
    lst, port = make_listener(wsp)
    seen = []

    def condition(caller_id, caller_data, sqos, gqos, callee_id, callee_data, g, data):
        seen.append((bytes(caller_id.buf[: caller_id.len]), caller_data,
                     bytes(callee_id.buf[: callee_id.len]), g, data))
        return CF_ACCEPT

    c = socket.create_connection(("127.0.0.1", port))
    try:
        a, err = await accept(wsp, lst, condition=condition, data=0xC0FFEE)
        assert a != INVALID_SOCKET, err
        ((caller, caller_data, callee, g, data),) = seen
        assert parse_sockaddr(caller) == (AF_INET, "127.0.0.1", c.getsockname()[1])
        assert parse_sockaddr(callee) == (AF_INET, "127.0.0.1", port)
        assert caller_data is None  # TCP carries no connect data
        assert (g, data) == (0, 0xC0FFEE)
        close(wsp, a)
    finally:
        c.close()
    close(wsp, lst)


async def test_condition_reject_resets_the_connection(wsp):
    lst, port = make_listener(wsp)
    c = socket.create_connection(("127.0.0.1", port))
    try:
        assert await accept(wsp, lst, condition=lambda *a: CF_REJECT) == (
            INVALID_SOCKET, WSAECONNREFUSED)
        c.settimeout(5)
        with pytest.raises(ConnectionResetError) as info:
            # the RST may arrive before or after our write; either way the peer resets
            c.sendall(b"x")
            c.recv(1)
        assert info.value.errno == errno.ECONNRESET
        # nothing more pending: the rejected connection is gone
        nonblocking(wsp, lst)
        assert await accept(wsp, lst) == (INVALID_SOCKET, WSAEWOULDBLOCK)
    finally:
        c.close()
    close(wsp, lst)


async def test_condition_defer_keeps_the_connection_pending(wsp):
    lst, port = make_listener(wsp)
    c = socket.create_connection(("127.0.0.1", port))
    try:
        calls = []

        def defer(caller_id, *rest):
            calls.append(parse_sockaddr(bytes(caller_id.buf[: caller_id.len])))
            return CF_DEFER

        assert await accept(wsp, lst, condition=defer) == (INVALID_SOCKET, WSATRY_AGAIN)
        assert await accept(wsp, lst, condition=defer) == (INVALID_SOCKET, WSATRY_AGAIN)
        assert calls[0] == calls[1] == (AF_INET, "127.0.0.1", c.getsockname()[1])
        buf, box = bytearray(16), Errno(value=16)
        a, err = await accept(wsp, lst, buf, box, condition=lambda *x: CF_ACCEPT)
        assert a != INVALID_SOCKET, err
        assert parse_sockaddr(buf) == calls[0]
        # and it is the same connection: data from that client arrives on it
        c.sendall(b"hello")
        sock = wsp.os_socket(a)
        async with asyncio.timeout(5):
            assert await asyncio.get_running_loop().sock_recv(sock, 5) == b"hello"
        close(wsp, a)
    finally:
        c.close()
    close(wsp, lst)


async def test_condition_bad_verdict_or_exception(wsp):
    lst, port = make_listener(wsp)
    c = socket.create_connection(("127.0.0.1", port))
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda _l, ctx: reported.append(ctx))
    try:
        assert (await accept(wsp, lst, condition=lambda *a: 77))[0] == INVALID_SOCKET

        def boom(*a):
            raise RuntimeError("user bug")

        assert (await accept(wsp, lst, condition=boom))[0] == INVALID_SOCKET
        assert any(isinstance(ctx.get("exception"), RuntimeError) for ctx in reported)
        # still pending: a plain accept gets it
        a, err = await accept(wsp, lst)
        assert a != INVALID_SOCKET, err
        close(wsp, a)
    finally:
        loop.set_exception_handler(None)
        c.close()
    close(wsp, lst)


async def test_accepted_socket_is_connected(wsp):
    lst, port = make_listener(wsp)
    c = socket.create_connection(("127.0.0.1", port))
    try:
        a, _ = await accept(wsp, lst)
        err = Errno()
        rc = await wsp.WSPConnect(a, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err)
        assert (rc, err.value) == (SOCKET_ERROR, WSAEISCONN)
        buf, box = bytearray(16), Errno(value=16)
        assert wsp.WSPGetSockName(a, buf, box, Errno()) == 0
        assert parse_sockaddr(buf) == (AF_INET, "127.0.0.1", port)
        close(wsp, a)
    finally:
        c.close()
    close(wsp, lst)
