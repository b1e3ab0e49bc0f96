"""Helpers for the bench tests: run the CLI in a subprocess, bounded in time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], *, cwd: Path, timeout: float = 120, preexec_fn: Any = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "wspasync._bench", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn,
    )


@pytest.fixture
def bench(tmp_path: Path):
    """Run ``bench ARGS`` with a JSON report; returns (completed process, report or None)."""

    def _run(*args: str, timeout: float = 120, preexec_fn: Any = None):
        out = tmp_path / "report.json"
        proc = run_cli(["bench", *args, "--json", str(out), "--no-plot", "--quiet"],
                       cwd=tmp_path, timeout=timeout, preexec_fn=preexec_fn)
        doc = json.loads(out.read_text()) if out.exists() else None
        return proc, doc

    return _run
