"""``wspasync bench``: parse the request, start the sink, run every (route, loop) row, report.

Each row runs in a fresh event loop (``asyncio.Runner(loop_factory=...)``; no loop policy
is ever installed), in this process, or with ``--workers N`` in N child processes that
start together and whose histograms are merged exactly. Rows run one after the other
against the same sink, so every ratio compares figures taken minutes apart at most on
the same machine, sink and kernel state.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import json
import math
import os
import resource
import subprocess
import sys
import time
from typing import Any, Callable

from .._loops import loop_factory
from . import doctor as _doctor
from .load import FATAL_LIMITS, Plan
from .report import (
    SCHEMA,
    add_ratios,
    check_fail_if,
    merge_partials,
    parse_fail_if,
    partial_from_raw,
    render_table,
    write_json,
    write_plot,
)
from .routes import WSP_ROUTES, make_driver, parse_target
from .sink import POLICIES, SinkGroup

__all__ = ["add_parsers", "run_bench", "run_row", "worker_main", "EXIT_OK", "EXIT_FAIL_IF",
           "EXIT_USAGE", "EXIT_LIMIT"]

EXIT_OK, EXIT_FAIL_IF, EXIT_USAGE, EXIT_LIMIT = 0, 1, 2, 3
LOOPS = ("asyncio", "uvloop")
HELD_PER_SINK = 15000

DESCRIPTION = """\
Connect-storm benchmark: how many TCP connects per second wspasync completes through each
Winsock notification route (select, asyncselect, eventselect, blocking) on asyncio and
uvloop, against a raw-asyncio baseline (one Task per loop.sock_connect) in the same run.

With no TARGET it starts its own loopback sink in separate processes. The default run
compares every route on both loops for 2 s each (under a minute in all), prints a table,
and writes bench-<time>.json and bench-<time>.png in the current directory.

exit status: 0 ok, 1 a --fail-if threshold was crossed, 2 bad usage, 3 the run stopped on
a machine limit (descriptors, local ports) and says which.
"""

EPILOG = """\
examples:
  wspasync bench                                   every route, both loops, 2 s a row
  wspasync bench --route asyncselect --loop uvloop -c 1000 -n 20000
  wspasync bench --rate 5000 --ramp 1 -d 5         open model, latency from intended start
  wspasync bench --policy never --timeout 1 -c 100 -n 200     connects that never complete
  wspasync bench --route eventselect --loop uvloop --close hold --hold 10 -n 50000 \\
      --workers 3 --source 127.0.0.0/24              50,000 connections held at once
  wspasync bench --fail-if 'p99>5ms,errors>0.1%,ratio<1.2'   exit 1 when crossed (CI)
"""


# --- arguments -------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return v


def _positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return v


def _nonneg_float(text: str) -> float:
    v = float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return v


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="*", metavar="HOST:PORT",
                   help="connect here instead of the embedded sink (loopback only unless --allow-remote)")
    g = p.add_argument_group("what is measured")
    g.add_argument("--route", default="all",
                   help="select|asyncselect|eventselect|blocking|all, or a comma list (default all); "
                        "the baseline row is always added")
    g.add_argument("--loop", default="all", help="asyncio|uvloop|all (default all)")
    g = p.add_argument_group("load")
    g.add_argument("-c", "--concurrency", type=_positive_int, default=1000,
                   help="connects in flight (closed model), or the in-flight cap (open model); default 1000")
    g.add_argument("-n", "--connects", type=_positive_int, default=None,
                   help="measured connects per row (warm-up excluded)")
    g.add_argument("-d", "--duration", type=_positive_float, default=None,
                   help="seconds per row (default 2 when neither -n nor -d is given)")
    g.add_argument("--rate", type=_positive_float, default=None,
                   help="open model: start connects at this rate (connects/s); latency is also "
                        "measured from each connect's intended start (coordinated omission)")
    g.add_argument("--ramp", type=_nonneg_float, default=0.0, help="open model: seconds to ramp up to --rate")
    g.add_argument("--warmup", type=int, default=None,
                   help="completions excluded from the figures at the start of each row (default 1000)")
    g.add_argument("--timeout", type=_positive_float, default=10.0,
                   help="give up on a connect after this many seconds (counted as WSAETIMEDOUT; default 10)")
    g.add_argument("--max-time", type=_positive_float, default=None,
                   help="hard cap on one row, seconds (default: 3× the expected time, at least 30)")
    g.add_argument("--close", choices=("rst", "fin", "hold"), default="rst",
                   help="after connecting: abort with RST (default: leaves no TIME_WAIT, so rows do "
                        "not slow each other down), close with FIN, or hold the connection")
    g.add_argument("--hold", type=_nonneg_float, default=5.0,
                   help="with --close hold: seconds to keep each connection (default 5)")
    g.add_argument("--source", default=None, metavar="CIDR",
                   help="spread connects over the source addresses of CIDR (e.g. 127.0.0.0/24), "
                        "to go past one address's ephemeral ports")
    g.add_argument("--workers", type=_positive_int, default=1,
                   help="client processes per row, each with its own loop; histograms merged exactly")
    g = p.add_argument_group("embedded sink")
    g.add_argument("--policy", choices=POLICIES, default=None,
                   help="accept policy (default accept-close; accept-hold with --close hold)")
    g.add_argument("--backlog", type=_positive_int, default=None,
                   help="listen backlog (default 4096; 8 for --policy never)")
    g.add_argument("--delay", type=_nonneg_float, default=0.1,
                   help="--policy delayed: seconds before the sink closes (default 0.1)")
    g.add_argument("--sink-procs", type=_positive_int, default=None,
                   help="sink processes sharing the port (SO_REUSEPORT); default: enough for the held count")
    g.add_argument("--allow-remote", action="store_true",
                   help="allow targets and sources outside 127.0.0.0/8 and ::1")
    g = p.add_argument_group("output")
    g.add_argument("--json", default=None, metavar="FILE", help="JSON report (default bench-<time>.json)")
    g.add_argument("--no-json", action="store_true", help="write no JSON report")
    g.add_argument("--plot", default=None, metavar="FILE.png", help="latency plot (default bench-<time>.png)")
    g.add_argument("--no-plot", action="store_true", help="write no plot")
    g.add_argument("--fail-if", action="append", default=[], metavar="EXPR",
                   help="exit 1 when crossed: p50|p90|p99|p999|max>TIME, notif_p99>TIME, lag_p99>TIME, "
                        "errors>N or N%%, ratio<X, cps<N; comma-separated or repeated")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress display and no notes")


def add_parsers(subparsers: Any) -> None:
    """Register ``bench`` and ``doctor`` on an argparse subparsers object."""
    b = subparsers.add_parser(
        "bench", help="connect-storm benchmark of every notification route",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_bench_arguments(b)
    b.set_defaults(func=run_bench)
    d = subparsers.add_parser(
        "doctor", help="check the machine's limits for a connect storm",
        description=_doctor.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _doctor.add_doctor_arguments(d)
    d.set_defaults(func=_doctor.run_doctor)


# --- one row ---------------------------------------------------------------------------

def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_row(route: str, loop_name: str, plan: Plan, targets: list[Any], sources: list[str] | None,
            progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run one (route, loop) row in this process, in a fresh loop; returns its partial."""
    gc.collect()
    driver = make_driver(route, plan, targets, sources)
    driver.progress = progress
    c0, w0 = _cpu(), time.monotonic()
    with asyncio.Runner(loop_factory=loop_factory(loop_name)) as runner:
        runner.run(driver.run())
    wall = max(time.monotonic() - w0, 1e-9)
    raw = driver.result()
    raw["loop"] = loop_name
    raw["cpu_percent"] = round(100.0 * (_cpu() - c0) / wall, 1)
    return partial_from_raw(raw)


def worker_main() -> int:
    """A ``--workers`` child: read the row on stdin, READY, wait for GO, run, print JSON."""
    _doctor.raise_nofile()
    cfg = json.loads(sys.stdin.readline())
    if cfg["route"] in WSP_ROUTES:
        import wspasync  # noqa: F401  (import cost before READY, not inside the row)
    import uvloop  # noqa: F401

    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        return 1
    plan = Plan(**cfg["plan"])
    targets = [tuple(t) for t in cfg["targets"]]
    part = run_row(cfg["route"], cfg["loop"], plan, targets, cfg["sources"])
    print(json.dumps(part), flush=True)
    return 0


def _share(value: int, i: int, workers: int) -> int:
    """Worker *i*'s part of *value* split as evenly as whole numbers allow."""
    return value // workers + (1 if i < value % workers else 0)


def _share_opt(value: int | None, i: int, workers: int) -> int | None:
    return None if value is None else _share(value, i, workers)


def run_row_workers(route: str, loop_name: str, plan: Plan, targets: list[Any],
                    sources: list[str] | None, workers: int) -> list[dict[str, Any]]:
    """The same row in ``workers`` processes started together; their partials."""
    import attrs

    procs = []
    try:
        for i in range(workers):
            wplan = attrs.evolve(
                plan, concurrency=max(1, _share(plan.concurrency, i, workers)),
                total=_share_opt(plan.total, i, workers), warmup=_share(plan.warmup, i, workers),
                rate=None if plan.rate is None else plan.rate / workers,
            )
            srcs = sources[i::workers] if sources and len(sources) >= workers else sources
            cfg = {"route": route, "loop": loop_name, "plan": attrs.asdict(wplan),
                   "targets": targets, "sources": srcs}
            p = subprocess.Popen([sys.executable, "-m", "wspasync._bench.worker"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdin is not None
            p.stdin.write(json.dumps(cfg) + "\n")
            p.stdin.flush()
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "READY":
                raise RuntimeError(f"a worker of {route}/{loop_name} failed to start")
        for p in procs:
            p.stdin.write("GO\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
        parts = []
        for p in procs:
            line = p.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError(f"a worker of {route}/{loop_name} died (exit {p.wait()})")
            parts.append(json.loads(line))
        return parts
    finally:
        for p in procs:
            for s in (p.stdin, p.stdout):
                if s is not None:
                    s.close()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --- progress --------------------------------------------------------------------------

class _Progress:
    def __init__(self, mode: str, nrows: int) -> None:
        self.mode, self.nrows, self.i = mode, nrows, 0
        self.rich: Any = None
        if mode == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.rich = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
            self.rich.start()

    def row(self, label: str, total: int | None) -> Callable[[int, int], None] | None:
        self.i += 1
        if self.rich is None:
            return None
        task = self.rich.add_task(f"[{self.i}/{self.nrows}] {label}", total=total, rate="")
        t0 = time.monotonic()
        upd = self.rich.update

        def cb(done: int, started: int) -> None:
            dt = time.monotonic() - t0
            upd(task, completed=done, rate=f"{done / dt:,.0f}/s" if dt > 0 else "")

        self.task = task
        return cb

    def row_done(self, row: dict[str, Any]) -> None:
        lat = row["latency_us"] or {}
        line = (f"[{self.i}/{self.nrows}] {row['route']}/{row['loop']}: {row['connects_per_s']:,.0f} connects/s, "
                f"p99 {lat.get('p99', '-')}µs, errors {sum(row['errors'].values())}")
        if self.rich is not None:
            self.rich.remove_task(self.task)
            self.rich.console.print(line)
        elif self.mode == "plain":
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()


# --- the run -------------------------------------------------------------------------

def _is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def _sources(cidr: str, allow_remote: bool) -> list[str]:
    net = ipaddress.ip_network(cidr, strict=False)
    if not allow_remote and not net.network_address.is_loopback:
        raise ValueError(f"--source {cidr} is not loopback (use --allow-remote)")
    hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
    if not hosts or len(hosts) > 65536:
        raise ValueError(f"--source {cidr}: {len(hosts)} addresses (1..65536 allowed)")
    return [str(h) for h in hosts]


def _pick(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if "all" in items:
        return list(allowed)
    for x in items:
        if x not in allowed:
            raise ValueError(f"unknown {what} {x!r} (choose from {', '.join(allowed)}, all)")
    return items


def run_bench(args: argparse.Namespace) -> int:
    err = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    try:
        routes = _pick(args.route, WSP_ROUTES, "route")
        loops = _pick(args.loop, LOOPS, "loop")
        clauses = parse_fail_if(args.fail_if)
        targets = [parse_target(t) for t in args.targets]
        for _, host, _port in targets:
            if not args.allow_remote and not _is_loopback(host):
                raise ValueError(f"target {host} is not a loopback address; this tool only connects to "
                                 f"127.0.0.0/8 and ::1 unless --allow-remote is given")
        sources = _sources(args.source, args.allow_remote) if args.source else None
        if args.connects is not None and args.duration is not None:
            raise ValueError("give -n or -d, not both")
    except ValueError as e:
        err(f"wspasync bench: {e}")
        return EXIT_USAGE
    duration = args.duration if args.connects is None else None
    if args.connects is None and args.duration is None:
        duration = 2.0
    warmup = args.warmup if args.warmup is not None else 1000
    if args.close == "hold":
        warmup = args.warmup or 0
    expected = duration if duration else (args.connects / (args.rate or 5000.0))
    expected += args.hold if args.close == "hold" else 0.0
    max_time = args.max_time or max(30.0, 3.0 * expected + args.timeout)
    plan = Plan(concurrency=args.concurrency, total=args.connects, duration=duration, warmup=warmup,
                rate=args.rate, ramp=args.ramp, timeout=args.timeout, close=args.close,
                hold=args.hold if args.close == "hold" else 0.0, max_time=max_time)
    policy = args.policy or ("accept-hold" if args.close == "hold" else "accept-close")
    backlog = args.backlog or (8 if policy == "never" else 4096)
    held = (args.connects or 0) if args.close == "hold" else 0
    sink_procs = args.sink_procs or max(1, math.ceil((held + args.concurrency) / HELD_PER_SINK)
                                        if policy in ("accept-hold", "delayed") else 1)
    quiet = args.quiet
    findings = _doctor.preflight(concurrency=args.concurrency, workers=args.workers, close=args.close,
                                 total=args.connects, sources=len(sources) if sources else 1,
                                 targets=max(1, len(targets)), backlog=backlog, rate=args.rate,
                                 embedded=not targets)
    warnings = [f.text for f in findings if f.level == "warn"]
    for w in warnings:
        err(f"warning: {w}")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = None if args.no_json else (args.json or f"bench-{stamp}.json")
    plot_path = None if args.no_plot else (args.plot or f"bench-{stamp}.png")
    env = _doctor.environment()
    row_specs = [(r, lp) for lp in loops for r in ("baseline", *routes)]

    sink = None if targets else SinkGroup(policy, procs=sink_procs, backlog=backlog, delay=args.delay)
    rows: list[dict[str, Any]] = []
    stopped: dict[str, Any] | None = None
    mode = "none" if quiet else ("rich" if sys.stderr.isatty() else "plain")
    progress: _Progress | None = None
    try:
        if sink is not None:
            sink.start()
            targets = [(2, "127.0.0.1", sink.port)]
        where = (f"embedded sink 127.0.0.1:{sink.port} ({policy}, backlog {backlog}, "
                 f"{sink.procs} process{'es' if sink.procs > 1 else ''})" if sink else
                 ", ".join(f"{h}:{p}" for _, h, p in targets))
        model = (f"open model {args.rate:g}/s (ramp {args.ramp:g}s, cap {args.concurrency} in flight)"
                 if args.rate else f"closed model, {args.concurrency} in flight")
        size = f"{duration:g} s per row" if duration else f"{args.connects} connects per row"
        header = (f"wspasync bench — Python {env['python']} ({env['implementation']}), Linux {env['kernel']} "
                  f"{env['machine']}, {env['cpu_count']} CPUs, uvloop {env['loops']['uvloop']}\n"
                  f"target: {where}; {model}; {size}, warm-up {warmup}; close {args.close}"
                  + (f" (hold {args.hold:g}s)" if args.close == "hold" else "")
                  + (f"; {args.workers} workers" if args.workers > 1 else "")
                  + (f"; sources {args.source} ({len(sources)})" if sources else ""))
        if not quiet:
            print(header, flush=True)
        progress = _Progress(mode, len(row_specs))
        for route, loop_name in row_specs:
            label = f"{route}/{loop_name}"
            total = (plan.total + plan.warmup) if plan.total else None
            cb = progress.row(label, total if args.workers == 1 else None)
            s0 = sink.cpu_seconds() if sink else 0.0
            w0 = time.monotonic()
            if args.workers == 1:
                parts = [run_row(route, loop_name, plan, targets, sources, cb)]
            else:
                parts = run_row_workers(route, loop_name, plan, targets, sources, args.workers)
            if sink is not None:
                parts[0]["sink_cpu_percent"] = round(100.0 * (sink.cpu_seconds() - s0)
                                                     / max(time.monotonic() - w0, 1e-9), 1)
            row = merge_partials(parts)
            rows.append(row)
            progress.row_done(row)
            if row["stopped"] and row["stopped"][0] in FATAL_LIMITS:
                name, detail = row["stopped"]
                stopped = {"error": name, "limit": FATAL_LIMITS[name],
                           "explanation": _doctor.explain_limit(name, f"(first seen: {detail}; {label})")}
                break
            if row["stopped"]:
                warnings.append(f"{label}: {row['stopped'][1]}")
    except KeyboardInterrupt:
        err("interrupted")
        stopped = {"error": "INTERRUPTED", "limit": None, "explanation": "interrupted by the user"}
    finally:
        if progress is not None:
            progress.close()
        if sink is not None:
            sink.stop()

    add_ratios(rows)
    sat = [f"{r['route']}/{r['loop']}" for r in rows if any((c or 0) >= 95 for c in r["cpu_percent"])]
    if sat:
        warnings.append(f"a client process saturated its core in {len(sat)} row(s) ({', '.join(sat[:4])}"
                        f"{', ...' if len(sat) > 4 else ''}): those rows measure the client's own ceiling")
    sink_hot = [r for r in rows if (r.get("sink_cpu_percent") or 0) >= 90 * (sink.procs if sink else 1)]
    if sink_hot:
        warnings.append("the sink used ≥90% of its core(s) in some rows: add --sink-procs")
    if rows:
        if sys.stdout.isatty() and not quiet:
            from rich.console import Console

            render_table(rows, Console())
        else:
            print(render_table(rows))
    for r in rows:
        if r["peak_held"]:
            print(f"{r['route']}/{r['loop']}: peak {r['peak_held']:,} connections held; client RSS "
                  f"{r['rss_bytes_per_held'] or 0:,} bytes per held connection")
        for name, exs in r["error_examples"].items():
            if not quiet:
                print(f"  {r['route']}/{r['loop']} {name} ×{r['errors'][name]}: {exs[0]}")
    if not quiet:
        for w in warnings[len([f for f in findings if f.level == 'warn']):]:
            print(f"note: {w}")
    violations = check_fail_if(clauses, rows)
    doc = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": ["wspasync", "bench", *sys.argv[1:]] if sys.argv[0].endswith("wspasync")
        else [os.path.basename(sys.executable), *sys.argv],
        "config": {
            "routes": ["baseline", *routes], "loops": loops, "concurrency": args.concurrency,
            "connects": args.connects, "duration_s": duration, "warmup": warmup, "rate": args.rate,
            "ramp_s": args.ramp, "timeout_s": args.timeout, "max_time_s": max_time, "close": args.close,
            "hold_s": plan.hold, "source": args.source, "workers": args.workers,
            "targets": [f"{h}:{p}" for _, h, p in targets], "embedded_sink": sink is not None,
            "policy": policy if sink else None, "backlog": backlog if sink else None,
            "sink_processes": sink.procs if sink else None, "fail_if": args.fail_if,
        },
        "environment": env,
        "rows": rows,
        "warnings": warnings,
        "stopped": stopped,
        "fail_if": {"clauses": args.fail_if, "violations": violations},
    }
    if json_path:
        write_json(json_path, doc)
        if not quiet:
            print(f"wrote {os.path.abspath(json_path)} (JSON, schema {SCHEMA})")
    if plot_path and rows:
        try:
            write_plot(plot_path, rows, header.split("\n")[0] if not quiet or True else "")
            if not quiet:
                print(f"wrote {os.path.abspath(plot_path)} (latency plot)")
        except ImportError as e:
            err(f"warning: no plot ({e}); pip install 'wspasync[bench]'")
    if stopped:
        err(stopped["explanation"])
        return EXIT_LIMIT
    if violations:
        for v in violations:
            err(f"fail-if: {v}")
        return EXIT_FAIL_IF
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m wspasync._bench bench|doctor ...`` (the lead wires ``wspasync bench``)."""
    p = argparse.ArgumentParser(prog="wspasync")
    sub = p.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = p.parse_args(argv)
    return int(args.func(args))
