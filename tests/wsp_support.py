"""Small SPI helpers the loopback tests share (imported as ``wsp_support``).

Named uniquely because ``tests/testing/conftest.py`` exists, so ``from conftest import``
would be ambiguous. Each helper asserts what it needs to succeed and returns what the
tests compare; the codes of calls that are *expected* to fail are returned, not
asserted, so a test states its expectation itself.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable

from wspasync import (
    AF_INET,
    FIONBIO,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SOCK_STREAM,
    SOCKET_ERROR,
    WSAGETSELECTERROR,
    WSAGETSELECTEVENT,
    Errno,
    FdSet,
    TimeVal,
    Window,
    parse_sockaddr,
    sockaddr_in,
    sockaddr_in6,
)
from wspasync.testing import settle

ZERO = TimeVal(0, 0)


def tcp(wsp, af: int = AF_INET, type_: int = SOCK_STREAM, proto: int = IPPROTO_TCP) -> int:
    """A new socket handle (TCP over IPv4 unless told otherwise)."""
    err = Errno()
    s = wsp.WSPSocket(af, type_, proto, None, 0, 0, err)
    assert s != INVALID_SOCKET, err.value
    return s


def fionbio(wsp, s: int, on: int = 1) -> int:
    """FIONBIO on *s*: 0, or the lpErrno of the failure."""
    err = Errno()
    rc = wsp.WSPIoctl(s, FIONBIO, struct.pack("<I", on), 4, None, 0, Errno(), None, None, None, err)
    return rc if rc == 0 else err.value


def nonblocking(wsp, s: int) -> None:
    """Make *s* nonblocking (must succeed)."""
    assert fionbio(wsp, s, 1) == 0


def close(wsp, *handles: int) -> None:
    """WSPCloseSocket each handle; every close must succeed."""
    for s in handles:
        err = Errno()
        assert wsp.WSPCloseSocket(s, err) == 0, (s, err.value)


def make_listener(wsp, af: int = AF_INET, backlog: int = 8) -> tuple[int, int]:
    """A provider listener on loopback (127.0.0.1 or ::1): (handle, port)."""
    lst = tcp(wsp, af)
    name = sockaddr_in("127.0.0.1", 0) if af == AF_INET else sockaddr_in6("::1", 0)
    assert wsp.WSPBind(lst, name, len(name), Errno()) == 0
    assert wsp.WSPListen(lst, backlog, Errno()) == 0
    buf, box = bytearray(28), Errno(value=28)
    assert wsp.WSPGetSockName(lst, buf, box, Errno()) == 0
    return lst, parse_sockaddr(bytes(buf[: box.value]))[2]


def connect_now(wsp, s: int, name: bytes) -> tuple[int, int]:
    """Run a WSPConnect that must complete without suspending: (rc, lpErrno).

    A nonblocking connect returns at once; if the coroutine suspends instead, that is
    the failure this reports.
    """
    err = Errno(value=-12345)
    coro = wsp.WSPConnect(s, name, len(name), None, None, None, None, err)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value, err.value
    coro.close()
    raise AssertionError("WSPConnect suspended on a nonblocking socket")


def start(wsp, s: int, port: int) -> tuple[int, int]:
    """:func:`connect_now` to 127.0.0.1:*port*."""
    return connect_now(wsp, s, sockaddr_in("127.0.0.1", port))


async def accepted_pair(wsp) -> tuple[int, socket.socket]:
    """(provider handle, plain peer socket) of one accepted loopback connection."""
    lst, port = make_listener(wsp, backlog=5)
    peer = socket.create_connection(("127.0.0.1", port))
    err = Errno()
    try:
        async with asyncio.timeout(5):
            s = await wsp.WSPAccept(lst, None, None, None, 0, err)
        assert s != INVALID_SOCKET, err.value
    except BaseException:
        peer.close()
        raise
    finally:
        close(wsp, lst)
    return s, peer


async def select(wsp, r=(), w=(), x=(), timeout: TimeVal | None = ZERO):
    """WSPSelect on three lists: (count, [r, w, x] as lists), or (SOCKET_ERROR, lpErrno)."""
    sets = [FdSet(list(r)), FdSet(list(w)), FdSet(list(x))]
    err = Errno()
    rc = await wsp.WSPSelect(0, *sets, timeout, err)
    if rc == SOCKET_ERROR:
        return rc, err.value
    return rc, [list(fds.fd_array) for fds in sets]


async def wait_readable(wsp, s: int, seconds: float = 5) -> None:
    """Block in WSPSelect until *s* is readable (data, a pending accept, a close)."""
    async with asyncio.timeout(seconds):
        assert await select(wsp, [s], timeout=None) == (1, [[s], [], []])


async def peer_recv_until(peer: socket.socket, size: int) -> bytes:
    """Read *size* bytes from a plain peer socket on the loop (each read awaits data).

    Stops early at end of stream; the caller bounds the whole with ``asyncio.timeout``.
    """
    loop = asyncio.get_running_loop()
    peer.setblocking(False)
    got = bytearray()
    while len(got) < size:
        chunk = await loop.sock_recv(peer, min(size - len(got), 1 << 20))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def select_events(messages) -> list[tuple[int, int]]:
    """(event, error) of each async-select message."""
    return [(WSAGETSELECTEVENT(m.lParam), WSAGETSELECTERROR(m.lParam)) for m in messages]


async def next_event(window: Window, seconds: float = 5):
    """The next message posted to *window* (bounded): (message, (event, error))."""
    async with asyncio.timeout(seconds):
        m = await window.get_message()
    return m, (WSAGETSELECTEVENT(m.lParam), WSAGETSELECTERROR(m.lParam))


async def drain(window: Window) -> list[tuple[int, int]]:
    """Settle the loop, then take every message left in *window* as (event, error)."""
    await settle()
    return select_events(window.messages())


async def wait_until(condition: Callable[[], bool], seconds: float = 5) -> None:
    """Poll *condition* once per loop pass until it holds (bounded).

    For facts with no notification of their own (a count of queued connections, a
    thread-side counter). Each pass is a zero-timeout loop iteration plus a 1 ms pause
    so a slow CI machine is not spun; the result, not the pause, is what is asserted.
    """
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.001)


def wait_blocking_calls(sp, n: int = 1, seconds: float = 5) -> None:
    """Until *n* blocking calls, made by other threads on SyncProvider *sp*, are waiting.

    A bounded poll: "the call has started waiting" has no notification of its own
    (``sp.blocking_calls()`` is the public count). The result is what is asserted.
    """
    deadline = time.monotonic() + seconds
    while sp.blocking_calls() < n:
        assert time.monotonic() < deadline, "the blocking calls never started"
        time.sleep(0.001)


def pending_accepts(wsp, lst: int) -> int:
    """How many connections the provider's listener holds, accepted eagerly by the
    engine and not yet taken by WSPAccept.

    The one white-box read in these helpers: no SPI call reports a count (WSPSelect only
    says "at least one"). Use it with :func:`wait_until`.
    """
    return len(wsp._sockets[lst].accepts or ())
