"""A blocking connect through SyncProvider vs a plain blocking socket.connect.

Issue 4's bar: a blocking connect through SyncProvider costs at most 1.5x a plain
blocking ``socket.connect`` to the same loopback listener, measured in the same run.

What is timed, each operation on its own with ``perf_counter``:

* connect -- the connect call alone: ``s.connect(addr)`` against
  ``sp.WSPConnect(s, name, ...)``; the socket is created before and closed after,
  outside the timed region. This is the bar.
* cycle -- the whole blocking-client cycle, ``socket(); connect(); close()`` against
  ``WSPSocket; WSPConnect; WSPCloseSocket``: the stricter view, which also charges the
  provider's socket record and its clean-up. Reported beside the bar.

References in the same run: the async ``Provider`` awaited inside a running loop of
the same kind, and a floor -- a bare nonblocking ``connect_ex`` plus the one TCP_INFO
read that tells a finished loopback handshake from one in flight, which is the kernel
work any design on nonblocking sockets pays (what is above it is Python).

Paired and interleaved: the machines this runs on are shared and noisy, with slow
periods lasting longer than a batch of connects. So the variants take turns *per
operation* -- plain, SyncProvider, Provider, floor, plain, ... in a rotating order --
and every variant collects one sample per turn; a slow period then hits all of them
alike. Each figure is the median of its samples; ratios are ratios of medians.

The listener (``--rig``):

* ``drained`` (default): nobody accepts while operations are timed; each connect
  completes into the listener's accept queue (the kernel finishes a loopback
  handshake on its own) and the queue is drained every few hundred turns, outside the
  timed regions. Every variant's connect takes the same kernel path, with no other
  process involved: the figures are the client's own cost.
* ``acceptor``: a child process accepts and closes as connects arrive. Closer to a
  real server, but the connect syscall then also pays for waking that process (an
  inter-processor interrupt, costly on a VM) whenever it fell asleep because the
  client was slower than it -- any client that does more work between connects pays
  more *inside the kernel's connect*, so the ratio mixes the client's cost with the
  scheduler's. Run it to see that effect; read the client's cost from ``drained``.

Every connect leaves a TIME_WAIT socket behind for 60 s, and a kernel with tens of
thousands of them spends longer finding a free ephemeral port on every connect (plain
or not): the run prints the count it started with.

    python benchmarks/sync_connect.py [-n 4000] [--loop asyncio|uvloop|both]
        [--rig drained|acceptor] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import wspasync
from wspasync import AF_INET, SOCK_STREAM, Errno, Provider, SyncProvider, sockaddr_in

_ACCEPTOR = """
import socket, sys
lst = socket.socket(fileno=int(sys.argv[1]))
while True:
    try:
        conn, _ = lst.accept()
    except OSError:
        break
    conn.close()
"""

_BACKLOG = 4096  # net.core.somaxconn's usual value; larger asks are cut to it
_BAR = 1.5
_clock = time.perf_counter


def _drain(lst: socket.socket) -> None:
    """Accept and close everything queued on the (nonblocking) listener."""
    while True:
        try:
            conn, _ = lst.accept()
        except BlockingIOError:
            return
        conn.close()


def _failed(what: str, err: Errno) -> SystemExit:
    return SystemExit(f"{what}: connect failed: {wspasync.error_name(err.value)}")


class Variants:
    """One timed operation per variant; each returns the seconds it took."""

    def __init__(self, port: int, sp: SyncProvider, wsp: Provider) -> None:
        self.addr = ("127.0.0.1", port)
        self.name = sockaddr_in("127.0.0.1", port)
        self.sp = sp
        self.wsp = wsp
        self.err = Errno()

    # -- the connect call alone -------------------------------------------------

    def plain_connect(self) -> float:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t0 = _clock()
        s.connect(self.addr)
        t = _clock() - t0
        s.close()
        return t

    def sync_connect(self) -> float:
        sp, err = self.sp, self.err
        s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        t0 = _clock()
        rc = sp.WSPConnect(s, self.name, 16, None, None, None, None, err)
        t = _clock() - t0
        if rc != 0:
            raise _failed("SyncProvider", err)
        sp.WSPCloseSocket(s, err)
        return t

    async def async_connect(self) -> float:
        wsp, err = self.wsp, self.err
        s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        t0 = _clock()
        rc = await wsp.WSPConnect(s, self.name, 16, None, None, None, None, err)
        t = _clock() - t0
        if rc != 0:
            raise _failed("Provider", err)
        wsp.WSPCloseSocket(s, err)
        return t

    def floor_connect(self) -> float:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        t0 = _clock()
        if s.connect_ex(self.addr) == errno.EINPROGRESS:
            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO)
        t = _clock() - t0
        s.close()
        return t

    # -- the whole cycle --------------------------------------------------------

    def plain_cycle(self) -> float:
        t0 = _clock()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(self.addr)
        s.close()
        return _clock() - t0

    def sync_cycle(self) -> float:
        sp, err = self.sp, self.err
        t0 = _clock()
        s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        rc = sp.WSPConnect(s, self.name, 16, None, None, None, None, err)
        sp.WSPCloseSocket(s, err)
        t = _clock() - t0
        if rc != 0:
            raise _failed("SyncProvider", err)
        return t

    async def async_cycle(self) -> float:
        wsp, err = self.wsp, self.err
        t0 = _clock()
        s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        rc = await wsp.WSPConnect(s, self.name, 16, None, None, None, None, err)
        wsp.WSPCloseSocket(s, err)
        t = _clock() - t0
        if rc != 0:
            raise _failed("Provider", err)
        return t


# (key, label, method name, is a coroutine)
_ROWS = {
    "connect": [
        ("plain", "plain s.connect(addr)", "plain_connect", False),
        ("sync", "SyncProvider.WSPConnect (blocking)", "sync_connect", False),
        ("async", "await Provider.WSPConnect (reference)", "async_connect", True),
        ("floor", "floor: connect_ex + TCP_INFO only", "floor_connect", False),
    ],
    "cycle": [
        ("plain", "plain socket/connect/close", "plain_cycle", False),
        ("sync", "SyncProvider socket/connect/close", "sync_cycle", False),
        ("async", "Provider in the loop (reference)", "async_cycle", True),
    ],
}


async def _measure(port: int, sp: SyncProvider, turns: int, between: Callable[[], None]) -> dict[str, list[float]]:
    """Run every variant once per turn, in a rotating order; samples per variant."""
    wsp = Provider()
    try:
        v = Variants(port, sp, wsp)
        ops = [(f"{what}/{key}", getattr(v, meth), is_coro)
               for what, rows in _ROWS.items() for key, _, meth, is_coro in rows]  # fmt: skip
        samples: dict[str, list[float]] = {key: [] for key, _, _ in ops}
        per_drain = max(1, (_BACKLOG // 2) // len(ops))
        for _, op, is_coro in ops:  # warm every path up
            for _ in range(20):
                await op() if is_coro else op()
        between()
        for turn in range(turns):
            start = turn % len(ops)
            for key, op, is_coro in ops[start:] + ops[:start]:
                samples[key].append(await op() if is_coro else op())
            if turn % per_drain == per_drain - 1:
                between()
        between()
        return samples
    finally:
        wsp.close()


def _time_wait() -> str:
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    fields = line.split()
                    return fields[fields.index("tw") + 1]
    except (OSError, ValueError, IndexError):
        pass
    return "?"


def _run_loop(loop: str, coro: Any) -> Any:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--turns", type=int, default=4000, help="samples per variant")
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="both")
    parser.add_argument("--rig", choices=("drained", "acceptor"), default="drained")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    opts = parser.parse_args(argv)

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, "
          f"{platform.platform()}; TCP sockets in TIME_WAIT at start: {_time_wait()}")  # fmt: skip
    print(f"rig: {opts.rig}; {opts.turns} samples per variant, taken in turns")
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(_BACKLOG)
    port = lst.getsockname()[1]
    acceptor = None
    if opts.rig == "drained":
        lst.setblocking(False)
    else:
        acceptor = subprocess.Popen(
            [sys.executable, "-c", _ACCEPTOR, str(lst.fileno())], pass_fds=[lst.fileno()]
        )

    def between() -> None:
        if acceptor is None:
            _drain(lst)

    verdicts: list[str] = []
    report: dict[str, Any] = {"rig": opts.rig, "turns": opts.turns, "bar": _BAR, "loops": {}}
    try:
        loops = ("asyncio", "uvloop") if opts.loop == "both" else (opts.loop,)
        for loop in loops:
            with SyncProvider(loop=loop) as sp:
                samples = _run_loop(loop, _measure(port, sp, opts.turns, between))
            print(f"loop={loop}: medians per operation (us), ratio to plain")
            figures: dict[str, dict[str, float]] = {}
            for what, rows in _ROWS.items():
                base = statistics.median(samples[f"{what}/plain"])
                print(f"  {what}{' (the bar)' if what == 'connect' else ' (stricter view)'}:")
                for key, label, _, _ in rows:
                    med = statistics.median(samples[f"{what}/{key}"])
                    figures[f"{what}/{key}"] = med * 1e6
                    print(f"    {label:40s} {med * 1e6:7.1f} us  {med / base:5.2f}x")
                ratio = statistics.median(samples[f"{what}/sync"]) / base
                figures[f"{what}/ratio"] = ratio
                verdicts.append(f"{loop} {what} {ratio:.2f}x")
            report["loops"][loop] = figures
    finally:
        if acceptor is not None:
            acceptor.kill()
            acceptor.wait()
        lst.close()
    connect_ok = all(r["connect/ratio"] <= _BAR for r in report["loops"].values())
    print(f"bar (SyncProvider blocking connect <= {_BAR:.2f}x plain): "
          f"{'met' if connect_ok else 'NOT met'} -- " + "; ".join(verdicts))  # fmt: skip
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
