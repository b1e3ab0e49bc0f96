"""Load models and the bookkeeping every route shares.

Theory of operation
-------------------
A *driver* (one per route, in routes.py) knows how to start one connect and how to see
completions. Everything else -- how many connects to start and when, warm-up, time
bounds, per-connect timeouts, held connections, event-loop lag, and what is recorded --
lives in :class:`Driver` here, so that the raw-asyncio baseline and the wspasync routes
pay exactly the same bookkeeping per connect: two clock reads, one dict insert and pop,
one or two list appends. Histograms are built after the row (a ``Counter`` of
microsecond values fed to HDR with counts), never in the hot path.

Closed model (``-c``): keep ``concurrency`` connects in flight; each completion batch
tops up. Open model (``--rate``): a scheduler starts connect *i* at its intended time
``t_i`` (a linear ramp to the rate over ``--ramp`` seconds, then constant). If the
scheduler runs late, or the in-flight cap holds it back, the connect still carries its
intended time: latency is recorded both from the actual call and from ``t_i`` (the
coordinated-omission-corrected figure, as wrk2 and HdrHistogram describe it), and a
start more than 1 ms after ``t_i`` counts as late.

Warm-up: the first ``warmup`` completions are excluded; the measurement window opens at
the moment the last warm-up completion is seen and closes at the last completion.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import tracemalloc
from collections import Counter, deque
from typing import Any

import attrs

__all__ = ["Plan", "Driver", "FATAL_LIMITS", "scheduled_offset_ns", "due_count"]

mono = time.monotonic_ns

#: errors that mean "this machine's limit", not "this connect failed": the run stops.
FATAL_LIMITS = {
    "WSAEMFILE": "descriptor limit (RLIMIT_NOFILE)",
    "WSAENOBUFS": "socket buffer memory / descriptor table",
    "WSAEADDRNOTAVAIL": "local ports (ip_local_port_range per source address and target)",
}

LATE_NS = 1_000_000
TICK_S = 0.005  # the monitor's period: event-loop lag resolution
SWEEP_NS = 100_000_000  # timeout / deadline / progress sweeps


@attrs.frozen
class Plan:
    """What one row does. Counts are per process (the runner divides for workers)."""

    concurrency: int = 1000
    total: int | None = 20000  # measured connects (warm-up excluded); None: by duration
    duration: float | None = None
    warmup: int = 2000
    rate: float | None = None  # open model when set
    ramp: float = 0.0
    timeout: float = 10.0  # per connect
    close: str = "fin"  # fin | rst | hold
    hold: float = 0.0
    max_time: float = 120.0  # hard cap for the row

    @property
    def open_model(self) -> bool:
        return self.rate is not None


def scheduled_offset_ns(i: int, rate: float, ramp: float) -> int:
    """Intended start of connect ``i`` (0-based), in ns after the schedule began."""
    if ramp > 0:
        ramp_count = rate * ramp / 2.0
        if i < ramp_count:
            return int(math.sqrt(2.0 * i * ramp / rate) * 1e9)
        return int((ramp + (i - ramp_count) / rate) * 1e9)
    return int(i / rate * 1e9)


def due_count(elapsed_ns: int, rate: float, ramp: float) -> int:
    """How many connects should have started ``elapsed_ns`` after the schedule began."""
    t = elapsed_ns / 1e9
    if ramp > 0:
        if t < ramp:
            return int(rate * t * t / (2.0 * ramp)) + 1
        return int(rate * ramp / 2.0 + rate * (t - ramp)) + 1
    return int(rate * t) + 1


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Driver:
    """Shared state and load control; subclasses implement ``start_one`` and ``pump``.

    Subclass contract:

    * ``async start_one(intended_ns | None)``: start one connect without suspending;
      increments ``self.started``; registers ``self.inflight[key] = t0`` or calls
      ``self.failed(...)`` for an immediate failure.
    * ``async pump()``: forever: wait for completions; for each call ``self.succeeded``
      or ``self.failed`` (after ``inflight.pop``), close the socket via ``close_ok``;
      then ``await self.refill()``.
    * ``abort(key)``: give up on an in-flight connect (timeout or end of run).
    * ``close_handle(h)`` / ``set_rst(h)``: close a completed socket.
    """

    route = "?"
    #: fn(done: int, started: int) -> None, called every sweep; set by the runner.
    progress: Any = None

    def __init__(self, plan: Plan, targets: list[Any], sources: list[Any] | None) -> None:
        self.plan = plan
        self.targets = targets
        self.sources = sources or None
        self.inflight: dict[Any, int] = {}
        self.intended: dict[Any, int] | None = {} if plan.open_model else None
        self.lat: list[int] = []
        self.notif: list[int] = []
        self.co_lat: list[int] = []
        self.lag: list[int] = []
        self.errors: list[tuple[int, str, str]] = []  # (done index, WSAE name, example)
        self.held: deque[tuple[Any, int]] = deque()
        self.started = 0
        self.done = 0
        self.late = 0
        self.peak_held = 0
        self.peak_inflight = 0
        self.rss_start = 0
        self.rss_peak = 0
        self.tm_start = 0
        self.fatal: tuple[str, str] | None = None
        self.stopping = False
        self.limit = plan.warmup + plan.total if plan.total is not None else 1 << 62
        self.warm = plan.warmup
        self.t_begin = 0
        self.t_mark = 0
        self.t_last = 0
        self.marks = (0, 0, 0)
        self.hold_ns = int(plan.hold * 1e9)
        self.finished: asyncio.Future[None] | None = None

    # --- hooks for subclasses ---------------------------------------------------

    async def setup(self) -> None:
        pass

    async def teardown(self) -> None:
        pass

    async def start_one(self, intended: int | None) -> None:
        raise NotImplementedError

    async def pump(self) -> None:
        raise NotImplementedError

    def abort(self, key: Any) -> None:
        raise NotImplementedError

    def close_handle(self, h: Any) -> None:
        raise NotImplementedError

    def set_rst(self, h: Any) -> None:
        raise NotImplementedError

    # --- recording (hot path) ----------------------------------------------------

    def succeeded(self, key: Any, t0: int, t1: int, completed_ns: int | None) -> None:
        self.lat.append(t1 - t0)
        if completed_ns is not None:
            self.notif.append(t1 - completed_ns)
        if self.intended is not None:
            it = self.intended.pop(key, None)
            if it is not None:
                self.co_lat.append(t1 - it)
        self.done += 1
        if self.done == self.warm:
            self._mark(t1)
        self.t_last = t1

    def failed(self, key: Any, name: str, example: str, t1: int = 0) -> None:
        if self.intended is not None:
            self.intended.pop(key, None)
        self.errors.append((self.done, name, example))
        self.done += 1
        if self.done == self.warm:
            self._mark(t1 or mono())
        self.t_last = t1 or mono()
        if name in FATAL_LIMITS and self.fatal is None:
            self.fatal = (name, example)
            self.stopping = True

    def _mark(self, t: int) -> None:
        self.t_mark = t
        self.marks = (len(self.lat), len(self.notif), len(self.co_lat))

    def close_ok(self, h: Any, t1: int) -> None:
        mode = self.plan.close
        if mode == "fin":
            self.close_handle(h)
        elif mode == "rst":
            self.set_rst(h)
            self.close_handle(h)
        else:
            self.held.append((h, t1 + self.hold_ns))

    async def refill(self) -> None:
        """Closed model: top up to ``concurrency`` in flight; also checks for the end."""
        if self.intended is None:
            c, inflight, lim = self.plan.concurrency, self.inflight, self.limit
            start = self.start_one
            while len(inflight) < c and self.started < lim and not self.stopping:
                await start(None)
        self.check_end()

    def check_end(self) -> None:
        if not self.inflight and (self.stopping or self.started >= self.limit):
            if not self.held and self.finished is not None and not self.finished.done():
                self.finished.set_result(None)

    # --- the row ------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.finished = loop.create_future()
        await self.setup()
        tasks: list[asyncio.Task[Any]] = []
        try:
            self.rss_start = self.rss_peak = _rss_bytes()
            if tracemalloc.is_tracing():
                self.tm_start = tracemalloc.get_traced_memory()[0]
            self.t_begin = self.t_mark = self.t_last = mono()
            if self.warm == 0:
                self._mark(self.t_begin)
            tasks.append(loop.create_task(self._monitor()))
            tasks.append(loop.create_task(self.pump()))
            if self.intended is not None:
                tasks.append(loop.create_task(self._schedule()))
            else:
                await self.refill()
            await self.finished
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                try:
                    await t
                except asyncio.CancelledError:
                    pass
            for key in list(self.inflight):
                self.abort(key)
            self.inflight.clear()
            while self.held:
                self.close_handle(self.held.popleft()[0])
            await self.teardown()

    async def _schedule(self) -> None:
        plan = self.plan
        rate, ramp = float(plan.rate or 1.0), plan.ramp
        t_start = mono()
        i = 0
        start = self.start_one
        cap, inflight = plan.concurrency, self.inflight
        while not self.stopping and self.started < self.limit:
            now = mono()
            due = min(due_count(now - t_start, rate, ramp), self.limit)
            while i < due and len(inflight) < cap and not self.stopping:
                intended = t_start + scheduled_offset_ns(i, rate, ramp)
                if mono() - intended > LATE_NS:
                    self.late += 1
                await start(intended)
                i += 1
            if i < due:  # held back by the in-flight cap: wait for completions
                await asyncio.sleep(0.0005)
                continue
            wait = (t_start + scheduled_offset_ns(i, rate, ramp) - mono()) / 1e9
            await asyncio.sleep(max(0.0, min(wait, 0.05)))
        self.check_end()

    async def _monitor(self) -> None:
        plan = self.plan
        tick_ns = int(TICK_S * 1e9)
        timeout_ns = int(plan.timeout * 1e9)
        deadline = self.t_begin + int(plan.duration * 1e9) if plan.duration else None
        hard = self.t_begin + int(plan.max_time * 1e9)
        lag = self.lag
        n = 0
        expected = mono() + tick_ns
        next_sweep = expected + SWEEP_NS
        while True:
            await asyncio.sleep(TICK_S)
            now = mono()
            lag.append(max(0, now - expected))
            expected = now + tick_ns
            n += 1
            if self.held:
                held = self.held
                if len(held) > self.peak_held:
                    self.peak_held = len(held)
                    if n % 4 == 0:
                        self.rss_peak = max(self.rss_peak, _rss_bytes())
                while held and held[0][1] <= now:
                    self.close_handle(held.popleft()[0])
                if not held:
                    self.check_end()
            if now < next_sweep:
                continue
            next_sweep = now + SWEEP_NS
            if len(self.inflight) > self.peak_inflight:
                self.peak_inflight = len(self.inflight)
            if deadline is not None and now >= deadline + (self.t_mark - self.t_begin):
                self.stopping = True
            if now >= hard and not self.stopping:
                self.stopping = True
                self.fatal = self.fatal or ("TIME_LIMIT", f"row exceeded --max-time {plan.max_time:g}s")
            if now >= hard + int(5e9):  # in-flight connects would not drain: give up on them
                for key in list(self.inflight):
                    self.abort(key)
                    del self.inflight[key]
                while self.held:
                    self.close_handle(self.held.popleft()[0])
            expired = [k for k, t0 in self.inflight.items() if now - t0 > timeout_ns]
            for key in expired:
                self.abort(key)
                t0 = self.inflight.pop(key, None)
                if t0 is not None:
                    self.failed(key, "WSAETIMEDOUT", f"no completion within --timeout {plan.timeout:g}s", now)
            if expired:
                await self.refill()
            if self.progress is not None:
                self.progress(self.done, self.started)
            self.check_end()

    # --- results ------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """Raw, picklable/JSON-able figures of this row in this process."""
        ml, mn, mc = self.marks
        measured_ok = len(self.lat) - ml
        errs = [e for e in self.errors if e[0] >= self.warm]
        counts = Counter(name for _, name, _ in errs)
        examples: dict[str, list[str]] = {}
        for _, name, ex in errs:
            lst = examples.setdefault(name, [])
            if len(lst) < 3 and ex not in lst:
                lst.append(ex)
        if self.done < self.warm:  # the run ended inside the warm-up: report what there is
            ml = mn = mc = 0
            measured_ok = len(self.lat)
            errs = self.errors
            counts = Counter(name for _, name, _ in errs)
        return {
            "route": self.route,
            "connects": measured_ok,
            "attempts": measured_ok + sum(counts.values()),
            "t_mark_ns": self.t_mark,
            "t_last_ns": self.t_last,
            "lat_ns": self.lat[ml:],
            "notif_ns": self.notif[mn:],
            "co_ns": self.co_lat[mc:],
            "lag_ns": self.lag,
            "errors": dict(counts),
            "examples": examples,
            "late_starts": self.late,
            "peak_inflight": self.peak_inflight,
            "peak_held": self.peak_held,
            "rss_start": self.rss_start,
            "rss_peak": self.rss_peak,
            "fatal": list(self.fatal) if self.fatal else None,
        }
