"""Embedding wspasync in async applications (API.md §5, §7).

os_socket and open_stream hand the OS socket over; WSAError/check are the exception
layer; a Provider works under asyncio.run, uvloop.run and inside an application that
already runs its loop, without owning that loop.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from wspasync import (
    AF_INET,
    FD_CONNECT,
    FD_READ,
    INVALID_SOCKET,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOCKET_ERROR,
    WINSOCK_1_1,
    WSAECONNREFUSED,
    WSAEINVAL,
    WSAENOTCONN,
    WSAENOTSOCK,
    ErrorCode,
    Errno,
    Provider,
    WSAError,
    WSAEvent,
    WSANetworkEvents,
    check,
    sockaddr_in,
)

pytestmark = pytest.mark.timeout(30)


async def _echo_server():
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(data.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _connect(wsp: Provider, port: int) -> int:
    err = Errno()
    s = check(wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err), err)
    check(await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err), err)
    return s


async def test_open_stream_end_to_end(wsp):
    server, port = await _echo_server()
    async with server:
        s = await _connect(wsp, port)
        reader, writer = await wsp.open_stream(s)
        assert len(wsp) == 0
        err = Errno()
        assert wsp.WSPCloseSocket(s, err) == SOCKET_ERROR and err.value == WSAENOTSOCK
        writer.write(b"hello")
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b"HELLO"
        writer.close()
        await writer.wait_closed()


async def test_open_stream_after_event_select_posts_nothing_more(wsp):
    server, port = await _echo_server()
    async with server:
        s = await _connect(wsp, port)
        event = WSAEvent()
        assert wsp.WSPEventSelect(s, event, FD_READ | FD_CONNECT, Errno()) == 0
        wsp.WSPEnumNetworkEvents(s, event, WSANetworkEvents(), Errno())
        reader, writer = await wsp.open_stream(s)
        writer.write(b"abc")
        async with asyncio.timeout(5):
            assert await reader.read() == b"ABC"
        assert not event.is_set()  # the data went to asyncio, not to the old registration
        writer.close()
        await writer.wait_closed()


async def test_open_stream_refusals(wsp, listener):
    err = Errno()
    s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
    with pytest.raises(WSAError) as info:
        await wsp.open_stream(s)
    assert info.value.code == WSAENOTCONN
    d = wsp.WSPSocket(AF_INET, SOCK_DGRAM, 0, None, 0, 0, err)
    with pytest.raises(WSAError) as info:
        await wsp.open_stream(d)
    assert info.value.code == WSAEINVAL
    with pytest.raises(WSAError) as info:
        await wsp.open_stream(0xDEAD)
    assert info.value.code == WSAENOTSOCK
    assert len(wsp) == 2  # a refused hand-over keeps the handle
    for h in (s, d):
        wsp.WSPCloseSocket(h, err)


async def test_os_socket_is_the_live_os_socket(wsp, listener):
    s = await _connect(wsp, listener.getsockname()[1])
    sock = wsp.os_socket(s)
    assert isinstance(sock, socket.socket)
    assert sock.getpeername() == listener.getsockname()
    assert sock.getblocking() is False  # nonblocking at the OS level, always
    with pytest.raises(WSAError) as info:
        wsp.os_socket(s + 1)
    assert info.value.code == WSAENOTSOCK
    assert isinstance(info.value, OSError) and info.value.winerror == WSAENOTSOCK
    wsp.WSPCloseSocket(s, Errno())


async def test_check_turns_failures_into_wsaerror(wsp, refused_port):
    err = Errno()
    s = check(wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err), err)
    with pytest.raises(WSAError) as info:
        check(await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", refused_port), 16, None, None, None, None, err), err)
    assert info.value.code is ErrorCode.WSAECONNREFUSED
    assert info.value.winerror == WSAECONNREFUSED
    assert str(info.value) == "[WinError 10061] WSAECONNREFUSED"
    assert check(0, err) == 0
    bad = Errno()
    assert wsp.WSPSocket(99, SOCK_STREAM, 0, None, 0, 0, bad) == INVALID_SOCKET
    with pytest.raises(WSAError):
        check(INVALID_SOCKET, bad)
    wsp.WSPCloseSocket(s, err)


async def _round_trip(port: int) -> bytes:
    async with Provider() as wsp:
        s = await _connect(wsp, port)
        reader, writer = await wsp.open_stream(s)
        writer.write(b"run")
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
        return data


def _serve_in_thread():
    """A blocking echo server on a thread, for tests that own no loop."""
    import threading

    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)

    def serve():
        conn, _ = lst.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

    t = threading.Thread(target=serve)
    t.start()
    return lst, t


@pytest.mark.parametrize("runner", [asyncio.run, uvloop.run], ids=["asyncio.run", "uvloop.run"])
def test_provider_under_run(runner):
    lst, t = _serve_in_thread()
    try:
        assert runner(_round_trip(lst.getsockname()[1])) == b"RUN"
    finally:
        t.join(5)
        lst.close()


async def test_provider_inside_a_running_application(loop_errors):
    """The app owns the loop: a server and other tasks keep running while a provider
    comes and goes, and closing the provider leaves the loop alone."""
    loop = asyncio.get_running_loop()
    server, port = await _echo_server()
    ticks = 0

    async def heartbeat():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    beat = asyncio.create_task(heartbeat())
    async with server:
        for _ in range(3):
            assert await _round_trip(port) == b"RUN"
        assert loop.is_running() and not loop.is_closed()
        assert not beat.done() and ticks > 0
    beat.cancel()
    with pytest.raises(asyncio.CancelledError):
        await beat


def test_provider_needs_a_running_loop():
    with pytest.raises(RuntimeError):
        Provider()


@pytest.mark.parametrize("version", [0, 0x0303, 0x0003, 0x0201, 0x0103, -1, None, "2.2", True])
async def test_versions_that_do_not_exist(version):
    with pytest.raises(WSAError) as info:
        Provider(version=version)  # type: ignore[arg-type]
    assert info.value.code == ErrorCode.WSAVERNOTSUPPORTED


@pytest.mark.parametrize("version", [0x0001, WINSOCK_1_1, 0x0002, 0x0102, 0x0202])
async def test_versions_that_exist(loop_errors, version):
    async with Provider(version=version) as wsp:
        assert wsp.version == version
