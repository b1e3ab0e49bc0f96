"""The public surface is typed and documented.

* ``mypy`` (installed with the ``test`` extra) is clean on the package; skipped when
  mypy is not installed.
* Every public function and class in ``wspasync.__all__`` has a docstring, and every
  public WSP method states what it returns and which error codes it sets (STYLE.md).
"""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
import re
import subprocess
import sys

import pytest

import wspasync
from wspasync import Provider, SyncProvider

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_mypy_is_clean_on_the_package():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "-p", "wspasync"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert done.returncode == 0 and not errors, "\n".join(errors or [done.stdout, done.stderr])


def test_py_typed_ships():
    assert (pathlib.Path(wspasync.__file__).parent / "py.typed").exists()


def _public_objects():
    for name in wspasync.__all__:
        obj = getattr(wspasync, name)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            yield name, obj


@pytest.mark.parametrize(("name", "obj"), list(_public_objects()), ids=lambda x: x if isinstance(x, str) else "")
def test_public_name_has_a_docstring(name, obj):
    assert inspect.getdoc(obj), f"{name} has no docstring"


_CODE = re.compile(r"\bWSA[A-Z_]+\b|\bSOCKET_ERROR\b|\bINVALID_SOCKET\b|\b0\b|count|number")


@pytest.mark.parametrize("cls", [Provider, SyncProvider])
def test_every_wsp_method_states_returns_and_error_codes(cls):
    missing = []
    for name, fn in vars(cls).items():
        if not name.startswith("WSP"):
            continue
        doc = inspect.getdoc(fn) or ""
        if not ("SOCKET_ERROR" in doc or "INVALID_SOCKET" in doc) or not re.search(r"\bWSA[A-Z_]+\b", doc):
            missing.append(name)
    assert not missing, f"{cls.__name__}: docstrings without return value or error codes: {missing}"
