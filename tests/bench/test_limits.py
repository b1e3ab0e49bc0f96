"""A run that hits a machine limit stops and names it (in a subprocess with a low RLIMIT_NOFILE)."""

from __future__ import annotations

import resource

import pytest


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))


@pytest.mark.parametrize("route", ["asyncselect", "blocking"])
def test_descriptor_limit_is_named(bench, route):
    proc, doc = bench("--route", route, "--loop", "asyncio", "-c", "200", "-n", "400", "--warmup", "0",
                      "--close", "hold", "--hold", "2", preexec_fn=_low_nofile)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "WSAEMFILE" in proc.stderr and "descriptor limit" in proc.stderr
    assert "descriptor limit" in proc.stderr.split("warning:")[-1] or "RLIMIT_NOFILE" in proc.stderr
    assert doc["stopped"]["error"] == "WSAEMFILE"
    assert len(doc["rows"]) == 1  # the run stopped at the first row that hit it
