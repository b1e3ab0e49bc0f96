"""WSPAsyncSelect (message mode) as the connect and accept route (SEMANTICS.md §4).

Order is read from the Window's queue; "nothing more" is asserted after settle().
"""

from __future__ import annotations

import socket

import pytest

from wspasync import (
    FD_ACCEPT,
    FD_ALL_EVENTS,
    FD_CLOSE,
    FD_CONNECT,
    FD_READ,
    FD_WRITE,
    INVALID_SOCKET,
    SOCKET_ERROR,
    WSAECONNREFUSED,
    WSAEINVAL,
    WSAENOTSOCK,
    WSAEWOULDBLOCK,
    Errno,
    WSAEvent,
    WSANetworkEvents,
    Window,
    sockaddr_in,
)
from wsp_support import close, drain, fionbio, make_listener, next_event, pending_accepts, start, tcp, wait_readable, wait_until
from wsp_support import select_events as events


pytestmark = pytest.mark.timeout(30)

WM = 0x400 + 1
CONNECT_MASK = FD_CONNECT | FD_WRITE | FD_READ | FD_CLOSE


def async_select(wsp, s, window, mask=CONNECT_MASK):
    err = Errno()
    assert wsp.WSPAsyncSelect(s, window, WM, mask, err) == 0, err.value


# -- connect ---------------------------------------------------------------------------------


async def test_success_connect_then_write(wsp, listener):
    s = tcp(wsp)
    window = Window()
    async_select(wsp, s, window)
    assert start(wsp, s, listener.getsockname()[1]) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    # Linux has already finished the loopback handshake, yet nothing is posted before
    # connect returned.
    assert len(window) == 0
    m, first = await next_event(window)
    assert first == (FD_CONNECT, 0)
    assert (m.hwnd, m.msg, m.wParam) == (window, WM, s)
    assert (await next_event(window))[1] == (FD_WRITE, 0)
    assert await drain(window) == []  # once each
    close(wsp, s)


async def test_failure_connect_with_error_and_nothing_else(wsp, refused_port):
    s = tcp(wsp)
    window = Window()
    async_select(wsp, s, window, FD_ALL_EVENTS)
    assert start(wsp, s, refused_port) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    assert len(window) == 0
    assert (await next_event(window))[1] == (FD_CONNECT, WSAECONNREFUSED)
    assert await drain(window) == []  # no FD_WRITE, no FD_CLOSE
    close(wsp, s)


async def test_retry_after_failure_posts_new_connect(wsp, refused_port):
    s = tcp(wsp)
    window = Window()
    async_select(wsp, s, window)
    start(wsp, s, refused_port)
    assert (await next_event(window))[1] == (FD_CONNECT, WSAECONNREFUSED)
    start(wsp, s, refused_port)
    assert (await next_event(window))[1] == (FD_CONNECT, WSAECONNREFUSED)
    lst = socket.socket()
    try:
        lst.bind(("127.0.0.1", refused_port))
        lst.listen(1)
        assert start(wsp, s, refused_port) == (SOCKET_ERROR, WSAEWOULDBLOCK)
        assert (await next_event(window))[1] == (FD_CONNECT, 0)
        assert (await next_event(window))[1] == (FD_WRITE, 0)
        assert await drain(window) == []
    finally:
        lst.close()
    close(wsp, s)


async def test_registration_after_connection_posts_write_only(wsp, listener):
    s = tcp(wsp)
    err = Errno()
    assert await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", listener.getsockname()[1]), 16,
                                None, None, None, None, err) == 0
    window = Window()
    async_select(wsp, s, window)
    assert await drain(window) == [(FD_WRITE, 0)]
    # Re-registering after it was consumed re-posts the level condition FD_WRITE only.
    async_select(wsp, s, window)
    assert await drain(window) == [(FD_WRITE, 0)]
    close(wsp, s)


async def test_registration_forces_nonblocking(wsp, pending_listener):
    s = tcp(wsp)  # new sockets are blocking
    async_select(wsp, s, Window(), 0)  # whatever the mask, even zero
    assert start(wsp, s, pending_listener.getsockname()[1]) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    close(wsp, s)


async def test_fionbio_locked_while_mask_set(wsp):
    s = tcp(wsp)
    window = Window()
    async_select(wsp, s, window)
    assert fionbio(wsp, s, 0) == WSAEINVAL
    assert fionbio(wsp, s, 1) == 0  # nonblocking is fine
    async_select(wsp, s, window, 0)
    assert fionbio(wsp, s, 0) == 0
    close(wsp, s)


async def test_async_select_cancels_event_select(wsp, listener):
    s = tcp(wsp)
    event, window = WSAEvent(), Window()
    assert wsp.WSPEventSelect(s, event, FD_CONNECT | FD_WRITE, Errno()) == 0
    async_select(wsp, s, window)
    start(wsp, s, listener.getsockname()[1])
    assert (await next_event(window))[1] == (FD_CONNECT, 0)
    assert (await next_event(window))[1] == (FD_WRITE, 0)
    assert not event.is_set()
    close(wsp, s)


async def test_event_select_cancels_async_select_queued_stay(wsp, refused_port):
    s = tcp(wsp)
    event, window = WSAEvent(), Window()
    async_select(wsp, s, window)
    start(wsp, s, refused_port)
    assert (await next_event(window))[1] == (FD_CONNECT, WSAECONNREFUSED)
    # a second failure is queued, then the registration changes: the message stays.
    start(wsp, s, refused_port)
    await wait_until(lambda: len(window) > 0)  # not get_message: it must stay queued
    assert wsp.WSPEventSelect(s, event, FD_CONNECT | FD_WRITE, Errno()) == 0
    assert events(window.messages()) == [(FD_CONNECT, WSAECONNREFUSED)]
    close(wsp, s)


async def test_close_posts_nothing(wsp, listener, pending_listener):
    window = Window()
    a, b = tcp(wsp), tcp(wsp)
    async_select(wsp, a, window, FD_ALL_EVENTS)
    async_select(wsp, b, window, FD_ALL_EVENTS)
    start(wsp, a, listener.getsockname()[1])  # Linux completed it; not yet reported
    start(wsp, b, pending_listener.getsockname()[1])
    close(wsp, a)
    close(wsp, b)
    assert await drain(window) == []


async def test_async_select_bad_arguments(wsp):
    s = tcp(wsp)
    err = Errno()
    assert wsp.WSPAsyncSelect(s, None, WM, FD_CONNECT, err) == SOCKET_ERROR and err.value == WSAEINVAL
    assert wsp.WSPAsyncSelect(s, Window(), WM, 1 << 12, err) == SOCKET_ERROR and err.value == WSAEINVAL
    assert wsp.WSPAsyncSelect(99, Window(), WM, FD_CONNECT, err) == SOCKET_ERROR
    assert err.value == WSAENOTSOCK
    close(wsp, s)


# -- accept ------------------------------------------------------------------------------------


async def test_fd_accept_once_per_pending_connection(wsp):
    lst, port = make_listener(wsp)
    window = Window()
    async_select(wsp, lst, window, FD_ACCEPT | FD_CONNECT | FD_WRITE | FD_READ)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        m, ev = await next_event(window)
        assert ev == (FD_ACCEPT, 0) and m.wParam == lst
        # Held until accept re-enables it: three arrivals, one message.
        await wait_until(lambda: pending_accepts(wsp, lst) == 3)  # the engine's eager accepts
        assert await drain(window) == []
        accepted = []
        for i in range(3):
            err = Errno()
            a = await wsp.WSPAccept(lst, None, None, None, 0, err)
            assert a != INVALID_SOCKET, err.value
            accepted.append(a)
            got = await drain(window)
            # The accepted socket inherits the registration: FD_WRITE for it, never
            # FD_CONNECT; the listener gets a new FD_ACCEPT while connections remain.
            expected = [(FD_WRITE, 0)] + ([(FD_ACCEPT, 0)] if i < 2 else [])
            assert sorted(got) == sorted(expected), i
        err = Errno()
        assert await wsp.WSPAccept(lst, None, None, None, 0, err) == INVALID_SOCKET
        assert err.value == WSAEWOULDBLOCK  # listener is nonblocking (registered)
        assert await drain(window) == []
        # accept re-enabled FD_ACCEPT even though it failed: the next arrival posts.
        clients.append(socket.create_connection(("127.0.0.1", port)))
        assert (await next_event(window))[1] == (FD_ACCEPT, 0)
        for a in accepted:
            assert fionbio(wsp, a, 0) == WSAEINVAL  # inherited mask locks FIONBIO
            close(wsp, a)
    finally:
        for c in clients:
            c.close()
    close(wsp, lst)


async def test_accepted_socket_messages_carry_its_handle(wsp):
    lst, port = make_listener(wsp)
    window = Window()
    async_select(wsp, lst, window, FD_ACCEPT | FD_WRITE | FD_CONNECT)
    c = socket.create_connection(("127.0.0.1", port))
    try:
        assert (await next_event(window))[1] == (FD_ACCEPT, 0)
        a = await wsp.WSPAccept(lst, None, None, None, 0, Errno())
        m, ev = await next_event(window)
        assert ev == (FD_WRITE, 0) and m.wParam == a and m.msg == WM
        assert await drain(window) == []
        close(wsp, a)
    finally:
        c.close()
    close(wsp, lst)


async def test_registration_on_listener_posts_pending_accept(wsp):
    """Message-mode registration posts the level conditions: a pending connection."""
    lst, port = make_listener(wsp)
    c = socket.create_connection(("127.0.0.1", port))
    try:
        await wait_readable(wsp, lst)  # the connection is pending
        window = Window()
        async_select(wsp, lst, window, FD_ACCEPT)
        assert await drain(window) == [(FD_ACCEPT, 0)]
        a = await wsp.WSPAccept(lst, None, None, None, 0, Errno())
        close(wsp, a)
    finally:
        c.close()
    close(wsp, lst)


async def test_enum_is_unaffected_by_message_mode(wsp, refused_port):
    """Message mode posts; the event record is not what it reports through."""
    s = tcp(wsp)
    window = Window()
    async_select(wsp, s, window)
    start(wsp, s, refused_port)
    assert (await next_event(window))[1] == (FD_CONNECT, WSAECONNREFUSED)
    ne = WSANetworkEvents()
    assert wsp.WSPEnumNetworkEvents(s, None, ne, Errno()) == 0
    assert ne.lNetworkEvents == 0
    close(wsp, s)


async def test_registration_while_connecting_gets_the_completion(wsp, listener):
    s = tcp(wsp)
    assert fionbio(wsp, s, 1) == 0
    assert start(wsp, s, listener.getsockname()[1]) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    window = Window()
    async_select(wsp, s, window)  # Linux finished already; Winsock has not reported it yet
    assert (await next_event(window))[1] == (FD_CONNECT, 0)
    assert (await next_event(window))[1] == (FD_WRITE, 0)
    assert await drain(window) == []
    close(wsp, s)


async def test_no_retroactive_connect_in_message_mode(wsp, refused_port):
    """A failure that happened before registration is not posted (event mode would)."""
    s = tcp(wsp)
    err = Errno()
    rc = await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", refused_port), 16, None, None, None, None, err)
    assert (rc, err.value) == (SOCKET_ERROR, WSAECONNREFUSED)
    window = Window()
    async_select(wsp, s, window, FD_ALL_EVENTS)
    assert await drain(window) == []
    close(wsp, s)
