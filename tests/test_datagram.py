"""Datagram sockets: SEMANTICS.md §2 on both loops. Loopback only; the broadcast case
is refused before anything reaches the wire and is never sent."""

from __future__ import annotations

import asyncio

import socket
import struct

from wspasync import (
    AF_INET,
    FIONBIO,
    MSG_PARTIAL,
    SO_BROADCAST,
    SOCK_DGRAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    WSAEACCES,
    WSAEADDRNOTAVAIL,
    WSAEMSGSIZE,
    WSAENOTCONN,
    WSAEWOULDBLOCK,
    Errno,
    WSABuf,
    parse_sockaddr,
    sockaddr_in,
)
from wspasync.testing import settle


def udp(wsp, nonblocking=True):
    e = Errno()
    s = wsp.WSPSocket(AF_INET, SOCK_DGRAM, 0, None, 0, 0, e)
    if nonblocking:
        wsp.WSPIoctl(s, FIONBIO, struct.pack("<I", 1), 4, None, 0, Errno(), None, None, None, e)
    return s


def plain_udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def recv(wsp, s, size=64):
    buf = bytearray(size)
    n, f, e = Errno(), Errno(0), Errno()
    rc = await wsp.WSPRecv(s, [WSABuf(size, buf)], 1, n, f, None, None, None, e)
    return (bytes(buf[: n.value]) if rc == 0 else rc), e.value


async def recvfrom(wsp, s, size=64):
    buf, name, namelen = bytearray(size), bytearray(16), Errno(16)
    n, f, e = Errno(), Errno(0), Errno()
    rc = await wsp.WSPRecvFrom(s, [WSABuf(size, buf)], 1, n, f, name, namelen, None, None, None, e)
    if rc:
        return rc, e.value
    return bytes(buf[: n.value]), parse_sockaddr(bytes(name))


async def send(wsp, s, data):
    n, e = Errno(), Errno()
    rc = await wsp.WSPSend(s, [WSABuf(len(data), bytearray(data))], 1, n, 0, None, None, None, e)
    return n.value if rc == 0 else (rc, e.value)


async def sendto(wsp, s, data, name):
    n, e = Errno(), Errno()
    rc = await wsp.WSPSendTo(s, [WSABuf(len(data), bytearray(data))], 1, n, 0, name, len(name), None, None, None, e)
    return n.value if rc == 0 else (rc, e.value)


async def connect(wsp, s, name):
    e = Errno()
    rc = await wsp.WSPConnect(s, name, len(name), None, None, None, None, e)
    return rc if rc == 0 else (rc, e.value)


async def test_connect_sets_peer_at_once_and_binds(wsp):
    s = udp(wsp)  # nonblocking: still 0 at once
    peer = plain_udp()
    try:
        assert await connect(wsp, s, sockaddr_in(*peer.getsockname())) == 0
        name, namelen = bytearray(16), Errno(16)
        assert wsp.WSPGetPeerName(s, name, namelen, Errno()) == 0
        assert parse_sockaddr(bytes(name)) == (AF_INET, *peer.getsockname())
        assert wsp.WSPGetSockName(s, name, Errno(16), Errno()) == 0
        family, host, port = parse_sockaddr(bytes(name))
        assert host == "127.0.0.1" and port != 0
        assert await send(wsp, s, b"ping") == 4
        data, addr = peer.recvfrom(64)
        assert data == b"ping" and addr == (host, port)
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())


async def test_other_senders_filtered(wsp):
    s = udp(wsp)
    a, b = plain_udp(), plain_udp()
    try:
        assert await connect(wsp, s, sockaddr_in(*a.getsockname())) == 0
        me = wsp.os_socket(s).getsockname()
        b.sendto(b"stranger", me)
        a.sendto(b"friend", me)
        await settle()
        assert await recvfrom(wsp, s) == (b"friend", (AF_INET, *a.getsockname()))
        assert await recv(wsp, s) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    finally:
        a.close()
        b.close()
        wsp.WSPCloseSocket(s, Errno())


async def test_new_name_discards_queued(wsp):
    s = udp(wsp)
    a, b = plain_udp(), plain_udp()
    try:
        assert await connect(wsp, s, sockaddr_in(*a.getsockname())) == 0
        me = wsp.os_socket(s).getsockname()
        a.sendto(b"old", me)
        await settle()
        assert await connect(wsp, s, sockaddr_in(*b.getsockname())) == 0
        assert await recv(wsp, s) == (SOCKET_ERROR, WSAEWOULDBLOCK)
        b.sendto(b"new", me)
        await settle()
        assert await recv(wsp, s) == (b"new", 0)
    finally:
        a.close()
        b.close()
        wsp.WSPCloseSocket(s, Errno())


async def test_zero_name_and_af_unspec_disconnect(wsp):
    peer, other = plain_udp(), plain_udp()
    try:
        for zero in (sockaddr_in("0.0.0.0", 0), b"\0" * 16):
            s = udp(wsp)
            assert await connect(wsp, s, sockaddr_in(*peer.getsockname())) == 0
            assert await connect(wsp, s, zero) == 0
            e = Errno()
            assert wsp.WSPGetPeerName(s, bytearray(16), Errno(16), e) == SOCKET_ERROR
            assert e.value == WSAENOTCONN
            assert await send(wsp, s, b"x") == (SOCKET_ERROR, WSAENOTCONN)
            assert await recv(wsp, s) == (SOCKET_ERROR, WSAENOTCONN)
            # sendto and recvfrom still work, with any peer.
            assert await sendto(wsp, s, b"hi", sockaddr_in(*other.getsockname())) == 2
            data, addr = other.recvfrom(64)
            assert data == b"hi"
            other.sendto(b"back", addr)
            await settle()
            assert await recvfrom(wsp, s) == (b"back", (AF_INET, *other.getsockname()))
            wsp.WSPCloseSocket(s, Errno())
    finally:
        peer.close()
        other.close()


async def test_send_unconnected(wsp):
    s = udp(wsp)
    assert await send(wsp, s, b"x") == (SOCKET_ERROR, WSAENOTCONN)
    wsp.WSPCloseSocket(s, Errno())


async def test_broadcast_refused_without_so_broadcast(wsp):
    """Only the refusal is tested: the provider refuses before the kernel sees it."""
    s = udp(wsp)
    bcast = sockaddr_in("255.255.255.255", 9)
    assert await sendto(wsp, s, b"x", bcast) == (SOCKET_ERROR, WSAEACCES)
    assert await connect(wsp, s, bcast) == (SOCKET_ERROR, WSAEACCES)
    assert await sendto(wsp, s, b"x", sockaddr_in("0.0.0.0", 9)) == (SOCKET_ERROR, WSAEADDRNOTAVAIL)
    wsp.WSPCloseSocket(s, Errno())


async def test_so_broadcast_option_round_trip(wsp):
    s = udp(wsp)
    on = struct.pack("<I", 1)
    assert wsp.WSPSetSockOpt(s, SOL_SOCKET, SO_BROADCAST, on, 4, Errno()) == 0
    out, outlen = bytearray(4), Errno(4)
    assert wsp.WSPGetSockOpt(s, SOL_SOCKET, SO_BROADCAST, out, outlen, Errno()) == 0
    assert struct.unpack("<I", out)[0] == 1
    wsp.WSPCloseSocket(s, Errno())


async def test_datagram_too_large_for_buffers(wsp):
    s = udp(wsp)
    peer = plain_udp()
    try:
        assert await connect(wsp, s, sockaddr_in(*peer.getsockname())) == 0
        peer.sendto(b"0123456789", wsp.os_socket(s).getsockname())
        peer.sendto(b"next", wsp.os_socket(s).getsockname())
        await settle()
        buf, n, f, e = bytearray(4), Errno(), Errno(0), Errno()
        rc = await wsp.WSPRecv(s, [WSABuf(4, buf)], 1, n, f, None, None, None, e)
        assert (rc, e.value, n.value, bytes(buf), f.value) == (
            SOCKET_ERROR, WSAEMSGSIZE, 4, b"0123", MSG_PARTIAL,
        )
        assert await recv(wsp, s) == (b"next", 0)  # the rest was discarded
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())


async def test_caller_data_ignored(wsp):
    s = udp(wsp)
    peer = plain_udp()
    try:
        name = sockaddr_in(*peer.getsockname())
        e = Errno()
        caller = WSABuf(3, bytearray(b"abc"))
        assert await wsp.WSPConnect(s, name, 16, caller, None, None, None, e) == 0
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())


async def test_blocking_recvfrom_waits(wsp):
    s = udp(wsp, nonblocking=False)
    e = Errno()
    assert wsp.WSPBind(s, sockaddr_in("127.0.0.1", 0), 16, e) == 0
    peer = plain_udp()
    try:
        task = asyncio.ensure_future(recvfrom(wsp, s))
        await settle()
        assert not task.done()
        peer.sendto(b"wake", wsp.os_socket(s).getsockname())
        async with asyncio.timeout(5):
            assert await task == (b"wake", (AF_INET, *peer.getsockname()))
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, e)
