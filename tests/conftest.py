"""Test harness: both loops for every async test, no leaked descriptors, loud failures."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading

import pytest
import uvloop

from wspasync import Errno, Provider

LOOP_FACTORIES = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}

# libuv opens a process-wide signal pipe when the first loop is created and keeps it
# for the life of the process (uv__signal_global_once_init); open it now so the leak
# check does not charge it to the first uvloop test.
uvloop.new_event_loop().close()


def pytest_asyncio_loop_factories(config, item):
    """Every async test runs once on asyncio's default loop and once on uvloop."""
    return LOOP_FACTORIES


ASYNC_TEST_TIMEOUT = 30  # s; the slowest loopback test takes ~4 s on 2 cores


def pytest_collection_modifyitems(config, items):
    """Bound every async (loopback) test tighter than the global 120 s.

    A module or test that sets its own ``pytest.mark.timeout`` keeps it; this gives
    the rest a bound, so a lost notification fails in 30 s instead of two minutes.
    """
    for item in items:
        if item.get_closest_marker("asyncio") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(ASYNC_TEST_TIMEOUT))


def _open_fds() -> set[tuple[str, str]]:
    """(fd, what it refers to): a number closed and reused for something new counts."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:  # the listing's own directory descriptor, already gone
            pass
    return out


def _children() -> set[str]:
    """PIDs of this process's live (or unreaped) children, from every thread's list."""
    out: set[str] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                out.update(f.read().split())
        except OSError:  # the thread exited while we listed
            pass
    return out


def _check_threads_and_children(nodeid: str, threads_before: set, children_before: set[str]) -> None:
    """Fail if a test left a Python thread or a child process behind.

    A thread that is already on its way out (its target returned, the interpreter not
    yet done with it) gets a bounded join: that waits for the exit itself, not for time.
    """
    survivors = [t for t in threading.enumerate() if t not in threads_before]
    for t in survivors:
        t.join(timeout=2)
    survivors = [t.name for t in survivors if t.is_alive()]
    children = _children() - children_before
    assert not survivors, f"{nodeid} left threads running: {survivors}"
    assert not children, f"{nodeid} left child processes: {sorted(children)}"


_BEFORE = pytest.StashKey[tuple]()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    """Note what is open before any fixture of the test runs."""
    item.stash[_BEFORE] = (_open_fds(), set(threading.enumerate()), _children())
    yield


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """Fail a test that leaves an OS descriptor, a thread or a child process behind.

    Runs after every fixture's teardown; a leak is reported as an error in the test's
    teardown (raising from ``pytest_runtest_protocol`` instead would abort the session).
    """
    yield
    before, threads_before, children_before = item.stash[_BEFORE]
    _check_threads_and_children(item.nodeid, threads_before, children_before)
    leaked = _open_fds() - before
    if leaked:
        # Only a suspected leak pays for a full collection (~20-40 ms each, twice per
        # test, was a large share of the suite's time): garbage may still hold them.
        gc.collect()
        leaked = _open_fds() - before
    if leaked:
        targets = sorted(target for _, target in leaked)
        raise AssertionError(f"{item.nodeid} leaked descriptors: {targets}")


@pytest.fixture
async def loop_errors():
    """Exceptions that reach the loop's handler; the test fails if any did."""
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(None)
    assert not errors, f"exceptions reached the event loop: {errors}"


@pytest.fixture
async def wsp(loop_errors):
    """A Provider on the test's loop; the test fails if it leaves a socket open."""
    provider = Provider()
    yield provider
    leftover = provider.handles()
    provider.WSPCleanup(Errno())
    assert not leftover, f"test left sockets open: {leftover}"


@pytest.fixture
def listener():
    """A plain loopback TCP listener (accepts nothing by itself): (socket, port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    yield sock
    sock.close()


@pytest.fixture
def refused_port():
    """A loopback port where nothing listens: bind 127.0.0.1:0, close."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def pending_listener():
    """A listener whose backlog is full and never accepts: connects to it stay pending."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    port = lst.getsockname()[1]
    # backlog 0 admits one queued connection (plus one in flight on Linux); fill it.
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    yield lst
    for c in fillers:
        c.close()
    lst.close()
