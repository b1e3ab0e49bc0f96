"""WSPSelect for data, closes, resets, OOB, listeners and datagram sockets (both loops).

Scenarios after Wine's dlls/ws2_32/tests/sock.c test_select (written anew): OOB data
is exceptional unless SO_OOBINLINE; a graceful close and a reset are readable; a socket
closed while select waits is readable when in readfds; the TimeVal is never written.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from wspasync import (
    AF_INET,
    SO_OOBINLINE,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    WSAENOTSOCK,
    WSAEWOULDBLOCK,
    Errno,
    TimeVal,
    WSABuf,
    sockaddr_in,
)
from wspasync.testing import settle
from wsp_support import accepted_pair, close, nonblocking, peer_recv_until, select


async def test_connected_levels(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        assert await select(wsp, [s], [s], [s]) == (1, [[], [s], []])
        peer.send(b"1234")
        await settle()
        assert await select(wsp, [s], [s], [s]) == (2, [[s], [s], []])
        buf = bytearray(8)
        await wsp.WSPRecv(s, [WSABuf(8, buf)], 1, Errno(), Errno(0), None, None, None, Errno())
        assert await select(wsp, [s], [], [s]) == (0, [[], [], []])
        wsp.WSPCloseSocket(s, Errno())


async def test_oob_is_exceptional_unless_inline(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        peer.send(b"A", socket.MSG_OOB)
        await settle()
        assert await select(wsp, [s], [], [s]) == (1, [[], [], [s]])
        buf = bytearray(1)
        flags = Errno(1)  # MSG_OOB
        assert await wsp.WSPRecv(s, [WSABuf(1, buf)], 1, Errno(), flags, None, None, None, Errno()) == 0
        on = struct.pack("<I", 1)
        assert wsp.WSPSetSockOpt(s, SOL_SOCKET, SO_OOBINLINE, on, 4, Errno()) == 0
        peer.send(b"B", socket.MSG_OOB)
        await settle()
        assert await select(wsp, [s], [], [s]) == (1, [[s], [], []])
        wsp.WSPCloseSocket(s, Errno())


async def test_graceful_close_readable(wsp):
    s, peer = await accepted_pair(wsp)
    peer.close()
    await settle()
    assert await select(wsp, [s], [], [s]) == (1, [[s], [], []])
    wsp.WSPCloseSocket(s, Errno())


async def test_reset_readable(wsp):
    s, peer = await accepted_pair(wsp)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    await settle()
    assert (await select(wsp, [s], [], [s]))[1][0] == [s]
    wsp.WSPCloseSocket(s, Errno())


async def test_select_waits_for_data(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        task = asyncio.ensure_future(select(wsp, [s], [], [], None))
        await settle()
        assert not task.done()
        peer.send(b"x")
        async with asyncio.timeout(5):
            assert await task == (1, [[s], [], []])
        wsp.WSPCloseSocket(s, Errno())


async def test_select_waits_for_close(wsp):
    s, peer = await accepted_pair(wsp)
    task = asyncio.ensure_future(select(wsp, [s], [], [], None))
    await settle()
    assert not task.done()
    peer.close()
    async with asyncio.timeout(5):
        assert await task == (1, [[s], [], []])
    wsp.WSPCloseSocket(s, Errno())


async def test_select_waits_for_room(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        nonblocking(wsp, s)
        chunk = bytearray(65536)
        sent, total, err = Errno(), 0, Errno()
        while await wsp.WSPSend(s, [WSABuf(len(chunk), chunk)], 1, sent, 0, None, None, None, err) == 0:
            total += sent.value
        assert err.value == WSAEWOULDBLOCK
        assert await select(wsp, [], [s], []) == (0, [[], [], []])
        task = asyncio.ensure_future(select(wsp, [], [s], [], None))
        await settle()
        assert not task.done()
        async with asyncio.timeout(10):
            # Drain everything that was queued; each read awaits its data.
            assert len(await peer_recv_until(peer, total)) == total
            assert await task == (1, [[], [s], []])
        close(wsp, s)


async def test_closed_while_waiting_is_readable(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        task = asyncio.ensure_future(select(wsp, [s], [], [s], None))
        await settle()
        wsp.WSPCloseSocket(s, Errno())
        async with asyncio.timeout(5):
            assert await task == (1, [[s], [], []])


async def test_closed_while_waiting_only_in_exceptfds(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        task = asyncio.ensure_future(select(wsp, [], [], [s], None))
        await settle()
        wsp.WSPCloseSocket(s, Errno())
        async with asyncio.timeout(5):
            assert await task == (SOCKET_ERROR, WSAENOTSOCK)


async def test_timeout_and_timeval_untouched(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        tv = TimeVal(0, 50_000)
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await select(wsp, [s], [], [s], tv) == (0, [[], [], []])
        assert loop.time() - start >= 0.045
        assert (tv.tv_sec, tv.tv_usec) == (0, 50_000)
        wsp.WSPCloseSocket(s, Errno())


async def test_duplicates_and_double_count(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        peer.send(b"x")
        await settle()
        assert await select(wsp, [s, s, s], [s, s]) == (2, [[s], [s], []])
        wsp.WSPCloseSocket(s, Errno())


async def test_listener_pending_connection(wsp):
    e = Errno()
    lst = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
    wsp.WSPBind(lst, sockaddr_in("127.0.0.1", 0), 16, e)
    wsp.WSPListen(lst, 5, e)
    assert await select(wsp, [lst], [lst], [lst]) == (0, [[], [], []])
    peer = socket.create_connection(wsp.os_socket(lst).getsockname())
    try:
        async with asyncio.timeout(5):
            assert await select(wsp, [lst], [lst], [lst], None) == (1, [[lst], [], []])
    finally:
        peer.close()
        wsp.WSPCloseSocket(lst, e)


async def test_udp_levels(wsp):
    e = Errno()
    s = wsp.WSPSocket(AF_INET, SOCK_DGRAM, 0, None, 0, 0, e)
    assert await select(wsp, [s], [s], [s]) == (1, [[], [s], []])  # unbound: writable
    assert wsp.WSPBind(s, sockaddr_in("127.0.0.1", 0), 16, e) == 0
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        peer.sendto(b"d", wsp.os_socket(s).getsockname())
        await settle()
        assert await select(wsp, [s], [s], [s]) == (2, [[s], [s], []])
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, e)
