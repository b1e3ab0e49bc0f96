"""The README's code runs as printed: the embed journey, the blocking twin, and the
user-style notification test (run by pytest with the plugin, on both loops)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def run(args: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_readme_has_the_three_journeys():
    assert len(BLOCKS) == 3


def test_embed_journey_prints_what_it_says(tmp_path):
    (tmp_path / "embed.py").write_text(BLOCKS[0])
    done = run(["embed.py"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True 0", "b'HELLO'"]


def test_blocking_twin_snippet_reports_the_refusal(tmp_path):
    (tmp_path / "twin.py").write_text(BLOCKS[1])
    done = run(["twin.py"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "-1 WSAECONNREFUSED"


def test_notification_test_passes_on_both_loops(tmp_path):
    (tmp_path / "test_user.py").write_text(BLOCKS[2])
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "wspasync_loops = asyncio uvloop\n"
    )
    done = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
