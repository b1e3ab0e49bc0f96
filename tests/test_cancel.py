"""Blocking calls and their cancellation (SEMANTICS.md §5), on asyncio and uvloop.

WSPCancelBlockingCall ends every blocking call in progress with SOCKET_ERROR/WSAEINTR
and fails with WSAEINVAL when there is none; asyncio cancellation of an awaited
blocking call raises CancelledError with the same clean-up; a second blocking call
on a socket that has one gets WSAEINPROGRESS. A blocking call "in progress" is
observed by WSPCancelBlockingCall succeeding, never by sleeping.
"""

from __future__ import annotations

import asyncio
import gc
import os
import struct
import sys
import tracemalloc

import pytest

from wspasync import (
    AF_INET,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SO_RCVBUF,
    SO_SNDBUF,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    TCP_MAXRT,
    WINSOCK_1_1,
    WSAEINPROGRESS,
    WSAEINTR,
    WSAEINVAL,
    WSAENOTSOCK,
    WSAEALREADY,
    WSAEWOULDBLOCK,
    WSANOTINITIALISED,
    Errno,
    FdSet,
    Provider,
    WSABuf,
    sockaddr_in,
)
from wsp_support import close, make_listener, nonblocking, tcp
from wspasync.testing import settle


pytestmark = pytest.mark.timeout(60)


def _connect(wsp: Provider, s: int, port: int, err: Errno):
    return wsp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err)


async def _cancel_when_blocking(wsp: Provider, expected: int = 1) -> None:
    """Call WSPCancelBlockingCall until it finds the calls in progress (bounded)."""
    err = Errno()
    async with asyncio.timeout(5):
        while True:
            if wsp.WSPCancelBlockingCall(err) == 0:
                return
            assert err.value == WSAEINVAL
            await asyncio.sleep(0)


async def _connected_pair(wsp: Provider, small: bool = False) -> tuple[int, int, int]:
    """(listener, client, accepted): a blocking client connected to our own listener."""
    lst, port = make_listener(wsp, backlog=5)
    c = tcp(wsp)
    err = Errno()
    if small:
        for opt in (SO_SNDBUF, SO_RCVBUF):
            wsp.WSPSetSockOpt(c, SOL_SOCKET, opt, struct.pack("<i", 4096), 4, err)
    assert await _connect(wsp, c, port, err) == 0, err
    a = await wsp.WSPAccept(lst, None, None, None, 0, err)
    assert a != INVALID_SOCKET, err
    if small:
        wsp.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, struct.pack("<i", 4096), 4, err)
    return lst, c, a


# -- WSPCancelBlockingCall --------------------------------------------------------------


async def test_cancel_with_nothing_in_progress_is_einval(wsp):
    err = Errno()
    assert wsp.WSPCancelBlockingCall(err) == SOCKET_ERROR
    assert err.value == WSAEINVAL


async def test_cancelled_connect_returns_eintr_and_leaves_socket_only_closable(wsp, pending_listener):
    s = tcp(wsp)
    err = Errno()
    call = asyncio.ensure_future(_connect(wsp, s, pending_listener.getsockname()[1], err))
    await _cancel_when_blocking(wsp)
    assert await call == SOCKET_ERROR
    assert err.value == WSAEINTR
    # WSPCancelBlockingCall page: after a cancelled connect only closesocket is certain.
    again = Errno()
    assert await _connect(wsp, s, pending_listener.getsockname()[1], again) == SOCKET_ERROR
    assert again.value == WSAEINVAL
    # Nothing is left in progress.
    nothing = Errno()
    assert wsp.WSPCancelBlockingCall(nothing) == SOCKET_ERROR
    assert nothing.value == WSAEINVAL  # nothing left in progress
    close(wsp, s)


async def test_cancelled_accept_leaves_listener_usable(wsp):
    lst, port = make_listener(wsp, backlog=5)
    err = Errno()
    call = asyncio.ensure_future(wsp.WSPAccept(lst, None, None, None, 0, err))
    await _cancel_when_blocking(wsp)
    assert await call == INVALID_SOCKET
    assert err.value == WSAEINTR
    # "any operation that was legal before the cancel is legal after" (page).
    c = tcp(wsp)
    assert await _connect(wsp, c, port, err) == 0, err
    a = await wsp.WSPAccept(lst, None, None, None, 0, err)
    assert a != INVALID_SOCKET, err
    close(wsp, a, c, lst)


async def test_cancelled_select_returns_eintr(wsp, pending_listener):
    lst, _ = make_listener(wsp, backlog=5)
    err = Errno()
    readfds = FdSet([lst])
    call = asyncio.ensure_future(wsp.WSPSelect(0, readfds, None, None, None, err))
    await _cancel_when_blocking(wsp)
    assert await call == SOCKET_ERROR
    assert err.value == WSAEINTR
    close(wsp, lst)


async def test_one_cancel_ends_every_blocking_call(wsp, pending_listener):
    lst, _ = make_listener(wsp, backlog=5)
    s = tcp(wsp)
    errs = [Errno() for _ in range(3)]
    calls = [
        asyncio.ensure_future(_connect(wsp, s, pending_listener.getsockname()[1], errs[0])),
        asyncio.ensure_future(wsp.WSPAccept(lst, None, None, None, 0, errs[1])),
        asyncio.ensure_future(wsp.WSPSelect(0, FdSet([lst]), None, None, None, errs[2])),
    ]
    await settle()
    assert wsp.WSPCancelBlockingCall(Errno()) == 0
    results = await asyncio.gather(*calls)
    assert results == [SOCKET_ERROR, INVALID_SOCKET, SOCKET_ERROR]
    assert [e.value for e in errs] == [WSAEINTR] * 3
    close(wsp, s, lst)


async def test_cancelled_recv_returns_eintr(wsp):
    lst, c, a = await _connected_pair(wsp)
    err, got = Errno(), Errno()
    buf = bytearray(16)
    call = asyncio.ensure_future(
        wsp.WSPRecv(c, [WSABuf(16, buf)], 1, got, Errno(0), None, None, None, err)
    )
    await _cancel_when_blocking(wsp)
    assert await call == SOCKET_ERROR
    assert err.value == WSAEINTR
    close(wsp, a, c, lst)


async def test_cancelled_send_returns_eintr(wsp):
    lst, c, a = await _connected_pair(wsp, small=True)
    err, sent = Errno(), Errno()
    big = bytearray(8 << 20)  # far more than both buffers hold: the send must wait
    call = asyncio.ensure_future(
        wsp.WSPSend(c, [WSABuf(len(big), big)], 1, sent, 0, None, None, None, err)
    )
    await _cancel_when_blocking(wsp)
    assert await call == SOCKET_ERROR
    assert err.value == WSAEINTR
    close(wsp, a, c, lst)


async def test_close_interrupts_blocking_connect(wsp, pending_listener):
    s = tcp(wsp)
    err = Errno()
    call = asyncio.ensure_future(_connect(wsp, s, pending_listener.getsockname()[1], err))
    await settle()
    close(wsp, s)
    assert await call == SOCKET_ERROR
    assert err.value == WSAEINTR
    gone = Errno()
    assert wsp.WSPCloseSocket(s, gone) == SOCKET_ERROR and gone.value == WSAENOTSOCK


async def test_cleanup_interrupts_select_on_write_set(loop_errors, pending_listener):
    wsp = Provider()
    s = tcp(wsp)
    err = Errno()
    nonblocking(wsp, s)
    one = Errno()
    assert await _connect(wsp, s, pending_listener.getsockname()[1], one) == SOCKET_ERROR
    assert one.value == WSAEWOULDBLOCK
    call = asyncio.ensure_future(wsp.WSPSelect(0, None, FdSet([s]), None, None, err))
    await settle()
    assert wsp.WSPCleanup(Errno()) == 0
    async with asyncio.timeout(5):
        assert await call == SOCKET_ERROR
    assert err.value == WSAEINTR
    after = Errno()
    assert wsp.WSPCancelBlockingCall(after) == SOCKET_ERROR and after.value == WSANOTINITIALISED


# -- asyncio cancellation ------------------------------------------------------------


async def test_asyncio_cancel_of_blocking_connect_raises_and_cleans_up(wsp, pending_listener):
    s = tcp(wsp)
    port = pending_listener.getsockname()[1]
    task = asyncio.ensure_future(_connect(wsp, s, port, Errno()))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Same clean-up as WSPCancelBlockingCall: nothing in progress, socket only closable.
    nothing = Errno()
    assert wsp.WSPCancelBlockingCall(nothing) == SOCKET_ERROR
    assert nothing.value == WSAEINVAL  # nothing left in progress
    again = Errno()
    assert await _connect(wsp, s, port, again) == SOCKET_ERROR
    assert again.value == WSAEINVAL
    close(wsp, s)


async def test_asyncio_timeout_around_blocking_accept(wsp):
    lst, port = make_listener(wsp, backlog=5)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await wsp.WSPAccept(lst, None, None, None, 0, Errno())
    assert wsp.WSPCancelBlockingCall(Errno()) == SOCKET_ERROR  # nothing left behind
    err = Errno()
    c = tcp(wsp)
    assert await _connect(wsp, c, port, err) == 0
    a = await wsp.WSPAccept(lst, None, None, None, 0, err)
    assert a != INVALID_SOCKET, err
    close(wsp, a, c, lst)


async def test_asyncio_cancel_of_blocking_recv(wsp):
    lst, c, a = await _connected_pair(wsp)
    buf = bytearray(8)
    task = asyncio.ensure_future(
        wsp.WSPRecv(c, [WSABuf(8, buf)], 1, Errno(), Errno(0), None, None, None, Errno())
    )
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    nothing = Errno()
    assert wsp.WSPCancelBlockingCall(nothing) == SOCKET_ERROR
    assert nothing.value == WSAEINVAL  # nothing left in progress
    close(wsp, a, c, lst)


# -- WSAEINPROGRESS ------------------------------------------------------------------


async def test_second_blocking_connect_on_socket_is_inprogress(wsp, pending_listener):
    s = tcp(wsp)
    port = pending_listener.getsockname()[1]
    first = Errno()
    call = asyncio.ensure_future(_connect(wsp, s, port, first))
    await settle()
    second = Errno()
    assert await _connect(wsp, s, port, second) == SOCKET_ERROR
    assert second.value == WSAEINPROGRESS
    assert wsp.WSPCancelBlockingCall(Errno()) == 0
    assert await call == SOCKET_ERROR and first.value == WSAEINTR
    close(wsp, s)


async def test_second_blocking_accept_on_listener_is_inprogress(wsp):
    lst, _ = make_listener(wsp, backlog=5)
    call = asyncio.ensure_future(wsp.WSPAccept(lst, None, None, None, 0, Errno()))
    await settle()
    err = Errno()
    assert await wsp.WSPAccept(lst, None, None, None, 0, err) == INVALID_SOCKET
    assert err.value == WSAEINPROGRESS
    assert wsp.WSPCancelBlockingCall(Errno()) == 0
    assert await call == INVALID_SOCKET
    close(wsp, lst)


async def test_open_stream_refused_while_blocking_call_in_progress(wsp):
    from wspasync import WSAError

    lst, c, a = await _connected_pair(wsp)
    task = asyncio.ensure_future(
        wsp.WSPRecv(c, [WSABuf(8, bytearray(8))], 1, Errno(), Errno(0), None, None, None, Errno())
    )
    await settle()
    with pytest.raises(WSAError) as info:
        await wsp.open_stream(c)
    assert info.value.code == WSAEINPROGRESS
    assert wsp.WSPCancelBlockingCall(Errno()) == 0
    await task
    close(wsp, a, c, lst)


# -- Winsock 1.1 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "code"),
    [(WINSOCK_1_1, WSAEINVAL), (0x0001, WSAEINVAL), (0x0002, WSAEALREADY), (0x0102, WSAEALREADY), (0x0202, WSAEALREADY)],
)
async def test_connect_while_connecting_by_version(loop_errors, pending_listener, version, code):
    async with Provider(version=version) as wsp:
        s = tcp(wsp)
        err = Errno()
        nonblocking(wsp, s)
        port = pending_listener.getsockname()[1]
        assert await _connect(wsp, s, port, err) == SOCKET_ERROR and err.value == WSAEWOULDBLOCK
        assert await _connect(wsp, s, port, err) == SOCKET_ERROR
        assert err.value == code


# -- 10,000 cycles leave descriptors and memory flat ----------------------------------


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_ten_thousand_cancel_close_cycles_are_flat(loop_errors, pending_listener):
    """Blocking connect to a full backlog, then cancel, then close: 10,000 times.

    The cycles rotate through the three clean-up routes: WSPCancelBlockingCall, asyncio
    cancellation, and WSPCloseSocket while blocked. Each socket gets TCP_MAXRT = 1 s:
    the engine keeps a stale connect-deadline entry (and the record it names) until
    that deadline, so memory is compared once the last deadline has passed. Descriptor
    count and allocated blocks must come back flat; tracemalloc watches the last
    2,000 cycles.
    """
    port = pending_listener.getsockname()[1]
    name = sockaddr_in("127.0.0.1", port)
    one_second = struct.pack("<i", 1)

    async def cycles(wsp: Provider, n: int) -> None:
        err = Errno()
        for i in range(n):
            s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
            wsp.WSPSetSockOpt(s, IPPROTO_TCP, TCP_MAXRT, one_second, 4, err)
            call = asyncio.ensure_future(wsp.WSPConnect(s, name, 16, None, None, None, None, err))
            await asyncio.sleep(0)
            route = i % 3
            if route == 0:
                assert wsp.WSPCancelBlockingCall(Errno()) == 0
                assert await call == SOCKET_ERROR
            elif route == 1:
                call.cancel()
                try:
                    await call
                except asyncio.CancelledError:
                    pass
            else:
                wsp.WSPCloseSocket(s, Errno())
                assert await call == SOCKET_ERROR
                continue
            assert wsp.WSPCloseSocket(s, Errno()) == 0

    async def settled() -> tuple[int, int]:
        await asyncio.sleep(1.1)  # every TCP_MAXRT deadline of the cycles has passed
        await settle()
        gc.collect()
        return _fd_count(), sys.getallocatedblocks()

    async with Provider() as wsp:
        await cycles(wsp, 500)  # warm caches, free lists, the loop's own structures
        fds, blocks = await settled()
        await cycles(wsp, 8_000)
        tracemalloc.start()
        try:
            traced, _ = tracemalloc.get_traced_memory()
            await cycles(wsp, 2_000)
            fds_after, blocks_after = await settled()
            traced_after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(wsp) == 0
        assert fds_after == fds
        # One leaked object per cycle would be 10,000 blocks / 2,000 traced objects.
        assert blocks_after - blocks < 1_000, (blocks, blocks_after)
        assert traced_after - traced < 32_000, (traced, traced_after)
