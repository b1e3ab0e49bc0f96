"""WSPSelect as the connect route (SEMANTICS.md §3), on asyncio and uvloop."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from wspasync import (
    FD_CONNECT,
    FD_WRITE,
    IPPROTO_UDP,
    SOCK_DGRAM,
    SOCKET_ERROR,
    WSAEINVAL,
    WSAENOTSOCK,
    WSAEWOULDBLOCK,
    Errno,
    FdSet,
    TimeVal,
    WSAEvent,
    WSANetworkEvents,
    Window,
    sockaddr_in,
)
from wspasync.testing import settle
from wsp_support import close, connect_now, nonblocking, tcp


pytestmark = pytest.mark.timeout(30)

ZERO = TimeVal(0, 0)


def start(wsp, s, port):
    """A nonblocking connect that must return WOULDBLOCK without suspending."""
    assert connect_now(wsp, s, sockaddr_in("127.0.0.1", port)) == (SOCKET_ERROR, WSAEWOULDBLOCK)


async def poll(wsp, s, timeout=ZERO):
    """Which of the three sets *s* lands in: a string of 'r', 'w', 'x'."""
    r, w, x = FdSet([s]), FdSet([s]), FdSet([s])
    err = Errno()
    async with asyncio.timeout(5):
        n = await wsp.WSPSelect(0, r, w, x, timeout, err)
    assert n != SOCKET_ERROR, err.value
    out = "r" * r.FD_ISSET(s) + "w" * w.FD_ISSET(s) + "x" * x.FD_ISSET(s)
    assert n == len(out)
    return out


async def test_success_is_writefds_only(wsp, listener):
    s = tcp(wsp)
    nonblocking(wsp, s)
    start(wsp, s, listener.getsockname()[1])
    assert await poll(wsp, s, None) == "w"
    close(wsp, s)


async def test_failure_is_exceptfds_only(wsp, refused_port):
    s = tcp(wsp)
    nonblocking(wsp, s)
    start(wsp, s, refused_port)
    # Linux would also call the socket readable and writable (POLLERR|POLLHUP).
    assert await poll(wsp, s, None) == "x"
    assert await poll(wsp, s) == "x"  # level: stays until a new attempt
    close(wsp, s)


async def test_pending_connect_is_in_no_set(wsp, pending_listener):
    s = tcp(wsp)
    nonblocking(wsp, s)
    start(wsp, s, pending_listener.getsockname()[1])
    assert await poll(wsp, s) == ""
    assert await poll(wsp, s, TimeVal(0, 20_000)) == ""  # a timed wait times out: 0
    close(wsp, s)


async def test_never_connected_is_in_no_set(wsp):
    s = tcp(wsp)
    assert await poll(wsp, s) == ""
    assert wsp.WSPBind(s, sockaddr_in("127.0.0.1", 0), 16, Errno()) == 0
    assert await poll(wsp, s) == ""
    close(wsp, s)


async def test_unbound_udp_is_writable(wsp):
    u = tcp(wsp, type_=SOCK_DGRAM, proto=IPPROTO_UDP)
    assert await poll(wsp, u) == "w"
    close(wsp, u)


async def test_retry_clears_exceptfds(wsp, refused_port, pending_listener):
    s = tcp(wsp)
    nonblocking(wsp, s)
    start(wsp, s, refused_port)
    assert await poll(wsp, s, None) == "x"
    start(wsp, s, pending_listener.getsockname()[1])  # a retry that stays pending
    assert await poll(wsp, s) == ""
    close(wsp, s)


async def test_retry_after_failure_then_success_is_writefds(wsp, refused_port):
    s = tcp(wsp)
    nonblocking(wsp, s)
    start(wsp, s, refused_port)
    assert await poll(wsp, s, None) == "x"
    lst = socket.socket()
    try:
        lst.bind(("127.0.0.1", refused_port))
        lst.listen(1)
        start(wsp, s, refused_port)
        assert await poll(wsp, s, None) == "w"
    finally:
        lst.close()
    close(wsp, s)


async def test_select_wakes_on_completion(wsp, listener, refused_port):
    """A select already waiting sees the outcomes of two connects started after it."""
    a, b = tcp(wsp), tcp(wsp)
    nonblocking(wsp, a)
    nonblocking(wsp, b)
    start(wsp, a, refused_port)
    start(wsp, b, listener.getsockname()[1])
    w, x = FdSet([a, b]), FdSet([a, b])
    seen = {a: "", b: ""}
    async with asyncio.timeout(5):
        while seen[a] != "x" or seen[b] != "w":
            w, x = FdSet([a, b]), FdSet([a, b])
            n = await wsp.WSPSelect(0, None, w, x, None, Errno())
            assert n >= 1
            for h in (a, b):
                seen[h] = "w" * w.FD_ISSET(h) + "x" * x.FD_ISSET(h)
    close(wsp, a)
    close(wsp, b)


async def test_listener_readable_with_pending_connection(wsp):
    lst = tcp(wsp)
    assert wsp.WSPBind(lst, sockaddr_in("127.0.0.1", 0), 16, Errno()) == 0
    assert wsp.WSPListen(lst, 5, Errno()) == 0
    assert await poll(wsp, lst) == ""
    buf, box = bytearray(16), Errno(value=16)
    wsp.WSPGetSockName(lst, buf, box, Errno())
    port = struct.unpack(">H", buf[2:4])[0]
    c = socket.create_connection(("127.0.0.1", port))
    try:
        assert await poll(wsp, lst, None) == "r"
    finally:
        c.close()
    close(wsp, lst)


# -- set handling ----------------------------------------------------------------------------


async def test_counts_twice_and_compacts_duplicates(wsp, listener):
    s = tcp(wsp)
    nonblocking(wsp, s)
    start(wsp, s, listener.getsockname()[1])
    await poll(wsp, s, None)
    w = FdSet([s])
    w.fd_array[:] = [s, s, s]  # FD_SET itself would not add a duplicate
    x = FdSet([s])
    assert w.fd_count == 3
    assert await wsp.WSPSelect(0, None, w, x, ZERO, Errno()) == 1
    assert w.fd_array == [s] and x.fd_array == []
    # readable too once the peer sends something: counted in both sets
    conn, _ = listener.accept()
    try:
        conn.send(b"x")
        r, w = FdSet([s]), FdSet([s])
        async with asyncio.timeout(5):
            n = await wsp.WSPSelect(0, r, w, None, None, Errno())
            while n < 2:
                r, w = FdSet([s]), FdSet([s])
                n = await wsp.WSPSelect(0, r, w, None, TimeVal(0, 1000), Errno())
        assert n == 2 and r.fd_array == [s] and w.fd_array == [s]
    finally:
        conn.close()
    close(wsp, s)


async def test_no_sockets_is_einval(wsp):
    err = Errno()
    assert await wsp.WSPSelect(0, None, None, None, ZERO, err) == SOCKET_ERROR
    assert err.value == WSAEINVAL
    err.value = 0
    assert await wsp.WSPSelect(0, FdSet(), FdSet(), FdSet(), ZERO, err) == SOCKET_ERROR
    assert err.value == WSAEINVAL


async def test_not_a_socket_leaves_sets_alone(wsp, listener):
    s = tcp(wsp)
    r, w = FdSet([s, 999_999]), FdSet([s])
    err = Errno()
    timeout = TimeVal(1, 5)
    assert await wsp.WSPSelect(0, r, w, None, timeout, err) == SOCKET_ERROR
    assert err.value == WSAENOTSOCK
    assert r.fd_array == [s, 999_999] and w.fd_array == [s]
    assert (timeout.tv_sec, timeout.tv_usec) == (1, 5)
    close(wsp, s)


async def test_timeval_is_never_written(wsp, pending_listener):
    s = tcp(wsp)
    nonblocking(wsp, s)
    start(wsp, s, pending_listener.getsockname()[1])
    timeout = TimeVal(0, 10_000)
    assert await wsp.WSPSelect(0, None, FdSet([s]), FdSet([s]), timeout, Errno()) == 0
    assert (timeout.tv_sec, timeout.tv_usec) == (0, 10_000)
    close(wsp, s)


async def test_socket_closed_while_waiting_is_readable(wsp, pending_listener):
    s = tcp(wsp)
    nonblocking(wsp, s)
    start(wsp, s, pending_listener.getsockname()[1])
    r = FdSet([s])
    task = asyncio.ensure_future(wsp.WSPSelect(0, r, None, None, None, Errno()))
    await settle()
    assert not task.done()
    close(wsp, s)
    async with asyncio.timeout(5):
        assert await task == 1
    assert r.fd_array == [s]


async def test_select_leaves_registration_records_alone(wsp, refused_port):
    """select does not consume or re-post what async-select / event-select recorded."""
    a, b = tcp(wsp), tcp(wsp)
    ev, window = WSAEvent(), Window()
    assert wsp.WSPEventSelect(a, ev, FD_CONNECT | FD_WRITE, Errno()) == 0
    assert wsp.WSPAsyncSelect(b, window, 0x401, FD_CONNECT | FD_WRITE, Errno()) == 0
    start(wsp, a, refused_port)
    start(wsp, b, refused_port)
    assert await poll(wsp, a, None) == "x"
    assert await poll(wsp, b, None) == "x"
    await poll(wsp, a)
    await settle()
    assert len(window) == 1
    assert ev.is_set()
    ne = WSANetworkEvents()
    assert wsp.WSPEnumNetworkEvents(a, ev, ne, Errno()) == 0
    assert ne.lNetworkEvents == FD_CONNECT
    close(wsp, a)
    close(wsp, b)


