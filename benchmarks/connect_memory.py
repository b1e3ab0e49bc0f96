"""Memory per in-flight connect at 10,000 in flight, per route and loop (issue 2).

The sink never accepts (``--policy never``, backlog 8), so after the first few every
connect stays pending (Linux drops the SYNs of a full accept queue). Each row starts
10,000 connects in a fresh loop and, once they are all in flight, reads the Python heap
(tracemalloc, traced since just before the first connect) and the RSS of a fresh
process per row; both
deltas are divided by the number in flight. Kernel socket memory is not in either figure.

    python benchmarks/connect_memory.py [-n 10000] [--route all] [--loop all]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import subprocess
import sys
import tracemalloc

from wspasync._bench.doctor import raise_nofile
from wspasync._bench.load import Plan, _rss_bytes
from wspasync._bench.routes import ROUTES, make_driver
from wspasync._bench.runner import loop_factory
from wspasync._bench.sink import SinkGroup


def measure(route: str, loop_name: str, n: int, port: int) -> tuple[int, float, float]:
    plan = Plan(concurrency=n, total=n, warmup=0, timeout=30.0, close="rst", max_time=60.0)
    driver = make_driver(route, plan, [(2, "127.0.0.1", port)], None)
    out: list[tuple[int, float, float]] = []

    def on_sweep(done: int, started: int) -> None:
        if out or len(driver.inflight) < n - 64:
            return
        gc.collect()
        inflight = len(driver.inflight)
        heap = tracemalloc.get_traced_memory()[0] - driver.tm_start
        rss = _rss_bytes() - driver.rss_start
        out.append((inflight, heap / inflight, rss / inflight))
        driver.stopping = True
        for key in list(driver.inflight):
            driver.abort(key)
        driver.inflight.clear()
        driver.check_end()

    driver.progress = on_sweep
    gc.collect()
    tracemalloc.start()
    try:
        with asyncio.Runner(loop_factory=loop_factory(loop_name)) as runner:
            runner.run(driver.run())
    finally:
        tracemalloc.stop()
    if not out:
        raise RuntimeError(f"{route}/{loop_name}: {n} connects never were in flight together")
    return out[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=10000, help="connects in flight (default 10000)")
    p.add_argument("--route", default="all")
    p.add_argument("--loop", default="all")
    p.add_argument("--one", nargs=3, metavar=("ROUTE", "LOOP", "PORT"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    raise_nofile()
    if a.one:  # a child: one row in a fresh process, so RSS starts clean
        inflight, heap, rss = measure(a.one[0], a.one[1], a.n, int(a.one[2]))
        print(f"{inflight} {heap} {rss}")
        return 0
    routes = list(ROUTES) if a.route == "all" else ["baseline", *a.route.split(",")]
    loops = ["asyncio", "uvloop"] if a.loop == "all" else a.loop.split(",")
    print(f"Python {platform.python_version()}; {platform.platform()}; {os.cpu_count()} CPUs; "
          f"{a.n} connects in flight per row")
    print(f"{'loop':8} {'route':12} {'in flight':>9} {'heap B/connect':>15} {'RSS B/connect':>14}")
    with SinkGroup("never", backlog=8) as sink:
        for loop_name in loops:
            for route in routes:
                out = subprocess.run([sys.executable, __file__, "-n", str(a.n), "--one", route, loop_name,
                                      str(sink.port)], capture_output=True, text=True, timeout=300)
                if out.returncode != 0:
                    print(f"{loop_name:8} {route:12} failed: {out.stderr.strip()[-300:]}")
                    continue
                f = out.stdout.split()
                inflight, heap, rss = int(f[0]), float(f[1]), float(f[2])
                print(f"{loop_name:8} {route:12} {inflight:>9} {heap:>15,.0f} {rss:>14,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
