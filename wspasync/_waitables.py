"""The targets of the notification routes: a message queue and a manual-reset event.

Both are posted to from the provider's loop and may be read from another thread (the
blocking twin), so the fast paths use only operations that are atomic under the GIL
(``deque.append``/``popleft``, attribute stores), and a waiter suspended on another
loop is woken with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Sequence

from ._constants import (
    WSA_INFINITE,
    WSA_MAXIMUM_WAIT_EVENTS,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_FAILED,
    WSA_WAIT_TIMEOUT,
)
from ._structs import Message

__all__ = ["Window", "WSAEvent", "wait_for_multiple_events"]


def _wake(fut: asyncio.Future[None]) -> None:
    if fut.done():
        return
    loop = fut.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fut.set_result(None)
    else:
        loop.call_soon_threadsafe(_set_if_pending, fut)


def _set_if_pending(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Window:
    """The target of WSPAsyncSelect: a FIFO of :class:`Message` records.

    ``await get_message()`` returns the oldest message, suspending while none is
    queued; ``peek_message(remove=True)`` returns it (or None) without suspending;
    ``len(window)`` is the number queued.
    """

    __slots__ = ("_queue", "_waiter", "__weakref__")

    def __init__(self) -> None:
        self._queue: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def __repr__(self) -> str:
        return f"<Window queued={len(self._queue)}>"

    def post_message(self, message: Message) -> None:
        """Append *message* (PostMessage); wakes a pending ``get_message``."""
        self._queue.append(message)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            _wake(waiter)

    def peek_message(self, remove: bool = True) -> Message | None:
        """The oldest message or None (PeekMessage with PM_REMOVE / PM_NOREMOVE)."""
        queue = self._queue
        if not queue:
            return None
        return queue.popleft() if remove else queue[0]

    async def get_message(self) -> Message:
        """The oldest message, waiting for one if the queue is empty (GetMessage)."""
        queue = self._queue
        while not queue:
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        return queue.popleft()

    def messages(self) -> list[Message]:
        """Remove and return every queued message, oldest first."""
        queue = self._queue
        out = list(queue)
        queue.clear()
        return out


class WSAEvent:
    """A manual-reset event object (WSACreateEvent): ``set()``, ``reset()``, ``is_set()``."""

    __slots__ = ("_set", "_waiters", "__weakref__")

    def __init__(self) -> None:
        self._set = False
        self._waiters: set[asyncio.Future[None]] | None = None

    def __repr__(self) -> str:
        return f"<WSAEvent {'set' if self._set else 'reset'}>"

    def set(self) -> None:
        """Signal the event; every waiter wakes (WSASetEvent)."""
        if self._set:
            return
        self._set = True
        waiters = self._waiters
        if waiters:
            for fut in waiters:
                _wake(fut)

    def reset(self) -> None:
        """Back to non-signalled (WSAResetEvent)."""
        self._set = False

    def is_set(self) -> bool:
        return self._set


async def wait_for_multiple_events(
    events: Sequence[WSAEvent], wait_all: bool, timeout_ms: int
) -> int:
    """WSAWaitForMultipleEvents for an asyncio caller.

    Returns ``WSA_WAIT_EVENT_0 + i`` for the lowest signalled index *i* (with
    *wait_all*, once all are signalled), ``WSA_WAIT_TIMEOUT`` when *timeout_ms* (or
    ``WSA_INFINITE``) passes first, ``WSA_WAIT_FAILED`` for bad arguments: not a
    sequence of 1 to WSA_MAXIMUM_WAIT_EVENTS event objects, or a bad timeout. Manual
    reset: the events are left signalled.
    """
    try:
        events = list(events)
    except TypeError:
        return WSA_WAIT_FAILED
    if (
        not 0 < len(events) <= WSA_MAXIMUM_WAIT_EVENTS
        or not all(isinstance(e, WSAEvent) for e in events)
        or not isinstance(timeout_ms, int)
        or isinstance(timeout_ms, bool)
        or not 0 <= timeout_ms <= WSA_INFINITE
    ):
        return WSA_WAIT_FAILED
    loop = asyncio.get_running_loop()
    deadline = None if timeout_ms == WSA_INFINITE else time.monotonic() + timeout_ms / 1000
    while True:
        if wait_all:
            if all(e._set for e in events):
                return WSA_WAIT_EVENT_0
        else:
            for index, e in enumerate(events):
                if e._set:
                    return WSA_WAIT_EVENT_0 + index
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return WSA_WAIT_TIMEOUT
        fut: asyncio.Future[None] = loop.create_future()
        timer = None if remaining is None else loop.call_later(remaining, _set_if_pending, fut)
        for e in events:
            if e._waiters is None:
                e._waiters = set()
            e._waiters.add(fut)
        try:
            await fut
        finally:
            if timer is not None:
                timer.cancel()
            for e in events:
                e._waiters.discard(fut)  # type: ignore[union-attr]
