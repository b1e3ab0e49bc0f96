"""The plugin as a user meets it: a test file in a fresh project, run by pytest with the
plugin loaded from its entry point (pytester). Checks that such tests pass on both
loops, and that wrong code under test fails with a readable message and the trace."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from wspasync import (
    AF_INET,
    FD_CONNECT,
    FD_WRITE,
    IPPROTO_TCP,
    SOCK_STREAM,
    Errno,
    Provider,
    Window,
)
from wspasync.testing import Trace, expect_messages, refused_sockaddr

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
{extra}
"""

# The guide's example: "my client retries after WSAECONNREFUSED" (docs/testing.md).
CLIENT = '''
from wspasync import *

async def connect_with_retry(wsp, name, attempts=3):
    """The code under test: retry a refused connect on the same handle."""
    s = wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, Errno())
    for _ in range(attempts):
        err = Errno()
        if await wsp.WSPConnect(s, name, len(name), None, None, None, None, err) == 0:
            return s
        if err.value != WSAECONNREFUSED:
            break
    wsp.WSPCloseSocket(s, Errno())
    return None
'''

USER_TEST = '''
from wspasync import *
from client import connect_with_retry

async def test_retries_after_refusal(fault_layer, loopback_listener):
    listener = loopback_listener()
    rule = fault_layer.fail_connect(WSAECONNREFUSED, times=2)
    s = await connect_with_retry(fault_layer, listener.addr)
    assert s is not None and rule.hits == 2
    fault_layer.WSPCloseSocket(s, Errno())
'''


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Unrelated plugins off: each run is a fresh interpreter, keep it quick.
    quiet = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
    return pytester.runpytest_subprocess(*quiet, *args)


def test_user_test_passes_on_both_loops(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI.format(extra="wspasync_loops = asyncio uvloop"))
    pytester.makepyfile(client=CLIENT, test_client=USER_TEST)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_retries_after_refusal?asyncio? PASSED*", "*test_retries_after_refusal?uvloop? PASSED*"])


def test_wrong_code_fails_readably_with_the_trace(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI.format(extra=""))
    pytester.makepyfile(
        test_wrong="""
        from wspasync import *
        from wspasync.testing import expect_messages

        async def test_expects_success_but_gets_refused(wsp, refused_addr):
            window = Window()
            s = wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, Errno())
            wsp.WSPAsyncSelect(s, window, 0x401, FD_CONNECT | FD_WRITE, Errno())
            await wsp.WSPConnect(s, refused_addr, 16, None, None, None, None, Errno())
            try:
                await expect_messages(window, [(FD_CONNECT, 0), (FD_WRITE, 0)])
            finally:
                wsp.WSPCloseSocket(s, Errno())
        """
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*NotificationMismatch: expected [[]FD_CONNECT(0), FD_WRITE(0)[]], got [[]FD_CONNECT(WSAECONNREFUSED)[]]*",
            "*wspasync trace*",
            "*WSPConnect (name=127.0.0.1:*",
            "*event * FD_CONNECT(WSAECONNREFUSED) posted*",
        ]
    )


def test_a_leaked_handle_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI.format(extra=""))
    pytester.makepyfile(
        test_leak="""
        from wspasync import *

        async def test_forgets_to_close(wsp):
            wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, Errno())
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the test left sockets open (close them with WSPCloseSocket): 0x1000 (UNBOUND)*"])


def test_every_fixture_in_strict_mode(pytester: pytest.Pytester) -> None:
    # Strict mode: the plugin's async fixtures still work; plain asyncio loop.
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_fixtures="""
        import pytest, socket
        from wspasync import *
        from wspasync.testing import FaultLayer, LoopbackListener, UdpPeer, expect_select

        @pytest.mark.asyncio
        async def test_fixtures(wsp, fault_layer, loopback_listener, refused_addr, pending_addr, udp_peer):
            assert isinstance(wsp, Provider) and isinstance(fault_layer, FaultLayer)
            assert parse_sockaddr(refused_addr)[1] == "127.0.0.1"
            assert parse_sockaddr(pending_addr)[1] == "127.0.0.1"
            assert isinstance(loopback_listener(accept="reset"), LoopbackListener)
            assert isinstance(udp_peer, UdpPeer)
            s = wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, Errno())
            wsp.WSPIoctl(s, FIONBIO, b"\\1\\0\\0\\0", 4, None, 0, Errno(), None, None, None, Errno())
            await wsp.WSPConnect(s, pending_addr, 16, None, None, None, None, Errno())
            await expect_select(wsp, writefds=[s], exceptfds=[s], expected=([], [], []), timeout=0.01)
            wsp.WSPCloseSocket(s, Errno())

        def test_sync_wsp(sync_wsp):
            assert hasattr(sync_wsp, "WSPConnect")
        """
    )
    result = run(pytester, "-rs")
    outcomes = result.parseoutcomes()
    # SyncProvider is in this build, so sync_wsp must run, not skip.
    assert outcomes.get("passed", 0) == 2 and not outcomes.get("skipped"), result.stdout.str()


def test_unknown_loop_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI.format(extra="wspasync_loops = asyncio trio"))
    pytester.makepyfile(test_x="def test_x(): pass")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown loop 'trio'*"])


def test_project_hook_is_left_alone_without_the_option(pytester: pytest.Pytester) -> None:
    # A project that implements pytest_asyncio_loop_factories itself keeps control.
    pytester.makeini(INI.format(extra=""))
    pytester.makeconftest(
        """
        import asyncio
        def pytest_asyncio_loop_factories(config, item):
            return {"mine": asyncio.new_event_loop, "also-mine": asyncio.new_event_loop}
        """
    )
    pytester.makepyfile(test_x="async def test_x(wsp):\n    pass\n")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_x?mine? PASSED*", "*test_x?also-mine? PASSED*"])


# -- traces: the same scenario is the same sequence on both loops ---------------------------


async def _scenario() -> list[tuple[str, str]]:
    refused = refused_sockaddr()
    async with Provider() as wsp:
        trace = Trace().attach(wsp)
        window = Window()
        s = wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, Errno())
        wsp.WSPAsyncSelect(s, window, 0x401, FD_CONNECT | FD_WRITE, Errno())
        await wsp.WSPConnect(s, refused, 16, None, None, None, None, Errno())
        await expect_messages(window, ["FD_CONNECT(WSAECONNREFUSED)"])
        trace.note("got FD_CONNECT")
        wsp.WSPCloseSocket(s, Errno())
        trace.detach()
    return trace.sequence()


def test_trace_sequence_is_the_same_on_both_loops() -> None:
    sequences = []
    for factory in (asyncio.new_event_loop, uvloop.new_event_loop):
        with asyncio.Runner(loop_factory=factory) as runner:
            sequences.append(runner.run(_scenario()))
    assert sequences[0] == sequences[1]
    assert ("event", "FD_CONNECT(WSAECONNREFUSED)") in sequences[0]
