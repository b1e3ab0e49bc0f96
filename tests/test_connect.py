"""WSPConnect on stream sockets: every row of SEMANTICS.md §1, on asyncio and uvloop.

Loopback only. Refused: a closed loopback port (``refused_port``). Pending forever: a
listener whose backlog is full (``pending_listener``). Unreachable: a network namespace
this module creates with nothing but ``lo``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from wspasync import (
    AF_INET,
    AF_INET6,
    FD_CONNECT,
    FD_WRITE,
    FIONBIO,
    INVALID_SOCKET,
    IPPROTO_TCP,
    QOS,
    SD_BOTH,
    SERVICETYPE_GUARANTEED,
    SO_ERROR,
    SOCKET_ERROR,
    SOL_SOCKET,
    TCP_MAXRT,
    WINSOCK_1_1,
    WSAEADDRNOTAVAIL,
    WSAEAFNOSUPPORT,
    WSAEALREADY,
    WSAECONNREFUSED,
    WSAEFAULT,
    WSAEINVAL,
    WSAEISCONN,
    WSAENOTSOCK,
    WSAEOPNOTSUPP,
    WSAEPROTONOSUPPORT,
    WSAETIMEDOUT,
    WSAEWOULDBLOCK,
    WSAGETSELECTERROR,
    WSAGETSELECTEVENT,
    Errno,
    FdSet,
    FlowSpec,
    Provider,
    WSABuf,
    Window,
    parse_sockaddr,
    sockaddr_in,
    sockaddr_in6,
)
from wspasync.testing import settle
from wsp_support import close, connect_now, tcp


pytestmark = pytest.mark.timeout(30)


# -- helpers ---------------------------------------------------------------------------


def nonblock(wsp, s, on=1):
    err = Errno()
    rc = wsp.WSPIoctl(s, FIONBIO, struct.pack("<I", on), 4, None, 0, Errno(), None, None, None, err)
    return rc, err.value


def port_of(sock):
    return sock.getsockname()[1]


async def connect(wsp, s, name, namelen=None, caller=None, callee=None, sqos=None, gqos=None):
    """(rc, lpErrno) of one WSPConnect."""
    err = Errno(value=-12345)
    if namelen is None:
        namelen = len(name) if name is not None else 0
    rc = await wsp.WSPConnect(s, name, namelen, caller, callee, sqos, gqos, err)
    return rc, err.value


def sockname(wsp, s, room=16):
    buf = bytearray(room)
    box = Errno(value=room)
    err = Errno()
    rc = wsp.WSPGetSockName(s, buf, box, err)
    if rc == SOCKET_ERROR:
        return None, err.value
    return parse_sockaddr(bytes(buf[: box.value])), 0


def so_error(wsp, s):
    buf = bytearray(4)
    box = Errno(value=4)
    err = Errno()
    assert wsp.WSPGetSockOpt(s, SOL_SOCKET, SO_ERROR, buf, box, err) == 0, err.value
    assert box.value == 4
    return struct.unpack("<i", buf)[0]


async def wait_except_or_write(wsp, s, seconds=5):
    """Block in WSPSelect until *s* is in writefds or exceptfds; ('w'|'x')."""
    w, x = FdSet([s]), FdSet([s])
    err = Errno()
    async with asyncio.timeout(seconds):
        n = await wsp.WSPSelect(0, None, w, x, None, err)
    assert n == 1, (n, err.value)
    return "w" if w.FD_ISSET(s) else "x"


def name(port, host="127.0.0.1"):
    return sockaddr_in(host, port)


# -- the call's own result ----------------------------------------------------------------


async def test_nonblocking_connect_returns_wouldblock_without_suspending(wsp, listener):
    s = tcp(wsp)
    nonblock(wsp, s)
    # Linux completes a loopback connect inside connect(); Winsock still says WOULDBLOCK.
    assert connect_now(wsp, s, name(port_of(listener))) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    assert await wait_except_or_write(wsp, s) == "w"
    close(wsp, s)


async def test_nonblocking_connect_refused_returns_wouldblock(wsp, refused_port):
    s = tcp(wsp)
    nonblock(wsp, s)
    assert connect_now(wsp, s, name(refused_port)) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    assert await wait_except_or_write(wsp, s) == "x"
    close(wsp, s)


async def test_blocking_connect_succeeds(wsp, listener):
    s = tcp(wsp)
    assert await connect(wsp, s, name(port_of(listener))) == (0, -12345)
    close(wsp, s)


async def test_blocking_connect_refused(wsp, refused_port):
    s = tcp(wsp)
    assert await connect(wsp, s, name(refused_port)) == (SOCKET_ERROR, WSAECONNREFUSED)
    close(wsp, s)


async def test_blocking_connect_waits_for_completion(wsp, listener):
    """The blocking coroutine returns only when the connection is up (peer sees it)."""
    s = tcp(wsp)
    rc = await connect(wsp, s, name(port_of(listener)))
    assert rc[0] == 0
    listener.setblocking(False)
    conn, _ = listener.accept()
    conn.close()
    close(wsp, s)


async def test_connect_while_connecting_is_already(wsp, pending_listener):
    s = tcp(wsp)
    nonblock(wsp, s)
    target = name(port_of(pending_listener))
    assert connect_now(wsp, s, target) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    assert connect_now(wsp, s, target) == (SOCKET_ERROR, WSAEALREADY)
    close(wsp, s)


async def test_connect_while_connecting_is_einval_in_winsock_1_1(loop_errors, pending_listener):
    async with Provider(version=WINSOCK_1_1) as wsp:
        s = tcp(wsp)
        nonblock(wsp, s)
        target = name(port_of(pending_listener))
        assert connect_now(wsp, s, target) == (SOCKET_ERROR, WSAEWOULDBLOCK)
        assert connect_now(wsp, s, target) == (SOCKET_ERROR, WSAEINVAL)


async def test_connect_while_connected_is_isconn(wsp, listener):
    s = tcp(wsp)
    target = name(port_of(listener))
    assert (await connect(wsp, s, target))[0] == 0
    assert await connect(wsp, s, target) == (SOCKET_ERROR, WSAEISCONN)
    nonblock(wsp, s)
    assert connect_now(wsp, s, target) == (SOCKET_ERROR, WSAEISCONN)
    # ... also after shutdown
    assert wsp.WSPShutdown(s, SD_BOTH, Errno()) == 0
    assert await connect(wsp, s, target) == (SOCKET_ERROR, WSAEISCONN)
    close(wsp, s)


async def test_connect_on_accepted_socket_is_isconn(wsp):
    lst = tcp(wsp)
    assert wsp.WSPBind(lst, name(0), 16, Errno()) == 0
    assert wsp.WSPListen(lst, 5, Errno()) == 0
    (port,) = [sockname(wsp, lst)[0][2]]
    c = tcp(wsp)
    assert (await connect(wsp, c, name(port)))[0] == 0
    err = Errno()
    async with asyncio.timeout(5):
        a = await wsp.WSPAccept(lst, None, None, None, 0, err)
    assert a != INVALID_SOCKET, err.value
    assert await connect(wsp, a, name(port)) == (SOCKET_ERROR, WSAEISCONN)
    for h in (a, c, lst):
        close(wsp, h)


async def test_connect_on_listening_socket_is_einval(wsp, listener):
    s = tcp(wsp)
    assert wsp.WSPBind(s, name(0), 16, Errno()) == 0
    assert wsp.WSPListen(s, 5, Errno()) == 0
    assert await connect(wsp, s, name(port_of(listener))) == (SOCKET_ERROR, WSAEINVAL)
    nonblock(wsp, s)
    assert connect_now(wsp, s, name(port_of(listener))) == (SOCKET_ERROR, WSAEINVAL)
    close(wsp, s)


@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "nonblocking"])
async def test_retry_after_failure_on_the_same_handle(wsp, refused_port, blocking):
    s = tcp(wsp)
    if not blocking:
        nonblock(wsp, s)
    target = name(refused_port)
    if blocking:
        assert await connect(wsp, s, target) == (SOCKET_ERROR, WSAECONNREFUSED)
    else:
        assert connect_now(wsp, s, target) == (SOCKET_ERROR, WSAEWOULDBLOCK)
        assert await wait_except_or_write(wsp, s) == "x"
    # Now something listens on that very port; the same handle connects.
    lst = socket.socket()
    try:
        lst.bind(("127.0.0.1", refused_port))
        lst.listen(5)
        handles = wsp.handles()
        if blocking:
            assert await connect(wsp, s, target) == (0, -12345)
        else:
            assert connect_now(wsp, s, target) == (SOCKET_ERROR, WSAEWOULDBLOCK)
            assert await wait_except_or_write(wsp, s) == "w"
        assert wsp.handles() == handles and s in handles
        local, code = sockname(wsp, s)
        assert code == 0 and local[1] == "127.0.0.1" and local[2] != 0
        peer = bytearray(16)
        assert wsp.WSPGetPeerName(s, peer, Errno(value=16), Errno()) == 0
        assert parse_sockaddr(peer) == (AF_INET, "127.0.0.1", refused_port)
        close(wsp, s)
    finally:
        lst.close()


# -- refusals by the call ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((None, 16), WSAEFAULT),
        ((b"\x02\x00" + b"\x00" * 14, 0), WSAEFAULT),  # namelen 0
        ("short", WSAEFAULT),  # namelen shorter than sockaddr_in
        ("v6", WSAEAFNOSUPPORT),  # IPv6 name on an IPv4 socket
        ("unknown", WSAEAFNOSUPPORT),  # a family nobody knows
        ("zero", WSAEADDRNOTAVAIL),  # 0.0.0.0
    ],
    ids=["none", "namelen0", "short", "v6-on-v4", "unknown-family", "zero-address"],
)
async def test_connect_name_refusals(wsp, listener, args, code):
    s = tcp(wsp)
    port = port_of(listener)
    if args == "short":
        args = (name(port), 15)
    elif args == "v6":
        args = (sockaddr_in6("::1", port), 28)
    elif args == "unknown":
        args = (struct.pack("<H", 99) + b"\x00" * 26, 28)
    elif args == "zero":
        args = (name(port, "0.0.0.0"), 16)
    assert await connect(wsp, s, *args) == (SOCKET_ERROR, code)
    # The socket is not spoiled: a good connect still works.
    assert (await connect(wsp, s, name(port)))[0] == 0
    close(wsp, s)


async def test_connect_ipv6_zero_address_not_avail(wsp):
    s = tcp(wsp, AF_INET6)
    assert await connect(wsp, s, sockaddr_in6("::", 9)) == (SOCKET_ERROR, WSAEADDRNOTAVAIL)
    close(wsp, s)


async def test_connect_ipv6_loopback(wsp):
    lst = socket.socket(socket.AF_INET6)
    try:
        lst.bind(("::1", 0))
        lst.listen(1)
        s = tcp(wsp, AF_INET6)
        assert await connect(wsp, s, sockaddr_in6("::1", port_of(lst))) == (0, -12345)
        local, code = sockname(wsp, s, 28)
        assert local[:2] == (AF_INET6, "::1") and local[2] != 0
        assert await connect(wsp, s, name(port_of(lst))) == (SOCKET_ERROR, WSAEAFNOSUPPORT)
        close(wsp, s)
    finally:
        lst.close()


async def test_connect_refusals_of_data_and_qos(wsp, listener):
    s = tcp(wsp)
    target = name(port_of(listener))
    # caller data on a protocol without XP1_CONNECT_DATA
    assert await connect(wsp, s, target, caller=WSABuf(4, bytearray(4))) == (
        SOCKET_ERROR, WSAEPROTONOSUPPORT)
    # lpGQOS is reserved
    assert await connect(wsp, s, target, gqos=QOS()) == (SOCKET_ERROR, WSAEINVAL)
    # a guaranteed service that best-effort TCP cannot give
    qos = QOS(SendingFlowspec=FlowSpec(ServiceType=SERVICETYPE_GUARANTEED))
    assert await connect(wsp, s, target, sqos=qos) == (SOCKET_ERROR, WSAEOPNOTSUPP)
    # WSABufs whose length does not fit their buffer
    assert await connect(wsp, s, target, caller=WSABuf(10, bytearray(2))) == (SOCKET_ERROR, WSAEFAULT)
    assert await connect(wsp, s, target, callee=WSABuf(10, bytearray(2))) == (SOCKET_ERROR, WSAEFAULT)
    assert await connect(wsp, s, target, callee=WSABuf(10, None)) == (SOCKET_ERROR, WSAEFAULT)
    # After all of that, the socket is still UNBOUND and connects.
    assert sockname(wsp, s) == (None, WSAEINVAL)
    callee = WSABuf(16, bytearray(16))
    assert (await connect(wsp, s, target, caller=WSABuf(0, None), callee=callee, sqos=QOS()))[0] == 0
    assert callee.len == 0  # TCP carries no connect data
    close(wsp, s)


async def test_callee_len_zero_on_nonblocking(wsp, listener):
    s = tcp(wsp)
    nonblock(wsp, s)
    callee = WSABuf(8, bytearray(8))
    assert await connect(wsp, s, name(port_of(listener)), callee=callee) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    assert await wait_except_or_write(wsp, s) == "w"
    assert callee.len == 0
    close(wsp, s)


async def test_connect_not_a_socket(wsp, listener):
    assert await connect(wsp, 12345, name(port_of(listener))) == (SOCKET_ERROR, WSAENOTSOCK)
    s = tcp(wsp)
    close(wsp, s)
    assert await connect(wsp, s, name(port_of(listener))) == (SOCKET_ERROR, WSAENOTSOCK)
    assert await connect(wsp, "x", name(port_of(listener))) == (SOCKET_ERROR, WSAENOTSOCK)


# -- names ---------------------------------------------------------------------------------


async def test_implicit_bind(wsp, listener):
    s = tcp(wsp)
    assert sockname(wsp, s) == (None, WSAEINVAL)  # never bound
    assert (await connect(wsp, s, name(port_of(listener))))[0] == 0
    local, code = sockname(wsp, s)
    assert code == 0
    assert local[:2] == (AF_INET, "127.0.0.1") and local[2] != 0
    close(wsp, s)


async def test_bind_listen_and_name_rules(wsp):
    s = tcp(wsp)
    err = Errno()
    assert wsp.WSPListen(s, 5, err) == SOCKET_ERROR and err.value == WSAEINVAL  # before bind
    assert wsp.WSPBind(s, name(0), 15, err) == SOCKET_ERROR and err.value == WSAEFAULT
    assert wsp.WSPBind(s, name(0), 16, err) == 0
    err.value = 0
    assert wsp.WSPBind(s, name(0), 16, err) == SOCKET_ERROR and err.value == WSAEINVAL  # twice
    # getsockname with too little room
    buf = bytearray(16)
    box = Errno(value=15)
    assert wsp.WSPGetSockName(s, buf, box, err) == SOCKET_ERROR and err.value == WSAEFAULT
    assert buf == bytearray(16)
    local, code = sockname(wsp, s)
    assert local[1] == "127.0.0.1" and local[2] != 0
    close(wsp, s)


async def test_getsockname_while_connecting(wsp, pending_listener):
    s = tcp(wsp)
    nonblock(wsp, s)
    assert connect_now(wsp, s, name(port_of(pending_listener)))[1] == WSAEWOULDBLOCK
    local, code = sockname(wsp, s)
    assert code == 0 and local[1] == "127.0.0.1" and local[2] != 0
    close(wsp, s)


# -- SO_ERROR ----------------------------------------------------------------------------------


async def test_so_error_persists_until_success(wsp, refused_port, pending_listener):
    s = tcp(wsp)
    nonblock(wsp, s)
    assert so_error(wsp, s) == 0
    assert connect_now(wsp, s, name(refused_port))[1] == WSAEWOULDBLOCK
    assert await wait_except_or_write(wsp, s) == "x"
    assert so_error(wsp, s) == WSAECONNREFUSED
    assert so_error(wsp, s) == WSAECONNREFUSED  # reading does not clear it
    # A new attempt (that stays pending) does not reset it.
    assert connect_now(wsp, s, name(port_of(pending_listener)))[1] == WSAEWOULDBLOCK
    await settle()
    assert so_error(wsp, s) == WSAECONNREFUSED
    close(wsp, s)


async def test_so_error_reset_by_success(wsp, refused_port):
    s = tcp(wsp)
    nonblock(wsp, s)
    assert connect_now(wsp, s, name(refused_port))[1] == WSAEWOULDBLOCK
    assert await wait_except_or_write(wsp, s) == "x"
    assert so_error(wsp, s) == WSAECONNREFUSED
    lst = socket.socket()
    try:
        lst.bind(("127.0.0.1", refused_port))
        lst.listen(1)
        assert connect_now(wsp, s, name(refused_port))[1] == WSAEWOULDBLOCK
        assert await wait_except_or_write(wsp, s) == "w"
        assert so_error(wsp, s) == 0
        close(wsp, s)
    finally:
        lst.close()


async def test_so_error_after_blocking_failure_reads_zero(wsp, refused_port):
    s = tcp(wsp)
    assert await connect(wsp, s, name(refused_port)) == (SOCKET_ERROR, WSAECONNREFUSED)
    assert so_error(wsp, s) == 0
    close(wsp, s)


# -- timeout -----------------------------------------------------------------------------------


def set_maxrt(wsp, s, seconds):
    err = Errno()
    rc = wsp.WSPSetSockOpt(s, IPPROTO_TCP, TCP_MAXRT, struct.pack("<I", seconds), 4, err)
    assert rc == 0, err.value


async def test_connect_timeout_with_tcp_maxrt(wsp, pending_listener):
    """TCP_MAXRT=1: WSAETIMEDOUT after about a second, blocking and through FD_CONNECT."""
    target = name(port_of(pending_listener))
    blocking = tcp(wsp)
    set_maxrt(wsp, blocking, 1)
    msg = tcp(wsp)
    set_maxrt(wsp, msg, 1)
    window = Window()
    assert wsp.WSPAsyncSelect(msg, window, 0x401, FD_CONNECT | FD_WRITE, Errno()) == 0
    started = time.monotonic()
    assert connect_now(wsp, msg, target) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    async with asyncio.timeout(5):
        result = await connect(wsp, blocking, target)
        m = await window.get_message()
    elapsed = time.monotonic() - started
    assert result == (SOCKET_ERROR, WSAETIMEDOUT)
    assert (WSAGETSELECTEVENT(m.lParam), WSAGETSELECTERROR(m.lParam)) == (FD_CONNECT, WSAETIMEDOUT)
    assert elapsed >= 0.9  # real time only as a lower bound
    await settle()
    assert len(window) == 0  # no FD_WRITE, no FD_CLOSE
    assert so_error(wsp, msg) == WSAETIMEDOUT
    close(wsp, blocking)
    close(wsp, msg)


# -- unreachable network (a namespace with only lo) ------------------------------------------

NETNS_SCRIPT = textwrap.dedent(
    """
    import asyncio, struct, uvloop
    from wspasync import *

    async def main():
        async with Provider() as wsp:
            err = Errno()
            # TEST-NET-1 (RFC 5737): there is no route in this namespace, so nothing is sent.
            name = sockaddr_in("192.0.2.1", 9)
            s = wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, err)
            rc = await wsp.WSPConnect(s, name, 16, None, None, None, None, err)
            blocking = (rc, err.value)
            s2 = wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, err)
            ev = WSAEvent()
            wsp.WSPEventSelect(s2, ev, FD_CONNECT | FD_WRITE, err)
            rc = await wsp.WSPConnect(s2, name, 16, None, None, None, None, err)
            call = (rc, err.value)
            assert await wait_for_multiple_events([ev], False, 5000) == WSA_WAIT_EVENT_0
            ne = WSANetworkEvents()
            wsp.WSPEnumNetworkEvents(s2, ev, ne, err)
            result = (*blocking, *call, ne.lNetworkEvents, ne.iErrorCode[FD_CONNECT_BIT])
            return " ".join(str(int(v)) for v in result)

    for factory in (asyncio.new_event_loop, uvloop.new_event_loop):
        with asyncio.Runner(loop_factory=factory) as runner:
            print(runner.run(main()))
    """
)


@pytest.fixture
def lonely_netns():
    """A network namespace holding only a down ``lo``; deleted afterwards."""
    ip = shutil.which("ip")
    if ip is None:
        pytest.skip("the `ip` command (iproute2) is not installed")
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    ns = f"wsptest-{uuid.uuid4().hex[:8]}"
    made = subprocess.run([ip, "netns", "add", ns], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        yield ip, ns
    finally:
        subprocess.run([ip, "netns", "del", ns], check=True)


def test_network_unreachable(lonely_netns):
    ip, ns = lonely_netns
    out = subprocess.run(
        [ip, "netns", "exec", ns, sys.executable, "-c", NETNS_SCRIPT],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    from wspasync import WSAENETUNREACH

    # blocking: the error; nonblocking: WOULDBLOCK, then FD_CONNECT(WSAENETUNREACH) alone.
    expected = " ".join(map(str, (SOCKET_ERROR, WSAENETUNREACH, SOCKET_ERROR, WSAEWOULDBLOCK,
                                   FD_CONNECT, WSAENETUNREACH)))
    assert out.stdout.splitlines() == [expected, expected], out.stdout  # asyncio, uvloop
