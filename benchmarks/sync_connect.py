"""A blocking connect through SyncProvider vs a plain blocking socket.connect.

Both connect to the same loopback listener in the same run; an acceptor in a child
process accepts and closes, so the listener never fills and neither side pays for the
other's accepting. Two measurements, each per connect:

* cycle -- the whole blocking-client cycle: create a socket, connect (blocking), close:
  ``socket.socket(); s.connect(addr); s.close()`` against ``WSPSocket; WSPConnect;
  WSPCloseSocket``.
* connect -- the connect call alone: ``s.connect(addr)`` against ``WSPConnect(...)``,
  each timed on its own (perf_counter around the one call); creating and closing the
  socket happen outside the timed region. The figure is the sum of those times / n.

Every variant runs in every round, in turn, so drift in the machine hits all of them;
each figure is the median over rounds and the ratios are ratios of medians (bar:
SyncProvider <= 1.5x plain). The async Provider inside a running loop is a reference.
The VM this was tuned on is noisy: run it twice and read both. Every connect leaves a
TIME_WAIT socket behind for 60 s, and a kernel with tens of thousands of them spends
longer finding a free ephemeral port on every connect (plain or not): the run prints
the count it started with; leave a minute between runs.

    python benchmarks/sync_connect.py [--rounds 15] [--per-round 400] [--loop asyncio|uvloop|both]
"""

from __future__ import annotations

import argparse
import asyncio
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


Sample = tuple[float, float]  # (wall s, CPU s) per connect


def _failed(err: Errno) -> SystemExit:
    return SystemExit(f"connect failed: {wspasync.error_name(err.value)}")


# -- the whole cycle ---------------------------------------------------------------


def plain_cycle(port: int, n: int) -> Sample:
    addr = ("127.0.0.1", port)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(addr)
        s.close()
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def sync_cycle(sp: SyncProvider, port: int, n: int) -> Sample:
    name = sockaddr_in("127.0.0.1", port)
    err = Errno()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        if sp.WSPConnect(s, name, 16, None, None, None, None, err) != 0:
            raise _failed(err)
        sp.WSPCloseSocket(s, err)
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


async def _async_cycle(port: int, n: int) -> Sample:
    wsp = Provider()
    name = sockaddr_in("127.0.0.1", port)
    err = Errno()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        if await wsp.WSPConnect(s, name, 16, None, None, None, None, err) != 0:
            raise _failed(err)
        wsp.WSPCloseSocket(s, err)
    sample = (time.perf_counter() - t0) / n, (time.process_time() - c0) / n
    wsp.close()
    return sample


# -- the connect call alone ---------------------------------------------------------
# CPU time is not sampled per call (process_time reads a per-process clock that costs
# more than a loopback connect's Python work); these report wall time only.


def plain_connect(port: int, n: int) -> Sample:
    addr = ("127.0.0.1", port)
    clock = time.perf_counter
    total = 0.0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t0 = clock()
        s.connect(addr)
        total += clock() - t0
        s.close()
    return total / n, float("nan")


def sync_connect(sp: SyncProvider, port: int, n: int) -> Sample:
    name = sockaddr_in("127.0.0.1", port)
    err = Errno()
    clock = time.perf_counter
    total = 0.0
    for _ in range(n):
        s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        t0 = clock()
        rc = sp.WSPConnect(s, name, 16, None, None, None, None, err)
        total += clock() - t0
        if rc != 0:
            raise _failed(err)
        sp.WSPCloseSocket(s, err)
    return total / n, float("nan")


async def _async_connect(port: int, n: int) -> Sample:
    wsp = Provider()
    name = sockaddr_in("127.0.0.1", port)
    err = Errno()
    clock = time.perf_counter
    total = 0.0
    for _ in range(n):
        s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        t0 = clock()
        rc = await wsp.WSPConnect(s, name, 16, None, None, None, None, err)
        total += clock() - t0
        if rc != 0:
            raise _failed(err)
        wsp.WSPCloseSocket(s, err)
    wsp.close()
    return total / n, float("nan")


def _in_loop(coro_fn: Callable[[int, int], Any], loop_name: str) -> Callable[[int, int], Sample]:
    """The async Provider's round, in a fresh loop of the kind under test."""

    def run(port: int, n: int) -> Sample:
        if loop_name == "uvloop":
            import uvloop

            return uvloop.run(coro_fn(port, n))  # type: ignore[no-any-return]
        return asyncio.run(coro_fn(port, n))  # type: ignore[no-any-return]

    return run


def _median(samples: list[Sample], which: int) -> float:
    return statistics.median(x[which] for x in samples)


def _report(title: str, rows: list[tuple[str, list[Sample]]]) -> float:
    """Print one table; returns the SyncProvider row's wall ratio."""
    print(title)
    base = (_median(rows[0][1], 0), _median(rows[0][1], 1))
    sync_ratio = 0.0
    for label, samples in rows:
        wall, cpu = _median(samples, 0), _median(samples, 1)
        line = f"    {label:38s} wall {wall * 1e6:7.1f} us ({wall / base[0]:.2f}x)"
        if cpu == cpu:  # not NaN
            line += f"   cpu {cpu * 1e6:7.1f} us ({cpu / base[1]:.2f}x)"
        print(line)
        if label.startswith("SyncProvider"):
            sync_ratio = wall / base[0]
    return sync_ratio


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=400)
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="both")
    opts = parser.parse_args(argv)

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, "
          f"{platform.platform()}; TCP sockets in TIME_WAIT at start: {_time_wait()}")  # fmt: skip
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4096)
    port = lst.getsockname()[1]
    acceptor = subprocess.Popen(
        [sys.executable, "-c", _ACCEPTOR, str(lst.fileno())], pass_fds=[lst.fileno()]
    )
    verdicts: list[str] = []
    try:
        loops = ("asyncio", "uvloop") if opts.loop == "both" else (opts.loop,)
        for loop in loops:
            with SyncProvider(loop=loop) as sp:
                variants: dict[str, Callable[[int, int], Sample]] = {
                    "cycle/plain": plain_cycle,
                    "cycle/sync": lambda p, n: sync_cycle(sp, p, n),
                    "cycle/async": _in_loop(_async_cycle, loop),
                    "connect/plain": plain_connect,
                    "connect/sync": lambda p, n: sync_connect(sp, p, n),
                    "connect/async": _in_loop(_async_connect, loop),
                }
                for fn in variants.values():
                    fn(port, 50)  # warm up every path
                results: dict[str, list[Sample]] = {key: [] for key in variants}
                for _ in range(opts.rounds):
                    for key, fn in variants.items():
                        results[key].append(fn(port, opts.per_round))
            print(f"loop={loop}: {opts.rounds} rounds x {opts.per_round} connects, medians per connect")
            for what, title in (
                ("cycle", "  cycle (socket + connect + close):"),
                ("connect", "  connect call alone (socket create/close outside the timed region):"),
            ):
                ratio = _report(
                    title,
                    [
                        ("plain blocking socket" if what == "cycle" else "plain s.connect(addr)",
                         results[f"{what}/plain"]),
                        ("SyncProvider (blocking)", results[f"{what}/sync"]),
                        ("Provider in the loop (reference)", results[f"{what}/async"]),
                    ],
                )  # fmt: skip
                verdicts.append(f"{loop} {what} {ratio:.2f}x {'met' if ratio <= 1.5 else 'NOT met'}")
    finally:
        acceptor.kill()
        acceptor.wait()
        lst.close()
    print("bar (SyncProvider wall <= 1.50x plain): " + "; ".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
