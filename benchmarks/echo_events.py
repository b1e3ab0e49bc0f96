"""Echo ping-pong over many connected stream sockets, driven by FD_READ.

For each loop (asyncio, uvloop) and each route -- a plain-asyncio baseline
(``loop.sock_sendall`` / ``loop.sock_recv``, one Task per connection), WSPSelect,
WSPAsyncSelect and WSPEventSelect -- this opens ``--conns`` loopback connections to an
echo server running in another process, keeps one small message in flight on each,
and counts round trips for ``--seconds``. Every reply is compared with what was sent
(connection id, sequence number, pattern), and after the run every connection's byte
counts must match: each byte arrives exactly once and in order, or the run fails.

Prints the loop, Python and machine, round trips per second per route, and each
route's ratio to the baseline measured in the same run on the same loop.

    python benchmarks/echo_events.py                  # 1,000 sockets, 3 s per route
    python benchmarks/echo_events.py --conns 200 --seconds 1 --loops uvloop
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import struct
import subprocess
import sys
import time

import uvloop

from wspasync import (
    AF_INET,
    FD_CLOSE,
    FD_READ,
    FIONBIO,
    SOCK_STREAM,
    SOCKET_ERROR,
    WSA_INFINITE,
    WSAEWOULDBLOCK,
    WSAGETSELECTERROR,
    WSAGETSELECTEVENT,
    Errno,
    FdSet,
    Provider,
    WSABuf,
    WSAEvent,
    WSANetworkEvents,
    Window,
    sockaddr_in,
    wait_for_multiple_events,
)

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
ROUTES = ("baseline", "select", "asyncselect", "eventselect")
WM_SOCKET = 0x400
_HEAD = struct.Struct("<IQ")


# -- the echo server (another process) -------------------------------------------------


class _Echo(asyncio.Protocol):
    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Echo, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()  # until the parent terminates us


def _start_server() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port


# -- bookkeeping shared by every route --------------------------------------------------


class Conn:
    """One connection's ping-pong: the message in flight and what has come back."""

    __slots__ = ("cid", "seq", "expect", "buf", "have", "sent", "rcvd", "handle", "sock")

    def __init__(self, cid: int, size: int) -> None:
        self.cid = cid
        self.seq = 0
        self.expect = b""
        self.buf = bytearray(size)
        self.have = 0
        self.sent = 0
        self.rcvd = 0
        self.handle = 0
        self.sock: socket.socket | None = None

    def next_message(self, size: int) -> bytes:
        self.seq += 1
        head = _HEAD.pack(self.cid, self.seq)
        fill = bytes((self.cid + self.seq + i) & 0xFF for i in range(4))
        msg = (head + fill * size)[:size]
        self.expect = msg
        self.have = 0
        self.sent += size
        return msg

    def check(self) -> None:
        if self.buf != self.expect:
            raise SystemExit(f"connection {self.cid}: reply {self.seq} differs from what was sent")


class Run:
    def __init__(self, size: int) -> None:
        self.size = size
        self.stop = False
        self.count = 0
        self.outstanding = 0
        self.done = asyncio.get_running_loop().create_future()

    def completed(self, conn: Conn) -> bool:
        """A reply is complete and correct; True if another message should go out."""
        conn.check()
        conn.rcvd += self.size
        if self.stop:
            self.outstanding -= 1
            if not self.outstanding and not self.done.done():
                self.done.set_result(None)
            return False
        self.count += 1
        return True


# -- routes ---------------------------------------------------------------------------


async def run_baseline(port: int, conns: list[Conn], run: Run) -> None:
    loop = asyncio.get_running_loop()
    for c in conns:
        sock = socket.socket()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        c.sock = sock

    async def pingpong(c: Conn) -> None:
        sock = c.sock
        size = run.size
        while True:
            await loop.sock_sendall(sock, c.next_message(size))
            view = memoryview(c.buf)
            while c.have < size:
                n = await loop.sock_recv_into(sock, view[c.have :])
                if not n:
                    raise SystemExit(f"connection {c.cid}: closed by the server")
                c.have += n
            if not run.completed(c):
                return

    tasks = [asyncio.ensure_future(pingpong(c)) for c in conns]
    await _measure(run, len(conns))
    await asyncio.gather(*tasks)
    for c in conns:
        c.sock.close()  # type: ignore[union-attr]


async def _open_wsp(wsp: Provider, port: int, conns: list[Conn]) -> None:
    e = Errno()
    name = sockaddr_in("127.0.0.1", port)
    nodelay = struct.pack("<I", 1)
    for c in conns:
        s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, e)
        wsp.WSPSetSockOpt(s, 6, 1, nodelay, 4, e)  # IPPROTO_TCP, TCP_NODELAY
        if await wsp.WSPConnect(s, name, 16, None, None, None, None, e) == SOCKET_ERROR:
            raise SystemExit(f"connect failed: {e.value}")
        c.handle = s


class _WspIO:
    """Nonblocking WSPRecv/WSPSend for one provider, with reusable boxes."""

    def __init__(self, wsp: Provider, run: Run) -> None:
        self.wsp = wsp
        self.run = run
        self.e = Errno()
        self.n = Errno()
        self.flags = Errno()

    async def send(self, c: Conn) -> None:
        msg = c.next_message(self.run.size)
        buf = [WSABuf(len(msg), msg)]  # type: ignore[arg-type]
        if await self.wsp.WSPSend(c.handle, buf, 1, self.n, 0, None, None, None, self.e):
            raise SystemExit(f"send failed: {self.e.value}")
        if self.n.value != len(msg):  # small messages always fit on loopback
            raise SystemExit("short send")

    async def readable(self, c: Conn) -> None:
        """FD_READ (or select) said readable: one recv, as a Winsock program does."""
        size = self.run.size
        view = memoryview(c.buf)[c.have :]
        self.flags.value = 0
        rc = await self.wsp.WSPRecv(
            c.handle, [WSABuf(size - c.have, view)], 1, self.n, self.flags, None, None, None, self.e
        )
        if rc == SOCKET_ERROR:
            if self.e.value == WSAEWOULDBLOCK:
                return
            raise SystemExit(f"recv failed: {self.e.value}")
        if not self.n.value:
            raise SystemExit(f"connection {c.cid}: closed by the server")
        c.have += self.n.value
        if c.have == size and self.run.completed(c):
            await self.send(c)


async def run_asyncselect(port: int, conns: list[Conn], run: Run) -> None:
    async with Provider() as wsp:
        await _open_wsp(wsp, port, conns)
        io = _WspIO(wsp, run)
        window = Window()
        by_handle = {c.handle: c for c in conns}
        e = Errno()
        for c in conns:
            wsp.WSPAsyncSelect(c.handle, window, WM_SOCKET, FD_READ | FD_CLOSE, e)
        for c in conns:
            await io.send(c)

        async def pump() -> None:
            while not run.done.done():
                msg = await window.get_message()
                while msg is not None:
                    if WSAGETSELECTERROR(msg.lParam) or WSAGETSELECTEVENT(msg.lParam) != FD_READ:
                        raise SystemExit(f"unexpected message {msg}")
                    await io.readable(by_handle[msg.wParam])
                    msg = window.peek_message()

        task = asyncio.ensure_future(pump())
        await _measure(run, len(conns))
        task.cancel()


async def run_eventselect(port: int, conns: list[Conn], run: Run) -> None:
    async with Provider() as wsp:
        await _open_wsp(wsp, port, conns)
        io = _WspIO(wsp, run)
        # 64 event objects (WSA_MAXIMUM_WAIT_EVENTS), each shared by a group of sockets:
        # the way a single thread serves more than 64 sockets with WSAEventSelect.
        events = [WSAEvent() for _ in range(min(64, len(conns)))]
        groups: list[list[Conn]] = [[] for _ in events]
        e = Errno()
        for i, c in enumerate(conns):
            wsp.WSPEventSelect(c.handle, events[i % len(events)], FD_READ | FD_CLOSE, e)
            groups[i % len(events)].append(c)
        for c in conns:
            await io.send(c)
        record = WSANetworkEvents()

        async def pump() -> None:
            while not run.done.done():
                first = await wait_for_multiple_events(events, False, WSA_INFINITE)
                for index in range(first, len(events)):
                    ev = events[index]
                    if not ev.is_set():
                        continue
                    ev.reset()  # before enumerating: a later event sets it again
                    for c in groups[index]:
                        wsp.WSPEnumNetworkEvents(c.handle, None, record, e)
                        if record.lNetworkEvents & FD_READ:
                            await io.readable(c)
                        elif record.lNetworkEvents:
                            raise SystemExit(f"unexpected events {record}")

        task = asyncio.ensure_future(pump())
        await _measure(run, len(conns))
        task.cancel()


async def run_select(port: int, conns: list[Conn], run: Run) -> None:
    async with Provider() as wsp:
        await _open_wsp(wsp, port, conns)
        io = _WspIO(wsp, run)
        e = Errno()
        on = struct.pack("<I", 1)
        for c in conns:
            wsp.WSPIoctl(c.handle, FIONBIO, on, 4, None, 0, Errno(), None, None, None, e)
        for c in conns:
            await io.send(c)
        by_handle = {c.handle: c for c in conns}

        async def pump(group: list[Conn]) -> None:
            handles = [c.handle for c in group]
            while not run.done.done():
                readfds = FdSet(handles)
                if await wsp.WSPSelect(0, readfds, None, None, None, e) == SOCKET_ERROR:
                    raise SystemExit(f"select failed: {e.value}")
                for h in readfds.fd_array:
                    await io.readable(by_handle[h])

        tasks = [asyncio.ensure_future(pump(conns[i : i + 64])) for i in range(0, len(conns), 64)]
        await _measure(run, len(conns))
        for t in tasks:
            t.cancel()


RUNNERS = {
    "baseline": run_baseline,
    "select": run_select,
    "asyncselect": run_asyncselect,
    "eventselect": run_eventselect,
}


async def _measure(run: Run, nconns: int) -> None:
    """Warm up, count round trips for the window, then let every reply in flight land."""
    await asyncio.sleep(run.warmup)  # type: ignore[attr-defined]
    start_count, start = run.count, time.perf_counter()
    await asyncio.sleep(run.seconds)  # type: ignore[attr-defined]
    run.elapsed = time.perf_counter() - start  # type: ignore[attr-defined]
    run.measured = run.count - start_count  # type: ignore[attr-defined]
    run.outstanding = nconns
    run.stop = True
    await asyncio.wait_for(run.done, 30)


async def one_route(route: str, port: int, args: argparse.Namespace) -> float:
    run = Run(args.size)
    run.warmup, run.seconds = args.warmup, args.seconds  # type: ignore[attr-defined]
    conns = [Conn(i, args.size) for i in range(args.conns)]
    await RUNNERS[route](port, conns, run)
    for c in conns:
        if c.sent != c.rcvd:
            raise SystemExit(f"{route}: connection {c.cid} sent {c.sent} bytes, got {c.rcvd}")
    return run.measured / run.elapsed  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64, help="message bytes (>= 12)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(_serve())
        return
    if args.size < _HEAD.size:
        parser.error("--size must be at least 12")
    routes = [r for r in args.routes.split(",") if r]
    if "baseline" not in routes:
        routes.insert(0, "baseline")
    proc, port = _start_server()
    try:
        print(f"python {platform.python_version()} ({platform.python_implementation()}), "
              f"uvloop {uvloop.__version__}, {platform.machine()} {platform.system()} "
              f"{platform.release()}, {os.cpu_count()} CPUs ({platform.processor() or '?'})")
        print(f"{args.conns} connections, {args.size}-byte messages, {args.seconds:g} s per "
              f"route, echo server: uvloop in another process (pid {proc.pid})")
        print(f"{'loop':<8} {'route':<12} {'round trips/s':>14} {'vs baseline':>12}")
        for loop_name in args.loops.split(","):
            base = None
            for route in routes:
                with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
                    rate = runner.run(one_route(route, port, args))
                if route == "baseline":
                    base = rate
                ratio = f"{rate / base:.2f}x" if base else "-"
                print(f"{loop_name:<8} {route:<12} {rate:>14,.0f} {ratio:>12}", flush=True)
        print("every reply matched what was sent; per-connection byte counts equal")
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
