"""The bench CLI end to end: small runs on both loops, the JSON schema, the plot, fail-if."""

from __future__ import annotations

import json

import pytest

from wspasync._bench.report import SCHEMA, validate_report

from .conftest import run_cli

SMALL = ["-c", "20", "-n", "200", "--warmup", "20"]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_every_route_runs_with_the_baseline(bench, loop):
    proc, doc = bench("--route", "all", "--loop", loop, *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert doc is not None and validate_report(doc) == []
    got = [(r["route"], r["loop"]) for r in doc["rows"]]
    assert got == [(r, loop) for r in ("baseline", "select", "asyncselect", "eventselect", "blocking")]
    for r in doc["rows"]:
        assert r["connects"] == 200 and r["errors"] == {}
        assert r["latency_us"]["count"] == 200
        assert r["ratio_to_baseline"] is not None
        if r["route"] != "baseline":
            assert r["notification_latency_us"] is not None  # kernel completion -> delivery
    assert doc["rows"][0]["ratio_to_baseline"] == 1.0


def test_json_schema_fields(bench):
    proc, doc = bench("--route", "asyncselect", "--loop", "all", *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert doc["schema"] == SCHEMA
    env = doc["environment"]
    assert env["cpu_count"] >= 1 and env["limits"]["nofile_soft"] > 0 and env["python"]
    assert set(env["loops"]) == {"asyncio", "uvloop"}
    assert doc["config"]["concurrency"] == 20 and doc["config"]["embedded_sink"] is True
    row = doc["rows"][1]
    for key in ("route", "loop", "connects", "elapsed_s", "connects_per_s", "ratio_to_baseline",
                "latency_us", "errors", "histograms"):
        assert key in row
    assert set(row["latency_us"]) >= {"p50", "p90", "p99", "p999", "max"}
    assert row["latency_us"]["p50"] <= row["latency_us"]["p99"] <= row["latency_us"]["max"]
    assert isinstance(row["histograms"]["latency"], str)
    assert validate_report({**doc, "schema": "other"}) != []


def test_default_outputs_table_json_and_plot(tmp_path):
    proc = run_cli(["bench", "--route", "eventselect", "--loop", "uvloop", *SMALL], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "connects/s" in proc.stdout and "eventselect" in proc.stdout
    jsons, pngs = list(tmp_path.glob("bench-*.json")), list(tmp_path.glob("bench-*.png"))
    assert len(jsons) == 1 and len(pngs) == 1
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert validate_report(json.loads(jsons[0].read_text())) == []


def test_open_model_records_latency_from_the_intended_start(bench):
    proc, doc = bench("--route", "asyncselect", "--loop", "asyncio", "--rate", "2000", "--ramp", "0.1",
                      "-n", "300", "--warmup", "0")
    assert proc.returncode == 0, proc.stderr
    for r in doc["rows"]:
        assert r["connects"] == 300
        assert r["intended_latency_us"]["count"] == 300
        assert isinstance(r["late_starts"], int)


def test_workers_merge_their_histograms(bench):
    proc, doc = bench("--route", "asyncselect", "--loop", "uvloop", "--workers", "2", *SMALL)
    assert proc.returncode == 0, proc.stderr
    for r in doc["rows"]:
        assert r["workers"] == 2
        assert r["connects"] == 200 and r["latency_us"]["count"] == 200
        assert len(r["cpu_percent"]) == 2


def test_fail_if_sets_the_exit_code(bench):
    proc, doc = bench("--route", "asyncselect", "--loop", "asyncio", *SMALL, "--fail-if", "p50>0us")
    assert proc.returncode == 1
    assert doc["fail_if"]["violations"] and "p50" in proc.stderr
    proc, _ = bench("--route", "asyncselect", "--loop", "asyncio", *SMALL, "--fail-if", "errors>0,p50>60s")
    assert proc.returncode == 0, proc.stderr


def test_close_fin_and_hold(bench):
    proc, doc = bench("--route", "asyncselect", "--loop", "asyncio", "-c", "20", "-n", "100",
                      "--close", "hold", "--hold", "0.3")
    assert proc.returncode == 0, proc.stderr
    assert all(r["peak_held"] > 0 for r in doc["rows"])
    assert doc["config"]["policy"] == "accept-hold"
    proc, doc = bench("--route", "select", "--loop", "uvloop", *SMALL, "--close", "fin")
    assert proc.returncode == 0, proc.stderr


def test_source_spreading(bench):
    proc, doc = bench("--route", "asyncselect", "--loop", "asyncio", *SMALL, "--source", "127.0.0.0/29")
    assert proc.returncode == 0, proc.stderr
    assert all(r["errors"] == {} for r in doc["rows"])


@pytest.mark.parametrize("target", ["10.1.2.3:80", "192.168.0.1:80", "8.8.8.8:53"])
def test_remote_targets_are_refused_before_any_connect(bench, target):
    proc, doc = bench(target, "--route", "asyncselect")
    assert proc.returncode == 2 and "loopback" in proc.stderr and doc is None


def test_usage_errors(bench):
    assert bench("--route", "nope")[0].returncode == 2
    assert bench("--fail-if", "p99~5ms")[0].returncode == 2
    assert bench("-n", "10", "-d", "1")[0].returncode == 2


def test_doctor(tmp_path):
    proc = run_cli(["doctor", "-c", "1000"], cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "descriptor limit" in proc.stdout and "local ports" in proc.stdout
    proc = run_cli(["doctor", "-c", "1000", "-n", "200000", "--close", "hold"], cwd=tmp_path, timeout=60)
    assert proc.returncode == 1 and "WARN" in proc.stdout and "--workers" in proc.stdout
