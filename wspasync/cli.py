"""The ``wspasync`` command: ``connect`` traces one connect; ``bench`` and ``doctor``
run connect storms (see ``wspasync._bench``)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import struct
import sys
from typing import Any

from . import _constants as C
from ._constants import error_name, event_name
from ._loops import loop_factory
from ._provider import Provider
from ._sockaddr import sockaddr_in, sockaddr_in6
from ._structs import Errno, FdSet, WSANetworkEvents
from ._trace import Trace
from ._waitables import Window, WSAEvent, wait_for_multiple_events

__all__ = ["main"]

ROUTES = ("select", "asyncselect", "eventselect", "blocking")
WM_SOCKET = 0x0400 + 1  # WM_USER + 1, what Winsock samples use


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); ValueError if malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    ipaddress.ip_address(host)
    return host, int(port)


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


# -- wspasync connect ---------------------------------------------------------------


class _Targets:
    """The loopback endpoints a connect trace aims at, closed on exit."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []

    def listener(self, family: int, backlog: int = 16) -> tuple[str, int]:
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        sock = socket.socket(family)
        sock.bind((host, 0))
        sock.listen(backlog)
        self.sockets.append(sock)
        return host, sock.getsockname()[1]

    def refused(self, family: int) -> tuple[str, int]:
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        with socket.socket(family) as sock:
            sock.bind((host, 0))
            return host, sock.getsockname()[1]

    def pending(self, family: int) -> tuple[str, int]:
        """A listener with a full backlog that never accepts: connects stay pending."""
        host, port = self.listener(family, backlog=0)
        for _ in range(4):
            filler = socket.socket(family)
            filler.setblocking(False)
            filler.connect_ex((host, port))
            self.sockets.append(filler)
        return host, port

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


async def trace_connect(
    host: str, port: int, route: str, maxrt: int | None, wait_s: float
) -> tuple[Trace, dict[str, Any]]:
    """Run one connect through *route* with a trace attached; return the trace and a summary."""
    family = C.AF_INET6 if ":" in host else C.AF_INET
    name = sockaddr_in6(host, port) if family == C.AF_INET6 else sockaddr_in(host, port)
    summary: dict[str, Any] = {"route": route, "target": f"{host}:{port}"}
    async with Provider() as wsp:
        trace = Trace().attach(wsp)
        err = Errno()
        s = wsp.WSPSocket(family, C.SOCK_STREAM, C.IPPROTO_TCP, None, 0, 0, err)
        if s == C.INVALID_SOCKET:
            summary["result"] = error_name(err.value)
            return trace, summary
        if maxrt is not None:
            wsp.WSPSetSockOpt(s, C.IPPROTO_TCP, C.TCP_MAXRT, struct.pack("<I", maxrt), 4, err)
        window, event = Window(), WSAEvent()
        if route == "asyncselect":
            wsp.WSPAsyncSelect(s, window, WM_SOCKET, C.FD_CONNECT | C.FD_WRITE, err)
        elif route == "eventselect":
            wsp.WSPEventSelect(s, event, C.FD_CONNECT | C.FD_WRITE, err)
        elif route == "select":
            wsp.WSPIoctl(s, C.FIONBIO, struct.pack("<I", 1), 4, None, 0, Errno(), None, None, None, err)
        rc = await wsp.WSPConnect(s, name, len(name), None, None, None, None, err)
        summary["connect"] = {"rc": rc, "error": error_name(err.value) if rc else "0"}
        try:
            async with asyncio.timeout(wait_s):
                if route == "asyncselect":
                    await _pump_messages(trace, window)
                elif route == "eventselect":
                    await _pump_events(trace, wsp, s, event)
                elif route == "select":
                    await _pump_select(trace, wsp, s)
        except TimeoutError:
            trace.note(f"no outcome within {wait_s:g} s")
        so_error = bytearray(4)
        wsp.WSPGetSockOpt(s, C.SOL_SOCKET, C.SO_ERROR, so_error, Errno(4), err)
        summary["so_error"] = error_name(struct.unpack("<I", so_error)[0])
        summary["state"] = wsp._sockets[s].state.value
        wsp.WSPCloseSocket(s, err)
        trace.detach()
    return trace, summary


async def _pump_messages(trace: Trace, window: Window) -> None:
    while True:
        message = await window.get_message()
        event, error = C.WSAGETSELECTEVENT(message.lParam), C.WSAGETSELECTERROR(message.lParam)
        trace.note(f"GetMessage: {event_name(event)}({error_name(error)})", message.wParam)
        if event == C.FD_WRITE or error:
            return


async def _pump_events(trace: Trace, wsp: Provider, s: int, event: WSAEvent) -> None:
    while True:
        index = await wait_for_multiple_events([event], False, C.WSA_INFINITE)
        trace.note(f"WaitForMultipleEvents: {index}")
        record = WSANetworkEvents()
        wsp.WSPEnumNetworkEvents(s, event, record, Errno())
        bits = [
            f"{name}({error_name(record.iErrorCode[index])})"
            for index, value, name in C.FD_EVENTS
            if record.lNetworkEvents & value
        ]
        trace.note(f"EnumNetworkEvents: {' '.join(bits) or 'nothing'}", s)
        if record.lNetworkEvents & C.FD_CONNECT:
            return


async def _pump_select(trace: Trace, wsp: Provider, s: int) -> None:
    writefds, exceptfds = FdSet([s]), FdSet([s])
    await wsp.WSPSelect(0, None, writefds, exceptfds, None, Errno())
    where = "writefds" if writefds.FD_ISSET(s) else "exceptfds" if exceptfds.FD_ISSET(s) else "none"
    so_error = bytearray(4)
    wsp.WSPGetSockOpt(s, C.SOL_SOCKET, C.SO_ERROR, so_error, Errno(4), Errno())
    trace.note(
        f"select: in {where}, SO_ERROR={error_name(struct.unpack('<I', so_error)[0])}", s
    )


def format_timeline(trace: Trace) -> list[str]:
    """The trace as aligned lines: time since the first call, kind, handle, what."""
    entries = trace.entries
    if not entries:
        return []
    t0 = next((e.t_ns for e in entries if e.kind == "call"), entries[0].t_ns)
    lines = []
    for e in entries:
        handle = f"s={e.handle:#x}" if isinstance(e.handle, int) else ""
        extra = ""
        if e.kind == "call":
            extra = ", ".join(f"{k}={v}" for k, v in e.detail.items() if k not in ("s",))
            extra = f"({extra})" if extra else ""
        elif e.kind == "return":
            rc = e.detail.get("rc")
            extra = f"-> {'SOCKET_ERROR' if rc == C.SOCKET_ERROR else rc}"
            if "error" in e.detail:
                extra += f" {e.detail['error']}"
        elif e.kind == "event":
            extra = e.detail.get("outcome", "")
        lines.append(f"{(e.t_ns - t0) / 1e6:+10.3f} ms  {e.kind:<6} {handle:<9} {e.what} {extra}".rstrip())
    return lines


def cmd_connect(args: argparse.Namespace) -> int:
    targets = _Targets()
    try:
        family = socket.AF_INET6 if args.ipv6 else socket.AF_INET
        if args.target:
            host, port = parse_target(args.target)
            if not is_loopback(host) and not args.allow_remote:
                print(f"refusing non-loopback target {host} (use --allow-remote)", file=sys.stderr)
                return 2
        elif args.refused:
            host, port = targets.refused(family)
        elif args.pending:
            host, port = targets.pending(family)
        else:
            host, port = targets.listener(family)
        routes = ROUTES if args.route == "all" else (args.route,)
        loops = ("asyncio", "uvloop") if args.loop == "all" else (args.loop,)
        results = []
        for loop_name in loops:
            for route in routes:
                with asyncio.Runner(loop_factory=loop_factory(loop_name)) as runner:
                    trace, summary = runner.run(
                        trace_connect(host, port, route, args.maxrt, args.wait)
                    )
                summary["loop"] = loop_name
                results.append((trace, summary))
                if not args.quiet:
                    print(f"wspasync connect {host}:{port}  route={route}  loop={loop_name}")
                    for line in format_timeline(trace):
                        print("  " + line)
                    print(
                        f"  => state {summary.get('state')}, SO_ERROR {summary.get('so_error')}\n"
                    )
        if args.json:
            payload = {
                "schema": "wspasync.connect/1",
                "runs": [{**summary, "trace": trace.to_json()} for trace, summary in results],
            }
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(payload, f, indent=2)
                f.write("\n")
        return 0
    except ValueError as exc:
        print(f"wspasync connect: {exc}", file=sys.stderr)
        return 2
    finally:
        targets.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wspasync", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("connect", help="trace one connect and print its timeline")
    p.add_argument("target", nargs="?", help="HOST:PORT (default: an embedded loopback listener)")
    p.add_argument("--route", choices=ROUTES + ("all",), default="asyncselect")
    p.add_argument("--loop", choices=("asyncio", "uvloop", "all"), default="asyncio")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--refused", action="store_true", help="aim at a closed loopback port")
    group.add_argument(
        "--pending", action="store_true", help="aim at a loopback listener whose backlog is full"
    )
    p.add_argument("--maxrt", type=int, default=None, help="TCP_MAXRT in seconds (connect budget)")
    p.add_argument("--wait", type=float, default=30.0, help="give up waiting after this many seconds")
    p.add_argument("-6", "--ipv6", action="store_true", help="use ::1 for embedded targets")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback target")
    p.add_argument("--json", metavar="FILE", help="write the trace(s) as JSON")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_connect)
    try:
        from ._bench import add_parsers
    except ImportError:  # pragma: no cover - the bench is part of the package
        pass
    else:
        add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
