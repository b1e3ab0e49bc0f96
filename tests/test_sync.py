"""The blocking twin, SyncProvider (API.md §6), called from plain threads.

Every test runs on both loop kinds. No thread may survive close(); a closed provider
answers every WSP method with SOCKET_ERROR/INVALID_SOCKET + WSANOTINITIALISED.
"""

from __future__ import annotations

import inspect
import threading
import time

import pytest

from wspasync import (
    AF_INET,
    FD_CONNECT,
    FD_WRITE,
    INVALID_SOCKET,
    SOCK_STREAM,
    SOCKET_ERROR,
    WINSOCK_1_1,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_FAILED,
    WSA_WAIT_TIMEOUT,
    WSAEALREADY,
    WSAECONNREFUSED,
    WSAEINPROGRESS,
    WSAEINTR,
    WSAEINVAL,
    WSAENOTSOCK,
    WSANOTINITIALISED,
    WSAEWOULDBLOCK,
    WSAGETSELECTERROR,
    WSAGETSELECTEVENT,
    ErrorCode,
    Errno,
    FdSet,
    Provider,
    SyncProvider,
    TimeVal,
    WSABuf,
    WSAError,
    WSAEvent,
    WSANetworkEvents,
    Window,
    sockaddr_in,
)
from wsp_support import make_listener, nonblocking, tcp, wait_blocking_calls

pytestmark = pytest.mark.timeout(60)

WSP_METHODS = sorted(name for name in vars(Provider) if name.startswith("WSP"))


@pytest.fixture(params=["asyncio", "uvloop"])
def sp(request):
    """A SyncProvider; the test fails if its thread outlives close()."""
    before = set(threading.enumerate())
    provider = SyncProvider(loop=request.param)
    yield provider
    provider.close()
    assert set(threading.enumerate()) <= before, "a thread survived close()"


def _connect(sp, s: int, port: int, err: Errno) -> int:
    return sp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err)




def _cancel_until_found(sp) -> None:
    """WSPCancelBlockingCall from this thread once a call in another one waits."""
    wait_blocking_calls(sp)
    err = Errno()
    assert sp.WSPCancelBlockingCall(err) == 0, err


def _in_thread(fn, *args):
    box: dict = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # reported by the test, not lost in the thread
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, box


def _joined(t: threading.Thread, box: dict):
    t.join(10)
    assert not t.is_alive()
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_the_twin_has_every_wsp_method_of_the_provider():
    for name in WSP_METHODS:
        twin = getattr(SyncProvider, name)
        assert not inspect.iscoroutinefunction(twin), name
        assert list(inspect.signature(twin).parameters) == list(
            inspect.signature(getattr(Provider, name)).parameters
        ), name
        assert twin.__doc__, name


def test_blocking_connect_accept_send_recv(sp):
    err = Errno()
    lst, port = make_listener(sp, backlog=64)
    c = tcp(sp)
    assert _connect(sp, c, port, err) == 0, err
    addr, addrlen = bytearray(16), Errno(16)
    a = sp.WSPAccept(lst, addr, addrlen, None, 0, err)
    assert a != INVALID_SOCKET, err
    assert addrlen.value == 16
    sent = Errno()
    assert sp.WSPSend(c, [WSABuf(5, bytearray(b"hello"))], 1, sent, 0, None, None, None, err) == 0
    assert sent.value == 5
    buf, got = bytearray(16), Errno()
    assert sp.WSPRecv(a, [WSABuf(16, buf)], 1, got, Errno(0), None, None, None, err) == 0
    assert bytes(buf[: got.value]) == b"hello"
    for h in (a, c, lst):
        assert sp.WSPCloseSocket(h, err) == 0
    assert len(sp) == 0


def test_refused_blocking_connect(sp, refused_port):
    s = tcp(sp)
    err = Errno()
    assert _connect(sp, s, refused_port, err) == SOCKET_ERROR
    assert err.value == WSAECONNREFUSED
    assert sp.WSPCloseSocket(s, err) == 0


def test_many_threads_at_once(sp):
    lst, port = make_listener(sp, backlog=128)
    threads, per_thread = 8, 20
    accepted: list[int] = []

    def acceptor():
        err = Errno()
        for _ in range(threads * per_thread):
            a = sp.WSPAccept(lst, None, None, None, 0, err)
            assert a != INVALID_SOCKET, err
            accepted.append(a)
        return True

    def client():
        err = Errno()
        for _ in range(per_thread):
            s = tcp(sp)
            assert _connect(sp, s, port, err) == 0, err
            assert sp.WSPSend(s, [WSABuf(1, bytearray(b"x"))], 1, Errno(), 0, None, None, None, err) == 0
            assert sp.WSPCloseSocket(s, err) == 0
        return True

    acc = _in_thread(acceptor)
    clients = [_in_thread(client) for _ in range(threads)]
    for t, box in clients:
        assert _joined(t, box)
    assert _joined(*acc)
    assert len(set(accepted)) == threads * per_thread
    for a in accepted:
        assert sp.WSPCloseSocket(a, Errno()) == 0
    assert sp.WSPCloseSocket(lst, Errno()) == 0


def test_cancel_from_a_second_thread_ends_blocking_connect(sp, pending_listener):
    s = tcp(sp)
    err = Errno()
    t, box = _in_thread(_connect, sp, s, pending_listener.getsockname()[1], err)
    _cancel_until_found(sp)
    assert _joined(t, box) == SOCKET_ERROR
    assert err.value == WSAEINTR
    # Only closesocket is certain afterwards; nothing is left in progress.
    assert sp.WSPCancelBlockingCall(Errno()) == SOCKET_ERROR
    assert sp.WSPCloseSocket(s, Errno()) == 0


def test_cancel_from_a_second_thread_ends_accept_select_and_recv(sp):
    lst, port = make_listener(sp, backlog=64)
    c = tcp(sp)
    err = Errno()
    assert _connect(sp, c, port, err) == 0
    a = sp.WSPAccept(lst, None, None, None, 0, err)
    errs = [Errno() for _ in range(3)]
    calls = [
        _in_thread(sp.WSPAccept, lst, None, None, None, 0, errs[0]),
        _in_thread(sp.WSPSelect, 0, FdSet([lst]), None, None, None, errs[1]),
        _in_thread(sp.WSPRecv, c, [WSABuf(4, bytearray(4))], 1, Errno(), Errno(0), None, None, None, errs[2]),
    ]
    wait_blocking_calls(sp, 3)
    assert sp.WSPCancelBlockingCall(Errno()) == 0  # one call ends all three
    assert [_joined(t, box) for t, box in calls] == [INVALID_SOCKET, SOCKET_ERROR, SOCKET_ERROR]
    assert [e.value for e in errs] == [WSAEINTR] * 3
    for h in (a, c, lst):
        assert sp.WSPCloseSocket(h, Errno()) == 0


def test_second_blocking_call_on_a_socket_is_inprogress(sp):
    lst, _ = make_listener(sp, backlog=64)
    first = Errno()
    t, box = _in_thread(sp.WSPAccept, lst, None, None, None, 0, first)
    wait_blocking_calls(sp)
    err = Errno()
    assert sp.WSPAccept(lst, None, None, None, 0, err) == INVALID_SOCKET
    assert err.value == WSAEINPROGRESS
    _cancel_until_found(sp)
    assert _joined(t, box) == INVALID_SOCKET and first.value == WSAEINTR
    assert sp.WSPCloseSocket(lst, Errno()) == 0


def test_close_interrupts_blocking_calls_and_ends_the_thread(pending_listener):
    before = set(threading.enumerate())
    sp = SyncProvider()
    lst, _ = make_listener(sp, backlog=64)
    s = tcp(sp)
    e1, e2 = Errno(), Errno()
    accept = _in_thread(sp.WSPAccept, lst, None, None, None, 0, e1)
    connect = _in_thread(_connect, sp, s, pending_listener.getsockname()[1], e2)
    wait_blocking_calls(sp, 2)
    sp.close()
    assert _joined(*accept) == INVALID_SOCKET and e1.value == WSAEINTR
    assert _joined(*connect) == SOCKET_ERROR and e2.value == WSAEINTR
    assert set(threading.enumerate()) <= before
    sp.close()  # idempotent


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_closed_provider_answers_wsanotinitialised_never_raises(loop):
    sp = SyncProvider(loop=loop)
    s = tcp(sp)
    sp.close()
    for name in WSP_METHODS:
        method = getattr(sp, name)
        params = list(inspect.signature(method).parameters)
        err = Errno()
        args = [s if p == "s" else None for p in params[:-1]]
        rc = method(*args, err)
        expected = INVALID_SOCKET if name in ("WSPSocket", "WSPAccept") else SOCKET_ERROR
        assert (rc, err.value) == (expected, WSANOTINITIALISED), name
    assert sp.handles() == [] and len(sp) == 0
    assert sp.get_message(Window(), 0.01) is None
    assert sp.wait_for_multiple_events([WSAEvent()], False, 10) == WSA_WAIT_FAILED
    with pytest.raises(WSAError) as info:
        sp.os_socket(s)
    assert info.value.code == ErrorCode.WSANOTINITIALISED


def test_bad_version_raises_wsavernotsupported_and_starts_nothing():
    before = set(threading.enumerate())
    for version in (0, 0x0303, 0x0003, 0x0201, -1, "2.2"):
        with pytest.raises(WSAError) as info:
            SyncProvider(version=version)  # type: ignore[arg-type]
        assert info.value.code == ErrorCode.WSAVERNOTSUPPORTED
    with pytest.raises(ValueError):
        SyncProvider(loop="trio")
    assert set(threading.enumerate()) == before


@pytest.mark.parametrize(("version", "code"), [(WINSOCK_1_1, WSAEINVAL), (0x0202, WSAEALREADY)])
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_winsock_1_1_mode(loop, version, code, pending_listener):
    with SyncProvider(version=version, loop=loop) as sp:
        s = tcp(sp)
        nonblocking(sp, s)
        err = Errno()
        port = pending_listener.getsockname()[1]
        assert _connect(sp, s, port, err) == SOCKET_ERROR and err.value == WSAEWOULDBLOCK
        assert _connect(sp, s, port, err) == SOCKET_ERROR
        assert err.value == code


def test_get_message_from_a_plain_thread(sp, listener):
    window = Window()
    s = tcp(sp)
    err = Errno()
    assert sp.WSPAsyncSelect(s, window, 0x401, FD_CONNECT | FD_WRITE, err) == 0
    assert _connect(sp, s, listener.getsockname()[1], err) == SOCKET_ERROR
    assert err.value == WSAEWOULDBLOCK
    first = sp.get_message(window, 5)
    second = sp.get_message(window, 5)
    assert first is not None and second is not None
    assert (first.wParam, WSAGETSELECTEVENT(first.lParam), WSAGETSELECTERROR(first.lParam)) == (s, FD_CONNECT, 0)
    assert (WSAGETSELECTEVENT(second.lParam), WSAGETSELECTERROR(second.lParam)) == (FD_WRITE, 0)
    t0 = time.monotonic()
    assert sp.get_message(window, 0.05) is None
    assert time.monotonic() - t0 >= 0.04
    assert sp.get_message("not a window", 1) is None  # type: ignore[arg-type]
    assert sp.WSPCloseSocket(s, err) == 0


def test_wait_for_multiple_events_from_a_plain_thread(sp, listener):
    event = WSAEvent()
    s = tcp(sp)
    err = Errno()
    assert sp.wait_for_multiple_events([event], False, 20) == WSA_WAIT_TIMEOUT
    assert sp.WSPEventSelect(s, event, FD_CONNECT | FD_WRITE, err) == 0
    assert _connect(sp, s, listener.getsockname()[1], err) == SOCKET_ERROR
    assert sp.wait_for_multiple_events([WSAEvent(), event], False, 5_000) == WSA_WAIT_EVENT_0 + 1
    record = WSANetworkEvents()
    assert sp.WSPEnumNetworkEvents(s, event, record, err) == 0
    assert record.lNetworkEvents == FD_CONNECT | FD_WRITE
    assert not event.is_set()
    assert sp.wait_for_multiple_events([], False, 0) == WSA_WAIT_FAILED
    assert sp.WSPCloseSocket(s, err) == 0


def test_select_from_a_plain_thread(sp, listener):
    s = tcp(sp)
    nonblocking(sp, s)
    err = Errno()
    assert _connect(sp, s, listener.getsockname()[1], err) == SOCKET_ERROR
    assert err.value == WSAEWOULDBLOCK
    writefds = FdSet([s])
    assert sp.WSPSelect(0, None, writefds, None, TimeVal(5, 0), err) == 1
    assert writefds.fd_array == [s]
    bad = Errno()
    assert sp.WSPSelect(0, FdSet([12345]), None, None, TimeVal(0, 0), bad) == SOCKET_ERROR
    assert bad.value == WSAENOTSOCK
    assert sp.WSPCloseSocket(s, err) == 0


def _callback_probe(sp, seen: dict):
    """A condition function that records its thread and what SyncProvider calls
    answer from inside it."""

    def condition(caller_id, caller_data, sqos, gqos, callee_id, callee_data, g, data):
        seen["thread"] = threading.get_ident()
        err = Errno()
        seen["socket"] = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        blocked = Errno()
        seen["connect"] = (sp.WSPConnect(seen["socket"], b"", 0, None, None, None, None, blocked), blocked.value)
        # The waiting helpers cannot wait for the loop while the gate is held: they
        # answer at once.
        seen["get_message"] = sp.get_message(Window(), 5)
        seen["wait"] = sp.wait_for_multiple_events([WSAEvent()], False, 5000)
        return 0  # CF_ACCEPT

    return condition


def _check_probe(sp, seen: dict) -> None:
    assert seen["socket"] != INVALID_SOCKET
    assert seen["connect"] == (SOCKET_ERROR, WSAEINPROGRESS)
    assert seen["get_message"] is None
    assert seen["wait"] == WSA_WAIT_FAILED
    assert sp.WSPCloseSocket(seen["socket"], Errno()) == 0


def test_callback_inside_the_call_when_a_connection_is_queued(sp):
    """A connection already queued: WSPAccept runs the condition function in the
    calling thread, as WSAAccept does on Windows. Plain calls work there, blocking ones
    answer WSAEINPROGRESS (the provider is processing a callback)."""
    lst, port = make_listener(sp, backlog=64)
    c = tcp(sp)
    err = Errno()
    assert _connect(sp, c, port, err) == 0
    # Until the listener is readable: the connection is queued.
    assert sp.WSPSelect(0, FdSet([lst]), None, None, TimeVal(5, 0), err) == 1
    seen: dict = {}
    a = sp.WSPAccept(lst, None, None, _callback_probe(sp, seen), 0, err)
    assert a != INVALID_SOCKET, err
    assert seen["thread"] == threading.get_ident()
    _check_probe(sp, seen)
    for h in (a, c, lst):
        assert sp.WSPCloseSocket(h, Errno()) == 0


def test_callback_on_the_loop_thread_when_the_connection_comes_later(sp):
    """WSPAccept waiting: the condition function runs on the loop thread when the
    connection arrives, with the same answers from inside it."""
    lst, port = make_listener(sp, backlog=64)
    seen: dict = {}
    out: list[int] = []
    accepter = threading.Thread(
        target=lambda: out.append(sp.WSPAccept(lst, None, None, _callback_probe(sp, seen), 0, Errno()))
    )
    accepter.start()
    wait_blocking_calls(sp)
    c = tcp(sp)
    assert _connect(sp, c, port, Errno()) == 0
    accepter.join(10)
    assert not accepter.is_alive()
    assert out and out[0] != INVALID_SOCKET
    assert seen["thread"] == sp._thread_id
    _check_probe(sp, seen)
    for h in (out[0], c, lst):
        assert sp.WSPCloseSocket(h, Errno()) == 0


def test_close_from_inside_a_callback_returns_and_the_thread_ends():
    """close() from a condition function cannot wait for the loop (the callback holds
    the gate): it returns at once, and the shutdown finishes after the callback."""
    before = set(threading.enumerate())
    sp = SyncProvider()
    lst, port = make_listener(sp, backlog=8)
    c = tcp(sp)
    err = Errno()
    assert _connect(sp, c, port, err) == 0
    assert sp.WSPSelect(0, FdSet([lst]), None, None, TimeVal(5, 0), err) == 1

    def condition(*_args):
        sp.close()
        return 0

    sp.WSPAccept(lst, None, None, condition, 0, err)
    assert sp.closed
    sp._thread.join(10)
    assert not sp._thread.is_alive()
    assert set(threading.enumerate()) <= before
    assert sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err) == INVALID_SOCKET
    assert err.value == WSANOTINITIALISED


def test_context_manager_closes_every_socket():
    before = set(threading.enumerate())
    with SyncProvider() as sp:
        handles = [tcp(sp) for _ in range(5)]
        assert sorted(sp.handles()) == sorted(handles)
    assert sp.closed
    assert set(threading.enumerate()) <= before  # (the leak check sees the sockets)
