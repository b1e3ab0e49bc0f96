"""The examples in examples/ run, and do what they say (people copy them)."""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
import subprocess
import sys

import pytest


EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.timeout(60)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("happy_eyeballs.py", "HELLO FROM"),
        ("select_client.py", "WSAECONNREFUSED"),
        ("message_pump.py", "served 20 clients from one window"),
    ],
)
def test_example_runs_as_a_script(script, expected):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout


async def test_happy_eyeballs_skips_a_refused_address_and_outlasts_a_silent_one(
    wsp, refused_port, pending_listener
):
    """First address refused, second never answers (full backlog), third works: the
    third wins after the head start, the silent one is closed, nothing is left."""
    he = _load("happy_eyeballs")

    async def serve(reader, writer):
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        good = server.sockets[0].getsockname()[1]
        addresses = [
            ("127.0.0.1", refused_port),
            ("127.0.0.1", pending_listener.getsockname()[1]),
            ("127.0.0.1", good),
        ]
        reader, writer, host = await he.happy_eyeballs(wsp, addresses)
        assert await reader.read() == b"ok"
        writer.close()
        await writer.wait_closed()
    assert len(wsp) == 0


async def test_happy_eyeballs_reports_when_all_fail(wsp, refused_port):
    he = _load("happy_eyeballs")
    with pytest.raises(ConnectionError, match="WSAECONNREFUSED"):
        await he.happy_eyeballs(wsp, [("127.0.0.1", refused_port)])
    assert len(wsp) == 0


async def test_message_pump_on_this_loop(loop_errors):
    stats = await _load("message_pump").main(clients=5)
    assert stats["accepted"] == 5 and stats["closed"] == 5


def test_select_client_against_the_twin(refused_port):
    results = _load("select_client").main()
    assert sum(isinstance(v, bytes) and v.endswith(b"HELLO") for v in results.values()) == 3
