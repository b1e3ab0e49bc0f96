"""A blocking connect through SyncProvider vs a plain blocking socket.connect.

Both connect to the same loopback listener in the same run; an acceptor in a child
process accepts and closes, so the listener never fills and neither side pays for the
other's accepting. One "connect" is the whole blocking-client cycle: create a socket,
connect (blocking), close -- ``socket.socket(); s.connect(addr); s.close()`` against
``WSPSocket; WSPConnect; WSPCloseSocket``. Rounds alternate between the two so drift
in the machine hits both; the figure is the ratio of medians (bar: <= 1.5x).

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


def plain_round(port: int, n: int) -> Sample:
    addr = ("127.0.0.1", port)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(addr)
        s.close()
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def sync_round(sp: SyncProvider, port: int, n: int) -> Sample:
    name = sockaddr_in("127.0.0.1", port)
    err = Errno()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        s = sp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        if sp.WSPConnect(s, name, 16, None, None, None, None, err) != 0:
            raise SystemExit(f"connect failed: {wspasync.error_name(err.value)}")
        sp.WSPCloseSocket(s, err)
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


async def _async_round(port: int, n: int) -> Sample:
    wsp = Provider()
    name = sockaddr_in("127.0.0.1", port)
    err = Errno()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        s = wsp.WSPSocket(AF_INET, SOCK_STREAM, 0, None, 0, 0, err)
        if await wsp.WSPConnect(s, name, 16, None, None, None, None, err) != 0:
            raise SystemExit(f"connect failed: {wspasync.error_name(err.value)}")
        wsp.WSPCloseSocket(s, err)
    sample = (time.perf_counter() - t0) / n, (time.process_time() - c0) / n
    wsp.close()
    return sample


def async_round(port: int, n: int) -> Sample:
    """The same cycle on the async Provider inside a running loop (reference)."""
    return asyncio.run(_async_round(port, n))


def _median(samples: list[Sample], which: int) -> float:
    return statistics.median(x[which] for x in samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=400)
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="both")
    opts = parser.parse_args(argv)

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, "
          f"{platform.platform()}")  # fmt: skip
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4096)
    port = lst.getsockname()[1]
    acceptor = subprocess.Popen(
        [sys.executable, "-c", _ACCEPTOR, str(lst.fileno())], pass_fds=[lst.fileno()]
    )
    worst = 0.0
    try:
        loops = ("asyncio", "uvloop") if opts.loop == "both" else (opts.loop,)
        for loop in loops:
            with SyncProvider(loop=loop) as sp:
                plain_round(port, 50)  # warm up every path
                sync_round(sp, port, 50)
                async_round(port, 50)
                plain: list[Sample] = []
                synced: list[Sample] = []
                inloop: list[Sample] = []
                for _ in range(opts.rounds):
                    plain.append(plain_round(port, opts.per_round))
                    synced.append(sync_round(sp, port, opts.per_round))
                    inloop.append(async_round(port, opts.per_round))
            print(f"loop={loop}: {opts.rounds} rounds x {opts.per_round} connects, medians per connect")
            base = (_median(plain, 0), _median(plain, 1))
            for label, samples in (
                ("plain blocking socket.connect", plain),
                ("SyncProvider.WSPConnect (blocking)", synced),
                ("Provider.WSPConnect in the loop (reference)", inloop),
            ):
                wall, cpu = _median(samples, 0), _median(samples, 1)
                print(
                    f"  {label:44s} wall {wall * 1e6:7.1f} us ({wall / base[0]:.2f}x)"
                    f"   cpu {cpu * 1e6:7.1f} us ({cpu / base[1]:.2f}x)"
                )
            if loop == "asyncio":
                worst = _median(synced, 0) / base[0]
    finally:
        acceptor.kill()
        acceptor.wait()
        lst.close()
    verdict = "met" if worst <= 1.5 else "NOT met"
    print(f"bar: SyncProvider (default loop) wall ratio {worst:.2f}x <= 1.50x: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
