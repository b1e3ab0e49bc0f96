"""``wspasync bench`` and ``wspasync doctor``: the connect-storm benchmark.

The CLI wires this package in with :func:`add_parsers`; nothing here is imported by the
provider, and importing it is cheap (the heavy modules load when a command runs).
"""

from __future__ import annotations

from typing import Any

__all__ = ["add_parsers"]


def add_parsers(subparsers: Any) -> None:
    """Register the ``bench`` and ``doctor`` subcommands (each sets ``func=callable(args) -> int``)."""
    from .runner import add_parsers as _add

    _add(subparsers)
