"""Pre-flight checks: can this machine sustain the requested connect load?

Run as ``wspasync doctor`` and at the start of every bench run. It raises the soft
descriptor limit to the hard one (setrlimit(2): an unprivileged process may do that)
and compares the request with the limits that bite first on a loopback connect storm:

* RLIMIT_NOFILE: every socket in flight or held is a descriptor in *this* process;
  more needs ``--workers`` (each worker has its own limit).
* net.ipv4.ip_local_port_range: one local port per connection per (source address,
  target); held connections past the range need ``--source 127.0.0.0/24``.
* net.ipv4.tcp_tw_reuse: a client that closes first leaves TIME_WAIT for 60 s; without
  reuse (1, or 2 = loopback only, the default since Linux 4.x) the range drains at
  about range/60 connects/s (ip-sysctl.rst).
* net.core.somaxconn: caps every listen backlog (listen(2)).
"""

from __future__ import annotations

import math
import os
import platform
import sys
from typing import Any

__all__ = ["Finding", "raise_nofile", "machine_limits", "preflight", "run_doctor", "explain_limit"]


class Finding:
    __slots__ = ("level", "text")

    def __init__(self, level: str, text: str) -> None:
        self.level, self.text = level, text  # "ok" | "warn" | "info"

    def __repr__(self) -> str:
        return f"Finding({self.level!r}, {self.text!r})"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def raise_nofile() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one; returns (soft, hard) in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard


def machine_limits() -> dict[str, Any]:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    pr = (_read("/proc/sys/net/ipv4/ip_local_port_range") or "32768 60999").split()
    tw = _read("/proc/sys/net/ipv4/tcp_tw_reuse")
    smc = _read("/proc/sys/net/core/somaxconn")
    syn = _read("/proc/sys/net/ipv4/tcp_max_syn_backlog")
    fmax = _read("/proc/sys/fs/file-max")
    return {
        "nofile_soft": soft,
        "nofile_hard": hard,
        "port_range": [int(pr[0]), int(pr[1])],
        "ports": int(pr[1]) - int(pr[0]) + 1,
        "tcp_tw_reuse": int(tw) if tw is not None else None,
        "somaxconn": int(smc) if smc is not None else None,
        "tcp_max_syn_backlog": int(syn) if syn is not None else None,
        "file_max": int(fmax) if fmax is not None else None,
        "cpu_count": os.cpu_count(),
    }


def preflight(
    *,
    concurrency: int,
    workers: int = 1,
    close: str = "fin",
    total: int | None = None,
    sources: int = 1,
    targets: int = 1,
    backlog: int = 4096,
    rate: float | None = None,
    embedded: bool = True,
) -> list[Finding]:
    """Raise the descriptor limit, then say what the machine cannot sustain."""
    soft, hard = raise_nofile()
    lim = machine_limits()
    out: list[Finding] = []
    per_proc = math.ceil(concurrency / max(1, workers))
    held = total if close == "hold" and total is not None else 0
    per_proc_fds = per_proc + math.ceil(held / max(1, workers)) + 64
    if per_proc_fds > soft:
        need = math.ceil((concurrency + held) / max(1, soft - 64))
        out.append(Finding("warn", (
            f"descriptor limit: each process may hold {soft} descriptors (RLIMIT_NOFILE, hard "
            f"{hard}) but this run needs about {per_proc_fds} per process; expect WSAEMFILE. "
            f"Use --workers {need} or more, or raise the hard limit (ulimit -Hn).")))
    else:
        out.append(Finding("ok", f"descriptor limit {soft} per process (hard {hard}) covers "
                                 f"about {per_proc_fds} needed per process"))
    ports = lim["ports"]
    pairs = max(1, sources) * max(1, targets)
    if held and held > ports * pairs:
        out.append(Finding("warn", (
            f"local ports: {held} held connections but only {ports} ephemeral ports "
            f"({lim['port_range'][0]}-{lim['port_range'][1]}) per source address and target "
            f"({sources} source(s) × {targets} target(s)); expect WSAEADDRNOTAVAIL. "
            f"Spread with --source 127.0.0.0/24.")))
    elif concurrency > ports * pairs:
        out.append(Finding("warn", f"local ports: {concurrency} in flight exceeds the {ports} "
                                   f"ephemeral ports per source and target; use --source"))
    else:
        out.append(Finding("ok", f"local ports: {ports} per source address and target"))
    tw = lim["tcp_tw_reuse"]
    if close == "fin" and tw == 0:
        out.append(Finding("warn", (
            f"TIME_WAIT: net.ipv4.tcp_tw_reuse=0, so every connection the client closes first "
            f"holds its port for 60 s: about {ports // 60} connects/s per source address can be "
            f"sustained. Use --close rst, --source, or sysctl net.ipv4.tcp_tw_reuse=2.")))
    elif close == "fin":
        out.append(Finding("ok", f"TIME_WAIT: tcp_tw_reuse={tw} lets loopback reuse ports in TIME_WAIT"))
    smc = lim["somaxconn"]
    if embedded and smc is not None and backlog > smc:
        out.append(Finding("warn", f"listen backlog: --backlog {backlog} is capped to "
                                   f"net.core.somaxconn={smc}"))
    elif smc is not None:
        out.append(Finding("ok", f"listen backlog: somaxconn={smc}"))
    cpus = os.cpu_count() or 1
    if embedded and workers + 1 > cpus:
        out.append(Finding("info", f"{workers} worker(s) plus the sink share {cpus} CPU(s): "
                                   f"the client and the sink compete for cores"))
    return out


def explain_limit(name: str, detail: str = "") -> str:
    """One paragraph saying which machine limit a fatal error means and what to do."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lim = machine_limits()
    if name == "WSAEMFILE":
        return (f"stopped: the descriptor limit was hit (WSAEMFILE): RLIMIT_NOFILE is {soft} "
                f"(hard {hard}) per process and every socket in flight or held uses one. "
                f"Lower -c or the held count, or spread with --workers N. {detail}").strip()
    if name == "WSAEADDRNOTAVAIL":
        return (f"stopped: no local port was left (WSAEADDRNOTAVAIL): the ephemeral range "
                f"{lim['port_range'][0]}-{lim['port_range'][1]} gives {lim['ports']} ports per source "
                f"address and target, and ports in TIME_WAIT count (tcp_tw_reuse="
                f"{lim['tcp_tw_reuse']}). Spread with --source 127.0.0.0/24, or --close rst. "
                f"{detail}").strip()
    if name == "WSAENOBUFS":
        return (f"stopped: the kernel refused socket memory or descriptors (WSAENOBUFS); "
                f"fs.file-max={lim['file_max']}. {detail}").strip()
    return f"stopped: {name} {detail}".strip()


def environment() -> dict[str, Any]:
    """The environment block of the JSON report."""
    loops: dict[str, str | None] = {"asyncio": platform.python_version()}
    try:
        import uvloop

        loops["uvloop"] = uvloop.__version__
    except ImportError:
        loops["uvloop"] = None
    try:
        from importlib.metadata import version

        wv = version("wspasync")
    except Exception:  # not installed (run from a checkout)
        try:
            import wspasync

            wv = getattr(wspasync, "__version__", "unknown")
        except Exception:
            wv = "unavailable"
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "loops": loops,
        "wspasync_version": wv,
        "limits": machine_limits(),
    }


def run_doctor(args: Any) -> int:
    env = environment()
    print(f"python {env['python']} on {env['platform']}, {env['cpu_count']} CPU(s)")
    print(f"loops: asyncio (built in), uvloop {env['loops']['uvloop'] or 'NOT INSTALLED'}")
    print(f"wspasync {env['wspasync_version']}")
    findings = preflight(
        concurrency=args.concurrency,
        workers=args.workers,
        close=args.close,
        total=args.connects,
        sources=args.sources,
        backlog=args.backlog,
    )
    worst = 0
    for f in findings:
        mark = {"ok": "ok  ", "warn": "WARN", "info": "info"}[f.level]
        print(f"[{mark}] {f.text}")
        if f.level == "warn":
            worst = 1
    return worst


def add_doctor_arguments(p: Any) -> None:
    p.add_argument("-c", "--concurrency", type=int, default=1000, help="connects in flight (default 1000)")
    p.add_argument("-n", "--connects", type=int, default=None, help="total connects (held ones with --close hold)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--close", choices=("rst", "fin", "hold"), default="rst")
    p.add_argument("--sources", type=int, default=1, help="number of source addresses (--source spread)")
    p.add_argument("--backlog", type=int, default=4096)
