"""Histograms, the merge of partial results, the table, the JSON document, the plot, --fail-if.

Latencies are HDR histograms (HdrHistogram's Python port, ``hdrh``) in microseconds,
1 µs .. 1 h at 3 significant digits: fixed memory, percentiles with bounded relative
error, and a compact serialisation whose decode-and-add is an exact merge -- which is
what lets ``--workers`` combine processes and lets later tooling merge saved runs.
"""

from __future__ import annotations

import json
import operator
import re
from collections import Counter
from typing import Any, Iterable

from hdrh.histogram import HdrHistogram

__all__ = [
    "SCHEMA",
    "new_hist",
    "hist_from_ns",
    "decode_hist",
    "summarize",
    "partial_from_raw",
    "merge_partials",
    "render_table",
    "write_json",
    "validate_report",
    "write_plot",
    "parse_fail_if",
    "check_fail_if",
]

SCHEMA = "wspasync-bench/1"
HIGHEST_US = 3_600_000_000
PCTS = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
HIST_KEYS = ("latency", "notification", "intended", "loop_lag")


def new_hist() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, 3)


def hist_from_ns(values: Iterable[int]) -> HdrHistogram:
    """Build a µs histogram from ns samples: one record call per distinct value."""
    h = new_hist()
    for v, n in Counter(v // 1000 for v in values).items():
        h.record_value(min(max(v, 0), HIGHEST_US), n)
    return h


def encode_hist(h: HdrHistogram) -> str:
    return h.encode().decode("ascii")


def decode_hist(text: str) -> HdrHistogram:
    h = new_hist()
    h.decode_and_add(text.encode("ascii"))
    return h


def summarize(h: HdrHistogram | None) -> dict[str, Any] | None:
    """p50/p90/p99/p999/max/mean/count of a µs histogram; None when it is empty."""
    if h is None or h.get_total_count() == 0:
        return None
    out: dict[str, Any] = {k: int(h.get_value_at_percentile(p)) for k, p in PCTS}
    out["max"] = int(h.get_max_value())
    out["mean"] = round(float(h.get_mean_value()), 1)
    out["count"] = int(h.get_total_count())
    return out


def partial_from_raw(raw: dict[str, Any]) -> dict[str, Any]:
    """One process's row (load.Driver.result plus runner fields) -> serialisable partial."""
    p = {k: v for k, v in raw.items() if not k.endswith("_ns") or k in ("t_mark_ns", "t_last_ns")}
    p["hist"] = {
        "latency": encode_hist(hist_from_ns(raw["lat_ns"])),
        "notification": encode_hist(hist_from_ns(raw["notif_ns"])) if raw["notif_ns"] else None,
        "intended": encode_hist(hist_from_ns(raw["co_ns"])) if raw["co_ns"] else None,
        "loop_lag": encode_hist(hist_from_ns(raw["lag_ns"])),
    }
    return p


def merge_partials(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the partials of one row (one per worker) exactly; returns the JSON row."""
    first = parts[0]
    hists: dict[str, HdrHistogram | None] = {}
    for key in HIST_KEYS:
        encoded = [p["hist"][key] for p in parts if p["hist"].get(key)]
        if not encoded:
            hists[key] = None
            continue
        h = new_hist()
        for e in encoded:
            h.decode_and_add(e.encode("ascii"))
        hists[key] = h
    connects = sum(p["connects"] for p in parts)
    elapsed_ns = max(p["t_last_ns"] for p in parts) - min(p["t_mark_ns"] for p in parts)
    elapsed = max(elapsed_ns / 1e9, 1e-9)
    errors: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for p in parts:
        errors.update(p["errors"])
        for name, exs in p["examples"].items():
            lst = examples.setdefault(name, [])
            for ex in exs:
                if len(lst) < 3 and ex not in lst:
                    lst.append(ex)
    held = sum(p["peak_held"] for p in parts)
    rss_delta = sum(max(0, p["rss_peak"] - p["rss_start"]) for p in parts)
    fatal = next((p["fatal"] for p in parts if p.get("fatal")), None)
    row = {
        "route": first["route"],
        "loop": first["loop"],
        "workers": len(parts),
        "connects": connects,
        "attempts": sum(p["attempts"] for p in parts),
        "elapsed_s": round(elapsed, 6),
        "connects_per_s": round(connects / elapsed, 1),
        "ratio_to_baseline": None,
        "ratio_to_asyncio_baseline": None,
        "latency_us": summarize(hists["latency"]),
        "notification_latency_us": summarize(hists["notification"]),
        "intended_latency_us": summarize(hists["intended"]),
        "loop_lag_us": summarize(hists["loop_lag"]),
        "errors": dict(errors),
        "error_examples": examples,
        "late_starts": sum(p["late_starts"] for p in parts),
        "cpu_percent": [p.get("cpu_percent") for p in parts],
        "sink_cpu_percent": first.get("sink_cpu_percent"),
        "peak_inflight": sum(p["peak_inflight"] for p in parts),
        "peak_held": held,
        "rss_bytes_per_held": round(rss_delta / held) if held else None,
        "stopped": fatal,
        "histograms": {k: (encode_hist(h) if h is not None else None) for k, h in hists.items()},
    }
    return row


def add_ratios(rows: list[dict[str, Any]]) -> None:
    base = {r["loop"]: r["connects_per_s"] for r in rows if r["route"] == "baseline"}
    for r in rows:
        b = base.get(r["loop"])
        if b:
            r["ratio_to_baseline"] = round(r["connects_per_s"] / b, 3)
        if base.get("asyncio"):
            r["ratio_to_asyncio_baseline"] = round(r["connects_per_s"] / base["asyncio"], 3)


# --- the table -------------------------------------------------------------------------

def _us(v: int | None) -> str:
    if v is None:
        return "-"
    if v >= 10_000_000:
        return f"{v / 1e6:.0f}s"
    if v >= 10_000:
        return f"{v / 1e3:.0f}ms"
    if v >= 1000:
        return f"{v / 1e3:.1f}ms"
    return f"{v}µs"


def table_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["route", "loop", "connects/s", "× base", "p50", "p90", "p99", "p99.9", "max",
            "notif p50", "notif p99", "lag p99", "errors", "cpu"]
    out = []
    for r in rows:
        lat = r["latency_us"] or {}
        nl = r["notification_latency_us"] or {}
        lag = r["loop_lag_us"] or {}
        nerr = sum(r["errors"].values())
        errs = ", ".join(f"{k}:{v}" for k, v in sorted(r["errors"].items(), key=lambda kv: -kv[1])[:2])
        cpu = [c for c in r["cpu_percent"] if c is not None]
        out.append([
            r["route"] + (f" ×{r['workers']}w" if r["workers"] > 1 else ""),
            r["loop"],
            f"{r['connects_per_s']:,.0f}",
            f"{r['ratio_to_baseline']:.2f}" if r["ratio_to_baseline"] is not None else "-",
            _us(lat.get("p50")), _us(lat.get("p90")), _us(lat.get("p99")), _us(lat.get("p999")),
            _us(lat.get("max")),
            _us(nl.get("p50")), _us(nl.get("p99")),
            _us(lag.get("p99")),
            errs if nerr else "0",
            f"{max(cpu):.0f}%" if cpu else "-",
        ])
    return head, out


def render_table(rows: list[dict[str, Any]], console: Any = None) -> str:
    """Plain-text table (always works); printed with rich when a console is given."""
    head, body = table_rows(rows)
    if console is not None:
        from rich.table import Table

        t = Table(title="wspasync bench: connect latency (call → completion seen by the route)",
                  title_justify="left")
        for i, h in enumerate(head):
            t.add_column(h, justify="left" if i < 2 or h == "errors" else "right")
        for line in body:
            t.add_row(*line)
        console.print(t)
        return ""
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < 2 or i == 12 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
    )
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body])


# --- JSON ------------------------------------------------------------------------------

# Row key -> the JSON types it may hold (a float field may hold a JSON integer).
_ROW_REQUIRED: dict[str, tuple[type, ...]] = {
    "route": (str,), "loop": (str,), "connects": (int,), "elapsed_s": (float, int),
    "connects_per_s": (float, int), "latency_us": (dict, type(None)), "errors": (dict,),
    "histograms": (dict,),
}
_LAT_KEYS = ("p50", "p90", "p99", "p999", "max")


def validate_report(doc: dict[str, Any]) -> list[str]:
    """Problems with a report document against schema wspasync-bench/1 (empty: valid)."""
    problems = []
    if doc.get("schema") != SCHEMA:
        problems.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    for key in ("config", "environment", "rows"):
        if key not in doc:
            problems.append(f"missing {key}")
    env = doc.get("environment", {})
    for key in ("python", "kernel", "cpu_count", "limits", "wspasync_version", "loops"):
        if key not in env:
            problems.append(f"environment.{key} missing")
    for i, r in enumerate(doc.get("rows", [])):
        for key, typ in _ROW_REQUIRED.items():
            if key not in r:
                problems.append(f"rows[{i}].{key} missing")
            elif not isinstance(r[key], typ):
                problems.append(f"rows[{i}].{key} has type {type(r[key]).__name__}")
        if "ratio_to_baseline" not in r:
            problems.append(f"rows[{i}].ratio_to_baseline missing")
        lat = r.get("latency_us")
        if isinstance(lat, dict):
            for k in _LAT_KEYS:
                if not isinstance(lat.get(k), int):
                    problems.append(f"rows[{i}].latency_us.{k} missing")
        h = r.get("histograms", {})
        if isinstance(h, dict) and not isinstance(h.get("latency"), str):
            problems.append(f"rows[{i}].histograms.latency missing")
    return problems


def write_json(path: str, doc: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")


# --- the plot --------------------------------------------------------------------------

def _percentile_curve(encoded: str | None) -> tuple[list[float], list[float]]:
    if not encoded:
        return [], []
    h = decode_hist(encoded)
    xs, ys = [], []
    for item in h.get_percentile_iterator(5):
        p = item.percentile_level_iterated_to
        if p >= 100.0:
            break
        xs.append(1.0 / (1.0 - p / 100.0))
        ys.append(max(item.value_iterated_to, 1))
    xs.append(1e6 if not xs else max(xs[-1] * 2, 1e2))
    ys.append(max(h.get_max_value(), 1))
    return xs, ys


def write_plot(path: str, rows: list[dict[str, Any]], title: str = "") -> None:
    """PNG: connects/s per row, and the HDR percentile distributions of every row."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    labels = [f"{r['route']}\n{r['loop']}" for r in rows]
    colors = ["#888888" if r["route"] == "baseline" else "#1f77b4" if r["loop"] == "uvloop" else "#ff7f0e"
              for r in rows]
    ax = axes[0]
    bars = ax.bar(range(len(rows)), [r["connects_per_s"] for r in rows], color=colors)
    for b, r in zip(bars, rows):
        if r["ratio_to_baseline"] is not None:
            ax.annotate(f"{r['ratio_to_baseline']:.2f}×", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=45, ha="right")
    ax.set_ylabel("connects/s")
    ax.set_title("throughput (× same-loop baseline)")
    ticks = [1, 2, 10, 100, 1000, 10000, 100000]
    tick_labels = ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
    for ax, key, name in ((axes[1], "latency", "connect latency"),
                          (axes[2], "notification", "notification latency (kernel → delivery)")):
        any_line = False
        for r in rows:
            xs, ys = _percentile_curve(r["histograms"].get(key))
            if xs:
                style = "--" if r["route"] == "baseline" else "-"
                ax.plot(xs, ys, style, label=f"{r['route']}/{r['loop']}", linewidth=1.2)
                any_line = True
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ticks, tick_labels)
        ax.set_xlim(1, 1e5)
        ax.set_xlabel("percentile")
        ax.set_ylabel("µs")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
        if any_line:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- --fail-if -------------------------------------------------------------------------

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_EXPR = re.compile(r"^\s*([a-z_0-9.]+)\s*(>=|<=|>|<)\s*([0-9.]+)\s*(us|µs|ms|s|%|x|/s)?\s*$")
_UNIT_US = {None: 1.0, "us": 1.0, "µs": 1.0, "ms": 1e3, "s": 1e6}
_LAT_METRICS = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p999", "p99.9": "p999", "max": "max"}


def parse_fail_if(texts: list[str]) -> list[tuple[str, str, float, str | None]]:
    """``p99>5ms``, ``errors>0.1%``, ``errors>10``, ``ratio<1.2``, ``cps<20000``,
    ``notif_p99>1ms``, ``lag_p99>10ms`` (comma-separated or repeated) -> clauses.
    Raises ValueError naming the clause it cannot read."""
    out = []
    for text in texts:
        for part in text.split(","):
            if not part.strip():
                continue
            m = _EXPR.match(part)
            if not m:
                raise ValueError(f"cannot read --fail-if clause {part.strip()!r}")
            metric, op, num, unit = m.groups()
            base = metric.split("_", 1)[-1] if metric.startswith(("notif_", "lag_")) else metric
            if base in _LAT_METRICS:
                if unit not in _UNIT_US:
                    raise ValueError(f"{part.strip()!r}: latency takes us, ms or s")
            elif metric == "errors":
                if unit not in (None, "%"):
                    raise ValueError(f"{part.strip()!r}: errors takes a count or a %")
            elif metric not in ("ratio", "cps"):
                raise ValueError(f"unknown --fail-if metric {metric!r}")
            out.append((metric, op, float(num), unit))
    return out


def check_fail_if(clauses: list[tuple[str, str, float, str | None]], rows: list[dict[str, Any]]) -> list[str]:
    """The violated clauses, one line per row and clause."""
    bad = []
    for r in rows:
        who = f"{r['route']}/{r['loop']}"
        for metric, op, num, unit in clauses:
            if metric == "ratio":
                if r["route"] == "baseline" or r["ratio_to_baseline"] is None:
                    continue
                value, shown, limit = r["ratio_to_baseline"], f"{r['ratio_to_baseline']:.2f}", num
            elif metric == "cps":
                value, shown, limit = r["connects_per_s"], f"{r['connects_per_s']:.0f}", num
            elif metric == "errors":
                n = sum(r["errors"].values())
                if unit == "%":
                    value = 100.0 * n / max(1, r["attempts"])
                    shown = f"{value:.3f}%"
                else:
                    value, shown = n, str(n)
                limit = num
            else:
                src = "latency_us"
                m = metric
                if metric.startswith("notif_"):
                    src, m = "notification_latency_us", metric[6:]
                elif metric.startswith("lag_"):
                    src, m = "loop_lag_us", metric[4:]
                summ = r.get(src)
                if not summ:
                    continue
                value = summ[_LAT_METRICS[m]]
                limit = num * _UNIT_US[unit]
                shown = f"{value}µs"
            if _OPS[op](value, limit):
                bad.append(f"{who}: {metric}={shown} {op} {num:g}{unit or ''}")
    return bad
