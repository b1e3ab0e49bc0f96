"""docs/testing.md's examples are runnable: each ```python block is written to a fresh
project as the guide says (client.py, then one test file per block) and run on both
loops with the plugin loaded from its entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_the_guide_examples_pass(pytester: pytest.Pytester) -> None:
    python = blocks("python")
    ini = blocks("ini")[0]
    assert python[0].lstrip().startswith("from wspasync import *") and "def connect_with_retry" in python[0]
    files = {"client": python[0]}
    for index, code in enumerate(python[1:]):
        if "def test_" in code:
            files[f"test_guide_{index}"] = code
    pytester.makeini(ini)
    pytester.makepyfile(**files)
    quiet = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
    result = pytester.runpytest_subprocess(*quiet, "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    tests = sum(code.count("\ndef test_") + code.count("\nasync def test_") + code.startswith("def test_") for code in files.values())
    # every example ran, on asyncio and on uvloop (SyncProvider is in this build: no skips)
    assert outcomes.get("passed", 0) == 2 * tests and not outcomes.get("skipped"), result.stdout.str()


def test_the_first_example_is_under_15_lines() -> None:
    test = blocks("python")[1]
    assert "def test_retries_after_refusal" in test
    assert len([line for line in test.splitlines() if line.strip()]) < 15
