"""LayeredProvider and FaultLayer: injected outcomes go through the real core, so each
route reports them exactly as a real one; rules select by destination, nth call and
seeded probability; fired rules are in the trace."""

from __future__ import annotations

import asyncio
import struct

import pytest

from wspasync import (
    AF_INET,
    FD_CONNECT,
    FD_WRITE,
    FIONBIO,
    IPPROTO_TCP,
    SO_ERROR,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    Errno,
    Window,
    WSABuf,
    WSAEvent,
    error_name,
    sockaddr_in,
)
from wspasync import ErrorCode as E
from wspasync.testing import (
    FaultLayer,
    LayeredProvider,
    NotificationMismatch,
    Trace,
    expect_messages,
    expect_network_events,
    expect_no_notification,
    expect_select,
)

WM = 0x0401


def tcp(wsp):
    return wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, Errno())


async def connect(wsp, s, addr):
    err = Errno()
    rc = await wsp.WSPConnect(s, addr, len(addr), None, None, None, None, err)
    return rc, error_name(err.value) if rc == SOCKET_ERROR else "0"


def so_error(wsp, s):
    buf = bytearray(4)
    assert wsp.WSPGetSockOpt(s, SOL_SOCKET, SO_ERROR, buf, Errno(4), Errno()) == 0
    return error_name(struct.unpack("<I", buf)[0])


def nonblocking(wsp, s):
    wsp.WSPIoctl(s, FIONBIO, struct.pack("<I", 1), 4, None, 0, Errno(), None, None, None, Errno())


# -- the layered model -------------------------------------------------------------------------


async def test_layered_provider_passes_everything_down(wsp, loopback_listener):
    layer = LayeredProvider(LayeredProvider(wsp))
    assert layer.provider is wsp
    listener = loopback_listener()
    s = tcp(layer)
    assert s in wsp.handles() and len(layer) == 1
    assert await connect(layer, s, listener.addr) == (0, "0")
    assert layer.os_socket(s) is wsp.os_socket(s)  # non-WSP attributes too
    assert layer.WSPCloseSocket(s, Errno()) == 0
    assert wsp.handles() == []


async def test_a_subclass_overrides_one_call(wsp, loopback_listener):
    class NoNagle(LayeredProvider):
        """An LSP that sets TCP_NODELAY on every socket it creates."""

        def WSPSocket(self, *args):
            s = self.base.WSPSocket(*args)
            self.base.WSPSetSockOpt(s, IPPROTO_TCP, 1, struct.pack("<I", 1), 4, Errno())
            return s

    layer = NoNagle(wsp)
    s = tcp(layer)
    buf = bytearray(4)
    assert layer.WSPGetSockOpt(s, IPPROTO_TCP, 1, buf, Errno(4), Errno()) == 0
    assert struct.unpack("<I", buf)[0] == 1
    layer.WSPCloseSocket(s, Errno())


# -- connect faults through every route ------------------------------------------------------------


async def test_async_fault_is_a_real_refusal_on_every_route(fault_layer, loopback_listener):
    listener = loopback_listener()
    fault_layer.fail_connect(E.WSAECONNREFUSED, to=listener.addr)
    wsp = fault_layer
    window, event = Window(), WSAEvent()
    a, b, c = tcp(wsp), tcp(wsp), tcp(wsp)
    wsp.WSPAsyncSelect(a, window, WM, FD_CONNECT | FD_WRITE, Errno())
    wsp.WSPEventSelect(b, event, FD_CONNECT | FD_WRITE, Errno())
    nonblocking(wsp, c)
    for s in (a, b, c):
        assert await connect(wsp, s, listener.addr) == (SOCKET_ERROR, "WSAEWOULDBLOCK")
    await expect_messages(window, ["FD_CONNECT(WSAECONNREFUSED)"])
    await expect_network_events(wsp, b, event, ["FD_CONNECT(WSAECONNREFUSED)"])
    await expect_select(wsp, writefds=[c], exceptfds=[c], expected=([], [], [c]))
    assert so_error(wsp, c) == "WSAECONNREFUSED"  # what a real refusal leaves behind
    # Blocking: the call returns it; SO_ERROR reads 0 after a synchronous failure.
    d = tcp(wsp)
    assert await connect(wsp, d, listener.addr) == (SOCKET_ERROR, "WSAECONNREFUSED")
    assert so_error(wsp, d) == "0"
    assert listener.accept_count == 0  # nothing reached the listener
    for s in (a, b, c, d):
        wsp.WSPCloseSocket(s, Errno())


async def test_nth_call_then_a_real_retry_succeeds(fault_layer, loopback_listener):
    listener = loopback_listener()
    rule = fault_layer.fail_connect(E.WSAECONNREFUSED, nth=1)
    window = Window()
    s = tcp(fault_layer)
    fault_layer.WSPAsyncSelect(s, window, WM, FD_CONNECT | FD_WRITE, Errno())
    await connect(fault_layer, s, listener.addr)
    await expect_messages(window, ["FD_CONNECT(WSAECONNREFUSED)"])
    await connect(fault_layer, s, listener.addr)  # a retry on the same handle
    await expect_messages(window, ["FD_CONNECT(0)", "FD_WRITE(0)"])
    assert (rule.calls, rule.hits) == (2, 1)
    fault_layer.WSPCloseSocket(s, Errno())


async def test_destination_rule_leaves_other_destinations_alone(fault_layer, loopback_listener):
    a, b = loopback_listener(), loopback_listener()
    fault_layer.fail_connect(E.WSAEHOSTUNREACH, to=f"127.0.0.1:{a.port}")
    s, t = tcp(fault_layer), tcp(fault_layer)
    assert await connect(fault_layer, s, a.addr) == (SOCKET_ERROR, "WSAEHOSTUNREACH")
    assert await connect(fault_layer, t, b.addr) == (0, "0")
    fault_layer.WSPCloseSocket(s, Errno())
    fault_layer.WSPCloseSocket(t, Errno())


async def test_seeded_probability_is_reproducible(wsp, loopback_listener):
    listener = loopback_listener()

    async def pattern(seed):
        layer = FaultLayer(wsp, seed=seed)
        layer.fail_connect(E.WSAENOBUFS, probability=0.5)
        out = []
        for _ in range(12):
            s = tcp(layer)
            out.append((await connect(layer, s, listener.addr))[1])
            layer.WSPCloseSocket(s, Errno())
        return out

    first = await pattern(7)
    assert first == await pattern(7)
    assert set(first) == {"0", "WSAENOBUFS"}


async def test_state_checks_still_come_first(fault_layer, pending_addr):
    rule = fault_layer.fail_connect(E.WSAENETDOWN)
    s = tcp(fault_layer)
    # A bad name is refused by the provider before any fault applies.
    assert await connect(fault_layer, s, b"\x02\x00") == (SOCKET_ERROR, "WSAEFAULT")
    assert rule.hits == 0
    rule.remove()
    nonblocking(fault_layer, s)
    await connect(fault_layer, s, pending_addr)
    fault_layer.fail_connect(E.WSAENETDOWN)
    assert await connect(fault_layer, s, pending_addr) == (SOCKET_ERROR, "WSAEALREADY")
    fault_layer.WSPCloseSocket(s, Errno())


async def test_hang_connect_pends_until_closed_or_cancelled(fault_layer, loopback_listener):
    listener = loopback_listener()
    fault_layer.hang_connect(to=listener.addr)
    window = Window()
    s = tcp(fault_layer)
    fault_layer.WSPAsyncSelect(s, window, WM, FD_CONNECT | FD_WRITE, Errno())
    assert await connect(fault_layer, s, listener.addr) == (SOCKET_ERROR, "WSAEWOULDBLOCK")
    await expect_no_notification(window, timeout=0.05)
    await expect_select(fault_layer, writefds=[s], exceptfds=[s], expected=([], [], []), timeout=0.01)
    fault_layer.WSPCloseSocket(s, Errno())
    blocking = tcp(fault_layer)
    task = asyncio.ensure_future(connect(fault_layer, blocking, listener.addr))
    await asyncio.sleep(0)
    assert fault_layer.WSPCancelBlockingCall(Errno()) == 0
    assert await task == (SOCKET_ERROR, "WSAEINTR")
    fault_layer.WSPCloseSocket(blocking, Errno())


async def test_delayed_fault_and_delayed_success(fault_layer, loopback_listener):
    listener = loopback_listener()
    fault_layer.fail_connect(E.WSAETIMEDOUT, after=0.05, nth=1)
    fault_layer.delay_connect(0.05, nth=2)
    window = Window()
    s = tcp(fault_layer)
    fault_layer.WSPAsyncSelect(s, window, WM, FD_CONNECT | FD_WRITE, Errno())
    loop = asyncio.get_running_loop()
    started = loop.time()
    await connect(fault_layer, s, listener.addr)
    await expect_no_notification(window)  # not yet: nothing is due
    await expect_messages(window, ["FD_CONNECT(WSAETIMEDOUT)"])
    assert loop.time() - started >= 0.04
    started = loop.time()
    await connect(fault_layer, s, listener.addr)
    await expect_messages(window, ["FD_CONNECT(0)", "FD_WRITE(0)"])
    assert loop.time() - started >= 0.04
    assert listener.wait_accepted(1)  # the delayed one really connected
    fault_layer.WSPCloseSocket(s, Errno())


async def test_blocking_connect_waits_for_the_delayed_outcome(fault_layer, loopback_listener):
    listener = loopback_listener()
    fault_layer.fail_connect(E.WSAECONNREFUSED, after=0.02)
    s = tcp(fault_layer)
    assert await connect(fault_layer, s, listener.addr) == (SOCKET_ERROR, "WSAECONNREFUSED")
    fault_layer.WSPCloseSocket(s, Errno())


async def test_delayed_notifications(fault_layer, loopback_listener):
    listener = loopback_listener()
    window, event = Window(), WSAEvent()
    a, b = tcp(fault_layer), tcp(fault_layer)
    fault_layer.delay_notifications(0.05, FD_WRITE, s=a)
    fault_layer.delay_notifications(0.05, s=b)
    fault_layer.WSPAsyncSelect(a, window, WM, FD_CONNECT | FD_WRITE, Errno())
    fault_layer.WSPEventSelect(b, event, FD_CONNECT | FD_WRITE, Errno())
    await connect(fault_layer, a, listener.addr)
    await connect(fault_layer, b, listener.addr)
    # FD_CONNECT on time, FD_WRITE late: the order a user's code may not expect.
    await expect_messages(window, ["FD_CONNECT(0)"], exact=False)
    await expect_no_notification(window)
    # Event mode: the object is signalled late, the record is already complete.
    assert not event.is_set()
    await expect_messages(window, ["FD_WRITE(0)"])
    await expect_network_events(fault_layer, b, event, ["FD_CONNECT(0)", "FD_WRITE(0)"])
    fault_layer.WSPCloseSocket(a, Errno())
    fault_layer.WSPCloseSocket(b, Errno())


async def test_fail_send_and_recv(fault_layer, loopback_listener):
    listener = loopback_listener()
    s = tcp(fault_layer)
    assert await connect(fault_layer, s, listener.addr) == (0, "0")
    fault_layer.fail_send(E.WSAECONNRESET, s=s, times=1)
    fault_layer.fail_recv(E.WSAECONNABORTED, s=s, times=1)
    sent, err = Errno(), Errno()
    buf = WSABuf(2, bytearray(b"hi"))
    assert await fault_layer.WSPSend(s, [buf], 1, sent, 0, None, None, None, err) == SOCKET_ERROR
    assert (sent.value, error_name(err.value)) == (0, "WSAECONNRESET")
    assert await fault_layer.WSPSend(s, [buf], 1, sent, 0, None, None, None, err) == 0
    assert sent.value == 2
    got, flags = Errno(), Errno()
    room = WSABuf(8, bytearray(8))
    assert await fault_layer.WSPRecv(s, [room], 1, got, flags, None, None, None, err) == SOCKET_ERROR
    assert error_name(err.value) == "WSAECONNABORTED"
    fault_layer.WSPCloseSocket(s, Errno())


# -- visible in the trace ------------------------------------------------------------------------


async def test_fired_rules_are_in_the_trace(wsp, loopback_listener):
    listener = loopback_listener()
    trace = Trace().attach(wsp)
    layer = FaultLayer(wsp)
    layer.fail_connect(E.WSAECONNREFUSED, nth=1)
    s = tcp(layer)
    nonblocking(layer, s)
    await connect(layer, s, listener.addr)
    await expect_select(layer, exceptfds=[s], expected=([], [], [s]))
    layer.WSPCloseSocket(s, Errno())
    trace.detach()
    kinds = [(kind, what) for kind, what in trace.sequence() if kind in ("fault", "state", "event")]
    assert kinds == [
        ("state", "None -> UNBOUND"),
        ("fault", "connect: fail WSAECONNREFUSED (async) [nth 1]"),
        ("state", "UNBOUND -> CONNECTING"),
        ("state", "CONNECTING -> FAILED"),
        ("event", "FD_CONNECT(WSAECONNREFUSED)"),
        ("state", "FAILED -> CLOSED"),
    ]


async def test_fault_layer_fixture_shares_the_wsp_fixture(wsp, fault_layer):
    assert fault_layer.provider is wsp
    assert fault_layer.rules == []


def test_mismatch_is_an_assertion_error():
    assert issubclass(NotificationMismatch, AssertionError)


def test_bad_rules_are_refused(wsp=None):
    layer = FaultLayer(object())
    with pytest.raises(ValueError):
        layer.fail_connect(E.WSAENETDOWN, probability=2)
    with pytest.raises(ValueError):
        layer.fail_connect(E.WSAENETDOWN, to="nowhere")
    assert layer.fail_connect(E.WSAENETDOWN, to=("127.0.0.1", 80)).to == ("127.0.0.1", 80)
    assert layer.fail_connect(E.WSAENETDOWN, to=sockaddr_in("127.0.0.1", 80)).to == ("127.0.0.1", 80)
