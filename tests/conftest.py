"""Test harness: both loops for every async test, no leaked descriptors, loud failures."""

from __future__ import annotations

import asyncio
import gc
import os
import socket

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


def _open_fds() -> set[tuple[str, str]]:
    """(fd, what it refers to): a number closed and reused for something new counts."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:  # the listing's own directory descriptor, already gone
            pass
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Fail a test that leaves an OS descriptor open (checked after teardown)."""
    before = _open_fds()
    yield
    leaked = _open_fds() - before
    if leaked:
        # Only a suspected leak pays for a full collection (~20-40 ms each, twice per
        # test, was a large share of the suite's time): garbage may still hold them.
        gc.collect()
        leaked = _open_fds() - before
    if leaked:
        targets = sorted(target for _, target in leaked)
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
