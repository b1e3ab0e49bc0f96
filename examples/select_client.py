"""A classic select() loop client, written against the blocking twin.

The shape of countless Winsock clients: several nonblocking sockets, one select()
per turn of the loop, connect completion seen as writability (failure in exceptfds),
then send the request when writable and read the reply when readable, until every
socket is done. Nothing here is async: SyncProvider runs its own loop on a thread.

Run it: ``python examples/select_client.py`` starts a few loopback servers (plus one
refused port, to show a failure) and talks to them.
"""

from __future__ import annotations

import socket
import struct
import threading

from wspasync import (
    AF_INET,
    FIONBIO,
    SO_ERROR,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    WSAEWOULDBLOCK,
    Errno,
    FdSet,
    SyncProvider,
    TimeVal,
    WSABuf,
    check,
    error_name,
    sockaddr_in,
)


def fetch_all(wsp: SyncProvider, ports: list[int], request: bytes) -> dict[int, bytes | str]:
    """Send *request* to every port on 127.0.0.1; return each reply or error name."""
    err = Errno()
    results: dict[int, bytes | str] = {}
    sockets: dict[int, int] = {}  # handle -> port
    replies: dict[int, bytearray] = {}
    sent: set[int] = set()
    for port in ports:
        s = check(wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err), err)
        check(wsp.WSPIoctl(s, FIONBIO, struct.pack("<I", 1), 4, None, 0, Errno(), None, None, None, err), err)
        if wsp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err) == SOCKET_ERROR:
            if err.value != WSAEWOULDBLOCK:
                results[port] = error_name(err.value)
                wsp.WSPCloseSocket(s, err)
                continue
        sockets[s] = port
        replies[s] = bytearray()

    def finish(s: int, outcome: bytes | str) -> None:
        results[sockets.pop(s)] = outcome
        wsp.WSPCloseSocket(s, Errno())

    while sockets:
        readfds = FdSet([s for s in sockets if s in sent])
        writefds = FdSet([s for s in sockets if s not in sent])
        exceptfds = FdSet(list(sockets))
        n = wsp.WSPSelect(0, readfds, writefds, exceptfds, TimeVal(5, 0), err)
        if n == SOCKET_ERROR:
            raise OSError(f"select: {error_name(err.value)}")
        if n == 0:
            for s in list(sockets):
                finish(s, "timed out")
            break
        for s in exceptfds.fd_array:  # a failed connect
            code, size = bytearray(4), Errno(4)
            wsp.WSPGetSockOpt(s, SOL_SOCKET, SO_ERROR, code, size, err)
            finish(s, error_name(struct.unpack("<i", code)[0]))
        for s in writefds.fd_array:  # connected: send the request
            if s in sockets:
                count = Errno()
                check(wsp.WSPSend(s, [WSABuf(len(request), bytearray(request))], 1, count, 0, None, None, None, err), err)
                sent.add(s)
        for s in readfds.fd_array:  # the reply, until the server closes
            if s not in sockets:
                continue
            buf, got = bytearray(4096), Errno()
            if wsp.WSPRecv(s, [WSABuf(len(buf), buf)], 1, got, Errno(0), None, None, None, err) == SOCKET_ERROR:
                if err.value != WSAEWOULDBLOCK:
                    finish(s, error_name(err.value))
            elif got.value == 0:
                finish(s, bytes(replies.pop(s)))
            else:
                replies[s] += buf[: got.value]
    return results


def _server(count: int) -> tuple[list[socket.socket], list[threading.Thread]]:
    listeners, threads = [], []
    for i in range(count):
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)

        def serve(lst: socket.socket = lst, i: int = i) -> None:
            conn, _ = lst.accept()
            with conn:
                conn.sendall(f"server {i}: ".encode() + conn.recv(100).upper())

        t = threading.Thread(target=serve)
        t.start()
        listeners.append(lst)
        threads.append(t)
    return listeners, threads


def main() -> dict[int, bytes | str]:
    listeners, threads = _server(3)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    refused_port = refused.getsockname()[1]
    refused.close()
    ports = [lst.getsockname()[1] for lst in listeners] + [refused_port]
    try:
        with SyncProvider() as wsp:
            results = fetch_all(wsp, ports, b"hello")
    finally:
        for t in threads:
            t.join(5)
        for lst in listeners:
            lst.close()
    for port in ports:
        print(port, results[port])
    return results


if __name__ == "__main__":
    main()
