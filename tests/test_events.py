"""Network-event sequences for data, writes, OOB, closes and UDP, in both registration modes.

The scenarios follow what Windows was observed to do in Wine's conformance tests
(dlls/ws2_32/tests/sock.c: test_read_events, test_write_events, test_oob_events,
test_close_events, test_connect_events), written anew here. Message mode is asserted
in order from the Window; event mode as the set of bits WSPEnumNetworkEvents returns,
with the error code of each bit. Loopback delivers data, FINs and RSTs inside the
sending syscall, so ``settle()`` (no real time) is enough for them to be seen.
"""

from __future__ import annotations


import socket
import struct

import pytest

from wspasync import (
    AF_INET,
    FD_ACCEPT,
    FD_CLOSE,
    FD_CONNECT,
    FD_MAX_EVENTS,
    FD_OOB,
    FD_READ,
    FD_WRITE,
    FIONBIO,
    MSG_OOB,
    SD_BOTH,
    SD_RECEIVE,
    SD_SEND,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOCKET_ERROR,
    WSAECONNABORTED,
    WSAEFAULT,
    WSAEINVAL,
    WSAEWOULDBLOCK,
    WSAGETSELECTERROR,
    WSAGETSELECTEVENT,
    Errno,
    WSABuf,
    WSAEvent,
    WSANetworkEvents,
    Window,
    sockaddr_in,
)
import wsp_support
from wspasync.testing import settle


ALL = FD_ACCEPT | FD_CLOSE | FD_CONNECT | FD_OOB | FD_READ
ALL_W = ALL | FD_WRITE
WM = 0x401


class Ctx:
    """One registration route: select_events() and check() as Wine's helpers mean them."""

    def __init__(self, wsp, mode: str) -> None:
        self.wsp = wsp
        self.mode = mode
        self.window = Window()
        self.event = WSAEvent()
        self.pending: list = []
        self.shared = False  # one event object for several sockets

    def select(self, s: int, mask: int) -> None:
        e = Errno()
        if self.mode == "message":
            assert self.wsp.WSPAsyncSelect(s, self.window, WM, mask, e) == 0, e
        else:
            assert self.wsp.WSPEventSelect(s, self.event, mask, e) == 0, e

    async def check(self, s: int, *expected: int | tuple[int, int]) -> None:
        """The events reported since the last check: FD bits, or (bit, error) pairs."""
        await settle()
        want = [(x, 0) if isinstance(x, int) else x for x in expected]
        if self.mode == "message":
            self.pending.extend(self.window.messages())
            mine = [m for m in self.pending if m.wParam == s]
            self.pending = [m for m in self.pending if m.wParam != s]
            assert all(m.msg == WM and m.hwnd is self.window for m in mine)
            got = [(WSAGETSELECTEVENT(m.lParam), WSAGETSELECTERROR(m.lParam)) for m in mine]
            assert got == want
        else:
            record = WSANetworkEvents(0, [0xDEAD] * FD_MAX_EVENTS)
            was_set = self.event.is_set()
            assert self.wsp.WSPEnumNetworkEvents(s, self.event, record, Errno()) == 0
            bits = 0
            for bit, _ in want:
                bits |= bit
            assert record.lNetworkEvents == bits
            if bits and not self.shared:
                assert was_set
            for bit, err in want:
                assert record.iErrorCode[bit.bit_length() - 1] == err
            assert not self.event.is_set()


@pytest.fixture(params=["message", "event"])
def ctx(request, wsp):
    return Ctx(wsp, request.param)


async def accepted_pair(wsp, nonblocking_peer: bool = True):
    """(handle, peer): a provider socket accepted from a plain loopback client."""
    s, peer = await wsp_support.accepted_pair(wsp)
    peer.setblocking(not nonblocking_peer)
    return s, peer


async def recv(wsp, s: int, size: int, flags: int = 0) -> tuple[int, bytes, int]:
    buf = bytearray(size)
    n, f, e = Errno(), Errno(flags), Errno()
    rc = await wsp.WSPRecv(s, [WSABuf(size, buf)], 1, n, f, None, None, None, e)
    return rc, bytes(buf[: n.value]) if rc == 0 else b"", e.value


async def send(wsp, s: int, data: bytes, flags: int = 0) -> tuple[int, int]:
    n, e = Errno(), Errno()
    rc = await wsp.WSPSend(s, [WSABuf(len(data), bytearray(data))], 1, n, flags, None, None, None, e)
    return (n.value if rc == 0 else rc), e.value


def rst_close(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- reads -------------------------------------------------------------------------------


async def test_read_events(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    try:
        ctx.select(s, ALL)
        await ctx.check(s)
        peer.send(b"data\0")
        await ctx.check(s, FD_READ)
        await ctx.check(s)
        # Re-registering: message mode re-posts the unread data; event mode does not.
        ctx.select(s, ALL)
        await ctx.check(s, *([FD_READ] if ctx.mode == "message" else []))
        ctx.select(s, 0)
        ctx.select(s, ALL)
        await ctx.check(s, *([FD_READ] if ctx.mode == "message" else []))
        # A new arrival re-signals in event mode only (FD_READ is held in message mode).
        peer.send(b"data\0")
        await ctx.check(s, *([FD_READ] if ctx.mode == "event" else []))
        # recv that leaves data re-enables and reports FD_READ again, in both modes.
        assert (await recv(wsp, s, 2))[:2] == (0, b"da")
        await ctx.check(s, FD_READ)
        # A failing recv re-enables in message mode only (observed).
        n, e = Errno(), Errno()
        rc = await wsp.WSPRecv(s, [WSABuf(-1, bytearray(2))], 1, n, Errno(0), None, None, None, e)
        assert (rc, e.value) == (SOCKET_ERROR, WSAEFAULT)
        await ctx.check(s, *([FD_READ] if ctx.mode == "message" else []))
        for i in range(8):
            assert (await recv(wsp, s, 1))[0] == 0
            await ctx.check(s, *([FD_READ] if i < 7 else []))
        assert (await recv(wsp, s, 1))[2] == WSAEWOULDBLOCK
        await ctx.check(s)
        # Data sent while not selecting is reported by the next registration.
        ctx.select(s, 0)
        peer.send(b"data\0")
        await settle()
        ctx.select(s, ALL)
        await ctx.check(s, FD_READ)
        assert (await recv(wsp, s, 5))[:2] == (0, b"data\0")
        # ... but not once it has been read.
        ctx.select(s, 0)
        peer.send(b"data\0")
        await settle()
        assert (await recv(wsp, s, 5))[:2] == (0, b"data\0")
        ctx.select(s, ALL)
        await ctx.check(s)
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())


async def test_read_recorded_while_masked_out(wsp, ctx):
    """Data arriving under a mask without FD_READ: message mode posts it when a later
    registration admits FD_READ (level); event mode kept it in the record."""
    s, peer = await accepted_pair(wsp)
    try:
        ctx.select(s, FD_ACCEPT | FD_CONNECT | FD_OOB | FD_READ)
        await ctx.check(s, *([FD_CONNECT] if False else []))
        ctx.select(s, FD_OOB)
        peer.send(b"x")
        await ctx.check(s)
        ctx.select(s, FD_READ | FD_WRITE)
        await ctx.check(s, FD_READ, FD_WRITE)
        await ctx.check(s)
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())


# -- writes ------------------------------------------------------------------------------


async def test_write_events(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    try:
        ctx.select(s, ALL_W)
        await ctx.check(s, FD_WRITE)
        await ctx.check(s)
        ctx.select(s, ALL_W)
        await ctx.check(s, *([FD_WRITE] if ctx.mode == "message" else []))
        ctx.select(s, 0)
        ctx.select(s, ALL_W)
        await ctx.check(s, *([FD_WRITE] if ctx.mode == "message" else []))
        # A successful send neither re-arms nor posts anything.
        assert await send(wsp, s, b"data\0") == (5, 0)
        await ctx.check(s)
        assert peer.recv(100) == b"data\0"
        await ctx.check(s)
        # Fill the pipe until WSAEWOULDBLOCK; draining it posts FD_WRITE once.
        chunk = b"x" * 65536
        while True:
            sent, err = await send(wsp, s, chunk)
            if sent == SOCKET_ERROR:
                assert err == WSAEWOULDBLOCK
                break
        await ctx.check(s)
        peer.setblocking(False)
        while True:
            try:
                if not peer.recv(1 << 20):
                    break
            except BlockingIOError:
                await settle()
                try:
                    if not peer.recv(1 << 20):
                        break
                except BlockingIOError:
                    break
        await ctx.check(s, FD_WRITE)
        await ctx.check(s)
        ctx.select(s, 0)
        ctx.select(s, ALL_W)
        await ctx.check(s, *([FD_WRITE] if ctx.mode == "message" else []))
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())


async def test_write_subset_first(wsp, ctx, listener):
    """Registering without FD_WRITE first: event mode still reports FD_CONNECT, and
    the FD_WRITE kept in the record shows when FD_WRITE joins the mask."""
    e = Errno()
    c = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
    port = listener.getsockname()[1]
    assert await wsp.WSPConnect(c, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, e) == 0
    conn, _ = listener.accept()
    try:
        assert await send(wsp, c, b"data\0") == (5, 0)
        ctx.select(c, FD_ACCEPT | FD_CONNECT | FD_OOB | FD_READ)
        await ctx.check(c, *([FD_CONNECT] if ctx.mode == "event" else []))
        ctx.select(c, FD_ACCEPT | FD_CONNECT | FD_OOB | FD_READ | FD_WRITE)
        await ctx.check(c, FD_WRITE)
        await ctx.check(c)
    finally:
        conn.close()
        wsp.WSPCloseSocket(c, e)


# -- OOB ---------------------------------------------------------------------------------


async def test_oob_events(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    try:
        ctx.select(s, ALL)
        await ctx.check(s)
        peer.send(b"a", socket.MSG_OOB)
        await ctx.check(s, FD_OOB)
        await ctx.check(s)
        ctx.select(s, ALL)
        await ctx.check(s, *([FD_OOB] if ctx.mode == "message" else []))
        ctx.select(s, 0)
        ctx.select(s, ALL)
        await ctx.check(s, *([FD_OOB] if ctx.mode == "message" else []))
        assert (await recv(wsp, s, 1, MSG_OOB))[:2] == (0, b"a")
        await ctx.check(s)
        # Urgent data sent while not selecting shows at the next registration.
        ctx.select(s, 0)
        peer.send(b"b", socket.MSG_OOB)
        await settle()
        ctx.select(s, ALL)
        await ctx.check(s, FD_OOB)
        assert (await recv(wsp, s, 1, MSG_OOB))[:2] == (0, b"b")
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())


# -- closes ------------------------------------------------------------------------------


async def test_close_graceful(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    ctx.select(s, ALL)
    peer.close()
    await ctx.check(s, FD_CLOSE)
    await ctx.check(s)
    ctx.select(s, ALL)
    await ctx.check(s, *([FD_CLOSE] if ctx.mode == "message" else []))
    ctx.select(s, 0)
    ctx.select(s, ALL)
    await ctx.check(s, *([FD_CLOSE] if ctx.mode == "message" else []))
    assert await recv(wsp, s, 5) == (0, b"", 0)
    await ctx.check(s)
    assert wsp.WSPCloseSocket(s, Errno()) == 0


async def test_close_peer_shutdown_send(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    ctx.select(s, ALL)
    peer.shutdown(socket.SHUT_WR)
    await ctx.check(s, FD_CLOSE)
    await ctx.check(s)
    peer.close()
    await ctx.check(s)
    wsp.WSPCloseSocket(s, Errno())


async def test_close_no_event_for_other_shutdowns(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    try:
        ctx.select(s, ALL)
        peer.shutdown(socket.SHUT_RD)
        await ctx.check(s)
        assert wsp.WSPShutdown(s, SD_BOTH, Errno()) == 0
        await ctx.check(s)
        peer.shutdown(socket.SHUT_WR)
        await ctx.check(s, FD_CLOSE)
        await ctx.check(s)
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())


@pytest.mark.parametrize("how", [SD_RECEIVE, SD_SEND])
async def test_local_shutdown_posts_nothing(wsp, ctx, how):
    s, peer = await accepted_pair(wsp)
    try:
        ctx.select(s, ALL)
        assert wsp.WSPShutdown(s, how, Errno()) == 0
        await ctx.check(s)
        peer.shutdown(socket.SHUT_WR)
        await ctx.check(s, FD_CLOSE)
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())


async def test_close_after_data(wsp, ctx):
    """FD_READ, then FD_CLOSE at the FIN although data is unread; recv re-posts FD_READ
    while data remains, and nothing once it is drained."""
    s, peer = await accepted_pair(wsp)
    ctx.select(s, ALL)
    peer.send(b"data\0")
    await ctx.check(s, FD_READ)
    peer.close()
    await ctx.check(s, FD_CLOSE)
    assert (await recv(wsp, s, 3))[:2] == (0, b"dat")
    await ctx.check(s, FD_READ)
    assert (await recv(wsp, s, 5))[:2] == (0, b"a\0")
    await ctx.check(s)
    assert await recv(wsp, s, 5) == (0, b"", 0)
    wsp.WSPCloseSocket(s, Errno())


async def test_data_and_close_together(wsp, ctx):
    """Data and FIN seen in the same wakeup: FD_READ first, then FD_CLOSE."""
    s, peer = await accepted_pair(wsp)
    peer.send(b"data")
    peer.close()
    ctx.select(s, ALL)
    await ctx.check(s, FD_READ, FD_CLOSE)
    wsp.WSPCloseSocket(s, Errno())


async def test_close_then_select(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    peer.close()
    await settle()
    ctx.select(s, ALL)
    await ctx.check(s, FD_CLOSE)
    await ctx.check(s)
    wsp.WSPCloseSocket(s, Errno())


async def test_close_subset_first(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    ctx.select(s, FD_ACCEPT | FD_CONNECT | FD_OOB | FD_READ)
    peer.close()
    await ctx.check(s)
    ctx.select(s, ALL)
    await ctx.check(s, FD_CLOSE)
    wsp.WSPCloseSocket(s, Errno())


async def test_close_reset(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    ctx.select(s, ALL)
    rst_close(peer)
    aborted = (FD_CLOSE, WSAECONNABORTED)
    await ctx.check(s, aborted)
    await ctx.check(s)
    ctx.select(s, ALL)
    await ctx.check(s, *([aborted] if ctx.mode == "message" else []))
    ctx.select(s, 0)
    ctx.select(s, ALL)
    await ctx.check(s, *([aborted] if ctx.mode == "message" else []))
    wsp.WSPCloseSocket(s, Errno())


async def test_closesocket_posts_nothing(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    ctx.select(s, ALL)
    assert wsp.WSPCloseSocket(s, Errno()) == 0
    peer.send(b"late")
    peer.close()
    await settle()
    if ctx.mode == "message":
        assert ctx.window.messages() == []
    else:
        assert not ctx.event.is_set()


# -- connect, accept and UDP -------------------------------------------------------------


async def test_connect_then_select(wsp, ctx, listener):
    e = Errno()
    c = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
    port = listener.getsockname()[1]
    assert await wsp.WSPConnect(c, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, e) == 0
    conn, _ = listener.accept()
    try:
        ctx.select(c, ALL_W)
        if ctx.mode == "message":
            await ctx.check(c, FD_WRITE)
        else:
            await ctx.check(c, FD_CONNECT, FD_WRITE)
        conn.send(b"hi")
        await ctx.check(c, FD_READ)
    finally:
        conn.close()
        wsp.WSPCloseSocket(c, e)


async def test_nonblocking_connect_then_data(wsp, ctx, listener):
    """FD_CONNECT, FD_WRITE, then FD_READ for data the server sent at once."""
    e = Errno()
    c = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
    ctx.select(c, ALL_W)
    port = listener.getsockname()[1]
    rc = await wsp.WSPConnect(c, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, e)
    assert (rc, e.value) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    conn, _ = listener.accept()
    conn.send(b"hello")
    try:
        await ctx.check(c, FD_CONNECT, FD_WRITE, FD_READ)
    finally:
        conn.close()
        wsp.WSPCloseSocket(c, e)


async def test_accepted_socket_inherits_data_events(wsp, ctx):
    e = Errno()
    lst = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
    wsp.WSPBind(lst, sockaddr_in("127.0.0.1", 0), 16, e)
    wsp.WSPListen(lst, 5, e)
    ctx.select(lst, FD_ACCEPT | FD_READ | FD_WRITE | FD_CLOSE)
    ctx.shared = True
    peer = socket.create_connection(wsp.os_socket(lst).getsockname())
    try:
        await ctx.check(lst, FD_ACCEPT)
        s = await wsp.WSPAccept(lst, None, None, None, 0, e)
        await ctx.check(lst)
        await ctx.check(s, FD_WRITE)
        peer.send(b"x")
        await ctx.check(s, FD_READ)
        peer.close()
        await ctx.check(s, FD_CLOSE)
        wsp.WSPCloseSocket(s, e)
    finally:
        peer.close()
        wsp.WSPCloseSocket(lst, e)


async def test_udp_events(wsp, ctx):
    e = Errno()
    client = wsp.WSPSocket(AF_INET, SOCK_DGRAM, 0, None, 0, 0, e)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    try:
        ctx.select(client, FD_ACCEPT | FD_CONNECT | FD_OOB | FD_READ | FD_WRITE)
        await ctx.check(client, *([FD_WRITE] if ctx.mode == "message" else []))
        await ctx.check(client)
        name = sockaddr_in(*server.getsockname())
        assert await wsp.WSPConnect(client, name, 16, None, None, None, None, e) == 0
        if ctx.mode == "message":
            await ctx.check(client, FD_WRITE)
        else:
            await ctx.check(client, FD_CONNECT, FD_WRITE)
        await ctx.check(client)
        addr = wsp.os_socket(client).getsockname()
        server.sendto(b"one", addr)
        await ctx.check(client, FD_READ)
        server.sendto(b"two", addr)
        await ctx.check(client, *([FD_READ] if ctx.mode == "event" else []))
        assert (await recv(wsp, client, 10))[:2] == (0, b"one")
        await ctx.check(client, FD_READ)  # "two" remains
        assert (await recv(wsp, client, 10))[:2] == (0, b"two")
        await ctx.check(client)
    finally:
        server.close()
        wsp.WSPCloseSocket(client, e)


async def test_fionbio_refused_while_registered(wsp, ctx):
    s, peer = await accepted_pair(wsp)
    try:
        ctx.select(s, FD_READ)
        off = struct.pack("<I", 0)
        e = Errno()
        assert wsp.WSPIoctl(s, FIONBIO, off, 4, None, 0, Errno(), None, None, None, e) == SOCKET_ERROR
        assert e.value == WSAEINVAL  # WSAAsyncSelect/WSAEventSelect pages
        ctx.select(s, 0)
        assert wsp.WSPIoctl(s, FIONBIO, off, 4, None, 0, Errno(), None, None, None, e) == 0
    finally:
        peer.close()
        wsp.WSPCloseSocket(s, Errno())
