"""Happy eyeballs through event-select, the winner handed to asyncio streams.

Races connects to a list of addresses the way RFC 8305 does: start the first, give it
a head start (the "connection attempt delay", 250 ms), start the next one early if an
attempt fails, and take the first that connects. Each attempt is a nonblocking
WSPConnect whose outcome arrives through WSPEventSelect(FD_CONNECT): one
wait_for_multiple_events over all attempts' events, one WSPEnumNetworkEvents to read
which one finished and how. The winner goes to asyncio streams with open_stream; the
losers are closed.

Run it: ``python examples/happy_eyeballs.py`` starts an uppercase-echo server on
::1 and 127.0.0.1 (loopback only) and races the two.
"""

from __future__ import annotations

import asyncio
import socket

from wspasync import (
    AF_INET,
    AF_INET6,
    FD_CONNECT,
    FD_CONNECT_BIT,
    SOCK_STREAM,
    SOCKET_ERROR,
    WSA_WAIT_TIMEOUT,
    WSAEWOULDBLOCK,
    Errno,
    Provider,
    WSAError,
    WSAEvent,
    WSANetworkEvents,
    check,
    error_name,
    sockaddr_in,
    sockaddr_in6,
    wait_for_multiple_events,
)

ATTEMPT_DELAY_MS = 250


async def happy_eyeballs(
    wsp: Provider, addresses: list[tuple[str, int]], timeout_ms: int = 10_000
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """Connect to the first of *addresses* that answers; return its streams and host."""
    attempts: list[tuple[int, WSAEvent, str]] = []
    pending = list(addresses)
    failures: list[str] = []
    err = Errno()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_ms / 1000
    try:
        while pending or attempts:
            if pending:  # start the next attempt
                host, port = pending.pop(0)
                v6 = ":" in host
                s = check(wsp.WSPSocket(AF_INET6 if v6 else AF_INET, SOCK_STREAM, 0, None, 0, 0, err), err)
                event = WSAEvent()
                check(wsp.WSPEventSelect(s, event, FD_CONNECT, err), err)  # makes s nonblocking
                name = sockaddr_in6(host, port) if v6 else sockaddr_in(host, port)
                rc = await wsp.WSPConnect(s, name, len(name), None, None, None, None, err)
                if rc == SOCKET_ERROR and err.value != WSAEWOULDBLOCK:
                    failures.append(f"{host}: {error_name(err.value)}")
                    wsp.WSPCloseSocket(s, err)
                    continue
                attempts.append((s, event, host))
            wait_ms = ATTEMPT_DELAY_MS if pending else int(max(0.0, deadline - loop.time()) * 1000)
            index = await wait_for_multiple_events([e for _, e, _ in attempts], False, wait_ms)
            if index == WSA_WAIT_TIMEOUT:
                if not pending:
                    raise TimeoutError("no address answered in time")
                continue  # head start over: race the next address too
            s, event, host = attempts.pop(index)
            record = WSANetworkEvents()
            check(wsp.WSPEnumNetworkEvents(s, event, record, err), err)
            error = record.iErrorCode[FD_CONNECT_BIT]
            if record.lNetworkEvents & FD_CONNECT and error == 0:
                wsp.WSPEventSelect(s, None, 0, err)  # done with notifications
                reader, writer = await wsp.open_stream(s)
                return reader, writer, host
            failures.append(f"{host}: {error_name(error)}")
            wsp.WSPCloseSocket(s, err)
        raise ConnectionError("every address failed: " + ", ".join(failures))
    finally:
        for s, _, _ in attempts:  # the losers
            wsp.WSPCloseSocket(s, Errno())


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write((await reader.read(100)).upper())
    await writer.drain()
    writer.close()


async def main() -> str:
    servers = []
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    servers.append(server)
    port = server.sockets[0].getsockname()[1]
    addresses = [("127.0.0.1", port)]
    if socket.has_ipv6:
        try:
            servers.append(await asyncio.start_server(_serve, "::1", port))
            addresses.insert(0, ("::1", port))  # RFC 8305: IPv6 first
        except OSError:
            pass  # no IPv6 loopback here: the race has one runner
    try:
        async with Provider() as wsp:
            reader, writer, host = await happy_eyeballs(wsp, addresses)
            writer.write(b"hello from " + host.encode())
            await writer.drain()
            reply = (await reader.read()).decode()
            writer.close()
            await writer.wait_closed()
            assert len(wsp) == 0  # winner handed over, losers closed
    except WSAError as exc:
        raise SystemExit(f"failed: {exc}") from None
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
    print(f"winner {host}: {reply}")
    return reply


if __name__ == "__main__":
    asyncio.run(main())
