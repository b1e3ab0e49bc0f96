"""Event loops by name: the one place that turns "asyncio"/"uvloop" into a factory.

wspasync takes loop factories (``asyncio.Runner(loop_factory=...)``, pytest-asyncio's
loop-factories hook) and never installs a loop policy: uvloop deprecated its policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["LOOP_NAMES", "loop_factory"]

LOOP_NAMES = ("asyncio", "uvloop")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """asyncio's default loop or uvloop's, by name; ValueError for any other name."""
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    raise ValueError(f"unknown loop {name!r} (expected one of {', '.join(LOOP_NAMES)})")
