"""WSPSend / WSPRecv / WSPShutdown on stream sockets, blocking and nonblocking, both loops."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from wspasync import (
    AF_INET,
    MSG_OOB,
    MSG_PEEK,
    SD_BOTH,
    SD_RECEIVE,
    SD_SEND,
    SIOCATMARK,
    SO_OOBINLINE,
    SO_RCVTIMEO,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    WSAECONNRESET,
    WSAEINTR,
    WSAEINVAL,
    WSAENOTCONN,
    WSAEOPNOTSUPP,
    WSAESHUTDOWN,
    WSAETIMEDOUT,
    WSAEWOULDBLOCK,
    Errno,
    WSABuf,
    sockaddr_in,
)
from wspasync.testing import settle
from wsp_support import accepted_pair, nonblocking, peer_recv_until


async def recv(wsp, s, size, flags=0):
    buf = bytearray(size)
    n, f, e = Errno(), Errno(flags), Errno()
    rc = await wsp.WSPRecv(s, [WSABuf(size, buf)], 1, n, f, None, None, None, e)
    if rc:
        return rc, e.value
    return bytes(buf[: n.value]), f.value


async def send(wsp, s, data, flags=0):
    n, e = Errno(), Errno()
    rc = await wsp.WSPSend(s, [WSABuf(len(data), bytearray(data))], 1, n, flags, None, None, None, e)
    return n.value if rc == 0 else (rc, e.value)


async def test_send_recv_round_trip(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        assert await send(wsp, s, b"hello") == 5
        assert peer.recv(10) == b"hello"
        peer.send(b"world")
        assert await recv(wsp, s, 10) == (b"world", 0)
        wsp.WSPCloseSocket(s, Errno())


async def test_scatter_gather(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        n, e = Errno(), Errno()
        bufs = [WSABuf(3, bytearray(b"abcXX")), WSABuf(0, None), WSABuf(2, bytearray(b"de"))]
        assert await wsp.WSPSend(s, bufs, 3, n, 0, None, None, None, e) == 0
        assert n.value == 5 and peer.recv(10) == b"abcde"
        peer.send(b"123456")
        a, b = bytearray(2), bytearray(10)
        flags = Errno(0)
        rc = await wsp.WSPRecv(s, [WSABuf(2, a), WSABuf(10, b)], 2, n, flags, None, None, None, e)
        assert rc == 0 and n.value == 6 and a == b"12" and b[:4] == b"3456"
        wsp.WSPCloseSocket(s, Errno())


async def test_peek_leaves_data(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        peer.send(b"peek")
        await settle()
        assert await recv(wsp, s, 10, MSG_PEEK) == (b"peek", 0)
        assert await recv(wsp, s, 10) == (b"peek", 0)
        wsp.WSPCloseSocket(s, Errno())


async def test_nonblocking_recv_would_block(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        nonblocking(wsp, s)
        assert await recv(wsp, s, 10) == (SOCKET_ERROR, WSAEWOULDBLOCK)
        wsp.WSPCloseSocket(s, Errno())


async def test_blocking_recv_waits_for_data(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        task = asyncio.ensure_future(recv(wsp, s, 10))
        await settle()
        assert not task.done()
        peer.send(b"late")
        async with asyncio.timeout(5):
            assert await task == (b"late", 0)
        wsp.WSPCloseSocket(s, Errno())


async def test_blocking_send_sends_everything(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        payload = bytes(range(256)) * 16384  # 4 MiB: more than the socket buffers hold
        task = asyncio.ensure_future(send(wsp, s, payload))
        async with asyncio.timeout(20):
            got = await peer_recv_until(peer, len(payload))
            assert await task == len(payload)
        assert got == payload
        wsp.WSPCloseSocket(s, Errno())


async def test_nonblocking_send_fills_then_would_block(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        nonblocking(wsp, s)
        total = 0
        while True:
            r = await send(wsp, s, b"y" * 65536)
            if isinstance(r, tuple):
                assert r == (SOCKET_ERROR, WSAEWOULDBLOCK)
                break
            total += r
        assert total > 0
        wsp.WSPCloseSocket(s, Errno())


async def test_recv_zero_after_graceful_close(wsp):
    s, peer = await accepted_pair(wsp)
    peer.send(b"last")
    peer.close()
    assert await recv(wsp, s, 10) == (b"last", 0)
    assert await recv(wsp, s, 10) == (b"", 0)
    assert await recv(wsp, s, 10) == (b"", 0)
    wsp.WSPCloseSocket(s, Errno())


async def test_reset_gives_connreset(wsp):
    s, peer = await accepted_pair(wsp)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    await settle()
    assert await recv(wsp, s, 10) == (SOCKET_ERROR, WSAECONNRESET)
    assert await recv(wsp, s, 10) == (SOCKET_ERROR, WSAECONNRESET)
    assert (await send(wsp, s, b"x"))[1] == WSAECONNRESET
    wsp.WSPCloseSocket(s, Errno())


async def test_not_connected(wsp, pending_listener):
    e = Errno()
    s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
    assert await recv(wsp, s, 10) == (SOCKET_ERROR, WSAENOTCONN)
    assert await send(wsp, s, b"x") == (SOCKET_ERROR, WSAENOTCONN)
    nonblocking(wsp, s)
    port = pending_listener.getsockname()[1]
    await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, e)
    assert e.value == WSAEWOULDBLOCK
    assert await recv(wsp, s, 10) == (SOCKET_ERROR, WSAENOTCONN)  # still connecting
    assert await send(wsp, s, b"x") == (SOCKET_ERROR, WSAENOTCONN)
    assert wsp.WSPShutdown(s, SD_SEND, e) == SOCKET_ERROR and e.value == WSAENOTCONN
    wsp.WSPCloseSocket(s, e)


async def test_shutdown(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        e = Errno()
        assert wsp.WSPShutdown(s, SD_SEND, e) == 0
        assert peer.recv(10) == b""  # the FIN went out
        assert await send(wsp, s, b"x") == (SOCKET_ERROR, WSAESHUTDOWN)
        peer.send(b"still")
        assert await recv(wsp, s, 10) == (b"still", 0)
        assert wsp.WSPShutdown(s, SD_RECEIVE, e) == 0
        assert await recv(wsp, s, 10) == (SOCKET_ERROR, WSAESHUTDOWN)
        assert wsp.WSPShutdown(s, 7, e) == SOCKET_ERROR and e.value == WSAEINVAL
        assert wsp.WSPShutdown(s, SD_BOTH, e) == 0
        wsp.WSPCloseSocket(s, e)


async def test_oob_and_atmark(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        out = bytearray(4)

        def atmark():
            assert wsp.WSPIoctl(s, SIOCATMARK, None, 0, out, 4, Errno(), None, None, None, Errno()) == 0
            return struct.unpack("<I", out)[0]

        assert atmark() == 1
        peer.send(b"ab")
        peer.send(b"!", socket.MSG_OOB)
        await settle()
        assert atmark() == 0
        assert await recv(wsp, s, 1, MSG_OOB) == (b"!", 0)
        assert atmark() == 1
        assert await recv(wsp, s, 10) == (b"ab", 0)
        wsp.WSPCloseSocket(s, Errno())


async def test_oobinline(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        on = struct.pack("<I", 1)
        assert wsp.WSPSetSockOpt(s, SOL_SOCKET, SO_OOBINLINE, on, 4, Errno()) == 0
        peer.send(b"a", socket.MSG_OOB)
        await settle()
        assert await recv(wsp, s, 1, MSG_OOB) == (SOCKET_ERROR, WSAEINVAL)
        assert await recv(wsp, s, 10) == (b"a", 0)
        wsp.WSPCloseSocket(s, Errno())


async def test_send_oob(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        assert await send(wsp, s, b"u", MSG_OOB) == 1
        await settle()
        assert peer.recv(1, socket.MSG_OOB) == b"u"
        assert await send(wsp, s, b"x", 0x40) == (SOCKET_ERROR, WSAEOPNOTSUPP)
        wsp.WSPCloseSocket(s, Errno())


async def test_rcvtimeo(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        assert wsp.WSPSetSockOpt(s, SOL_SOCKET, SO_RCVTIMEO, struct.pack("<I", 30), 4, Errno()) == 0
        async with asyncio.timeout(5):
            assert await recv(wsp, s, 10) == (SOCKET_ERROR, WSAETIMEDOUT)
        wsp.WSPCloseSocket(s, Errno())


async def test_cancel_blocking_recv(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        task = asyncio.ensure_future(recv(wsp, s, 10))
        await settle()
        assert wsp.WSPCancelBlockingCall(Errno()) == 0
        async with asyncio.timeout(5):
            assert await task == (SOCKET_ERROR, WSAEINTR)
        wsp.WSPCloseSocket(s, Errno())


async def test_close_during_blocking_recv(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        task = asyncio.ensure_future(recv(wsp, s, 10))
        await settle()
        assert wsp.WSPCloseSocket(s, Errno()) == 0
        async with asyncio.timeout(5):
            assert await task == (SOCKET_ERROR, WSAEINTR)


async def test_overlapped_refused(wsp):
    s, peer = await accepted_pair(wsp)
    with peer:
        e = Errno()
        buf = [WSABuf(1, bytearray(1))]
        assert await wsp.WSPSend(s, buf, 1, Errno(), 0, object(), None, None, e) == SOCKET_ERROR
        assert e.value == WSAEINVAL
        assert await wsp.WSPRecv(s, buf, 1, Errno(), Errno(), None, object(), None, e) == SOCKET_ERROR
        assert e.value == WSAEINVAL
        wsp.WSPCloseSocket(s, e)


@pytest.mark.parametrize("count", [10, 200])
async def test_many_messages_in_order(wsp, count):
    s, peer = await accepted_pair(wsp)
    with peer:
        expect = b"".join(b"%06d" % i for i in range(count))
        for i in range(count):
            assert await send(wsp, s, b"%06d" % i) == 6
        async with asyncio.timeout(5):
            assert await peer_recv_until(peer, len(expect)) == expect
        wsp.WSPCloseSocket(s, Errno())
