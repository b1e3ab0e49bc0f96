"""SyncProvider's gate on uvloop: fast calls in the caller's thread, the loop's work queued.

On uvloop the loop thread holds the gate only inside the callbacks it runs (a
``uvloop.Loop`` subclass wraps each one), and whatever a caller's thread asks of the
loop -- timers, readers, writers, ``call_soon`` -- is queued for the loop thread
(wspasync/_sync.py, module docstring). These tests pin the three promises that design
makes: a call that ends at once never waits for the loop thread; every loop callback
runs holding the gate; and queued registrations never outlive, or land on, the wrong
descriptor when callers close sockets right away. The last test mixes calls from many
threads on both loops (asyncio's gate is the other way round: its loop thread lets go
only while it sleeps in the selector).
"""

from __future__ import annotations

import random
import socket
import threading

import pytest
import uvloop

from wspasync import (
    AF_INET,
    FD_CONNECT,
    SOCK_STREAM,
    SOCKET_ERROR,
    WSA_WAIT_EVENT_0,
    Errno,
    ErrorCode,
    SyncProvider,
    WSAEvent,
    sockaddr_in,
)
from wsp_support import nonblocking, wait_blocking_calls

E = ErrorCode

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def usp():
    """A uvloop SyncProvider that records every exception its loop reports."""
    with SyncProvider(loop="uvloop") as sp:
        reported: list[dict] = []
        sp._loop.set_exception_handler(lambda _loop, context: reported.append(context))
        yield sp
    assert reported == [], reported


def _park_loop_thread(sp: SyncProvider) -> threading.Event:
    """Keep the loop thread busy in a callback that does not hold the gate.

    Scheduled through uvloop's own call_soon_threadsafe, past the wrapping subclass.
    Returns the event that lets it go.
    """
    parked, release = threading.Event(), threading.Event()

    def park() -> None:
        parked.set()
        release.wait(10)

    uvloop.Loop.call_soon_threadsafe(sp._loop, park)
    assert parked.wait(5)
    return release


def test_a_connect_that_ends_at_once_never_waits_for_the_loop_thread(usp, listener):
    """Socket, a loopback connect the kernel finished in connect(), and close all run in
    the caller's thread: they complete while the loop thread is busy elsewhere."""
    release = _park_loop_thread(usp)
    try:
        err = Errno()
        name = sockaddr_in(*listener.getsockname())
        for _ in range(20):
            s = usp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
            assert usp.WSPConnect(s, name, 16, None, None, None, None, err) == 0
            assert usp.WSPCloseSocket(s, err) == 0
    finally:
        release.set()
    assert len(usp) == 0


def test_loop_callbacks_run_holding_the_gate(usp):
    """Timers (armed from a caller's thread or the loop's), call_soon and
    call_soon_threadsafe callbacks all run on the loop thread, gate held."""
    loop = usp._loop
    seen: list[tuple[str, bool, bool]] = []
    done = threading.Event()

    def probe(what: str) -> None:
        on_loop = threading.get_ident() == usp._thread_id
        seen.append((what, on_loop, usp._lock._is_owned()))
        if len(seen) == 5:
            done.set()

    def from_the_loop() -> None:
        loop.call_soon(probe, "call_soon")
        loop.call_later(0.001, probe, "call_later on the loop")
        loop.call_at(loop.time() + 0.001, probe, "call_at on the loop")

    loop.call_soon_threadsafe(from_the_loop)
    loop.call_soon_threadsafe(probe, "call_soon_threadsafe")
    loop.call_later(0.001, probe, "call_later from a caller")  # queued, armed by the loop
    assert done.wait(5)
    assert sorted(seen) == sorted(
        (what, True, True)
        for what in (
            "call_soon",
            "call_later on the loop",
            "call_at on the loop",
            "call_soon_threadsafe",
            "call_later from a caller",
        )
    )


def test_a_timer_cancelled_before_the_loop_armed_it_never_fires(usp):
    loop = usp._loop
    fired: list[str] = []
    done = threading.Event()
    timer = loop.call_later(0.001, fired.append, "cancelled")
    timer.cancel()
    assert timer.cancelled()
    loop.call_later(0.02, done.set)  # queued after the first: armed and fired later
    assert done.wait(5)
    assert fired == []


def test_queued_registrations_and_closes_from_many_threads(usp, pending_listener, listener):
    """Nonblocking connects left in flight (a queued writer and deadline) and listeners
    (a queued reader), closed at once, from four threads at a time: the loop applies
    every queued change to the right descriptor, reports nothing, leaks nothing (the
    conftest checks descriptors after the test)."""
    pending = sockaddr_in(*pending_listener.getsockname())
    failures: list[str] = []

    def churn() -> None:
        err = Errno()
        for i in range(150):
            s = usp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
            if i % 3 == 0:
                usp.WSPBind(s, sockaddr_in("127.0.0.1", 0), 16, err)
                if usp.WSPListen(s, 4, err) != 0:
                    failures.append(f"listen: {err.value}")
            else:
                nonblocking(usp, s)
                rc = usp.WSPConnect(s, pending, 16, None, None, None, None, err)
                if (rc, err.value) != (SOCKET_ERROR, E.WSAEWOULDBLOCK):
                    failures.append(f"connect: {rc} {err.value}")
            if usp.WSPCloseSocket(s, err) != 0:
                failures.append(f"close: {err.value}")

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert len(usp) == 0
    # The provider still works both ways afterwards: a fast connect, and one that
    # completes on the loop (a writer armed from this thread, fired by the loop).
    err = Errno()
    s = usp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
    assert usp.WSPConnect(s, sockaddr_in(*listener.getsockname()), 16, None, None, None, None, err) == 0
    assert usp.WSPCloseSocket(s, err) == 0


def test_a_blocking_connect_in_flight_completes_through_queued_writer(usp):
    """A connect the kernel has not finished when connect() returns: the writer is
    armed by the loop thread from the caller's queue, and the outcome still arrives."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the backlog so the next connect stays in SYN_SENT
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    err = Errno()
    s = usp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
    out: list[tuple[int, int]] = []
    worker = threading.Thread(
        target=lambda: out.append(
            (usp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err), err.value)
        )
    )
    worker.start()
    accepted: list[socket.socket] = []
    try:
        wait_blocking_calls(usp)
        assert usp.blocking_calls() == 1
        # Make room: accept everything queued; the SYN retransmission then lands.
        lst.setblocking(False)
        while worker.is_alive():
            try:
                accepted.append(lst.accept()[0])
            except BlockingIOError:
                worker.join(0.05)
        assert out == [(0, 0)]
    finally:
        for c in fillers + accepted:
            c.close()
        lst.close()
    assert usp.WSPCloseSocket(s, Errno()) == 0


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_mixed_calls_from_many_threads_on_either_loop(loop, pending_listener):
    """Six threads mix fast blocking connects, event-select connects whose outcome a
    thread waits for, and nonblocking connects left in flight, closing each socket at
    once: every call answers as it should, the loop reports nothing, nothing is left."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4096)
    lst.setblocking(False)
    stop = threading.Event()

    def acceptor() -> None:
        while not stop.is_set():
            try:
                lst.accept()[0].close()
            except BlockingIOError:
                stop.wait(0.001)

    name = sockaddr_in(*lst.getsockname())
    pending = sockaddr_in(*pending_listener.getsockname())
    failures: list[tuple] = []
    with SyncProvider(loop=loop) as sp:
        reported: list[dict] = []
        sp._loop.set_exception_handler(lambda _loop, context: reported.append(context))

        def worker(seed: int) -> None:
            rnd = random.Random(seed)
            err = Errno()
            for _ in range(300):
                s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
                kind = rnd.random()
                if kind < 0.6:
                    if sp.WSPConnect(s, name, 16, None, None, None, None, err) != 0:
                        failures.append(("blocking", err.value))
                elif kind < 0.8:
                    event = WSAEvent()
                    sp.WSPEventSelect(s, event, FD_CONNECT, err)
                    sp.WSPConnect(s, name, 16, None, None, None, None, err)
                    if sp.wait_for_multiple_events([event], False, 5000) != WSA_WAIT_EVENT_0:
                        failures.append(("event", None))
                else:
                    nonblocking(sp, s)
                    rc = sp.WSPConnect(s, pending, 16, None, None, None, None, err)
                    if (rc, err.value) != (SOCKET_ERROR, E.WSAEWOULDBLOCK):
                        failures.append(("nonblocking", err.value))
                if sp.WSPCloseSocket(s, err) != 0:
                    failures.append(("close", err.value))

        accepting = threading.Thread(target=acceptor)
        accepting.start()
        workers = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
        try:
            for t in workers:
                t.start()
            for t in workers:
                t.join(40)
        finally:
            stop.set()
            accepting.join(5)
            lst.close()
        assert not any(t.is_alive() for t in workers)
        assert failures == []
        assert reported == []
        assert len(sp) == 0
