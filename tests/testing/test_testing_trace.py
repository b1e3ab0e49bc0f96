"""The trace's derived entries: re-enabling causes and event-object set/reset."""

from __future__ import annotations

import socket

from wspasync import (
    AF_INET,
    FD_ACCEPT,
    FD_CONNECT,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SOCK_STREAM,
    Errno,
    Window,
    WSAEvent,
    WSANetworkEvents,
    sockaddr_in,
)
from wspasync.testing import Trace, expect_messages, expect_network_events


def tcp(wsp):
    return wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, Errno())


async def test_reenabling_cause_is_recorded(wsp):
    trace = Trace().attach(wsp)
    window = Window()
    lst = tcp(wsp)
    wsp.WSPBind(lst, sockaddr_in("127.0.0.1", 0), 16, Errno())
    wsp.WSPListen(lst, 8, Errno())
    wsp.WSPAsyncSelect(lst, window, 0x401, FD_ACCEPT, Errno())
    name, namelen = bytearray(16), Errno(16)
    wsp.WSPGetSockName(lst, name, namelen, Errno())
    port = int.from_bytes(name[2:4], "big")
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        await expect_messages(window, ["FD_ACCEPT"])  # held: the second waits
        conn = await wsp.WSPAccept(lst, None, None, None, 0, Errno())
        assert conn != INVALID_SOCKET
        await expect_messages(window, ["FD_ACCEPT"])  # re-enabled by the accept
        wsp.WSPCloseSocket(conn, Errno())
    finally:
        for c in clients:
            c.close()
    wsp.WSPCloseSocket(lst, Errno())
    trace.detach()
    assert ("reenable", "FD_ACCEPT re-enabled by WSPAccept") in trace.sequence()


async def test_event_object_set_and_reset_are_recorded(wsp, refused_addr):
    trace = Trace().attach(wsp)
    event = WSAEvent()
    s = tcp(wsp)
    wsp.WSPEventSelect(s, event, FD_CONNECT, Errno())
    await wsp.WSPConnect(s, refused_addr, 16, None, None, None, None, Errno())
    await expect_network_events(wsp, s, event, ["FD_CONNECT(WSAECONNREFUSED)"])
    wsp.WSPEnumNetworkEvents(s, event, WSANetworkEvents(), Errno())
    wsp.WSPCloseSocket(s, Errno())
    trace.detach()
    objects = [what for kind, what in trace.sequence() if kind == "eventobj"]
    assert objects[0] == "event#1 set by FD_CONNECT"
    assert objects[1:] == ["event#1 reset by WSPEnumNetworkEvents"] * (len(objects) - 1)
    assert len(objects) >= 2
    as_json = trace.to_json()
    assert as_json["schema"] == "wspasync.trace/1"
    assert any(e["kind"] == "eventobj" for e in as_json["entries"])
