"""Timeouts of blocking calls (SEMANTICS.md §5), on asyncio and uvloop.

* Connect: Windows gives up on an unanswered SYN after about 21 s (WSAETIMEDOUT);
  TCP_MAXRT (IPPROTO_TCP option 5, seconds) changes the budget. Tested against a
  loopback listener whose backlog is full, with TCP_MAXRT = 1.
* SO_RCVTIMEO / SO_SNDTIMEO (ms) bound blocking receives and sends: WSAETIMEDOUT.

Real time is used only as a lower bound (the call did not give up early) and an upper
bound wide enough for a loaded machine.
"""

from __future__ import annotations

import asyncio
import struct
import time

import pytest

from wspasync import (
    FD_CONNECT,
    FD_CONNECT_BIT,
    FIONBIO,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SO_RCVBUF,
    SO_RCVTIMEO,
    SO_SNDBUF,
    SO_SNDTIMEO,
    SOCKET_ERROR,
    SOL_SOCKET,
    TCP_MAXRT,
    WSA_WAIT_EVENT_0,
    WSAETIMEDOUT,
    WSAEWOULDBLOCK,
    Errno,
    FdSet,
    SyncProvider,
    TimeVal,
    WSABuf,
    WSAEvent,
    WSANetworkEvents,
    sockaddr_in,
    wait_for_multiple_events,
)
from wsp_support import tcp
from wspasync._engine import DEFAULT_CONNECT_BUDGET_S

pytestmark = pytest.mark.timeout(60)


def _i32(value: int) -> bytes:
    return struct.pack("<i", value)


def _setopt(wsp, s: int, level: int, name: int, value: int) -> None:
    err = Errno()
    assert wsp.WSPSetSockOpt(s, level, name, _i32(value), 4, err) == 0, err


def _getopt(wsp, s: int, level: int, name: int) -> int:
    err, size = Errno(), Errno(4)
    out = bytearray(4)
    assert wsp.WSPGetSockOpt(s, level, name, out, size, err) == 0, err
    return struct.unpack("<i", out)[0]


def test_default_connect_budget_is_windows_21_seconds():
    # TcpMaxConnectRetransmissions = 2 with an initial RTO of 3 s: 3 + 6 + 12.
    assert DEFAULT_CONNECT_BUDGET_S == 21.0


async def test_tcp_maxrt_bounds_a_blocking_connect(wsp, pending_listener):
    s = tcp(wsp)
    _setopt(wsp, s, IPPROTO_TCP, TCP_MAXRT, 1)
    assert _getopt(wsp, s, IPPROTO_TCP, TCP_MAXRT) == 1
    err = Errno()
    t0 = time.monotonic()
    async with asyncio.timeout(10):
        rc = await wsp.WSPConnect(
            s, sockaddr_in("127.0.0.1", pending_listener.getsockname()[1]), 16, None, None, None, None, err
        )
    elapsed = time.monotonic() - t0
    assert rc == SOCKET_ERROR
    assert err.value == WSAETIMEDOUT
    assert 0.95 <= elapsed < 5
    assert wsp.WSPCloseSocket(s, Errno()) == 0


async def test_tcp_maxrt_bounds_a_nonblocking_connect_event_mode(wsp, pending_listener):
    s = tcp(wsp)
    _setopt(wsp, s, IPPROTO_TCP, TCP_MAXRT, 1)
    event = WSAEvent()
    err = Errno()
    assert wsp.WSPEventSelect(s, event, FD_CONNECT, err) == 0
    rc = await wsp.WSPConnect(
        s, sockaddr_in("127.0.0.1", pending_listener.getsockname()[1]), 16, None, None, None, None, err
    )
    assert rc == SOCKET_ERROR and err.value == WSAEWOULDBLOCK
    t0 = time.monotonic()
    assert await wait_for_multiple_events([event], False, 10_000) == WSA_WAIT_EVENT_0
    assert time.monotonic() - t0 >= 0.9
    record = WSANetworkEvents()
    assert wsp.WSPEnumNetworkEvents(s, event, record, err) == 0
    assert record.lNetworkEvents == FD_CONNECT
    assert record.iErrorCode[FD_CONNECT_BIT] == WSAETIMEDOUT
    # The failure shows in exceptfds only (SEMANTICS §3).
    fds = FdSet([s])
    assert await wsp.WSPSelect(0, None, None, fds, TimeVal(0, 0), err) == 1
    assert wsp.WSPCloseSocket(s, Errno()) == 0


async def _connected(wsp, small: bool = False) -> tuple[int, int, int]:
    err = Errno()
    lst = tcp(wsp)
    assert wsp.WSPBind(lst, sockaddr_in("127.0.0.1", 0), 16, err) == 0
    assert wsp.WSPListen(lst, 4, err) == 0
    port = wsp.os_socket(lst).getsockname()[1]
    c = tcp(wsp)
    if small:
        _setopt(wsp, c, SOL_SOCKET, SO_SNDBUF, 4096)
    assert await wsp.WSPConnect(c, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err) == 0
    a = await wsp.WSPAccept(lst, None, None, None, 0, err)
    assert a != INVALID_SOCKET
    if small:
        _setopt(wsp, a, SOL_SOCKET, SO_RCVBUF, 4096)
    return lst, c, a


async def test_so_rcvtimeo_ends_a_blocking_recv_with_timedout(wsp):
    lst, c, a = await _connected(wsp)
    _setopt(wsp, c, SOL_SOCKET, SO_RCVTIMEO, 200)
    assert _getopt(wsp, c, SOL_SOCKET, SO_RCVTIMEO) == 200
    err, got = Errno(), Errno()
    t0 = time.monotonic()
    async with asyncio.timeout(10):
        rc = await wsp.WSPRecv(c, [WSABuf(8, bytearray(8))], 1, got, Errno(0), None, None, None, err)
    assert rc == SOCKET_ERROR
    assert err.value == WSAETIMEDOUT
    assert time.monotonic() - t0 >= 0.19
    for h in (a, c, lst):
        wsp.WSPCloseSocket(h, Errno())


async def test_so_sndtimeo_ends_a_blocking_send_with_timedout(wsp):
    lst, c, a = await _connected(wsp, small=True)
    _setopt(wsp, c, SOL_SOCKET, SO_SNDTIMEO, 200)
    err, sent = Errno(), Errno()
    big = bytearray(16 << 20)  # the peer never reads: the send must wait for room
    t0 = time.monotonic()
    async with asyncio.timeout(10):
        rc = await wsp.WSPSend(c, [WSABuf(len(big), big)], 1, sent, 0, None, None, None, err)
    assert rc == SOCKET_ERROR
    assert err.value == WSAETIMEDOUT
    assert time.monotonic() - t0 >= 0.19
    for h in (a, c, lst):
        wsp.WSPCloseSocket(h, Errno())


async def test_no_timeout_when_data_arrives_in_time(wsp):
    lst, c, a = await _connected(wsp)
    _setopt(wsp, c, SOL_SOCKET, SO_RCVTIMEO, 5_000)
    err, got = Errno(), Errno()
    buf = bytearray(8)
    call = asyncio.ensure_future(wsp.WSPRecv(c, [WSABuf(8, buf)], 1, got, Errno(0), None, None, None, err))
    await asyncio.sleep(0)
    assert await wsp.WSPSend(a, [WSABuf(2, bytearray(b"hi"))], 1, Errno(), 0, None, None, None, err) == 0
    assert await call == 0
    assert bytes(buf[: got.value]) == b"hi"
    for h in (a, c, lst):
        wsp.WSPCloseSocket(h, Errno())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_timeouts_through_the_blocking_twin(loop, pending_listener):
    with SyncProvider(loop=loop) as sp:
        s = tcp(sp)
        _setopt(sp, s, IPPROTO_TCP, TCP_MAXRT, 1)
        err = Errno()
        t0 = time.monotonic()
        rc = sp.WSPConnect(
            s, sockaddr_in("127.0.0.1", pending_listener.getsockname()[1]), 16, None, None, None, None, err
        )
        assert (rc, err.value) == (SOCKET_ERROR, WSAETIMEDOUT)
        assert 0.95 <= time.monotonic() - t0 < 5
        # A nonblocking socket never waits, whatever the budget.
        s2 = tcp(sp)
        sp.WSPIoctl(s2, FIONBIO, struct.pack("<I", 1), 4, None, 0, Errno(), None, None, None, err)
        rc = sp.WSPConnect(
            s2, sockaddr_in("127.0.0.1", pending_listener.getsockname()[1]), 16, None, None, None, None, err
        )
        assert (rc, err.value) == (SOCKET_ERROR, WSAEWOULDBLOCK)
