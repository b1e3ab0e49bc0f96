"""Pure parts: histogram merge, load schedule, fail-if parsing, target parsing."""

from __future__ import annotations

import random

import pytest

from wspasync._bench.load import due_count, scheduled_offset_ns
from wspasync._bench.report import (
    add_ratios, check_fail_if, decode_hist, hist_from_ns, merge_partials, parse_fail_if, summarize,
)
from wspasync._bench.routes import parse_target


def _partial(values, loop="uvloop", t0=0, t1=10**9):
    from wspasync._bench.report import partial_from_raw

    return partial_from_raw({
        "route": "asyncselect", "loop": loop, "connects": len(values), "attempts": len(values),
        "t_mark_ns": t0, "t_last_ns": t1, "lat_ns": values, "notif_ns": values[:10], "co_ns": [],
        "lag_ns": [1000], "errors": {"WSAECONNREFUSED": 1}, "examples": {"WSAECONNREFUSED": ["x"]},
        "late_starts": 0, "peak_inflight": 5, "peak_held": 0, "rss_start": 0, "rss_peak": 0, "fatal": None,
        "cpu_percent": 50.0,
    })


def test_worker_histograms_merge_exactly():
    rng = random.Random(5)
    a = [rng.randrange(1_000, 50_000_000) for _ in range(5000)]
    b = [rng.randrange(1_000, 90_000_000) for _ in range(7000)]
    merged = merge_partials([_partial(a, t0=0, t1=10**9), _partial(b, t0=2 * 10**8, t1=15 * 10**8)])
    whole = hist_from_ns(a + b)
    assert merged["latency_us"] == summarize(whole)
    assert decode_hist(merged["histograms"]["latency"]).get_total_count() == 12000
    assert merged["connects"] == 12000 and merged["elapsed_s"] == 1.5
    assert merged["errors"] == {"WSAECONNREFUSED": 2} and merged["workers"] == 2


def test_ratio_is_to_the_same_loop_baseline():
    rows = [{"route": "baseline", "loop": "asyncio", "connects_per_s": 100.0},
            {"route": "baseline", "loop": "uvloop", "connects_per_s": 200.0},
            {"route": "asyncselect", "loop": "uvloop", "connects_per_s": 300.0}]
    add_ratios(rows)
    assert rows[2]["ratio_to_baseline"] == 1.5 and rows[2]["ratio_to_asyncio_baseline"] == 3.0


@pytest.mark.parametrize("rate,ramp", [(1000.0, 0.0), (5000.0, 2.0)])
def test_schedule_is_consistent(rate, ramp):
    for i in range(0, 20000, 37):
        t = scheduled_offset_ns(i, rate, ramp)
        assert due_count(t + 1000, rate, ramp) >= i + 1
    assert scheduled_offset_ns(int(rate * 10), rate, 0.0) == 10 * 10**9


def test_fail_if_parsing_and_checking():
    clauses = parse_fail_if(["p99>5ms,errors>0.1%", "ratio<1.2"])
    assert clauses == [("p99", ">", 5.0, "ms"), ("errors", ">", 0.1, "%"), ("ratio", "<", 1.2, None)]
    row = {"route": "asyncselect", "loop": "uvloop", "ratio_to_baseline": 1.1, "connects_per_s": 1.0,
           "errors": {"WSAETIMEDOUT": 2}, "attempts": 1000, "latency_us": {"p99": 6000}}
    bad = check_fail_if(clauses, [row])
    assert len(bad) == 3
    for text in ("p99~1", "foo>1", "errors>1ms", "p99>1%"):
        with pytest.raises(ValueError):
            parse_fail_if([text])


def test_targets():
    assert parse_target("127.0.0.1:80")[1:] == ("127.0.0.1", 80)
    assert parse_target("[::1]:8080")[1:] == ("::1", 8080)
    assert parse_target("localhost:1")[1] == "127.0.0.1"
    for bad in ("127.0.0.1", "host:80", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(ValueError):
            parse_target(bad)
