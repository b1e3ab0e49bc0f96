"""Bad input at the data-transfer entry points: an error code, never an exception.

Hypothesis draws short call sequences against WSPSend, WSPSendTo, WSPRecv, WSPRecvFrom,
WSPShutdown, SIOCATMARK and datagram WSPConnect, with arguments that are mostly wrong
(wrong types, WSABuf lengths past their buffers, read-only receive buffers, counts past
the array, bad flag boxes, short or garbage names, dead handles) and sometimes right.
After every call: no Python exception, the return is 0 or SOCKET_ERROR, lpErrno holds
a Winsock code, and no call suspends (every socket is nonblocking).

Loopback only: every drawn name that is an IPv4/IPv6 sockaddr is rewritten to a
loopback sink before it is passed in (or left all-zero, or the limited broadcast
address, which the provider refuses before the kernel sees it).
"""

from __future__ import annotations

import asyncio
import socket
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wspasync import (
    AF_INET,
    AF_INET6,
    FIONBIO,
    SIOCATMARK,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOCKET_ERROR,
    ErrorCode,
    Errno,
    Provider,
    WSABuf,
    sockaddr_in,
    sockaddr_in6,
)

CODES = {int(c) for c in ErrorCode}


class Junk:
    """An object with no buffer and no .value."""


def garbage():
    return st.one_of(
        st.none(),
        st.integers(-(2**64), 2**64),
        st.booleans(),
        st.text(max_size=4),
        st.binary(max_size=8),
        st.builds(Junk),
        st.floats(allow_nan=True),
    )


def wsabufs():
    buf = st.one_of(
        st.builds(bytearray, st.binary(max_size=16)),
        st.binary(max_size=16),
        st.none(),
        st.builds(lambda b: memoryview(b).toreadonly(), st.binary(max_size=16)),
        garbage(),
    )
    one = st.one_of(st.builds(WSABuf, st.integers(-4, 24), buf), garbage())
    return st.one_of(st.lists(one, max_size=3), st.tuples(one), garbage())


def boxes():
    return st.one_of(st.builds(Errno, st.integers(-(2**33), 2**33)), garbage())


def names(port4: int, port6: int):
    def loopback(raw: bytes) -> bytes:
        if len(raw) >= 16 and raw[0] | raw[1] << 8 == AF_INET:
            return sockaddr_in("127.0.0.1", port4) + raw[16:]
        if len(raw) >= 28 and raw[0] | raw[1] << 8 == AF_INET6:
            return sockaddr_in6("::1", port6) + raw[28:]
        return raw

    return st.one_of(
        st.binary(max_size=32).map(loopback),
        st.just(sockaddr_in("127.0.0.1", port4)),
        st.just(sockaddr_in6("::1", port6)),
        st.just(sockaddr_in("0.0.0.0", 0)),
        st.just(b"\0" * 16),
        st.just(sockaddr_in("255.255.255.255", 9)),
        st.just(sockaddr_in("127.0.0.1", port4)[:10]),
        garbage().filter(lambda v: not isinstance(v, bytes)),
    )


def call_plans(port4: int, port6: int):
    handle = st.sampled_from(["stream", "udp", "unconnected", "dead", "garbage"])
    count = st.one_of(st.integers(-2, 4), garbage())
    flags = st.one_of(st.sampled_from([0, 1, 2, 3, 0x8000, 0x40, -1]), garbage())
    name = names(port4, port6)
    length = st.one_of(st.sampled_from([0, 2, 15, 16, 27, 28, 64]), garbage())
    return st.one_of(
        st.tuples(st.just("send"), handle, wsabufs(), count, boxes(), flags, garbage()),
        st.tuples(st.just("sendto"), handle, wsabufs(), count, boxes(), flags, name, length),
        st.tuples(st.just("recv"), handle, wsabufs(), count, boxes(), boxes(), garbage()),
        st.tuples(st.just("recvfrom"), handle, wsabufs(), count, boxes(), boxes(),
                  st.one_of(st.builds(bytearray, st.integers(0, 32)), garbage()), boxes()),
        st.tuples(st.just("shutdown"), handle, st.one_of(st.integers(-1, 3), garbage())),
        st.tuples(st.just("atmark"), handle, st.one_of(st.builds(bytearray, st.integers(0, 8)), garbage()),
                  st.one_of(st.integers(-1, 8), garbage())),
        st.tuples(st.just("connect"), st.sampled_from(["udp", "dead"]), name, length),
    )


async def run_call(wsp, handles, plan) -> tuple[int, Errno]:
    kind, which, *args = plan
    s = handles.get(which, which == "garbage" and "x" or 0xDEAD)
    e = Errno(0)
    if kind == "send":
        bufs, count, nbox, flags, overlapped = args
        rc = await wsp.WSPSend(s, bufs, count, nbox, flags, None if overlapped is None else overlapped, None, None, e)
    elif kind == "sendto":
        bufs, count, nbox, flags, name, namelen = args
        rc = await wsp.WSPSendTo(s, bufs, count, nbox, flags, name, namelen, None, None, None, e)
    elif kind == "recv":
        bufs, count, nbox, fbox, overlapped = args
        rc = await wsp.WSPRecv(s, bufs, count, nbox, fbox, None if overlapped is None else overlapped, None, None, e)
    elif kind == "recvfrom":
        bufs, count, nbox, fbox, frm, fromlen = args
        rc = await wsp.WSPRecvFrom(s, bufs, count, nbox, fbox, frm, fromlen, None, None, None, e)
    elif kind == "shutdown":
        rc = wsp.WSPShutdown(s, args[0], e)
    elif kind == "atmark":
        out, outlen = args
        rc = wsp.WSPIoctl(s, SIOCATMARK, None, 0, out, outlen, Errno(), None, None, None, e)
    else:
        name, namelen = args
        rc = await wsp.WSPConnect(s, name, namelen, None, None, None, None, e)
    return rc, e


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_bad_input_transfer(loop_errors, data):
    sink4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink4.bind(("127.0.0.1", 0))
    sink6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sink6.bind(("::1", 0))
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    wsp = Provider()
    peer = None
    try:
        e = Errno()
        on = struct.pack("<I", 1)
        stream = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
        assert await wsp.WSPConnect(stream, sockaddr_in(*lst.getsockname()), 16, None, None, None, None, e) == 0
        peer, _ = lst.accept()
        peer.send(b"some data\0")
        udp = wsp.WSPSocket(AF_INET, SOCK_DGRAM, 0, None, 0, 0, e)
        unconnected = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
        dead = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
        wsp.WSPCloseSocket(dead, e)
        for h in (stream, udp, unconnected):
            assert wsp.WSPIoctl(h, FIONBIO, on, 4, None, 0, Errno(), None, None, None, e) == 0
        handles = {"stream": stream, "udp": udp, "unconnected": unconnected, "dead": dead}
        plans = data.draw(st.lists(call_plans(sink4.getsockname()[1], sink6.getsockname()[1]), min_size=1, max_size=6))
        for plan in plans:
            async with asyncio.timeout(2):  # nonblocking sockets never suspend for long
                rc, err = await run_call(wsp, handles, plan)
            assert rc in (0, SOCKET_ERROR), (plan, rc)
            if rc == SOCKET_ERROR:
                assert err.value in CODES, (plan, err.value)
        # Still usable: a valid send and recv on the stream socket.
        n = Errno()
        payload = bytearray(b"ok")
        rc = await wsp.WSPSend(stream, [WSABuf(2, payload)], 1, n, 0, None, None, None, e)
        assert rc == 0 or e.value in CODES
    finally:
        wsp.WSPCleanup(Errno())
        if peer is not None:
            peer.close()
        lst.close()
        sink4.close()
        sink6.close()
