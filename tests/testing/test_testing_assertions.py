"""The event-sequence assertions: they pass on what Windows reports and fail, at once and
readably, on anything else. Run with the plugin's fixtures (see conftest.py here)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from wspasync import (
    AF_INET,
    FD_ACCEPT,
    FD_CLOSE,
    FD_CONNECT,
    FD_READ,
    FD_WRITE,
    FIONBIO,
    IPPROTO_TCP,
    SOCK_STREAM,
    WSAECONNREFUSED,
    Errno,
    Message,
    Provider,
    Window,
    WSAEvent,
    WSAMAKESELECTREPLY,
)
from wspasync.testing import (
    NotificationMismatch,
    expect_messages,
    expect_network_events,
    expect_no_notification,
    expect_select,
    format_events,
    parse_expected,
)

WM = 0x0401


def tcp(wsp):
    return wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, Errno())


async def connect(wsp, s, addr):
    err = Errno()
    rc = await wsp.WSPConnect(s, addr, len(addr), None, None, None, None, err)
    return rc, err.value


# -- notation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expected",
    [
        [(FD_CONNECT, 0), (FD_WRITE, 0)],
        [FD_CONNECT, FD_WRITE],
        ["FD_CONNECT(0)", "FD_WRITE"],
        "FD_CONNECT(0), FD_WRITE(0)",
        "FD_CONNECT, FD_WRITE",
        {FD_CONNECT: 0, FD_WRITE: 0},
    ],
)
def test_every_notation_reads_the_same(expected):
    assert parse_expected(expected) == [(FD_CONNECT, 0), (FD_WRITE, 0)]


def test_error_names_and_numbers():
    assert parse_expected("FD_CONNECT(WSAECONNREFUSED)") == [(FD_CONNECT, WSAECONNREFUSED)]
    assert parse_expected(["FD_CONNECT(10061)"]) == [(FD_CONNECT, WSAECONNREFUSED)]
    assert parse_expected((FD_CONNECT, WSAECONNREFUSED)) == [(FD_CONNECT, WSAECONNREFUSED)]
    assert format_events([(FD_CONNECT, WSAECONNREFUSED)]) == "[FD_CONNECT(WSAECONNREFUSED)]"


@pytest.mark.parametrize("bad", ["FD_NOPE", "FD_CONNECT(WSAENOPE)", [FD_CONNECT | FD_WRITE], "connect"])
def test_unreadable_notation_is_a_value_error(bad):
    with pytest.raises(ValueError):
        parse_expected(bad)


# -- async-select ---------------------------------------------------------------------------


async def test_expect_messages_success_and_refusal(wsp, loopback_listener, refused_addr):
    listener = loopback_listener()
    window = Window()
    good, bad = tcp(wsp), tcp(wsp)
    for s in (good, bad):
        assert wsp.WSPAsyncSelect(s, window, WM, FD_CONNECT | FD_WRITE, Errno()) == 0
    await connect(wsp, good, listener.addr)
    await connect(wsp, bad, refused_addr)
    got = await expect_messages(window, "FD_CONNECT(0), FD_WRITE(0)", s=good)
    assert [m.wParam for m in got] == [good, good]
    await expect_messages(window, [(FD_CONNECT, WSAECONNREFUSED)], s=bad)
    wsp.WSPCloseSocket(good, Errno())
    wsp.WSPCloseSocket(bad, Errno())


async def test_expect_messages_fails_at_once_with_names(wsp, refused_addr):
    window = Window()
    s = tcp(wsp)
    wsp.WSPAsyncSelect(s, window, WM, FD_CONNECT | FD_WRITE, Errno())
    await connect(wsp, s, refused_addr)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(NotificationMismatch) as info:
        await expect_messages(window, [(FD_CONNECT, 0), (FD_WRITE, 0)], timeout=30)
    assert str(info.value) == "expected [FD_CONNECT(0), FD_WRITE(0)], got [FD_CONNECT(WSAECONNREFUSED)]"
    assert loop.time() - started < 5  # did not wait for the timeout
    wsp.WSPCloseSocket(s, Errno())


async def test_expect_messages_timeout_says_what_came():
    window = Window()
    window.post_message(Message(window, WM, 7, WSAMAKESELECTREPLY(FD_CONNECT, 0)))
    with pytest.raises(NotificationMismatch) as info:
        await expect_messages(window, [FD_CONNECT, FD_WRITE], timeout=0.05)
    assert str(info.value) == "expected [FD_CONNECT(0), FD_WRITE(0)], got [FD_CONNECT(0)] within 0.05 s"


async def test_expect_messages_extra_message_fails_unless_not_exact():
    window = Window()
    for event in (FD_CONNECT, FD_WRITE, FD_READ):
        window.post_message(Message(window, WM, 7, WSAMAKESELECTREPLY(event, 0)))
    with pytest.raises(NotificationMismatch, match=r"got \[FD_CONNECT\(0\), FD_WRITE\(0\), FD_READ\(0\)\]"):
        await expect_messages(window, [FD_CONNECT, FD_WRITE])
    for event in (FD_CONNECT, FD_WRITE, FD_READ):
        window.post_message(Message(window, WM, 7, WSAMAKESELECTREPLY(event, 0)))
    await expect_messages(window, [FD_CONNECT, FD_WRITE], exact=False)
    assert len(window) == 1


async def test_other_sockets_messages_are_put_back_in_order():
    window = Window()
    window.post_message(Message(window, WM, 1, WSAMAKESELECTREPLY(FD_ACCEPT, 0)))
    window.post_message(Message(window, WM, 2, WSAMAKESELECTREPLY(FD_CONNECT, 0)))
    window.post_message(Message(window, WM, 1, WSAMAKESELECTREPLY(FD_CLOSE, 0)))
    await expect_messages(window, [FD_CONNECT], s=2)
    assert [(m.wParam, m.lParam) for m in window.messages()] == [(1, FD_ACCEPT), (1, FD_CLOSE)]


# -- event-select ------------------------------------------------------------------------------


async def test_expect_network_events_success_is_one_record(wsp, loopback_listener):
    listener = loopback_listener()
    event = WSAEvent()
    s = tcp(wsp)
    wsp.WSPEventSelect(s, event, FD_CONNECT | FD_WRITE, Errno())
    await connect(wsp, s, listener.addr)
    record = await expect_network_events(wsp, s, event, ["FD_CONNECT(0)", "FD_WRITE(0)"])
    assert record.lNetworkEvents == FD_CONNECT | FD_WRITE
    wsp.WSPCloseSocket(s, Errno())


async def test_expect_network_events_failure_names_bits_and_codes(wsp, refused_addr):
    event = WSAEvent()
    s = tcp(wsp)
    wsp.WSPEventSelect(s, event, FD_CONNECT | FD_WRITE, Errno())
    await connect(wsp, s, refused_addr)
    with pytest.raises(NotificationMismatch) as info:
        await expect_network_events(wsp, s, event, {FD_CONNECT: 0, FD_WRITE: 0}, timeout=30)
    assert str(info.value) == (
        f"expected {{FD_WRITE(0), FD_CONNECT(0)}}, got {{FD_CONNECT(WSAECONNREFUSED)}} (socket {s:#x})"
    )
    wsp.WSPCloseSocket(s, Errno())


async def test_expect_network_events_timeout(wsp, pending_addr):
    event = WSAEvent()
    s = tcp(wsp)
    wsp.WSPEventSelect(s, event, FD_CONNECT, Errno())
    await connect(wsp, s, pending_addr)
    with pytest.raises(NotificationMismatch, match=r"expected \{FD_CONNECT\(0\)\}, got \{\} within 0.05 s"):
        await expect_network_events(wsp, s, event, [FD_CONNECT], timeout=0.05)
    wsp.WSPCloseSocket(s, Errno())


# -- no notification -------------------------------------------------------------------------


async def test_expect_no_notification_window_and_event(wsp, pending_addr, refused_addr):
    window, event = Window(), WSAEvent()
    a, b = tcp(wsp), tcp(wsp)
    wsp.WSPAsyncSelect(a, window, WM, FD_CONNECT, Errno())
    wsp.WSPEventSelect(b, event, FD_CONNECT, Errno())
    await connect(wsp, a, pending_addr)
    await connect(wsp, b, pending_addr)
    await expect_no_notification(window)
    await expect_no_notification(event, wsp=wsp, s=b)
    c = tcp(wsp)
    wsp.WSPAsyncSelect(c, window, WM, FD_CONNECT, Errno())
    await connect(wsp, c, refused_addr)
    with pytest.raises(NotificationMismatch, match=r"expected no notification, got \[FD_CONNECT\(WSAECONNREFUSED\)\]"):
        await expect_no_notification(window)
    for s in (a, b, c):
        wsp.WSPCloseSocket(s, Errno())


async def test_expect_no_notification_event_failure_shows_record(wsp, refused_addr):
    event = WSAEvent()
    s = tcp(wsp)
    wsp.WSPEventSelect(s, event, FD_CONNECT, Errno())
    await connect(wsp, s, refused_addr)
    with pytest.raises(NotificationMismatch, match=r"signalled, got \{FD_CONNECT\(WSAECONNREFUSED\)\}"):
        await expect_no_notification(event, wsp=wsp, s=s)
    wsp.WSPCloseSocket(s, Errno())


# -- select ---------------------------------------------------------------------------------------


async def test_expect_select_three_sets(wsp, loopback_listener, refused_addr):
    listener = loopback_listener()
    good, bad = tcp(wsp), tcp(wsp)
    for s in (good, bad):
        wsp.WSPIoctl(s, FIONBIO, struct.pack("<I", 1), 4, None, 0, Errno(), None, None, None, Errno())
    await connect(wsp, good, listener.addr)
    await connect(wsp, bad, refused_addr)
    both = [good, bad]
    await expect_select(wsp, both, both, both, expected={"write": [good], "except": [bad]})
    with pytest.raises(NotificationMismatch) as info:
        await expect_select(wsp, writefds=both, exceptfds=both, expected=([], both, []))
    assert str(info.value) == (
        f"expected readfds=[] writefds=[{good:#x}, {bad:#x}] exceptfds=[], "
        f"got readfds=[] writefds=[{good:#x}] exceptfds=[{bad:#x}]"
    )
    wsp.WSPCloseSocket(good, Errno())
    wsp.WSPCloseSocket(bad, Errno())


async def test_expect_select_timeout_when_nothing_is_ready(wsp, pending_addr):
    s = tcp(wsp)
    wsp.WSPIoctl(s, FIONBIO, struct.pack("<I", 1), 4, None, 0, Errno(), None, None, None, Errno())
    await connect(wsp, s, pending_addr)
    with pytest.raises(NotificationMismatch, match="got readfds=.* within 0.05 s"):
        await expect_select(wsp, writefds=[s], exceptfds=[s], expected=([], [s], []), timeout=0.05)
    # Nothing ready is a valid expectation too (a connecting socket is in no set).
    await expect_select(wsp, writefds=[s], exceptfds=[s], expected=([], [], []), timeout=0.01)
    wsp.WSPCloseSocket(s, Errno())


# -- the plugin's wsp fixture --------------------------------------------------------------------


async def test_wsp_fixture_is_a_provider_on_this_loop(wsp):
    assert isinstance(wsp, Provider)
    assert wsp.loop is asyncio.get_running_loop()
