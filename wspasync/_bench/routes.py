"""The drivers: one per notification route, plus the raw-asyncio baseline.

Each driver makes exactly the calls a user of that route makes -- create a socket,
register it (or make it nonblocking), connect, learn the outcome, close -- and nothing
else; the shared bookkeeping is in load.py. The wspasync drivers go through the public
API only (``from wspasync import ...``), never the provider's internals.

``baseline``     one asyncio Task per connect around ``loop.sock_connect`` on a plain
                 nonblocking socket (what an asyncio program does without wspasync).
``asyncselect``  WSPAsyncSelect(FD_CONNECT) into one Window; one consumer coroutine
                 drains the queue (``get_message`` then ``peek_message`` until empty).
``eventselect``  WSPEventSelect(FD_CONNECT) with up to 64 WSAEvents, each serving a group
                 of sockets; one waiter calls ``wait_for_multiple_events`` and, after a
                 wake, enumerates every signalled group.
``select``       FIONBIO then WSPSelect over writefds/exceptfds of all sockets in flight.
``blocking``     one Task per connect awaiting a blocking WSPConnect.
"""

from __future__ import annotations

import asyncio
import errno as _errno
import socket
import struct
import time
from typing import Any

from .load import Driver

__all__ = ["ROUTES", "WSP_ROUTES", "make_driver", "os_error_name", "parse_target"]

mono = time.monotonic_ns

WSP_ROUTES = ("select", "asyncselect", "eventselect", "blocking")
ROUTES = ("baseline",) + WSP_ROUTES
WM_CONNECT = 0x400  # WM_USER
_LINGER_RST_LINUX = struct.pack("ii", 1, 0)
_LINGER_RST_WIN = struct.pack("<HH", 1, 0)

_SPECIAL = {
    _errno.EINPROGRESS: "WSAEWOULDBLOCK",
    _errno.EAGAIN: "WSAEWOULDBLOCK",
    _errno.EPIPE: "WSAECONNRESET",
    _errno.EMFILE: "WSAEMFILE",
    _errno.ENFILE: "WSAEMFILE",
    _errno.ENOMEM: "WSAENOBUFS",
    _errno.EPERM: "WSAEACCES",
}


def os_error_name(e: OSError) -> str:
    """The WSAE name for a Linux errno (the baseline's errors, named like the routes')."""
    n = e.errno
    if n in _SPECIAL:
        return _SPECIAL[n]
    code = _errno.errorcode.get(n or 0)
    return "WSA" + code if code else type(e).__name__


def parse_target(text: str) -> tuple[int, str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (family, host, port); ValueError otherwise."""
    import ipaddress

    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"target {text!r} is not HOST:PORT")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    addr = ipaddress.ip_address(host)  # names other than localhost are not resolved
    fam = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    p = int(port)
    if not 0 < p < 65536:
        raise ValueError(f"port {p} out of range")
    return fam, str(addr), p


class BaselineDriver(Driver):
    route = "baseline"

    async def setup(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.aborted: list[asyncio.Task[Any]] = []
        self.addrs = [(fam, (h, p)) for fam, h, p in self.targets]
        self.srcs = [(s, 0) for s in self.sources] if self.sources else None

    async def start_one(self, intended: int | None) -> None:
        self.started += 1
        t = self.loop.create_task(self._one())
        self.inflight[t] = mono()
        if intended is not None:
            self.intended[t] = intended  # type: ignore[index]

    async def _one(self) -> None:
        me = asyncio.current_task()
        i = self.started
        fam, addr = self.addrs[i % len(self.addrs)]
        try:
            sock = socket.socket(fam, socket.SOCK_STREAM)
        except OSError as e:
            self.inflight.pop(me, None)
            self.failed(me, os_error_name(e), f"socket(): {e}")
            await self.refill()
            return
        try:
            sock.setblocking(False)
            if self.srcs:
                sock.bind(self.srcs[i % len(self.srcs)])
            t0 = mono()
            await self.loop.sock_connect(sock, addr)
        except OSError as e:
            sock.close()
            if self.inflight.pop(me, None) is not None:
                self.failed(me, os_error_name(e), f"sock_connect({addr[0]}:{addr[1]}): {e}")
        except asyncio.CancelledError:
            sock.close()  # timed out (the monitor recorded it) or the row ended
            return
        else:
            t1 = mono()
            if self.inflight.pop(me, None) is None:
                sock.close()
                return
            self.succeeded(me, t0, t1, None)
            self.close_ok(sock, t1)
        await self.refill()

    def pump(self) -> Any:
        return asyncio.sleep(1e9)  # completions arrive in the tasks themselves

    def abort(self, key: Any) -> None:
        key.cancel()
        self.aborted.append(key)

    def close_handle(self, h: Any) -> None:
        h.close()

    def set_rst(self, h: Any) -> None:
        h.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST_LINUX)

    async def teardown(self) -> None:
        if self.aborted:
            await asyncio.gather(*self.aborted, return_exceptions=True)


class _WspDriver(Driver):
    """Shared by the wspasync routes: the provider, the handles and closing."""

    async def run(self) -> None:
        import wspasync as w

        self.w = w
        async with w.Provider() as wsp:
            self.wsp = wsp
            self.err = w.Errno()
            self.names = []
            for fam, h, p in self.targets:
                if fam == socket.AF_INET6:
                    self.names.append((w.AF_INET6, w.sockaddr_in6(h, p)))
                else:
                    self.names.append((w.AF_INET, w.sockaddr_in(h, p)))
            self.bind_names = [w.sockaddr_in(s, 0) if ":" not in s else w.sockaddr_in6(s, 0)
                               for s in self.sources] if self.sources else None
            self.timing = getattr(wsp, "connect_timing", None) or (lambda s: None)
            self.error_name = w.error_name
            await super().run()

    def new_socket(self, err: Any) -> tuple[int, bytes] | None:
        """WSPSocket (+ WSPBind for --source); None after recording a failure."""
        w = self.w
        i = self.started
        fam, name = self.names[i % len(self.names)]
        s = self.wsp.WSPSocket(fam, w.SOCK_STREAM, w.IPPROTO_TCP, None, 0, 0, err)
        if s == w.INVALID_SOCKET:
            self.failed(None, self.error_name(err.value), "WSPSocket failed")
            return None
        if self.bind_names:
            b = self.bind_names[i % len(self.bind_names)]
            if self.wsp.WSPBind(s, b, len(b), err) == w.SOCKET_ERROR:
                self.failed(None, self.error_name(err.value), "WSPBind(--source) failed")
                self.wsp.WSPCloseSocket(s, err)
                return None
        return s, name

    async def start_one(self, intended: int | None) -> None:
        self.started += 1
        err = self.err
        got = self.new_socket(err)
        if got is None:
            return
        s, name = got
        self.register(s, err)
        t0 = mono()
        rc = await self.wsp.WSPConnect(s, name, len(name), None, None, None, None, err)
        if rc == -1 and err.value != 10035:  # SOCKET_ERROR, not WSAEWOULDBLOCK
            self.failed(s, self.error_name(err.value), "WSPConnect returned it at once")
            self.close_handle(s)
            return
        self.inflight[s] = t0
        if intended is not None:
            self.intended[s] = intended  # type: ignore[index]

    def register(self, s: int, err: Any) -> None:
        raise NotImplementedError

    def close_handle(self, h: Any) -> None:
        self.wsp.WSPCloseSocket(h, self.err)

    def set_rst(self, h: Any) -> None:
        w = self.w
        self.wsp.WSPSetSockOpt(h, w.SOL_SOCKET, w.SO_LINGER, _LINGER_RST_WIN, 4, self.err)

    def abort(self, key: Any) -> None:
        self.close_handle(key)


class AsyncSelectDriver(_WspDriver):
    route = "asyncselect"

    async def setup(self) -> None:
        self.window = self.w.Window()

    def register(self, s: int, err: Any) -> None:
        self.wsp.WSPAsyncSelect(s, self.window, WM_CONNECT, 0x10, err)  # FD_CONNECT

    async def pump(self) -> None:
        get, peek = self.window.get_message, self.window.peek_message
        inflight, timing, succeeded, close_ok = self.inflight, self.timing, self.succeeded, self.close_ok
        while True:
            msg = await get()
            while msg is not None:
                lp = msg.lParam
                if lp & 0xFFFF == 0x10:  # WSAGETSELECTEVENT == FD_CONNECT
                    s = msg.wParam
                    t0 = inflight.pop(s, None)
                    if t0 is not None:
                        t1 = mono()
                        code = (lp >> 16) & 0xFFFF  # WSAGETSELECTERROR
                        if code == 0:
                            tm = timing(s)
                            succeeded(s, t0, t1, tm.completed_ns if tm is not None else None)
                            close_ok(s, t1)
                        else:
                            self.failed(s, self.error_name(code), "FD_CONNECT message", t1)
                            self.close_handle(s)
                msg = peek()
            await self.refill()
            if len(self.window):  # posted while connecting: let the loop run its callbacks first
                await asyncio.sleep(0)


class EventSelectDriver(_WspDriver):
    route = "eventselect"

    async def setup(self) -> None:
        n = max(1, min(64, self.plan.concurrency))
        self.events = [self.w.WSAEvent() for _ in range(n)]
        self.groups: list[set[int]] = [set() for _ in range(n)]
        self.rr = 0

    def register(self, s: int, err: Any) -> None:
        g = self.rr
        self.rr = g + 1 if g + 1 < len(self.events) else 0
        self.wsp.WSPEventSelect(s, self.events[g], 0x10, err)  # FD_CONNECT
        self.groups[g].add(s)

    async def pump(self) -> None:
        w = self.w
        wait, events, groups = w.wait_for_multiple_events, self.events, self.groups
        enum = self.wsp.WSPEnumNetworkEvents
        ne, err = w.WSANetworkEvents(), w.Errno()
        inflight, timing, succeeded, close_ok = self.inflight, self.timing, self.succeeded, self.close_ok
        nev = len(events)
        connect_bit = w.FD_CONNECT_BIT
        while True:
            idx = await wait(events, False, 100)
            if 0 <= idx < nev:
                for g in range(idx, nev):
                    ev = events[g]
                    if not ev.is_set():
                        continue
                    grp = groups[g]
                    done = []
                    for s in grp:
                        ne.lNetworkEvents = 0
                        enum(s, ev, ne, err)
                        if ne.lNetworkEvents & 0x10:
                            done.append((s, ne.iErrorCode[connect_bit]))
                    if not done:
                        continue
                    t1 = mono()
                    for s, code in done:
                        grp.discard(s)
                        t0 = inflight.pop(s, None)
                        if t0 is None:
                            continue
                        if code == 0:
                            tm = timing(s)
                            succeeded(s, t0, t1, tm.completed_ns if tm is not None else None)
                            close_ok(s, t1)
                        else:
                            self.failed(s, self.error_name(code), "FD_CONNECT network event", t1)
                            self.close_handle(s)
            elif idx != w.WSA_WAIT_TIMEOUT:
                await asyncio.sleep(0.001)  # WSA_WAIT_FAILED: do not spin
            await self.refill()
            for ev in events:  # signalled while connecting: let the loop run its callbacks first
                if ev.is_set():
                    await asyncio.sleep(0)
                    break

    def abort(self, key: Any) -> None:
        for grp in self.groups:
            grp.discard(key)
        self.close_handle(key)


class SelectDriver(_WspDriver):
    route = "select"

    async def setup(self) -> None:
        self.on = struct.pack("<I", 1)
        w = self.w
        self.tv = w.TimeVal(0, 10_000 if self.plan.open_model else 100_000)

    def register(self, s: int, err: Any) -> None:
        self.wsp.WSPIoctl(s, 0x8004667E, self.on, 4, None, 0, self.w.Errno(), None, None, None, err)

    async def pump(self) -> None:
        w = self.w
        FdSet, select = w.FdSet, self.wsp.WSPSelect
        err = w.Errno()
        inflight, timing, succeeded, close_ok = self.inflight, self.timing, self.succeeded, self.close_ok
        optbuf, optlen = bytearray(4), w.Errno(4)
        while True:
            if not inflight:
                await asyncio.sleep(0.0005)
                await self.refill()
                continue
            socks = list(inflight)
            n = len(socks)
            # fill the sets as C does (fd_array[i] = s): the handles are unique already, and
            # FdSet(sockets) checks each for duplicates, which is quadratic in the set size
            wr, ex = FdSet(capacity=n), FdSet(capacity=n)
            wr.fd_array.extend(socks)
            ex.fd_array.extend(socks)
            r = await select(0, None, wr, ex, self.tv, err)
            if r == -1:
                await asyncio.sleep(0.001)
                await self.refill()
                continue
            t1 = mono()
            for s in wr.fd_array[: wr.fd_count]:
                t0 = inflight.pop(s, None)
                if t0 is not None:
                    tm = timing(s)
                    succeeded(s, t0, t1, tm.completed_ns if tm is not None else None)
                    close_ok(s, t1)
            for s in ex.fd_array[: ex.fd_count]:
                t0 = inflight.pop(s, None)
                if t0 is not None:
                    optlen.value = 4
                    self.wsp.WSPGetSockOpt(s, w.SOL_SOCKET, w.SO_ERROR, optbuf, optlen, err)
                    code = int.from_bytes(optbuf, "little")
                    self.failed(s, self.error_name(code) if code else "exceptfds", "exceptfds", t1)
                    self.close_handle(s)
            await self.refill()
            # WSPSelect may return without suspending (ready at once, or a scan longer
            # than the timeout): yield so the loop's callbacks and timers run each round
            await asyncio.sleep(0)


class BlockingDriver(_WspDriver):
    route = "blocking"

    async def setup(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.aborted: list[asyncio.Task[Any]] = []
        self.socks: dict[Any, int] = {}

    async def start_one(self, intended: int | None) -> None:
        self.started += 1
        t = self.loop.create_task(self._one())
        self.inflight[t] = mono()
        if intended is not None:
            self.intended[t] = intended  # type: ignore[index]

    async def _one(self) -> None:
        me = asyncio.current_task()
        err = self.w.Errno()
        got = self.new_socket(err)
        if got is None:
            self.inflight.pop(me, None)
            await self.refill()
            return
        s, name = got
        self.socks[me] = s
        t0 = mono()
        try:
            rc = await self.wsp.WSPConnect(s, name, len(name), None, None, None, None, err)
        except asyncio.CancelledError:
            self.socks.pop(me, None)
            self.wsp.WSPCloseSocket(s, err)
            return
        t1 = mono()
        self.socks.pop(me, None)
        if self.inflight.pop(me, None) is None:
            self.wsp.WSPCloseSocket(s, err)
            return
        if rc == 0:
            tm = self.timing(s)
            self.succeeded(me, t0, t1, tm.completed_ns if tm is not None else None)
            self.close_ok(s, t1)
        else:
            self.failed(me, self.error_name(err.value), "blocking WSPConnect", t1)
            self.wsp.WSPCloseSocket(s, err)
        await self.refill()

    def pump(self) -> Any:
        return asyncio.sleep(1e9)  # completions arrive in the tasks themselves

    def abort(self, key: Any) -> None:
        key.cancel()
        self.aborted.append(key)

    async def teardown(self) -> None:
        if self.aborted:
            await asyncio.gather(*self.aborted, return_exceptions=True)


_DRIVERS = {
    "baseline": BaselineDriver,
    "asyncselect": AsyncSelectDriver,
    "eventselect": EventSelectDriver,
    "select": SelectDriver,
    "blocking": BlockingDriver,
}


def make_driver(route: str, plan: Any, targets: list[Any], sources: list[str] | None) -> Driver:
    return _DRIVERS[route](plan, targets, sources)
