"""The wspasync pytest plugin (entry point ``pytest11: wspasync``).

Installed with the package, so a project that depends on wspasync gets these fixtures
without any conftest: ``wsp``, ``sync_wsp``, ``loopback_listener``, ``refused_addr``,
``pending_addr``, ``udp_peer``, ``fault_layer``. A project's own fixture of the same
name wins (conftest fixtures override plugin ones), as pytest always does.

Options (ini file or command line):

* ``wspasync_loops = asyncio uvloop`` / ``--wspasync-loops=asyncio,uvloop``: run every
  async test on each named loop, through pytest-asyncio's
  ``pytest_asyncio_loop_factories`` hook, and ``sync_wsp`` tests on each loop too. Off
  by default, so the plugin never clashes with a project's own implementation of
  that hook (the hook is first-result: a conftest's implementation is asked first).
* ``wspasync_trace = true`` (the default): ``wsp`` records a trace, and a failing test
  shows it as a "wspasync trace" section, one line per call, return, state change,
  notification and injected fault.

The async fixtures are declared with ``pytest_asyncio.fixture``, so they work in
pytest-asyncio's strict mode as well as in auto mode, on the test's own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from .._loops import loop_factory as _loop_factory
from .._structs import Errno
from ._fault import FaultLayer
from ._listeners import LoopbackListener, UdpPeer, full_backlog_listener, refused_sockaddr

_TRACE_KEY = pytest.StashKey[Any]()


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The loop factory for *name*: "asyncio" or "uvloop". Never a loop policy."""
    try:
        return _loop_factory(name)
    except ValueError as exc:
        raise pytest.UsageError(f"wspasync_loops: {exc}") from None


# -- options -------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wspasync")
    group.addoption(
        "--wspasync-loops",
        dest="wspasync_loops",
        default=None,
        metavar="NAMES",
        help="run async tests (and sync_wsp) on each of these loops, comma separated: asyncio,uvloop",
    )
    parser.addini(
        "wspasync_loops",
        type="args",
        default=[],
        help="loops to run every async test on (asyncio uvloop); empty: leave it to pytest-asyncio",
    )
    parser.addini(
        "wspasync_trace",
        type="bool",
        default=True,
        help="wsp records a trace and failing tests show it (default true)",
    )


def configured_loops(config: pytest.Config) -> list[str]:
    """The loop names asked for by --wspasync-loops or the wspasync_loops ini option."""
    option = config.getoption("wspasync_loops", None)
    if option:
        names = [n for n in option.replace(",", " ").split() if n]
    else:
        names = list(config.getini("wspasync_loops"))
    for name in names:
        loop_factory(name)  # validates
    return names


class _LoopFactories:
    """The pytest_asyncio_loop_factories implementation, registered only when asked."""

    def __init__(self, names: list[str]) -> None:
        self.factories = {name: loop_factory(name) for name in names}

    def pytest_asyncio_loop_factories(self, config: pytest.Config, item: pytest.Item) -> Any:
        return self.factories


def pytest_configure(config: pytest.Config) -> None:
    names = configured_loops(config)
    if names and config.pluginmanager.hasplugin("asyncio"):
        config.pluginmanager.register(_LoopFactories(names), "wspasync-loop-factories")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "_wspasync_sync_loop" in metafunc.fixturenames:
        names = configured_loops(metafunc.config) or ["asyncio"]
        metafunc.parametrize("_wspasync_sync_loop", names, indirect=True, ids=names)


# -- failure report: the trace ----------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.failed and report.when in ("call", "teardown"):
        trace = item.stash.get(_TRACE_KEY, None)
        if trace is not None and trace.entries:
            from ..cli import format_timeline

            report.sections.append(("wspasync trace", "\n".join(format_timeline(trace))))
    return report


# -- fixtures ------------------------------------------------------------------------------


def _leak_message(provider: Any, leftover: list[int]) -> str:
    states = []
    for handle in leftover:
        rec = provider._sockets.get(handle)
        states.append(f"{handle:#x} ({rec.state.value})" if rec is not None else f"{handle:#x}")
    return "the test left sockets open (close them with WSPCloseSocket): " + ", ".join(states)


@pytest_asyncio.fixture
async def wsp(request: pytest.FixtureRequest) -> Any:
    """A ``Provider`` on the test's running loop, cleaned up after the test.

    The test fails if it leaves a socket handle open. With ``wspasync_trace`` on (the
    default) a trace is recorded and shown when the test fails.
    """
    from .._provider import Provider
    from .._trace import Trace

    provider = Provider()
    trace = None
    if request.config.getini("wspasync_trace"):
        trace = Trace().attach(provider)
        request.node.stash[_TRACE_KEY] = trace
    yield provider
    leftover = provider.handles()
    message = _leak_message(provider, leftover) if leftover else ""
    if trace is not None:
        trace.detach()
    provider.WSPCleanup(Errno())
    if leftover:
        pytest.fail(message, pytrace=False)


@pytest.fixture
def _wspasync_sync_loop(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "asyncio")


@pytest.fixture
def sync_wsp(_wspasync_sync_loop: str) -> Iterator[Any]:
    """A ``SyncProvider`` (the blocking twin, on its own loop thread), closed after the
    test; the test fails if it leaves a socket open. With ``wspasync_loops`` set, the
    test runs once per loop."""
    try:
        from .. import _sync
    except ImportError:
        pytest.skip("wspasync.SyncProvider is not available in this build (wspasync/_sync.py)")
    provider = _sync.SyncProvider(loop=_wspasync_sync_loop)
    try:
        yield provider
        handles = getattr(provider, "handles", None)
        leftover = list(handles()) if callable(handles) else []
    finally:
        provider.close()
    if leftover:
        pytest.fail(
            "the test left sockets open (close them with WSPCloseSocket): "
            + ", ".join(f"{h:#x}" for h in leftover),
            pytrace=False,
        )


@pytest.fixture
def loopback_listener() -> Iterator[Callable[..., LoopbackListener]]:
    """A factory of loopback TCP listeners: ``loopback_listener(backlog=16, accept="hold",
    delay=0.0, family=socket.AF_INET, fill=False)``. Accept policies: "hold", "close",
    "reset", "delay" (accept after *delay* s) and "never". Every listener it made is
    closed (and its accept thread joined) after the test."""
    made: list[LoopbackListener] = []

    def make(backlog: int = 16, accept: str = "hold", **kwargs: Any) -> LoopbackListener:
        listener = LoopbackListener(backlog, accept, **kwargs)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        listener.close()


@pytest.fixture
def refused_addr() -> bytes:
    """A loopback sockaddr (Winsock bytes, 127.0.0.1) where nothing listens: a connect
    to it fails with WSAECONNREFUSED."""
    return refused_sockaddr()


@pytest.fixture
def pending_addr() -> Iterator[bytes]:
    """A loopback sockaddr whose connect stays pending: a listener with a full backlog
    that never accepts. It ends with WSAETIMEDOUT after the connect budget (21 s, or
    the socket's TCP_MAXRT)."""
    listener = full_backlog_listener()
    yield listener.addr
    listener.close()


@pytest.fixture
def udp_peer() -> Iterator[UdpPeer]:
    """A UDP socket on 127.0.0.1: ``.addr`` (sockaddr bytes), ``.recv(timeout)`` ->
    (data, sender sockaddr), ``.send_to(addr, data)``."""
    peer = UdpPeer()
    yield peer
    peer.close()


@pytest.fixture
def fault_layer(wsp: Any) -> Iterator[FaultLayer]:
    """A ``FaultLayer`` over ``wsp`` (seed 0): use it as the provider, add rules with
    ``fail_connect``, ``hang_connect``, ``delay_connect``, ``delay_notifications``,
    ``fail_send``, ``fail_recv``. Fired rules show in ``wsp``'s trace."""
    layer = FaultLayer(wsp, seed=0)
    yield layer
    layer.close()
