"""The connect cycle's fast paths (issue 4's cost bar) keep the behaviour of the slow ones.

The hot path was shortened for speed: the provider's WSPConnect runs its synchronous
part as a plain method, and SyncProvider runs
WSPSocket / WSPConnect / WSPCloseSocket in the caller's thread without a coroutine. These
tests pin what those shortcuts must not change.
"""

from __future__ import annotations

import asyncio
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
from wspasync._engine import Engine
from wspasync._sockaddr import SockAddr
from wspasync._state import State
from wspasync._trace import Trace
from wspasync.testing import settle
from wsp_support import select, tcp, wait_blocking_calls, wait_until

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
        wait_blocking_calls(sp)
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


# -- Engine.connect_blocking: the one-step blocking connect against the general path ----
#
# Each scenario runs twice on the same loop: once as it is, once with the one-step lane
# switched off (the provider then takes start_connect + finish, the general path). The
# call's result, lpErrno and everything the record shows afterwards must be the same;
# where the lane applies, the test also checks that it really ran.


def _snapshot(wsp, s: int, rc: int, err: Errno, attempt_before: int) -> dict:
    rec = wsp._sockets[s]
    return {
        "rc": rc if rc in (0, SOCKET_ERROR) else "handle",
        "errno": err.value,
        "state": rec.state,
        "so_error": rec.so_error,
        "connect_error": rec.connect_error,
        "recorded": rec.recorded,
        "errors": rec.errors,
        "peer": rec.peer,
        "attempts": rec.attempt - attempt_before,
        "started": rec.started_ns > 0,
        "completed": rec.completed_ns > 0,
        "writing": rec.writing,
        "select sets": None,
    }


async def _scenario(wsp, name: str, ports: dict[str, int], used: list[bool]) -> dict:
    err = Errno()
    s = tcp(wsp)
    target = sockaddr_in("127.0.0.1", ports["refused" if name == "refused" else "listener"])
    if name == "bound":
        assert wsp.WSPBind(s, sockaddr_in("127.0.0.1", 0), 16, err) == 0
    if name == "zero address":
        target = sockaddr_in("0.0.0.0", ports["listener"])
    if name == "retry after refusal":
        refused = sockaddr_in("127.0.0.1", ports["refused"])
        SockAddr.from_bytes(refused, 16)  # (so this first attempt takes the lane too)
        await wsp.WSPConnect(s, refused, 16, None, None, None, None, err)
        target = refused
    SockAddr.from_bytes(target, 16)  # a name seen before: the lane's precondition
    waiting = None
    if name == "select waiting":
        other = tcp(wsp)
        waiting = asyncio.ensure_future(select(wsp, r=[other], timeout=None))
        await settle()
    before = wsp._sockets[s].attempt
    used.clear()  # (the preparation above may have taken the lane itself)
    rc = await wsp.WSPConnect(s, target, 16, None, None, None, None, err)
    snap = _snapshot(wsp, s, rc, err, before)
    if waiting is not None:
        # The close of *other* ends the select (a closed socket counts as readable).
        wsp.WSPCloseSocket(other, Errno())
        count, sets = await waiting
        snap["select sets"] = (count, [["other" if h == other else h for h in fds] for fds in sets])
    wsp.WSPCloseSocket(s, Errno())
    return snap


_LANE_SCENARIOS = {
    # scenario: whether the lane itself carries it (the rest fall back before starting)
    "established": True,
    "bound": True,
    "refused": True,
    "select waiting": True,
    "zero address": False,
    "retry after refusal": False,
}


@pytest.mark.parametrize("scenario", list(_LANE_SCENARIOS))
async def test_one_step_blocking_connect_matches_the_general_path(wsp, scenario, listener, refused_port, monkeypatch):
    ports = {"listener": listener.getsockname()[1], "refused": refused_port}
    used: list[bool] = []
    lane = Engine.connect_blocking

    def spy(self, rec, addr):
        result = lane(self, rec, addr)
        used.append(result is not None)
        return result

    monkeypatch.setattr(Engine, "connect_blocking", spy)
    with_lane = await _scenario(wsp, scenario, ports, used)
    assert any(used) is _LANE_SCENARIOS[scenario]
    monkeypatch.setattr(Engine, "connect_blocking", lambda self, rec, addr: None)
    general = await _scenario(wsp, scenario, ports, [])
    assert with_lane == general


async def test_one_step_blocking_connect_in_flight_is_cancellable(wsp, pending_listener):
    """The lane leaves an attempt the kernel has not finished to the general machinery:
    the writer is armed, the call waits, and WSPCancelBlockingCall ends it."""
    s = tcp(wsp)
    name = sockaddr_in(*pending_listener.getsockname())
    SockAddr.from_bytes(name, 16)
    err = Errno()
    call = asyncio.ensure_future(wsp.WSPConnect(s, name, 16, None, None, None, None, err))
    await wait_until(lambda: bool(wsp._blocking))
    assert wsp._sockets[s].writing and wsp._sockets[s].state is State.CONNECTING
    assert wsp.WSPCancelBlockingCall(Errno()) == 0
    assert await call == SOCKET_ERROR and err.value == E.WSAEINTR
    assert wsp._sockets[s].state is State.DEAD
    wsp.WSPCloseSocket(s, Errno())
