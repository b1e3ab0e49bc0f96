"""Test harness: both loops for every async test, no leaked descriptors, loud failures."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import warnings

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


def _open_fds() -> set[int]:
    return set(os.listdir("/proc/self/fd"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Fail a test that leaves an OS descriptor open (checked after teardown)."""
    gc.collect()
    before = _open_fds()
    outcome = yield
    gc.collect()
    leaked = _open_fds() - before
    # Descriptors that are gone by the time we list them show up as races; recheck.
    leaked = {fd for fd in leaked if os.path.exists(f"/proc/self/fd/{fd}")}
    if leaked:
        targets = sorted(os.readlink(f"/proc/self/fd/{fd}") for fd in leaked if os.path.exists(f"/proc/self/fd/{fd}"))
        item.add_report_section("teardown", "leaks", f"leaked descriptors: {targets}")
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


async def settle(rounds: int = 5) -> None:
    """Let the loop run every callback that is already due (no real time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
