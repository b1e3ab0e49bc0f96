"""Event-sequence assertions for the three notification routes.

Each helper waits -- bounded by ``timeout`` seconds of loop time, never by sleeping
for a guessed interval -- until what it expects has been seen, then lets the loop run
the callbacks already due (:func:`settle`) and checks that nothing *more* arrived. It
fails as soon as something arrives that was not expected, so a wrong outcome costs no
waiting. Failures raise :class:`NotificationMismatch` (an ``AssertionError``) whose
message reads ``expected [FD_CONNECT(0), FD_WRITE(0)], got [FD_CONNECT(WSAECONNREFUSED)]``.

Notation for ``expected``, the same for every helper (:func:`parse_expected`):

* a list of ``(event, error)`` tuples: ``[(FD_CONNECT, 0), (FD_WRITE, 0)]``;
* a bare event means error 0: ``[FD_CONNECT, FD_WRITE]``;
* strings: ``["FD_CONNECT(WSAECONNREFUSED)"]``, ``"FD_CONNECT(0), FD_WRITE(0)"``,
  ``"FD_CONNECT"``; error numbers are accepted too: ``"FD_CONNECT(10061)"``;
* for event-select (a set of bits) also a dict ``{FD_CONNECT: WSAECONNREFUSED}``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .._constants import (
    FD_ALL_EVENTS,
    FD_EVENTS,
    WSA_WAIT_TIMEOUT,
    ErrorCode,
    WSAGETSELECTERROR,
    WSAGETSELECTEVENT,
    error_name,
    event_name,
)
from .._structs import Errno, FdSet, Message, TimeVal, WSANetworkEvents
from .._waitables import Window, WSAEvent, wait_for_multiple_events

__all__ = [
    "NotificationMismatch",
    "parse_expected",
    "format_events",
    "settle",
    "expect_messages",
    "expect_network_events",
    "expect_no_notification",
    "expect_select",
]

_EVENT_BY_NAME = {name: value for _, value, name in FD_EVENTS}
_BIT_INDEX = {value: index for index, value, _ in FD_EVENTS}
_ITEM = re.compile(r"\s*(FD_[A-Z_]+)\s*(?:\(\s*([A-Z_0-9]+)\s*\))?\s*$")


class NotificationMismatch(AssertionError):
    """What arrived is not what the test expected; the message names both."""


async def settle(rounds: int = 5) -> None:
    """Let the loop run every callback that is already due (no real time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# -- notation -------------------------------------------------------------------------


def _event(value: Any) -> int:
    if isinstance(value, str):
        try:
            return _EVENT_BY_NAME[value.strip()]
        except KeyError:
            raise ValueError(f"unknown event {value!r}") from None
    value = int(value)
    if value not in _BIT_INDEX:
        raise ValueError(f"not a single FD_* event: {value:#x}")
    return value


def _error(value: Any) -> int:
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            return int(ErrorCode[text])
        except KeyError:
            raise ValueError(f"unknown error code {value!r}") from None
    return int(value)


def _item(item: Any) -> tuple[int, int]:
    if isinstance(item, str):
        match = _ITEM.match(item)
        if match is None:
            raise ValueError(f"cannot read {item!r}; write e.g. 'FD_CONNECT(WSAECONNREFUSED)'")
        return _event(match.group(1)), _error(match.group(2) or 0)
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValueError(f"expected (event, error), got {item!r}")
        return _event(item[0]), _error(item[1])
    return _event(item), 0


def parse_expected(expected: Any) -> list[tuple[int, int]]:
    """``expected`` in any accepted notation -> a list of (event bit, error code).

    Raises ValueError for something it cannot read (an unknown name, a mask of
    several bits where one event is wanted).
    """
    if isinstance(expected, str):
        parts = [p for p in re.split(r",(?![^()]*\))", expected) if p.strip()]
        return [_item(p) for p in parts]
    if isinstance(expected, dict):
        return [(_event(k), _error(v)) for k, v in expected.items()]
    if isinstance(expected, tuple) and len(expected) == 2 and not isinstance(expected[0], tuple):
        # a single (event, error) pair
        try:
            return [_item(expected)]
        except ValueError:
            pass
    return [_item(x) for x in expected]


def _fmt(event: int, error: int) -> str:
    return f"{event_name(event)}({error_name(error)})"


def format_events(items: Iterable[tuple[int, int]]) -> str:
    """``[FD_CONNECT(0), FD_WRITE(0)]``: a list of (event, error) as the failure shows it."""
    return "[" + ", ".join(_fmt(e, c) for e, c in items) + "]"


def _message_item(message: Message) -> tuple[int, int]:
    return WSAGETSELECTEVENT(message.lParam), WSAGETSELECTERROR(message.lParam)


# -- async-select: ordered messages --------------------------------------------------------


async def expect_messages(
    window: Window,
    expected: Any,
    timeout: float = 1.0,
    *,
    s: int | None = None,
    exact: bool = True,
) -> list[Message]:
    """Take messages from *window* until they are *expected*, in that order.

    Returns the messages taken. *s* (a handle) restricts the check to that socket's
    messages (wParam); the others are put back on the window afterwards, in order.
    With *exact* (the default) a message that arrives after the expected ones while
    the loop settles also fails the check. Raises :class:`NotificationMismatch` at the
    first message that differs, or when *timeout* seconds pass first.
    """
    want = parse_expected(expected)
    got: list[Message] = []
    others: list[Message] = []

    def fail(reason: str = "") -> None:
        got.extend(_drain_window(window, s, others))
        _restore(window, others)
        raise NotificationMismatch(
            f"expected {format_events(want)}, got "
            f"{format_events(_message_item(m) for m in got)}{reason}" + _socket_note(s)
        )

    try:
        async with asyncio.timeout(timeout):
            while len(got) < len(want):
                message = await window.get_message()
                if s is not None and message.wParam != s:
                    others.append(message)
                    continue
                got.append(message)
                if _message_item(message) != want[len(got) - 1]:
                    await settle()
                    fail()
    except TimeoutError:
        fail(f" within {timeout:g} s")
    if exact:
        await settle()
        if _peek_window(window, s):
            fail()
    _restore(window, others)
    return got


def _peek_window(window: Window, s: int | None) -> bool:
    return any(s is None or m.wParam == s for m in list(window._queue))


def _drain_window(window: Window, s: int | None, others: list[Message]) -> list[Message]:
    taken = []
    while (message := window.peek_message(True)) is not None:
        if s is not None and message.wParam != s:
            others.append(message)
        else:
            taken.append(message)
    return taken


def _restore(window: Window, others: list[Message]) -> None:
    """Put the other sockets' messages back, ahead of anything queued since."""
    if not others:
        return
    later = []
    while (message := window.peek_message(True)) is not None:
        later.append(message)
    for message in others + later:
        window.post_message(message)
    others.clear()


def _socket_note(s: int | None) -> str:
    return "" if s is None else f" (socket {s:#x})"


# -- event-select: a set of bits with per-bit error codes -----------------------------------


def _fmt_set(record: dict[int, int]) -> str:
    return "{" + ", ".join(_fmt(e, record[e]) for e in sorted(record)) + "}"


async def expect_network_events(
    wsp: Any,
    s: int,
    event: WSAEvent,
    expected: Any,
    timeout: float = 1.0,
    *,
    exact: bool = True,
) -> WSANetworkEvents:
    """Wait on *event* and enumerate *s*'s record until it holds exactly *expected*.

    The bits may come in one WSPEnumNetworkEvents or in several (they are merged,
    the latest error code per bit wins). Returns the merged record. Raises
    :class:`NotificationMismatch` as soon as a bit arrives that is not expected or
    carries another error code, when *timeout* passes first, or (with *exact*) when
    more bits arrive while the loop settles afterwards.
    """
    want = {e: c for e, c in parse_expected(expected)}
    seen: dict[int, int] = {}
    merged = WSANetworkEvents()

    def enumerate_once() -> None:
        record = WSANetworkEvents()
        errno = Errno()
        if wsp.WSPEnumNetworkEvents(s, event, record, errno) != 0:
            raise NotificationMismatch(
                f"WSPEnumNetworkEvents({s:#x}) failed with {error_name(errno.value)}"
            )
        for index, value, _ in FD_EVENTS:
            if record.lNetworkEvents & value:
                seen[value] = record.iErrorCode[index]
                merged.lNetworkEvents |= value
                merged.iErrorCode[index] = record.iErrorCode[index]

    def check_prefix() -> bool:
        for bit, code in seen.items():
            if want.get(bit, None) != code:
                return False
        return True

    def fail(reason: str = "") -> None:
        raise NotificationMismatch(
            f"expected {_fmt_set(want)}, got {_fmt_set(seen)}{reason} (socket {s:#x})"
        )

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while seen.keys() != want.keys() or not check_prefix():
        if not check_prefix():
            await settle()
            enumerate_once()
            fail()
        remaining = deadline - loop.time()
        if remaining <= 0:
            fail(f" within {timeout:g} s")
        rc = await wait_for_multiple_events([event], False, max(0, int(remaining * 1000)))
        if rc == WSA_WAIT_TIMEOUT:
            fail(f" within {timeout:g} s")
        enumerate_once()
    if exact:
        await settle()
        before = dict(seen)
        enumerate_once()
        if seen != before or seen.keys() != want.keys():
            fail()
    return merged


# -- no notification --------------------------------------------------------------------------


async def expect_no_notification(
    target: Window | WSAEvent,
    timeout: float = 0.0,
    *,
    wsp: Any = None,
    s: int | None = None,
    events: int = FD_ALL_EVENTS,
) -> None:
    """Check that nothing is notified on *target* (a Window or a WSAEvent).

    The loop first runs what is already due (:func:`settle`); with *timeout* > 0 the
    check then keeps watching that long. For a window, *s* and *events* restrict
    which messages count (others are left queued). For an event object, give *wsp*
    and *s* to have the failure show the record. Raises :class:`NotificationMismatch`.
    """
    await settle()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if isinstance(target, WSAEvent):
            if target.is_set():
                detail = ""
                if wsp is not None and s is not None:
                    record = WSANetworkEvents()
                    wsp.WSPEnumNetworkEvents(s, None, record, Errno())
                    got = {
                        v: record.iErrorCode[i]
                        for i, v, _ in FD_EVENTS
                        if record.lNetworkEvents & v
                    }
                    detail = f", got {_fmt_set(got)}"
                raise NotificationMismatch(f"expected no notification, but the event object was signalled{detail}")
        else:
            queued = [
                m
                for m in list(target._queue)
                if (s is None or m.wParam == s) and WSAGETSELECTEVENT(m.lParam) & events
            ]
            if queued:
                raise NotificationMismatch(
                    f"expected no notification, got {format_events(_message_item(m) for m in queued)}"
                    + _socket_note(s)
                )
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.01))


# -- select: the three sets --------------------------------------------------------------------

_SET_NAMES = ("readfds", "writefds", "exceptfds")


def _fmt_sets(sets: Sequence[Iterable[int]]) -> str:
    return " ".join(
        f"{name}=[{', '.join(f'{h:#x}' for h in handles)}]"
        for name, handles in zip(_SET_NAMES, sets)
    )


async def expect_select(
    wsp: Any,
    readfds: Iterable[int] = (),
    writefds: Iterable[int] = (),
    exceptfds: Iterable[int] = (),
    *,
    expected: Any,
    timeout: float = 1.0,
) -> tuple[list[int], list[int], list[int]]:
    """WSPSelect on the three sets until the ready sets are *expected*.

    *expected* is a 3-tuple of handle collections (ready to read, to write, in
    exceptfds) or a dict with any of the keys ``read``/``write``/``except`` (or the
    set names). Returns the three ready lists. Select is level-triggered: a result
    that is a strict part of *expected* is selected again until *timeout*; anything
    else, or a timeout, raises :class:`NotificationMismatch` with both sets named.
    """
    watch = [list(readfds), list(writefds), list(exceptfds)]
    want = _expected_sets(expected)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got: list[list[int]] = [[], [], []]
    while True:
        remaining = max(0.0, deadline - loop.time())
        sets = [FdSet(w) if w else None for w in watch]
        errno = Errno()
        tv = TimeVal(int(remaining), int((remaining % 1) * 1_000_000))
        rc = await wsp.WSPSelect(0, sets[0], sets[1], sets[2], tv, errno)
        if rc < 0:
            raise NotificationMismatch(f"WSPSelect failed with {error_name(errno.value)}")
        got = [sorted(fds.fd_array) if fds is not None else [] for fds in sets]
        ready = [set(g) for g in got]
        if ready == want:
            return got[0], got[1], got[2]
        partial = all(r <= w for r, w in zip(ready, want))
        if not partial or loop.time() >= deadline:
            wanted = [sorted(w) for w in want]
            reason = "" if not partial or any(ready) else f" within {timeout:g} s"
            raise NotificationMismatch(
                f"expected {_fmt_sets(wanted)}, got {_fmt_sets(got)}{reason}"
            )
        if any(ready):
            # Part of it is ready: give the rest a loop iteration, not a busy loop.
            await asyncio.sleep(0.001)


def _expected_sets(expected: Any) -> list[set[int]]:
    if isinstance(expected, dict):
        keys = {"read": 0, "readfds": 0, "write": 1, "writefds": 1, "except": 2, "exceptfds": 2}
        out: list[set[int]] = [set(), set(), set()]
        for key, handles in expected.items():
            out[keys[key]] = set(handles)
        return out
    sets = list(expected)
    if len(sets) != 3:
        raise ValueError("expected wants (readfds, writefds, exceptfds)")
    return [set(x) for x in sets]
