"""Every error of the WSPConnect table, on demand, the way a user's test would get it.

Real where this machine can produce it (a refused port, a full backlog with TCP_MAXRT,
a network namespace with only a down ``lo``, a taken 4-tuple, a port taken between two
attempts, the state rules, bad arguments); injected through ``FaultLayer`` where Linux
cannot (WSAENETDOWN, WSAENOBUFS). The asynchronous ones -- WSAECONNREFUSED,
WSAETIMEDOUT, WSAENETUNREACH -- are shown through each route: select (exceptfds),
async-select (one FD_CONNECT message), event-select (the record), and blocking.
docs/testing.md has the same table with the recipes.

These tests use the wspasync plugin's fixtures and helpers only (``wsp``,
``refused_addr``, ``pending_addr``, ``loopback_listener``, ``fault_layer``,
``wspasync.testing``); the repository's conftest supplies its own ``wsp`` of the same
contract.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from wspasync import (
    AF_INET,
    FD_CONNECT,
    FD_WRITE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    IPPROTO_UDP,
    QOS,
    SERVICETYPE_GUARANTEED,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOCKET_ERROR,
    SO_REUSEADDR,
    SOL_SOCKET,
    TCP_MAXRT,
    WINSOCK_1_1,
    Errno,
    FlowSpec,
    Provider,
    Window,
    WSABuf,
    WSAEvent,
    error_name,
    sockaddr_in,
    sockaddr_in6,
)
from wsp_support import nonblocking
from wspasync import ErrorCode as E
from wspasync.testing import (
    expect_messages,
    expect_network_events,
    expect_select,
    in_isolated_network,
    isolated_network_available,
)

WM_SOCKET = 0x0401
ROUTES = ("select", "asyncselect", "eventselect", "blocking")


def tcp(wsp, err=None):
    s = wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, err or Errno())
    assert s != INVALID_SOCKET
    return s


async def connect(wsp, s, name, namelen=None, **kw):
    """(rc, error name) of one WSPConnect."""
    err = Errno()
    rc = await wsp.WSPConnect(
        s, name, len(name) if namelen is None else namelen,
        kw.get("caller"), kw.get("callee"), kw.get("sqos"), kw.get("gqos"), err,
    )
    return rc, (error_name(err.value) if rc == SOCKET_ERROR else "0")


async def outcome_via(wsp, route, s, name, code, timeout=5.0):
    """Start a connect on *route* and check that it ends with *code* the way that route
    reports it. Returns nothing; fails with the route's own expected-vs-got message."""
    window, event = Window(), WSAEvent()
    if route == "asyncselect":
        assert wsp.WSPAsyncSelect(s, window, WM_SOCKET, FD_CONNECT | FD_WRITE, Errno()) == 0
    elif route == "eventselect":
        assert wsp.WSPEventSelect(s, event, FD_CONNECT | FD_WRITE, Errno()) == 0
    elif route == "select":
        nonblocking(wsp, s)
    rc, err = await connect(wsp, s, name)
    if route == "blocking":
        assert (rc, err) == (SOCKET_ERROR, code.name)
        return
    # A nonblocking connect never reports the outcome from the call (SEMANTICS §1).
    assert (rc, err) == (SOCKET_ERROR, "WSAEWOULDBLOCK")
    if route == "asyncselect":
        await expect_messages(window, [(FD_CONNECT, code)], timeout=timeout)
    elif route == "eventselect":
        await expect_network_events(wsp, s, event, {FD_CONNECT: code}, timeout=timeout)
    else:
        await expect_select(wsp, writefds=[s], exceptfds=[s], expected=([], [], [s]), timeout=timeout)


# -- asynchronous outcomes, real, through every route ----------------------------------------


@pytest.mark.parametrize("route", ROUTES)
async def test_WSAECONNREFUSED_real(wsp, refused_addr, route):
    s = tcp(wsp)
    await outcome_via(wsp, route, s, refused_addr, E.WSAECONNREFUSED)
    wsp.WSPCloseSocket(s, Errno())


async def test_WSAETIMEDOUT_real_full_backlog_and_TCP_MAXRT(wsp, pending_addr):
    # A SYN nobody answers (the listener's queue is full), a 1 s budget (TCP_MAXRT):
    # the four routes side by side, so the test costs one second, not four.
    sockets = [tcp(wsp) for _ in ROUTES]
    for s in sockets:
        assert wsp.WSPSetSockOpt(s, IPPROTO_TCP, TCP_MAXRT, struct.pack("<I", 1), 4, Errno()) == 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(
        *(outcome_via(wsp, r, s, pending_addr, E.WSAETIMEDOUT) for r, s in zip(ROUTES, sockets))
    )
    assert loop.time() - started >= 0.9  # the budget, not an early failure
    for s in sockets:
        wsp.WSPCloseSocket(s, Errno())


@pytest.mark.skipif(not isolated_network_available(), reason="needs CAP_SYS_ADMIN for a network namespace")
async def test_WSAENETUNREACH_real_network_namespace(wsp):
    # Sockets made on a thread inside a fresh network namespace (only a down lo):
    # connect has no route anywhere, 127.0.0.1 included. One namespace for the four.
    sockets = in_isolated_network(lambda: [tcp(wsp) for _ in ROUTES])
    target = sockaddr_in("127.0.0.1", 9)
    for route, s in zip(ROUTES, sockets):
        await outcome_via(wsp, route, s, target, E.WSAENETUNREACH)
        wsp.WSPCloseSocket(s, Errno())


# -- errors the call itself reports: real ------------------------------------------------------


async def test_WSAEWOULDBLOCK_real(wsp, loopback_listener):
    listener = loopback_listener()
    s = tcp(wsp)
    nonblocking(wsp, s)
    assert await connect(wsp, s, listener.addr) == (SOCKET_ERROR, "WSAEWOULDBLOCK")
    await expect_select(wsp, writefds=[s], exceptfds=[s], expected=([], [s], []))
    wsp.WSPCloseSocket(s, Errno())


async def test_WSAEALREADY_real_second_connect_while_pending(wsp, pending_addr):
    s = tcp(wsp)
    nonblocking(wsp, s)
    assert await connect(wsp, s, pending_addr) == (SOCKET_ERROR, "WSAEWOULDBLOCK")
    assert await connect(wsp, s, pending_addr) == (SOCKET_ERROR, "WSAEALREADY")
    wsp.WSPCloseSocket(s, Errno())


async def test_WSAEALREADY_is_WSAEINVAL_for_a_1_1_provider(pending_addr):
    async with Provider(WINSOCK_1_1) as old:
        s = tcp(old)
        nonblocking(old, s)
        assert await connect(old, s, pending_addr) == (SOCKET_ERROR, "WSAEWOULDBLOCK")
        assert await connect(old, s, pending_addr) == (SOCKET_ERROR, "WSAEINVAL")


async def test_WSAEINTR_and_WSAEINPROGRESS_real_blocking_connect(wsp, pending_addr):
    s = tcp(wsp)
    blocked = asyncio.ensure_future(connect(wsp, s, pending_addr))
    await asyncio.sleep(0)  # the blocking connect is now in progress
    # A second call on the socket while the blocking one runs (SEMANTICS §5).
    assert await connect(wsp, s, pending_addr) == (SOCKET_ERROR, "WSAEINPROGRESS")
    assert wsp.WSPCancelBlockingCall(Errno()) == 0
    async with asyncio.timeout(2):
        assert await blocked == (SOCKET_ERROR, "WSAEINTR")
    wsp.WSPCloseSocket(s, Errno())


async def test_WSAEISCONN_real(wsp, loopback_listener):
    listener = loopback_listener()
    s = tcp(wsp)
    assert await connect(wsp, s, listener.addr) == (0, "0")
    assert await connect(wsp, s, listener.addr) == (SOCKET_ERROR, "WSAEISCONN")
    wsp.WSPCloseSocket(s, Errno())


async def test_WSAEINVAL_real_listening_socket_and_lpGQOS(wsp, loopback_listener):
    listener = loopback_listener()
    s = tcp(wsp)
    local = sockaddr_in("127.0.0.1", 0)
    assert wsp.WSPBind(s, local, 16, Errno()) == 0
    assert wsp.WSPListen(s, 4, Errno()) == 0
    assert await connect(wsp, s, listener.addr) == (SOCKET_ERROR, "WSAEINVAL")
    t = tcp(wsp)
    assert await connect(wsp, t, listener.addr, gqos=QOS()) == (SOCKET_ERROR, "WSAEINVAL")
    wsp.WSPCloseSocket(s, Errno())
    wsp.WSPCloseSocket(t, Errno())


async def test_WSAEFAULT_real_short_namelen(wsp, loopback_listener):
    listener = loopback_listener()
    s = tcp(wsp)
    assert await connect(wsp, s, listener.addr, namelen=8) == (SOCKET_ERROR, "WSAEFAULT")
    assert await connect(wsp, s, None, namelen=0) == (SOCKET_ERROR, "WSAEFAULT")
    wsp.WSPCloseSocket(s, Errno())


async def test_WSAEAFNOSUPPORT_real_ipv6_name_on_ipv4_socket(wsp):
    s = tcp(wsp)
    assert await connect(wsp, s, sockaddr_in6("::1", 9)) == (SOCKET_ERROR, "WSAEAFNOSUPPORT")
    wsp.WSPCloseSocket(s, Errno())


async def test_WSAENOTSOCK_real_closed_handle(wsp, loopback_listener):
    listener = loopback_listener()
    s = tcp(wsp)
    wsp.WSPCloseSocket(s, Errno())
    assert await connect(wsp, s, listener.addr) == (SOCKET_ERROR, "WSAENOTSOCK")
    assert await connect(wsp, 12345, listener.addr) == (SOCKET_ERROR, "WSAENOTSOCK")


async def test_WSAEPROTONOSUPPORT_real_caller_data_on_tcp(wsp, loopback_listener):
    listener = loopback_listener()
    s = tcp(wsp)
    data = WSABuf(4, bytearray(b"helo"))
    assert await connect(wsp, s, listener.addr, caller=data) == (SOCKET_ERROR, "WSAEPROTONOSUPPORT")
    wsp.WSPCloseSocket(s, Errno())


async def test_WSAEOPNOTSUPP_real_guaranteed_qos(wsp, loopback_listener):
    listener = loopback_listener()
    s = tcp(wsp)
    qos = QOS(FlowSpec(ServiceType=SERVICETYPE_GUARANTEED), FlowSpec(), WSABuf(0, None))
    assert await connect(wsp, s, listener.addr, sqos=qos) == (SOCKET_ERROR, "WSAEOPNOTSUPP")
    wsp.WSPCloseSocket(s, Errno())


async def test_WSAEACCES_real_udp_broadcast_without_SO_BROADCAST(wsp):
    # connect on a datagram socket sends nothing; the name alone is refused.
    u = wsp.WSPSocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, None, 0, 0, Errno())
    assert await connect(wsp, u, sockaddr_in("255.255.255.255", 9)) == (SOCKET_ERROR, "WSAEACCES")
    wsp.WSPCloseSocket(u, Errno())


async def test_WSAEADDRNOTAVAIL_real_zero_address_and_taken_tuple(wsp, loopback_listener):
    listener = loopback_listener()
    s = tcp(wsp)
    # The state rule: TCP to 0.0.0.0 (Linux would connect to the local host).
    assert await connect(wsp, s, sockaddr_in("0.0.0.0", listener.port)) == (SOCKET_ERROR, "WSAEADDRNOTAVAIL")
    # The kernel: a second socket on the same (127.0.0.2:P -> listener) 4-tuple.
    first, second = tcp(wsp), tcp(wsp)
    on = struct.pack("<I", 1)
    for t in (first, second):
        assert wsp.WSPSetSockOpt(t, SOL_SOCKET, SO_REUSEADDR, on, 4, Errno()) == 0
    assert wsp.WSPBind(first, sockaddr_in("127.0.0.2", 0), 16, Errno()) == 0
    name, namelen = bytearray(16), Errno(16)
    assert wsp.WSPGetSockName(first, name, namelen, Errno()) == 0
    assert wsp.WSPBind(second, bytes(name), 16, Errno()) == 0
    assert await connect(wsp, first, listener.addr) == (0, "0")
    assert await connect(wsp, second, listener.addr) == (SOCKET_ERROR, "WSAEADDRNOTAVAIL")
    for t in (s, first, second):
        wsp.WSPCloseSocket(t, Errno())


async def test_WSAEADDRINUSE_real_port_taken_between_attempts(wsp, refused_addr):
    # The socket's explicit port is taken by a listener after a failed attempt; the
    # retry must re-bind it on a fresh OS socket (SEMANTICS §1) and cannot.
    s = tcp(wsp)
    assert wsp.WSPSetSockOpt(s, SOL_SOCKET, SO_REUSEADDR, struct.pack("<I", 1), 4, Errno()) == 0
    assert wsp.WSPBind(s, sockaddr_in("127.0.0.1", 0), 16, Errno()) == 0
    name, namelen = bytearray(16), Errno(16)
    assert wsp.WSPGetSockName(s, name, namelen, Errno()) == 0
    port = struct.unpack("!H", name[2:4])[0]
    assert await connect(wsp, s, refused_addr) == (SOCKET_ERROR, "WSAECONNREFUSED")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        assert await connect(wsp, s, refused_addr) == (SOCKET_ERROR, "WSAEADDRINUSE")
    wsp.WSPCloseSocket(s, Errno())


# -- injected: what Linux cannot produce on demand ----------------------------------------------


@pytest.mark.parametrize("code", [E.WSAENETDOWN, E.WSAENOBUFS])
async def test_injected_errors_fail_the_call(fault_layer, loopback_listener, code):
    listener = loopback_listener()
    wsp = fault_layer
    rule = wsp.fail_connect(code, times=1)
    s = tcp(wsp)
    nonblocking(wsp, s)
    # As Windows reports these: from the call, and the socket is unchanged...
    assert await connect(wsp, s, listener.addr) == (SOCKET_ERROR, code.name)
    assert rule.hits == 1
    # ...so the next attempt is a normal one.
    assert await connect(wsp, s, listener.addr) == (SOCKET_ERROR, "WSAEWOULDBLOCK")
    await expect_select(wsp, writefds=[s], expected=([], [s], []))
    wsp.WSPCloseSocket(s, Errno())


@pytest.mark.parametrize("route", ROUTES)
async def test_injected_errors_can_also_end_the_attempt(fault_layer, loopback_listener, route):
    # synchronous=False: the same code delivered as the attempt's outcome, through the
    # real core, so every route reports it as it would a refusal.
    listener = loopback_listener()
    fault_layer.fail_connect(E.WSAENETDOWN, synchronous=False)
    s = tcp(fault_layer)
    await outcome_via(fault_layer, route, s, listener.addr, E.WSAENETDOWN)
    fault_layer.WSPCloseSocket(s, Errno())


@pytest.mark.parametrize("route", ROUTES)
async def test_injected_timeout_without_waiting(fault_layer, loopback_listener, route):
    # The real WSAETIMEDOUT costs the budget (>= 1 s); injected, it costs nothing.
    listener = loopback_listener()
    fault_layer.fail_connect(E.WSAETIMEDOUT, to=listener.addr)
    s = tcp(fault_layer)
    await outcome_via(fault_layer, route, s, listener.addr, E.WSAETIMEDOUT)
    fault_layer.WSPCloseSocket(s, Errno())
