"""WSPEventSelect + WSPEnumNetworkEvents as the connect and accept route (SEMANTICS.md §4)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from wspasync import (
    FD_ACCEPT,
    FD_ACCEPT_BIT,
    FD_ALL_EVENTS,
    FD_CLOSE,
    FD_CONNECT,
    FD_CONNECT_BIT,
    FD_READ,
    FD_WRITE,
    FD_WRITE_BIT,
    INVALID_SOCKET,
    SOCKET_ERROR,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
    WSAECONNREFUSED,
    WSAEFAULT,
    WSAEINVAL,
    WSAENOTSOCK,
    WSAEWOULDBLOCK,
    Errno,
    FdSet,
    WSAEvent,
    WSANetworkEvents,
    Window,
    sockaddr_in,
    wait_for_multiple_events,
)
from wspasync.testing import settle
from wsp_support import close, fionbio, make_listener, start, tcp


pytestmark = pytest.mark.timeout(30)

CONNECT_MASK = FD_CONNECT | FD_WRITE | FD_READ | FD_CLOSE


def event_select(wsp, s, event, mask=CONNECT_MASK):
    err = Errno()
    assert wsp.WSPEventSelect(s, event, mask, err) == 0, err.value


def enum(wsp, s, event):
    ne = WSANetworkEvents(iErrorCode=[-1] * 10)
    err = Errno()
    assert wsp.WSPEnumNetworkEvents(s, event, ne, err) == 0, err.value
    return ne


async def signalled(event, ms=5000):
    return await wait_for_multiple_events([event], False, ms) == WSA_WAIT_EVENT_0


# -- connect -----------------------------------------------------------------------------------


async def test_success_is_one_enum_with_connect_and_write(wsp, listener):
    s = tcp(wsp)
    event = WSAEvent()
    event_select(wsp, s, event)
    assert start(wsp, s, listener.getsockname()[1]) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    assert not event.is_set()  # never before connect returned
    assert await signalled(event)
    ne = enum(wsp, s, event)
    assert ne.lNetworkEvents == FD_CONNECT | FD_WRITE == 0x12
    assert ne.iErrorCode[FD_CONNECT_BIT] == 0 and ne.iErrorCode[FD_WRITE_BIT] == 0
    assert not event.is_set()  # enum resets the event
    await settle()
    assert enum(wsp, s, event).lNetworkEvents == 0  # once each
    close(wsp, s)


async def test_failure_is_connect_with_error_only(wsp, refused_port):
    s = tcp(wsp)
    event = WSAEvent()
    event_select(wsp, s, event, FD_ALL_EVENTS)
    start(wsp, s, refused_port)
    assert await signalled(event)
    await settle()
    ne = enum(wsp, s, event)
    assert ne.lNetworkEvents == FD_CONNECT
    assert ne.iErrorCode[FD_CONNECT_BIT] == WSAECONNREFUSED
    # iErrorCode is written only for the reported bits
    assert [c for i, c in enumerate(ne.iErrorCode) if i != FD_CONNECT_BIT] == [-1] * 9
    close(wsp, s)


async def test_retry_after_failure_reports_new_connect(wsp, refused_port):
    s = tcp(wsp)
    event = WSAEvent()
    event_select(wsp, s, event)
    start(wsp, s, refused_port)
    assert await signalled(event)
    assert enum(wsp, s, event).iErrorCode[FD_CONNECT_BIT] == WSAECONNREFUSED
    lst = socket.socket()
    try:
        lst.bind(("127.0.0.1", refused_port))
        lst.listen(1)
        start(wsp, s, refused_port)
        assert await signalled(event)
        ne = enum(wsp, s, event)
        assert ne.lNetworkEvents == 0x12 and ne.iErrorCode[FD_CONNECT_BIT] == 0
    finally:
        lst.close()
    close(wsp, s)


async def test_registration_after_connection_reports_connect_and_write(wsp, listener):
    s = tcp(wsp)
    err = Errno()
    assert await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", listener.getsockname()[1]), 16,
                                None, None, None, None, err) == 0
    event = WSAEvent()
    event_select(wsp, s, event)
    assert event.is_set()
    ne = enum(wsp, s, event)
    assert ne.lNetworkEvents == 0x12 and ne.iErrorCode[FD_CONNECT_BIT] == 0
    # Re-registering after they were consumed reports nothing new.
    event_select(wsp, s, event)
    await settle()
    assert not event.is_set()
    assert enum(wsp, s, event).lNetworkEvents == 0
    close(wsp, s)


async def test_masked_out_event_reported_when_mask_admits_it(wsp, refused_port):
    s = tcp(wsp)
    event = WSAEvent()
    event_select(wsp, s, event, FD_READ)
    start(wsp, s, refused_port)
    assert await wait_for_multiple_events([event], False, 50) == WSA_WAIT_TIMEOUT
    assert enum(wsp, s, event).lNetworkEvents == 0
    event_select(wsp, s, event, FD_CONNECT)
    assert event.is_set()
    ne = enum(wsp, s, event)
    assert ne.lNetworkEvents == FD_CONNECT and ne.iErrorCode[FD_CONNECT_BIT] == WSAECONNREFUSED
    close(wsp, s)


async def test_reregistration_keeps_unconsumed_record(wsp, refused_port):
    s = tcp(wsp)
    first, second = WSAEvent(), WSAEvent()
    event_select(wsp, s, first)
    start(wsp, s, refused_port)
    assert await signalled(first)
    event_select(wsp, s, second)
    assert second.is_set()
    ne = enum(wsp, s, second)
    assert ne.lNetworkEvents == FD_CONNECT and ne.iErrorCode[FD_CONNECT_BIT] == WSAECONNREFUSED
    close(wsp, s)


async def test_enum_with_no_event_object(wsp, listener):
    s = tcp(wsp)
    event = WSAEvent()
    event_select(wsp, s, event)
    start(wsp, s, listener.getsockname()[1])
    assert await signalled(event)
    assert enum(wsp, s, None).lNetworkEvents == 0x12
    assert event.is_set()  # nobody reset it
    assert enum(wsp, s, None).lNetworkEvents == 0  # but the record is cleared
    close(wsp, s)


async def test_enum_bad_arguments(wsp):
    s = tcp(wsp)
    err = Errno()
    assert wsp.WSPEnumNetworkEvents(s, None, None, err) == SOCKET_ERROR and err.value == WSAEFAULT
    assert wsp.WSPEnumNetworkEvents(s, Window(), WSANetworkEvents(), err) == SOCKET_ERROR
    assert err.value == WSAEINVAL
    assert wsp.WSPEnumNetworkEvents(77, None, WSANetworkEvents(), err) == SOCKET_ERROR
    assert err.value == WSAENOTSOCK
    close(wsp, s)


async def test_registration_forces_nonblocking_and_locks_fionbio(wsp, pending_listener):
    s = tcp(wsp)
    event = WSAEvent()
    event_select(wsp, s, event)
    assert fionbio(wsp, s, 0) == WSAEINVAL
    assert start(wsp, s, pending_listener.getsockname()[1]) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    event_select(wsp, s, None, 0)
    assert fionbio(wsp, s, 0) == 0
    close(wsp, s)


async def test_event_select_cancels_async_select(wsp, listener):
    s = tcp(wsp)
    event, window = WSAEvent(), Window()
    assert wsp.WSPAsyncSelect(s, window, 0x401, CONNECT_MASK, Errno()) == 0
    event_select(wsp, s, event)
    start(wsp, s, listener.getsockname()[1])
    assert await signalled(event)
    assert enum(wsp, s, event).lNetworkEvents == 0x12
    await settle()
    assert len(window) == 0
    close(wsp, s)


async def test_close_signals_nothing(wsp, listener):
    s = tcp(wsp)
    event = WSAEvent()
    event_select(wsp, s, event, FD_ALL_EVENTS)
    start(wsp, s, listener.getsockname()[1])
    close(wsp, s)
    await settle()
    assert not event.is_set()


# -- accept ----------------------------------------------------------------------------------------


async def test_fd_accept_signals_every_arrival(wsp):
    lst, port = make_listener(wsp)
    event = WSAEvent()
    event_select(wsp, lst, event, FD_ACCEPT | FD_CONNECT | FD_WRITE | FD_READ)
    clients = [socket.create_connection(("127.0.0.1", port))]
    try:
        assert await signalled(event)
        ne = enum(wsp, lst, event)
        assert ne.lNetworkEvents == FD_ACCEPT and ne.iErrorCode[FD_ACCEPT_BIT] == 0
        # A second arrival signals again, without any accept in between.
        clients.append(socket.create_connection(("127.0.0.1", port)))
        assert await signalled(event)
        assert enum(wsp, lst, event).lNetworkEvents == FD_ACCEPT
        accepted = []
        for _ in range(2):
            err = Errno()
            a = await wsp.WSPAccept(lst, None, None, None, 0, err)
            assert a != INVALID_SOCKET, err.value
            accepted.append(a)
        # The accepted sockets inherit the event object and mask: FD_WRITE, no FD_CONNECT.
        for a in accepted:
            ne = enum(wsp, a, None)
            assert ne.lNetworkEvents == FD_WRITE, hex(ne.lNetworkEvents)
            assert fionbio(wsp, a, 0) == WSAEINVAL
        assert event.is_set()
        err = Errno()
        assert await wsp.WSPAccept(lst, None, None, None, 0, err) == INVALID_SOCKET
        assert err.value == WSAEWOULDBLOCK
        for a in accepted:
            close(wsp, a)
    finally:
        for c in clients:
            c.close()
    close(wsp, lst)


async def test_registration_while_connecting_gets_the_completion(wsp, listener):
    s = tcp(wsp)
    assert fionbio(wsp, s, 1) == 0
    assert start(wsp, s, listener.getsockname()[1]) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    event = WSAEvent()
    event_select(wsp, s, event)
    assert await signalled(event)
    assert enum(wsp, s, event).lNetworkEvents == 0x12
    close(wsp, s)


async def test_retroactive_failure_in_event_mode(wsp, refused_port):
    """A nonblocking failure recorded before registration is reported once registered."""
    s = tcp(wsp)
    assert fionbio(wsp, s, 1) == 0
    assert start(wsp, s, refused_port) == (SOCKET_ERROR, WSAEWOULDBLOCK)
    x = FdSet([s])
    async with asyncio.timeout(5):
        assert await wsp.WSPSelect(0, None, None, x, None, Errno()) == 1
    event = WSAEvent()
    event_select(wsp, s, event, FD_CONNECT)
    assert event.is_set()
    ne = enum(wsp, s, event)
    assert ne.lNetworkEvents == FD_CONNECT and ne.iErrorCode[FD_CONNECT_BIT] == WSAECONNREFUSED
    close(wsp, s)
