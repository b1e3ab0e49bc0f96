"""Connect storm (issue 2, item 9): 20,000 nonblocking connects, 1,000 in flight.

Every route (select, asyncselect, eventselect, blocking) on each loop (asyncio, uvloop),
with the raw-asyncio baseline (one Task per ``loop.sock_connect``) in the same run,
against a loopback listener in another process (the bench's embedded sink). Prints the
loop, the Python version and the machine first, then connects/s and the ratio to the
baseline per row (``× base``: the baseline on the same loop; the JSON also has the ratio
to the default-loop baseline).

    python benchmarks/connect_storm.py                 # the issue's settings
    python benchmarks/connect_storm.py --close fin     # any `wspasync bench` option

It is ``wspasync bench -n 20000 -c 1000 --no-plot`` plus a summary; extra arguments are
passed through. Where a C compiler is on the machine it also builds and runs
``c_epoll_client.c`` (the same storm from C with one epoll: the kernel's ceiling here)
before and after the Python rows, and reports the best route's share of it.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile

from wspasync._bench.runner import add_parsers


def c_reference(total: int = 20000, in_flight: int = 1000) -> float | None:
    """connects/s of the C epoll client (median of 3 runs), or None without a compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    source = pathlib.Path(__file__).with_name("c_epoll_client.c")
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "c_epoll_client")
        subprocess.run([cc, "-O2", "-o", binary, str(source)], check=True)
        rates = []
        for _ in range(3):
            out = subprocess.run([binary, str(total), str(in_flight)], check=True,
                                 capture_output=True, text=True, timeout=180).stdout
            rates.append(float(out.split("connects_per_s=")[1].split()[0]))
    return sorted(rates)[1]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    print(f"loops: asyncio and uvloop; Python {platform.python_version()} "
          f"({platform.python_implementation()}); {platform.platform()}; "
          f"{os.cpu_count()} CPUs; {platform.processor() or platform.machine()}", flush=True)
    fd, path = tempfile.mkstemp(prefix="connect-storm-", suffix=".json")
    os.close(fd)
    p = argparse.ArgumentParser(prog="connect_storm")
    sub = p.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    defaults = ["bench", "-n", "20000", "-c", "1000", "--no-plot", "--json", path]
    args = p.parse_args(defaults + argv)
    c_before = c_reference()
    try:
        rc = args.func(args)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    finally:
        os.unlink(path)
    print("\nsummary (same run):")
    for r in doc["rows"]:
        same = r["ratio_to_baseline"]
        dflt = r["ratio_to_asyncio_baseline"]
        line = f"  {r['loop']:8} {r['route']:12} {r['connects_per_s']:>10,.0f} connects/s"
        if same is not None:
            line += f"  {same:.2f}x baseline on {r['loop']}"
        if dflt is not None:
            line += f"  {dflt:.2f}x asyncio baseline"
        print(line)
    c_after = c_reference()
    if c_before is not None and c_after is not None:
        c_rate = (c_before + c_after) / 2
        best = max((r for r in doc["rows"] if r["route"] != "baseline"),
                   key=lambda r: r["connects_per_s"])
        print(f"  C epoll client (before/after the rows): {c_before:,.0f} / {c_after:,.0f} "
              f"connects/s; best route {best['route']}/{best['loop']} = "
              f"{best['connects_per_s'] / c_rate:.2f}x of it")
    return rc


if __name__ == "__main__":
    sys.exit(main())
