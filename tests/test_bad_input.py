"""Bad input at every WSP entry point of issue 2: an error code, never an exception.

Hypothesis draws a short sequence of calls per example, each with arguments that are
mostly wrong (garbage sockaddr bytes, wrong lengths, wrong types, dead handles, a
provider that was cleaned up) and sometimes right, against a fresh provider holding a
stream socket, a listener and a datagram socket. After every call: no Python exception,
the return is the SPI's failure value (or a legitimate success), lpErrno holds a known
Winsock code, and the OS descriptors in use are exactly those the provider owns. After
the sequence the provider still works: a valid connect succeeds.

Loopback only: every drawn sockaddr that parses as IPv4/IPv6 has its address rewritten
to 127.0.0.1 / ::1 (or left all-zero) and its port to a refused or listening loopback
port before it is passed in, so nothing ever goes to another address.
"""

from __future__ import annotations

import asyncio
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wspasync import (
    AF_INET,
    AF_INET6,
    FD_ACCEPT,
    FD_ALL_EVENTS,
    FD_CONNECT,
    FD_WRITE,
    FIONBIO,
    FIONREAD,
    INVALID_SOCKET,
    IPPROTO_TCP,
    IPPROTO_UDP,
    QOS,
    SIO_GET_QOS,
    SIO_SET_QOS,
    SIOCATMARK,
    SO_CONNECT_TIME,
    SO_ERROR,
    SO_EXCLUSIVEADDRUSE,
    SO_KEEPALIVE,
    SO_LINGER,
    SO_RCVBUF,
    SO_REUSEADDR,
    SO_TYPE,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    TCP_MAXRT,
    TCP_NODELAY,
    ErrorCode,
    Errno,
    FdSet,
    FlowSpec,
    Provider,
    TimeVal,
    WSABuf,
    WSAEvent,
    WSANetworkEvents,
    Window,
    enum_protocols,
    sockaddr_in,
)

pytestmark = pytest.mark.timeout(120)

KNOWN_CODES = {int(code) for code in ErrorCode}

# -- strategies ------------------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=4),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(-3, 3), max_size=3),
    st.integers(-(2**70), 2**70),
    st.integers(-3, 70),
    st.binary(max_size=40),
    st.builds(bytearray, st.binary(max_size=40)),
    st.builds(lambda b: memoryview(b), st.binary(max_size=30)),  # read-only
    st.builds(object),
    st.builds(lambda: memoryview(bytearray(32)).cast("I")),  # not a byte format
    st.builds(lambda: memoryview(bytearray(64))[::2]),  # not contiguous
)
sockaddr_bytes = st.one_of(
    st.binary(max_size=40),
    st.builds(
        lambda family, rest: struct.pack("<H", family) + rest,
        st.sampled_from([0, 2, 23, 10, 99, 0xFFFF]),
        st.binary(min_size=0, max_size=40),
    ),
)
lengths = st.one_of(st.integers(-4, 40), st.sampled_from([0, 15, 16, 27, 28, 2**31, -(2**31)]), junk)
boxes = st.one_of(
    st.builds(Errno, value=st.one_of(st.integers(-4, 40), st.integers(-(2**70), 2**70))),
    st.none(),
    junk,
)
wsabufs = st.one_of(
    st.none(),
    st.builds(WSABuf, len=st.one_of(st.integers(-2, 20), junk), buf=st.one_of(st.none(), st.builds(bytearray, st.binary(max_size=12)), junk)),
    junk,
)
flowspecs = st.builds(FlowSpec, ServiceType=st.one_of(st.integers(-2, 8), st.just(0xFFFFFFFF), junk))
qoses = st.one_of(st.none(), st.builds(QOS, SendingFlowspec=flowspecs, ReceivingFlowspec=flowspecs,
                                       ProviderSpecific=wsabufs), junk)
timevals = st.one_of(
    st.none(),
    st.builds(TimeVal, tv_sec=st.one_of(st.integers(-2, 2), junk), tv_usec=st.one_of(st.integers(-2, 2_000_000), junk)),
    junk,
)
levels = st.one_of(st.sampled_from([SOL_SOCKET, IPPROTO_TCP, IPPROTO_UDP, 0, 41]), junk)
optnames = st.one_of(
    st.sampled_from([SO_REUSEADDR, SO_EXCLUSIVEADDRUSE, SO_KEEPALIVE, SO_LINGER, SO_RCVBUF,
                     SO_ERROR, SO_TYPE, SO_CONNECT_TIME, TCP_NODELAY, TCP_MAXRT, 0x7777]),
    junk,
)
ioctl_codes = st.one_of(st.sampled_from([FIONBIO, FIONREAD, SIOCATMARK, SIO_GET_QOS, SIO_SET_QOS, 0]), junk)
masks = st.one_of(st.sampled_from([0, FD_CONNECT | FD_WRITE, FD_ACCEPT, FD_ALL_EVENTS, 1 << 10, -1]), junk)
in_buffers = st.one_of(
    st.builds(lambda v: struct.pack("<I", v), st.sampled_from([0, 1, 2, 0xFFFFFFFF])),
    st.builds(lambda a, b: struct.pack("<HH", a, b), st.integers(0, 2), st.integers(0, 0xFFFF)),
    junk,
)
out_buffers = st.one_of(st.builds(bytearray, st.integers(0, 40)), junk)

HANDLE_NAMES = ["stream", "listener", "dgram", "dead", "closed_provider_handle"]
ENTRY_POINTS = [
    "WSPSocket", "WSPBind", "WSPListen", "WSPAccept", "WSPConnect", "WSPGetSockName",
    "WSPGetPeerName", "WSPGetSockOpt", "WSPSetSockOpt", "WSPIoctl", "WSPSelect",
    "WSPAsyncSelect", "WSPEventSelect", "WSPEnumNetworkEvents", "WSPShutdown",
    "WSPCloseSocket", "WSPCancelBlockingCall", "WSPCleanup",
]
COROUTINES = {"WSPAccept", "WSPConnect", "WSPSelect"}
RETURNS_SOCKET = {"WSPSocket", "WSPAccept"}


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Ctx:
    """One example's world: a provider, its sockets and the loopback ports in play."""

    def __init__(self, wsp, ports):
        self.wsp = wsp
        self.ports = ports
        self.handles: dict[str, int] = {}
        self.extra: list[int] = []  # handles the fuzzed calls created

    def owned_fds(self) -> int:
        """OS descriptors the provider holds: one per socket, plus queued accepts."""
        n = 0
        for rec in self.wsp._sockets.values():
            n += rec.sock is not None
            n += len(rec.accepts or ())
        return n


def loopback_only(raw: bytes, ports) -> bytes:
    """Rewrite an IP sockaddr so that it can only ever reach a loopback test port."""
    b = bytearray(raw)
    if len(b) >= 2:
        family = struct.unpack_from("<H", b)[0]
        if family in (AF_INET, AF_INET6) and len(b) >= 4:
            b[2:4] = struct.pack(">H", ports[len(raw) % len(ports)])
        if family == AF_INET and len(b) >= 8 and b[4:8] != bytes(4):
            b[4:8] = bytes([127, 0, 0, 1])
        if family == AF_INET6 and len(b) >= 24 and b[8:24] != bytes(16):
            b[8:24] = bytes(15) + b"\x01"
    return bytes(b)


def draw_handle(data, ctx):
    if data.draw(st.integers(0, 3), label="handle is junk?") == 0:
        return data.draw(junk, label="junk handle")
    which = data.draw(st.sampled_from(HANDLE_NAMES + ["extra"]), label="handle")
    if which == "extra":
        return ctx.extra[-1] if ctx.extra else 0x1000
    return ctx.handles[which]


def draw_name(data, ctx):
    choice = data.draw(st.integers(0, 3), label="name kind")
    if choice == 0:
        return data.draw(junk, label="junk name")
    if choice == 1:
        return sockaddr_in("127.0.0.1", data.draw(st.sampled_from(ctx.ports)))
    raw = data.draw(sockaddr_bytes, label="sockaddr bytes")
    raw = loopback_only(raw, ctx.ports)
    return bytearray(raw) if choice == 3 else raw


def draw_fdset(data, ctx):
    if data.draw(st.booleans()):
        return data.draw(st.one_of(st.none(), junk))
    members = data.draw(st.lists(st.integers(0, 8), max_size=4))
    handles = [ctx.handles[HANDLE_NAMES[i]] if i < len(HANDLE_NAMES) else i * 7919 for i in members]
    fds = FdSet()
    fds.fd_array[:] = handles  # duplicates and dead handles allowed
    return fds


def draw_args(data, ctx, entry):
    """The argument list for *entry*, without lpErrno."""
    h = lambda: draw_handle(data, ctx)  # noqa: E731
    d = data.draw
    if entry == "WSPSocket":
        protocol_info = d(st.one_of(st.none(), st.sampled_from(enum_protocols()), junk))
        return [d(st.one_of(st.sampled_from([AF_INET, AF_INET6, 0, 1, 10]), junk)),
                d(st.one_of(st.sampled_from([SOCK_STREAM, SOCK_DGRAM, 3, 0]), junk)),
                d(st.one_of(st.sampled_from([0, IPPROTO_TCP, IPPROTO_UDP, 255]), junk)),
                protocol_info, d(st.one_of(st.just(0), junk)), d(st.one_of(st.just(0), junk))]
    if entry == "WSPBind":
        return [h(), draw_name(data, ctx), d(lengths)]
    if entry == "WSPListen":
        return [h(), d(st.one_of(st.integers(-5, 10), junk))]
    if entry == "WSPAccept":
        condition = d(st.one_of(st.none(), st.sampled_from([
            lambda *a: 0, lambda *a: 1, lambda *a: 2, lambda *a: None, lambda *a: "x"]), junk))
        return [h(), d(st.one_of(st.none(), out_buffers)), d(boxes), condition, d(junk)]
    if entry == "WSPConnect":
        return [h(), draw_name(data, ctx), d(lengths), d(wsabufs), d(wsabufs), d(qoses),
                d(st.one_of(st.none(), qoses))]
    if entry in ("WSPGetSockName", "WSPGetPeerName"):
        return [h(), d(st.one_of(out_buffers, st.none())), d(boxes)]
    if entry == "WSPGetSockOpt":
        return [h(), d(levels), d(optnames), d(out_buffers), d(boxes)]
    if entry == "WSPSetSockOpt":
        return [h(), d(levels), d(optnames), d(in_buffers), d(lengths)]
    if entry == "WSPIoctl":
        return [h(), d(ioctl_codes), d(in_buffers), d(lengths), d(out_buffers), d(lengths),
                d(boxes), d(st.one_of(st.none(), junk)), d(st.one_of(st.none(), junk)),
                d(st.one_of(st.none(), junk))]
    if entry == "WSPSelect":
        return [d(junk), draw_fdset(data, ctx), draw_fdset(data, ctx), draw_fdset(data, ctx),
                d(timevals)]
    if entry == "WSPAsyncSelect":
        return [h(), d(st.one_of(st.builds(Window), junk)), d(st.one_of(st.integers(0, 0x8000), junk)),
                d(masks)]
    if entry == "WSPEventSelect":
        return [h(), d(st.one_of(st.builds(WSAEvent), junk)), d(masks)]
    if entry == "WSPEnumNetworkEvents":
        return [h(), d(st.one_of(st.none(), st.builds(WSAEvent), junk)),
                d(st.one_of(st.builds(WSANetworkEvents), st.builds(WSANetworkEvents, iErrorCode=st.lists(st.integers(), max_size=3)), junk))]
    if entry == "WSPShutdown":
        return [h(), d(st.one_of(st.integers(-1, 3), junk))]
    if entry == "WSPCloseSocket":
        return [h()]
    return []  # WSPCancelBlockingCall, WSPCleanup


def check_outcome(entry, rc, err_box, ctx):
    if entry in RETURNS_SOCKET:
        if rc == INVALID_SOCKET:
            assert int(err_box.value) in KNOWN_CODES, (entry, err_box.value)
        else:
            assert type(rc) is int and rc in ctx.wsp._sockets, (entry, rc)
            ctx.extra.append(rc)
        return
    if rc == SOCKET_ERROR:
        assert int(err_box.value) in KNOWN_CODES, (entry, err_box.value)
    elif entry == "WSPSelect":
        assert type(rc) is int and rc >= 0, rc
    else:
        assert rc == 0, (entry, rc)


async def still_works(wsp, port):
    """A fresh socket on *wsp* connects to the listening port (blocking) and closes."""
    err = Errno()
    s = wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, err)
    assert s != INVALID_SOCKET, err.value
    async with asyncio.timeout(5):
        rc = await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err)
    assert rc == 0, err.value
    assert wsp.WSPCloseSocket(s, err) == 0


async def stream_socket_still_connects(wsp, s, port):
    """The fuzzed stream socket is not wedged: unless a fuzzed call connected it or made
    it a listener, a valid blocking connect on the same handle succeeds."""
    err = Errno()
    if s not in wsp._sockets:
        return
    wsp.WSPAsyncSelect(s, Window(), 0, 0, err)  # drop any registration (lifts the FIONBIO lock)
    assert wsp.WSPIoctl(s, FIONBIO, struct.pack("<I", 0), 4, None, 0, Errno(), None, None, None, err) == 0, err.value
    async with asyncio.timeout(5):
        rc = await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err)
    if rc == SOCKET_ERROR:
        # already connected / listening / cancelled by a fuzzed WSPCancelBlockingCall
        assert err.value in (ErrorCode.WSAEISCONN, ErrorCode.WSAEINVAL), err.value


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_bad_input_everywhere(loop_errors, listener, refused_port, data):
    listener.setblocking(False)
    ports = [refused_port, listener.getsockname()[1]]
    loop = asyncio.get_running_loop()
    baseline = _open_fds()
    wsp = Provider()
    ctx = Ctx(wsp, ports)
    err = Errno()
    mk = lambda t, p: wsp.WSPSocket(AF_INET, t, p, None, 0, 0, err)  # noqa: E731
    ctx.handles["stream"] = mk(SOCK_STREAM, IPPROTO_TCP)
    ctx.handles["listener"] = mk(SOCK_STREAM, IPPROTO_TCP)
    assert wsp.WSPBind(ctx.handles["listener"], sockaddr_in("127.0.0.1", 0), 16, err) == 0
    assert wsp.WSPListen(ctx.handles["listener"], 4, err) == 0
    ctx.handles["dgram"] = mk(SOCK_DGRAM, IPPROTO_UDP)
    dead = mk(SOCK_STREAM, IPPROTO_TCP)
    wsp.WSPCloseSocket(dead, err)
    ctx.handles["dead"] = dead
    ctx.handles["closed_provider_handle"] = 0x7FFF_FFF0
    if data.draw(st.booleans(), label="stream nonblocking"):
        wsp.WSPIoctl(ctx.handles["stream"], FIONBIO, struct.pack("<I", 1), 4, None, 0, None, None, None, None, err)
    try:
        for _ in range(data.draw(st.integers(1, 6), label="calls")):
            # WSPCleanup ends the provider: drawn rarely so the other calls meet live sockets.
            entry = data.draw(st.sampled_from(ENTRY_POINTS * 4 + ["WSPCleanup"]), label="entry point")
            args = draw_args(data, ctx, entry)
            use_box = data.draw(st.integers(0, 9), label="lpErrno kind")
            err_box = Errno(value=-424242) if use_box else data.draw(junk, label="junk lpErrno")
            method = getattr(wsp, entry)
            # A call that may legitimately block (blocking accept/connect, select with
            # no timeout) is ended the Winsock way: WSPCancelBlockingCall -> WSAEINTR.
            cancel = loop.call_later(0.05, wsp.WSPCancelBlockingCall, Errno())
            try:
                if entry in COROUTINES:
                    async with asyncio.timeout(5):
                        rc = await method(*args, err_box)
                else:
                    rc = method(*args, err_box)
            finally:
                cancel.cancel()
            if use_box:
                check_outcome(entry, rc, err_box, ctx)
            # No descriptor beyond those the provider owns (a closed provider owns none).
            assert _open_fds() - baseline == ctx.owned_fds(), entry
            while True:  # keep the plain listener's backlog from filling up
                try:
                    listener.accept()[0].close()
                except BlockingIOError:
                    break
        await asyncio.sleep(0)
        if not wsp._closed:
            await stream_socket_still_connects(wsp, ctx.handles["stream"], ports[1])
            await still_works(wsp, ports[1])
    finally:
        wsp.close() if not wsp._closed else None
        while True:
            try:
                listener.accept()[0].close()
            except BlockingIOError:
                break
    assert _open_fds() == baseline
    # A cleaned-up provider refuses politely; a new one works.
    e = Errno()
    assert wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e) == INVALID_SOCKET
    assert e.value == ErrorCode.WSANOTINITIALISED
    assert await wsp.WSPConnect(1, sockaddr_in("127.0.0.1", ports[1]), 16, None, None, None, None, e) == SOCKET_ERROR
    assert e.value == ErrorCode.WSANOTINITIALISED
    async with Provider() as fresh:
        await still_works(fresh, ports[1])
