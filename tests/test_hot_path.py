"""The connect cycle's fast paths (issue 4's cost bar) keep the behaviour of the slow ones.

The hot path was shortened for speed: the provider's WSPConnect runs its synchronous
part as a plain method, and SyncProvider runs
WSPSocket / WSPConnect / WSPCloseSocket in the caller's thread without a coroutine. These
tests pin what those shortcuts must not change.
"""

from __future__ import annotations

import threading

import pytest

from wspasync import (
    AF_INET,
    INVALID_SOCKET,
    SOCK_STREAM,
    SOCKET_ERROR,
    Errno,
    ErrorCode,
    SyncProvider,
    sockaddr_in,
)
from wspasync._state import State
from wspasync._trace import Trace

E = ErrorCode


def test_state_hash_is_identity():
    assert {State.CONNECTED: 1}[State.CONNECTED] == 1
    assert len({*State, *State}) == len(State)


@pytest.fixture(params=["asyncio", "uvloop"])
def sp(request):
    with SyncProvider(loop=request.param) as sp:
        yield sp


def test_sync_cycle(sp, listener):
    name = sockaddr_in(*listener.getsockname())
    err = Errno()
    for _ in range(3):
        s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        assert s != INVALID_SOCKET
        assert sp.WSPConnect(s, name, 16, None, None, None, None, err) == 0
        assert sp.WSPConnect(s, name, 16, None, None, None, None, err) == SOCKET_ERROR
        assert err.value == E.WSAEISCONN
        assert sp.WSPCloseSocket(s, err) == 0
        assert sp.WSPCloseSocket(s, err) == SOCKET_ERROR
        assert err.value == E.WSAENOTSOCK
    assert len(sp) == 0


def test_sync_refused_and_bad_handle(sp, refused_port):
    err = Errno()
    s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
    name = sockaddr_in("127.0.0.1", refused_port)
    assert sp.WSPConnect(s, name, 16, None, None, None, None, err) == SOCKET_ERROR
    assert err.value == E.WSAECONNREFUSED
    assert sp.WSPConnect(12345, name, 16, None, None, None, None, err) == SOCKET_ERROR
    assert err.value == E.WSAENOTSOCK
    assert sp.WSPConnect("x", name, 16, None, None, None, None, err) == SOCKET_ERROR
    assert err.value == E.WSAENOTSOCK
    assert sp.WSPSocket(True, SOCK_STREAM, 0, None, 0, 0, err) == INVALID_SOCKET
    assert err.value == E.WSAEINVAL
    assert sp.WSPCloseSocket(s, err) == 0


def test_sync_closed_provider_refuses_fast_calls(listener):
    sp = SyncProvider()
    sp.close()
    err = Errno()
    assert sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err) == INVALID_SOCKET
    assert err.value == E.WSANOTINITIALISED
    name = sockaddr_in(*listener.getsockname())
    assert sp.WSPConnect(0x1000, name, 16, None, None, None, None, err) == SOCKET_ERROR
    assert err.value == E.WSANOTINITIALISED
    err.value = 0
    assert sp.WSPCloseSocket(0x1000, err) == SOCKET_ERROR
    assert err.value == E.WSANOTINITIALISED


def test_sync_pending_connect_still_blocks_and_cancels(pending_listener):
    """An attempt in progress leaves the fast path for the loop, and stays cancellable."""
    with SyncProvider() as sp:
        err = Errno()
        s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        name = sockaddr_in(*pending_listener.getsockname())
        out: list[int] = []
        worker = threading.Thread(
            target=lambda: out.append(sp.WSPConnect(s, name, 16, None, None, None, None, err))
        )
        worker.start()
        for _ in range(2000):
            if sp.blocking_calls():
                break
            threading.Event().wait(0.005)
        assert sp.blocking_calls() == 1
        assert sp.WSPCancelBlockingCall(Errno()) == 0
        worker.join(5)
        assert not worker.is_alive()
        assert out == [SOCKET_ERROR] and err.value == E.WSAEINTR
        assert sp.WSPCloseSocket(s, Errno()) == 0


def test_sync_connect_honours_a_trace_on_the_provider(listener):
    """A Trace wraps WSPConnect on the provider instance; the fast path must not skip it."""
    with SyncProvider() as sp:
        trace = Trace().attach(sp._provider)
        err = Errno()
        s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        assert sp.WSPConnect(s, sockaddr_in(*listener.getsockname()), 16, None, None, None, None, err) == 0
        sp.WSPCloseSocket(s, err)
        trace.detach()
        assert [e.what for e in trace.entries if e.kind == "call"] == ["WSPSocket", "WSPConnect", "WSPCloseSocket"]
