"""An async-select message pump: one Window serving many sockets.

The WSAAsyncSelect server shape: a listener registered for FD_ACCEPT on a window; every
accepted socket inherits the registration (here FD_READ | FD_CLOSE) and posts to the
same window; one loop takes messages off the window and dispatches on
WSAGETSELECTEVENT(lParam), with the socket in wParam and any error in
WSAGETSELECTERROR(lParam). This server echoes what it reads, uppercased.

Run it: ``python examples/message_pump.py`` serves 20 loopback clients at once and
stops when all are answered.
"""

from __future__ import annotations

import asyncio

from wspasync import (
    AF_INET,
    FD_ACCEPT,
    FD_CLOSE,
    FD_READ,
    INVALID_SOCKET,
    SOCK_STREAM,
    SOCKET_ERROR,
    WSAEWOULDBLOCK,
    WSAGETSELECTERROR,
    WSAGETSELECTEVENT,
    Errno,
    Provider,
    WSABuf,
    Window,
    check,
    sockaddr_in,
)

WM_SOCKET = 0x0400 + 1  # WM_USER + 1: the message number we asked for


async def pump(wsp: Provider, window: Window, listener: int, clients: int) -> dict[str, int]:
    """Dispatch window messages until *clients* connections were served and closed."""
    err = Errno()
    stats = {"accepted": 0, "bytes": 0, "closed": 0}
    while stats["closed"] < clients:
        msg = await window.get_message()
        s, event, error = msg.wParam, WSAGETSELECTEVENT(msg.lParam), WSAGETSELECTERROR(msg.lParam)
        if event == FD_ACCEPT:
            new = await wsp.WSPAccept(listener, None, None, None, 0, err)
            if new != INVALID_SOCKET:  # (WSAEWOULDBLOCK: another message got it first)
                stats["accepted"] += 1  # new inherits FD_READ|FD_CLOSE on this window
        elif event == FD_READ:
            buf, got = bytearray(4096), Errno()
            if await wsp.WSPRecv(s, [WSABuf(len(buf), buf)], 1, got, Errno(0), None, None, None, err) == 0:
                data = bytearray(bytes(buf[: got.value]).upper())
                stats["bytes"] += got.value
                if data:
                    # Small replies fit the send buffer; a real server would queue on
                    # WSAEWOULDBLOCK and send the rest on FD_WRITE.
                    await wsp.WSPSend(s, [WSABuf(len(data), data)], 1, Errno(), 0, None, None, None, err)
            elif err.value != WSAEWOULDBLOCK:
                wsp.WSPCloseSocket(s, err)
                stats["closed"] += 1
        elif event == FD_CLOSE:
            if error:
                print(f"socket {s:#x} closed with error {error}")
            wsp.WSPCloseSocket(s, err)
            stats["closed"] += 1
    return stats


async def client(port: int, i: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"client {i}".encode())
    await writer.drain()
    reply = await reader.readexactly(len(f"client {i}"))
    writer.close()
    await writer.wait_closed()
    return reply


async def main(clients: int = 20) -> dict[str, int]:
    async with Provider() as wsp:
        err = Errno()
        window = Window()
        lst = check(wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err), err)
        check(wsp.WSPBind(lst, sockaddr_in("127.0.0.1", 0), 16, err), err)
        check(wsp.WSPListen(lst, 64, err), err)
        check(wsp.WSPAsyncSelect(lst, window, WM_SOCKET, FD_ACCEPT | FD_READ | FD_CLOSE, err), err)
        port = wsp.os_socket(lst).getsockname()[1]
        server = asyncio.ensure_future(pump(wsp, window, lst, clients))
        replies = await asyncio.gather(*(client(port, i) for i in range(clients)))
        stats = await asyncio.wait_for(server, 10)
        assert replies == [f"CLIENT {i}".encode() for i in range(clients)]
        assert wsp.WSPCloseSocket(lst, err) != SOCKET_ERROR
    print(f"served {stats['accepted']} clients from one window, {stats['bytes']} bytes echoed")
    return stats


if __name__ == "__main__":
    asyncio.run(main())
