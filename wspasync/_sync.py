"""The blocking twin: the WSP surface as plain, thread-safe functions.

Theory of operation
-------------------
A :class:`SyncProvider` owns an event loop (asyncio's or uvloop's) running on a
background thread, and a :class:`~wspasync.Provider` created on that loop. The
Provider is not thread-safe, so every touch of it happens under one lock, the *gate*:

* The loop thread holds the gate whenever it runs anything -- engine callbacks,
  timers, tasks -- and lets go only while it sleeps in the selector. With asyncio this
  is a selector subclass that releases the gate around ``select()`` (the loop is built
  with ``asyncio.SelectorEventLoop(selector)``, public API; no loop policy is touched).
* A calling thread takes the gate and runs the call right there (the fast path): a
  plain method runs to its end; a coroutine method runs its first step. A call that
  completes without suspending -- a loopback connect the kernel finished at once, any
  call on a nonblocking socket, a refusal -- never crosses to the loop thread, which
  is what keeps a blocking connect close to the cost of a plain ``socket.connect``
  (benchmarks/sync_connect.py). A step that suspends on a future (a real blocking
  wait) is handed to the loop as a Task, still under the gate, and the caller blocks
  on a ``concurrent.futures.Future``: waiting is the loop's job.
* Why this is safe: while a caller holds the gate the loop thread is inside the
  selector (or waiting for the gate), so it touches neither the Provider nor the
  loop's ready queue and timer heap. Registering readers/writers from the caller's
  thread is an ``epoll_ctl`` plus a dict store, both safe against a concurrent
  ``epoll_wait``; a key that went stale between the two is harmless because asyncio
  cancels a removed handle and skips cancelled handles. Work a fast path queues on
  the loop (``call_soon``, a new timer) would wait for the next wake-up of a loop
  asleep with an old timeout, so the loop (a ``SelectorEventLoop`` subclass) wakes
  itself when anyone but its own thread queues work.
* Fairness: the loop thread raises a flag while it waits for the gate after
  ``select()``; callers that see it hop through the loop's queue instead of grabbing
  the gate again, so a thread hammering fast calls cannot starve the loop.
* uvloop: libuv's poll cannot be wrapped, so the gate is taken the other way round.
  The loop is a :class:`uvloop.Loop` subclass that wraps every callback it is given
  (``call_soon``, timers, readers, writers -- which is also how Task steps and future
  callbacks arrive) so that each one runs holding the gate; between callbacks, and
  while libuv polls, the loop thread holds nothing. libuv's handles are not
  thread-safe, so what a caller's thread asks of the loop is queued for the loop
  thread instead: ``call_soon`` becomes ``call_soon_threadsafe`` (which also wakes the
  loop), timers and reader/writer changes are applied by the loop thread a moment
  later (a timer handle stands in until then), ``time()`` reads the monotonic clock;
  and a descriptor that had a reader or writer is closed through the loop after its
  removal (``Engine.close_through_loop``). The fast path is then the same as asyncio's.
* The hop path: asyncio in debug mode checks that loop methods run on the loop
  thread, so there every call goes to the loop thread (``run_coroutine_threadsafe`` /
  ``call_soon_threadsafe``) and the caller waits; so does a caller that finds the loop
  thread waiting for the gate.

Calls made from inside a provider callback (a WSPAccept condition function) hold the
gate already, in whichever thread the callback runs: the calling thread when the
accept completes at once -- as on Windows, where the condition function runs inside
WSAAccept -- else the loop thread. Plain methods run there directly; a blocking one
answers WSAEINPROGRESS ("the service provider is still processing a callback
function", Windows Sockets error codes page) and the waiting helpers answer at once:
nothing may wait for the loop while holding the gate the loop needs.

``close()`` refuses new calls, runs WSPCleanup on the loop (every blocking call in
progress returns WSAEINTR, every socket closes), lets the interrupted calls return,
cancels whatever else is left, stops the loop and joins the thread. From then on every
WSP method answers SOCKET_ERROR (INVALID_SOCKET for WSPSocket/WSPAccept) with
WSANOTINITIALISED in lpErrno, never an exception.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any

from ._constants import (
    INVALID_SOCKET,
    SOCKET_ERROR,
    WINSOCK_2_2,
    WSA_WAIT_FAILED,
    ErrorCode,
)
from ._errors import WSAError
from ._provider import _SUPPORTED_VERSIONS, Provider
from ._structs import Errno, Message
from ._waitables import Window, WSAEvent, wait_for_multiple_events

__all__ = ["SyncProvider"]

E = ErrorCode
_LOOPS = ("asyncio", "uvloop")
_get_ident = threading.get_ident
_monotonic = time.monotonic


class _Gate:
    """The provider lock, plus the loop thread's "I want it back" flag."""

    __slots__ = ("lock", "wants")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.wants = False


class _GatedSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The platform selector, releasing the gate while the loop sleeps in it."""

    def __init__(self, gate: _Gate) -> None:
        super().__init__()
        self._gate = gate

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        gate = self._gate
        gate.lock.release()
        try:
            return super().select(timeout)  # type: ignore[no-any-return]
        finally:
            gate.wants = True
            gate.lock.acquire()
            gate.wants = False


class _GatedSelectorLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop, woken when a caller's thread queues work on it.

    A caller's fast path runs while the loop thread sleeps in select() with a timeout
    computed before: a callback it queues (``call_soon``: a future's done callbacks, a
    batched delivery) or a timer it arms would wait for that old timeout. From any
    thread but the loop's, ``call_soon`` is therefore ``call_soon_threadsafe`` and
    ``call_at`` (``call_later`` goes through it) also wakes the loop.
    """

    owner = 0  # the loop thread's ident, set when it starts

    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:  # type: ignore[override]
        if _get_ident() != self.owner:
            return self.call_soon_threadsafe(callback, *args, context=context)
        return super().call_soon(callback, *args, context=context)

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:  # type: ignore[override]
        handle = super().call_at(when, callback, *args, context=context)
        if _get_ident() != self.owner:
            self.call_soon_threadsafe(_noop)
        return handle


def _gated_call(gate: _Gate, callback: Callable[..., Any], *args: Any) -> Any:
    """Run a loop callback holding the gate (uvloop); see the module docstring."""
    lock = gate.lock
    if not lock.acquire(False):
        gate.wants = True  # callers that see it hop, so they cannot starve the loop
        lock.acquire()
        gate.wants = False
    try:
        return callback(*args)
    finally:
        lock.release()


class _QueuedTimer:
    """The handle a caller's thread gets for a uvloop timer the loop thread arms later."""

    __slots__ = ("_loop", "_when", "_handle", "_cancelled")

    def __init__(self, loop: Any, when: float) -> None:
        self._loop = loop
        self._when = when
        self._handle: asyncio.TimerHandle | None = None
        self._cancelled = False

    def arm(self, callback: Callable[..., Any], args: tuple[Any, ...], context: Any) -> None:
        if not self._cancelled:  # runs on the loop thread, holding the gate
            self._handle = self._loop.call_at(self._when, callback, *args, context=context)

    def cancel(self) -> None:
        self._cancelled = True
        handle = self._handle
        if handle is not None:
            if _get_ident() == self._loop.owner:
                handle.cancel()
            else:
                self._loop.call_soon_threadsafe(handle.cancel)

    def cancelled(self) -> bool:
        return self._cancelled

    def when(self) -> float:
        return self._when


_GATED_UVLOOP: Any = None


def _gated_uvloop(gate: _Gate) -> asyncio.AbstractEventLoop:
    """A uvloop loop whose callbacks run holding *gate*; callers' requests are queued.

    Defined on first use, so that importing wspasync does not import uvloop.
    """
    global _GATED_UVLOOP
    if _GATED_UVLOOP is None:
        import uvloop

        class GatedLoop(uvloop.Loop):  # type: ignore[misc]
            # (uvloop's constructor takes no arguments: gate and owner are set after.)
            gate: _Gate
            owner = 0  # the loop thread's ident, set when it starts

            def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:  # type: ignore[override]
                if _get_ident() != self.owner:
                    return self.call_soon_threadsafe(callback, *args, context=context)
                return super().call_soon(_gated_call, self.gate, callback, *args, context=context)

            def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:  # type: ignore[override]
                return super().call_soon_threadsafe(
                    _gated_call, self.gate, callback, *args, context=context
                )

            def call_later(self, delay: float, callback: Any, *args: Any, context: Any = None) -> Any:  # type: ignore[override]
                if _get_ident() != self.owner:
                    return self._queue_timer(self.time() + delay, callback, args, context)
                return super().call_later(
                    delay, _gated_call, self.gate, callback, *args, context=context
                )

            def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:  # type: ignore[override]
                if _get_ident() != self.owner:
                    return self._queue_timer(when, callback, args, context)
                # As uvloop's own call_at does, but wrapping here rather than relying on
                # it going through self.call_later.
                return super().call_later(
                    when - super().time(), _gated_call, self.gate, callback, *args, context=context
                )

            def _queue_timer(self, when: float, callback: Any, args: Any, context: Any) -> Any:
                timer = _QueuedTimer(self, when)
                self.call_soon_threadsafe(timer.arm, callback, args, context)
                return timer

            def time(self) -> float:
                if _get_ident() != self.owner:
                    return _monotonic()  # libuv's cached loop time belongs to its thread
                return super().time()  # type: ignore[no-any-return]

            def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:  # type: ignore[override]
                if _get_ident() != self.owner:
                    self.call_soon_threadsafe(self.add_reader, fd, callback, *args)
                    return
                super().add_reader(fd, _gated_call, self.gate, callback, *args)

            def add_writer(self, fd: Any, callback: Any, *args: Any) -> None:  # type: ignore[override]
                if _get_ident() != self.owner:
                    self.call_soon_threadsafe(self.add_writer, fd, callback, *args)
                    return
                super().add_writer(fd, _gated_call, self.gate, callback, *args)

            def remove_reader(self, fd: Any) -> Any:  # type: ignore[override]
                if _get_ident() != self.owner:
                    self.call_soon_threadsafe(self.remove_reader, fd)
                    return True
                return super().remove_reader(fd)  # type: ignore[func-returns-value]

            def remove_writer(self, fd: Any) -> Any:  # type: ignore[override]
                if _get_ident() != self.owner:
                    self.call_soon_threadsafe(self.remove_writer, fd)
                    return True
                return super().remove_writer(fd)  # type: ignore[func-returns-value]

        _GATED_UVLOOP = GatedLoop
    loop = _GATED_UVLOOP()
    loop.gate = gate
    return loop  # type: ignore[no-any-return]


class _Resume:
    """Await a coroutine that was started elsewhere and is suspended on *first*.

    ``await coro`` refuses a coroutine that is already suspended ("coroutine is being
    awaited already"), so this drives it by hand, exactly as a Task would: pass each
    yielded future up to the Task, send results and throw cancellation down.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # CancelledError from Task.cancel()
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _resumed(coro: Coroutine[Any, Any, Any], first: Any) -> Any:
    return await _Resume(coro, first)


def _noop() -> None:
    pass


def _refuse(lpErrno: Any, code: int, failure: int) -> int:
    try:
        lpErrno.value = int(code)
    except Exception:  # a box we cannot write: the return value still says it failed
        pass
    return failure


def _run_plain(cf: concurrent.futures.Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    if not cf.set_running_or_notify_cancel():
        return
    try:
        cf.set_result(fn(*args))
    except BaseException as exc:
        cf.set_exception(exc)


class SyncProvider:
    """The WSP methods as plain, thread-safe, blocking functions (API.md §6).

    ``SyncProvider(version=WINSOCK_2_2, loop="asyncio")`` starts its own event loop --
    ``"asyncio"`` (the default selector loop) or ``"uvloop"`` -- on a daemon thread and
    a :class:`~wspasync.Provider` on it. Every ``WSP*`` method has the Provider's
    arguments and return values; the ones that are coroutines there block here until
    they finish. Any number of threads may call at once; ``WSPCancelBlockingCall``
    from any thread makes every blocking call in progress return SOCKET_ERROR /
    WSAEINTR. ``close()`` or leaving ``with SyncProvider() as wsp:`` closes every
    socket and ends the thread; afterwards every WSP method fails with
    WSANOTINITIALISED (SOCKET_ERROR or INVALID_SOCKET), never raising.

    Raises :class:`WSAError` (WSAVERNOTSUPPORTED) for a version Winsock never had and
    ValueError for an unknown *loop* name; those are the only exceptions.
    """

    def __init__(self, version: int = WINSOCK_2_2, loop: str = "asyncio") -> None:
        if not isinstance(version, int) or isinstance(version, bool) or version not in _SUPPORTED_VERSIONS:
            raise WSAError(E.WSAVERNOTSUPPORTED)
        if loop not in _LOOPS:
            raise ValueError(f"loop must be one of {_LOOPS}, not {loop!r}")
        self.version = version
        self.loop_name = loop
        self._gate = gate = _Gate()
        self._lock: Any = gate.lock  # a threading.RLock (its _is_owned() is used)
        if loop == "uvloop":
            self._loop: asyncio.AbstractEventLoop = _gated_uvloop(gate)
        else:
            self._loop = _GatedSelectorLoop(_GatedSelector(gate))
        # In debug mode loop methods must run on the loop thread: every call hops.
        self._fast = not self._loop.get_debug()
        self._closed = False
        self._provider: Provider | None = None
        self._thread_id = 0
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(version, started), name=f"wspasync-{loop}", daemon=True
        )
        self._thread.start()
        started.result()  # re-raises what the loop thread could not do

    # -- the loop thread ---------------------------------------------------------

    def _run(self, version: int, started: concurrent.futures.Future[None]) -> None:
        loop = self._loop
        self._thread_id = threading.get_ident()
        # asyncio: the loop thread holds the gate except inside select(). uvloop: it
        # holds it inside each callback (GatedLoop); callers' requests are queued.
        gated = self.loop_name == "asyncio"
        loop.owner = self._thread_id  # type: ignore[attr-defined]
        if gated:
            self._lock.acquire()
        try:
            try:
                self._provider = loop.run_until_complete(_make_provider(version))
                self._provider._engine.close_through_loop = not gated
            except BaseException as exc:
                loop.close()
                started.set_exception(exc)
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
        finally:
            if gated:
                self._lock.release()

    async def _shutdown(self) -> None:
        provider = self._provider
        assert provider is not None
        provider.WSPCleanup(Errno())
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        if tasks:
            # The interrupted calls return SOCKET_ERROR/WSAEINTR within an iteration or
            # two; anything still waiting after that (a get_message helper) is cancelled.
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Close every socket and end the loop thread; later WSP calls fail with
        WSANOTINITIALISED. Idempotent; returns None. Blocking calls in progress
        return SOCKET_ERROR (INVALID_SOCKET) with WSAEINTR."""
        nested = self._lock._is_owned()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            if nested:
                # Called from a callback (holding the gate): waiting here would wait for
                # the loop, which needs the gate. The shutdown runs when the callback
                # returns and the loop thread then ends by itself.
                done.add_done_callback(lambda _f: self._loop.call_soon_threadsafe(self._loop.stop))
                return
        try:
            done.result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def __enter__(self) -> SyncProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self)} sockets"
        return f"<SyncProvider {self.loop_name} version=0x{self.version:04X} {state}>"

    # -- dispatch ------------------------------------------------------------------

    # The fast paths below are written out inline, not as helpers taking closures: they
    # run on every call, and a blocking connect must stay within 1.5x of a plain
    # socket.connect (issue 4; benchmarks/sync_connect.py). Each one is: take the gate,
    # run the call (the loop wakes itself for work the call queued on it). On the loop
    # thread itself the gate (an RLock) is already held and the call simply runs, as it
    # must from a callback. acquire()/try/finally rather than ``with``: the
    # with-statement's __enter__/__exit__ calls cost about twice as much.

    def _plain(self, name: str, args: tuple[Any, ...], lpErrno: Any, failure: int) -> Any:
        """Run Provider.<name>(*args), a plain method, under the gate."""
        if self._fast and not self._gate.wants:
            lock = self._lock
            lock.acquire()
            try:
                if self._closed:
                    return _refuse(lpErrno, E.WSANOTINITIALISED, failure)
                # getattr, not Provider.<name>: a Trace wraps methods on the instance.
                return getattr(self._provider, name)(*args)
            finally:
                lock.release()
        if self._closed:
            return _refuse(lpErrno, E.WSANOTINITIALISED, failure)
        return self._call(
            lambda: getattr(self._provider, name)(*args),
            lambda: _refuse(lpErrno, E.WSANOTINITIALISED, failure),
            lambda: _refuse(lpErrno, E.WSAEINTR, failure),
        )

    def _call(self, fn: Callable[[], Any], closed: Callable[[], Any], cancelled: Callable[[], Any]) -> Any:
        """fn() with the provider to itself: directly under the gate, or on the loop."""
        if self._lock._is_owned():
            return fn()  # from a callback: the gate is held already
        if self._fast and not self._gate.wants:
            with self._lock:
                if self._closed:
                    return closed()
                return fn()
        cf: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                return closed()
            self._loop.call_soon_threadsafe(_run_plain, cf, fn, ())
        try:
            return cf.result()
        except concurrent.futures.CancelledError:
            return cancelled()

    def _blocking(self, name: str, args: tuple[Any, ...], lpErrno: Any, failure: int) -> Any:
        """Run Provider.<name>(*args), a coroutine method, to its end."""
        if self._closed:
            return _refuse(lpErrno, E.WSANOTINITIALISED, failure)
        if self._lock._is_owned():
            return _refuse(lpErrno, E.WSAEINPROGRESS, failure)  # from a callback
        if self._fast and not self._gate.wants:
            with self._lock:
                if self._closed:
                    return _refuse(lpErrno, E.WSANOTINITIALISED, failure)
                cf, result = self._step_here(getattr(self._provider, name)(*args))
                if cf is None:
                    return result
            return self._wait(cf, lpErrno, failure)
        with self._lock:
            if self._closed:
                return _refuse(lpErrno, E.WSANOTINITIALISED, failure)
            cf = asyncio.run_coroutine_threadsafe(getattr(self._provider, name)(*args), self._loop)
        return self._wait(cf, lpErrno, failure)

    def _step_here(self, coro: Coroutine[Any, Any, Any]) -> tuple[concurrent.futures.Future[Any] | None, Any]:
        """Run *coro* in this thread, the gate held, up to its first suspension.

        Returns ``(None, result)`` when it finished without suspending; otherwise
        ``(cf, None)``, the rest handed to the loop as a Task whose outcome *cf* will
        carry (wait on it after letting go of the gate). The provider's loop is the
        running loop meanwhile, so asyncio calls in the step find it.
        """
        loop = self._loop
        outer = asyncio._get_running_loop()
        asyncio._set_running_loop(loop)
        try:
            first = coro.send(None)
        except StopIteration as stop:
            return None, stop.value
        finally:
            asyncio._set_running_loop(outer)
        return asyncio.run_coroutine_threadsafe(_resumed(coro, first), loop), None

    def _wait(self, cf: concurrent.futures.Future[Any], lpErrno: Any, failure: int) -> Any:
        try:
            return cf.result()
        except concurrent.futures.CancelledError:
            # Cancelled by close() before it could finish.
            return _refuse(lpErrno, E.WSAEINTR, failure)
        except BaseException:
            # KeyboardInterrupt in the waiting thread: stop the call on the loop too
            # (asyncio cancellation, with the provider's clean-up), then re-raise.
            cf.cancel()
            raise

    def _on_loop(self, coro_fn: Callable[[], Coroutine[Any, Any, Any]], closed_answer: Any) -> Any:
        """Run a helper coroutine on the loop thread and wait for it.

        Called from a callback (the gate held) it cannot wait for the loop: it answers
        *closed_answer* at once, as a blocking WSP method there answers WSAEINPROGRESS.
        """
        if self._lock._is_owned():
            return closed_answer
        with self._lock:
            if self._closed:
                return closed_answer
            cf = asyncio.run_coroutine_threadsafe(coro_fn(), self._loop)
        try:
            return cf.result()
        except concurrent.futures.CancelledError:
            return closed_answer

    # -- introspection --------------------------------------------------------------

    def __len__(self) -> int:
        """The number of live sockets (0 once closed)."""
        if self._closed or self._provider is None:
            return 0
        return len(self._provider)

    def handles(self) -> list[int]:
        """The live socket handles ([] once closed)."""
        if self._closed or self._provider is None:
            return []
        provider = self._provider
        return self._call(provider.handles, list, list)  # type: ignore[no-any-return]

    def blocking_calls(self) -> int:
        """How many blocking calls are waiting right now, in any thread (0 once closed).

        The safe way for one thread to know that another's call has started waiting
        (before a WSPCancelBlockingCall, say) without making a call that could block.
        """
        if self._closed or self._provider is None:
            return 0
        provider = self._provider
        return self._call(  # type: ignore[no-any-return]
            lambda: sum(1 for fut in provider._blocking if not fut.done()), int, int
        )

    def os_socket(self, s: int) -> Any:
        """The OS socket behind handle *s*, still owned by the provider (see
        :meth:`Provider.os_socket`). Raises :class:`WSAError`: WSAENOTSOCK, or
        WSANOTINITIALISED once closed."""
        if self._closed:
            raise WSAError(E.WSANOTINITIALISED)
        provider = self._provider
        assert provider is not None

        def closed() -> Any:
            raise WSAError(E.WSANOTINITIALISED)

        return self._call(lambda: provider.os_socket(s), closed, closed)

    # -- waiting on notification targets from a plain thread ------------------------

    def get_message(self, window: Window, timeout_s: float | None = None) -> Message | None:
        """GetMessage for a plain thread: the oldest message of *window*, waiting up to
        *timeout_s* seconds (None: forever) for one to be posted.

        Returns the :class:`Message`, or None when the time passed, the provider was
        closed, *window* is not a Window, or no message was queued and this is a call
        from inside a callback (a condition function), which cannot wait.
        ``window.peek_message()`` never waits and is safe from any thread.
        """
        if not isinstance(window, Window):
            return None
        message = window.peek_message()
        if message is not None or timeout_s == 0:
            return message

        async def wait() -> Message | None:
            try:
                return await asyncio.wait_for(window.get_message(), timeout_s)
            except asyncio.TimeoutError:
                return None

        return self._on_loop(wait, None)  # type: ignore[no-any-return]

    def wait_for_multiple_events(
        self, events: Sequence[WSAEvent], wait_all: bool, timeout_ms: int
    ) -> int:
        """WSAWaitForMultipleEvents for a plain thread.

        Returns ``WSA_WAIT_EVENT_0 + i`` for the lowest signalled index *i* (with
        *wait_all*, once all are signalled), ``WSA_WAIT_TIMEOUT`` when *timeout_ms*
        (``WSA_INFINITE``: never) passes first, ``WSA_WAIT_FAILED`` for bad arguments
        (see :func:`wspasync.wait_for_multiple_events`), a closed provider, or a call
        from inside a callback (a condition function), which cannot wait. The
        events are manual-reset: they stay signalled.
        """
        return self._on_loop(  # type: ignore[no-any-return]
            lambda: wait_for_multiple_events(events, wait_all, timeout_ms), WSA_WAIT_FAILED
        )

    # -- the WSP surface: plain ---------------------------------------------------------

    def WSPSocket(
        self, af: Any, type: Any, protocol: Any, lpProtocolInfo: Any, g: Any, dwFlags: Any, lpErrno: Any
    ) -> int:
        """A new blocking socket handle, or INVALID_SOCKET with the codes of
        :meth:`Provider.WSPSocket` (WSAEAFNOSUPPORT, WSAESOCKTNOSUPPORT,
        WSAEPROTONOSUPPORT, WSAEINVAL, WSAEMFILE, WSAENOBUFS, WSANOTINITIALISED)."""
        if self._fast and not self._gate.wants:  # _plain, inlined: a third of the cycle
            lock = self._lock
            lock.acquire()
            try:
                if self._closed:
                    return _refuse(lpErrno, E.WSANOTINITIALISED, INVALID_SOCKET)
                return self._provider.WSPSocket(  # type: ignore[union-attr]
                    af, type, protocol, lpProtocolInfo, g, dwFlags, lpErrno
                )
            finally:
                lock.release()
        return self._plain(  # type: ignore[no-any-return]
            "WSPSocket", (af, type, protocol, lpProtocolInfo, g, dwFlags, lpErrno), lpErrno, INVALID_SOCKET
        )

    def WSPBind(self, s: Any, name: Any, namelen: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPBind`."""
        return self._plain("WSPBind", (s, name, namelen, lpErrno), lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPListen(self, s: Any, backlog: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPListen`."""
        return self._plain("WSPListen", (s, backlog, lpErrno), lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPAsyncSelect(self, s: Any, hWnd: Any, wMsg: Any, lEvent: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPAsyncSelect`.
        Messages are posted to *hWnd* from the loop thread; read them with
        :meth:`get_message` or ``hWnd.peek_message()``."""
        return self._plain(  # type: ignore[no-any-return]
            "WSPAsyncSelect", (s, hWnd, wMsg, lEvent, lpErrno), lpErrno, SOCKET_ERROR
        )

    def WSPEventSelect(self, s: Any, hEventObject: Any, lNetworkEvents: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPEventSelect`. Wait
        for the event with :meth:`wait_for_multiple_events`."""
        return self._plain(  # type: ignore[no-any-return]
            "WSPEventSelect", (s, hEventObject, lNetworkEvents, lpErrno), lpErrno, SOCKET_ERROR
        )

    def WSPEnumNetworkEvents(self, s: Any, hEventObject: Any, lpNetworkEvents: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPEnumNetworkEvents`."""
        return self._plain(  # type: ignore[no-any-return]
            "WSPEnumNetworkEvents", (s, hEventObject, lpNetworkEvents, lpErrno), lpErrno, SOCKET_ERROR
        )

    def WSPGetSockName(self, s: Any, name: Any, namelen: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPGetSockName`."""
        return self._plain("WSPGetSockName", (s, name, namelen, lpErrno), lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPGetPeerName(self, s: Any, name: Any, namelen: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPGetPeerName`."""
        return self._plain("WSPGetPeerName", (s, name, namelen, lpErrno), lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPGetSockOpt(self, s: Any, level: Any, optname: Any, optval: Any, optlen: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPGetSockOpt`."""
        return self._plain(  # type: ignore[no-any-return]
            "WSPGetSockOpt", (s, level, optname, optval, optlen, lpErrno), lpErrno, SOCKET_ERROR
        )

    def WSPSetSockOpt(self, s: Any, level: Any, optname: Any, optval: Any, optlen: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPSetSockOpt`."""
        return self._plain(  # type: ignore[no-any-return]
            "WSPSetSockOpt", (s, level, optname, optval, optlen, lpErrno), lpErrno, SOCKET_ERROR
        )

    def WSPIoctl(
        self,
        s: Any,
        dwIoControlCode: Any,
        lpvInBuffer: Any,
        cbInBuffer: Any,
        lpvOutBuffer: Any,
        cbOutBuffer: Any,
        lpcbBytesReturned: Any,
        lpOverlapped: Any,
        lpCompletionRoutine: Any,
        lpThreadId: Any,
        lpErrno: Any,
    ) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPIoctl`."""
        args = (
            s,
            dwIoControlCode,
            lpvInBuffer,
            cbInBuffer,
            lpvOutBuffer,
            cbOutBuffer,
            lpcbBytesReturned,
            lpOverlapped,
            lpCompletionRoutine,
            lpThreadId,
            lpErrno,
        )
        return self._plain("WSPIoctl", args, lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPShutdown(self, s: Any, how: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with the codes of :meth:`Provider.WSPShutdown`."""
        return self._plain("WSPShutdown", (s, how, lpErrno), lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPCloseSocket(self, s: Any, lpErrno: Any) -> int:
        """0, or SOCKET_ERROR with WSAENOTSOCK / WSANOTINITIALISED. A blocking call in
        progress on *s* in another thread returns WSAEINTR."""
        if self._fast and not self._gate.wants:  # _plain, inlined: a third of the cycle
            lock = self._lock
            lock.acquire()
            try:
                if self._closed:
                    return _refuse(lpErrno, E.WSANOTINITIALISED, SOCKET_ERROR)
                return self._provider.WSPCloseSocket(s, lpErrno)  # type: ignore[union-attr]
            finally:
                lock.release()
        return self._plain("WSPCloseSocket", (s, lpErrno), lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPCancelBlockingCall(self, lpErrno: Any) -> int:
        """Make every blocking call in progress (in any thread) return WSAEINTR; 0, or
        SOCKET_ERROR with WSAEINVAL when none is in progress, WSANOTINITIALISED once
        closed."""
        return self._plain("WSPCancelBlockingCall", (lpErrno,), lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPCleanup(self, lpErrno: Any) -> int:
        """Close every socket (blocking calls in progress return WSAEINTR); later calls
        fail with WSANOTINITIALISED. 0, or SOCKET_ERROR with WSANOTINITIALISED if
        already cleaned up. The loop thread keeps running until :meth:`close`."""
        return self._plain("WSPCleanup", (lpErrno,), lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    # -- the WSP surface: blocking --------------------------------------------------------

    def WSPConnect(
        self,
        s: Any,
        name: Any,
        namelen: Any,
        lpCallerData: Any,
        lpCalleeData: Any,
        lpSQOS: Any,
        lpGQOS: Any,
        lpErrno: Any,
    ) -> int:
        """Blocking socket: 0 once connected, or SOCKET_ERROR with the failure
        (WSAECONNREFUSED, WSAETIMEDOUT after the connect budget or TCP_MAXRT,
        WSAENETUNREACH, WSAEINTR when cancelled or closed, ...). Nonblocking socket:
        SOCKET_ERROR + WSAEWOULDBLOCK at once. Other codes as :meth:`Provider.WSPConnect`
        (WSAEINPROGRESS when *s* already has a blocking call in progress)."""
        provider: Any = self._provider
        if (
            not self._fast
            or self._gate.wants
            # An attached Trace (it sets the engine's observer) wraps WSPConnect on the
            # instance: then call that, the generic way.
            or provider._engine.observer is not None
            or self._lock._is_owned()  # from a callback: WSAEINPROGRESS, there
        ):
            args = (s, name, namelen, lpCallerData, lpCalleeData, lpSQOS, lpGQOS, lpErrno)
            return self._blocking("WSPConnect", args, lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]
        # The call issue 4's bar is about. Provider.WSPConnect's work before its one
        # await is a plain method, so a connect that ends at once (the usual loopback
        # case, refusals, nonblocking sockets) runs here without a coroutine; only an
        # attempt still in progress starts one, exactly as _blocking would.
        lock = self._lock
        lock.acquire()
        try:
            if self._closed:
                return _refuse(lpErrno, E.WSANOTINITIALISED, SOCKET_ERROR)
            outcome = provider._connect_now(
                s, name, namelen, lpCallerData, lpCalleeData, lpSQOS, lpGQOS, lpErrno
            )
            if type(outcome) is int:
                return outcome
            cf, result = self._step_here(provider._connect_wait(outcome, lpErrno))
            if cf is None:  # (it always suspends: the attempt is in progress)
                return result  # type: ignore[no-any-return]
        finally:
            lock.release()
        return self._wait(cf, lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPAccept(
        self, s: Any, addr: Any, addrlen: Any, lpfnCondition: Any, dwCallbackData: Any, lpErrno: Any
    ) -> int:
        """A new connected socket handle, waiting for a connection on a blocking
        listener, or INVALID_SOCKET with the codes of :meth:`Provider.WSPAccept`
        (WSAEINTR when cancelled; the listener stays good). *lpfnCondition* runs in
        this thread when a connection is already queued, else on the loop thread; from
        inside it, blocking methods answer WSAEINPROGRESS."""
        args = (s, addr, addrlen, lpfnCondition, dwCallbackData, lpErrno)
        return self._blocking("WSPAccept", args, lpErrno, INVALID_SOCKET)  # type: ignore[no-any-return]

    def WSPSelect(self, nfds: Any, readfds: Any, writefds: Any, exceptfds: Any, timeout: Any, lpErrno: Any) -> int:
        """The number of ready sockets, 0 on timeout, or SOCKET_ERROR with the codes of
        :meth:`Provider.WSPSelect` (WSAEINTR when cancelled)."""
        args = (nfds, readfds, writefds, exceptfds, timeout, lpErrno)
        return self._blocking("WSPSelect", args, lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPSend(
        self,
        s: Any,
        lpBuffers: Any,
        dwBufferCount: Any,
        lpNumberOfBytesSent: Any,
        dwFlags: Any,
        lpOverlapped: Any,
        lpCompletionRoutine: Any,
        lpThreadId: Any,
        lpErrno: Any,
    ) -> int:
        """0 with the count in *lpNumberOfBytesSent*, or SOCKET_ERROR with the codes of
        Provider.WSPSend (WSAETIMEDOUT after SO_SNDTIMEO, WSAEINTR when cancelled)."""
        args = (s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpOverlapped,
                lpCompletionRoutine, lpThreadId, lpErrno)  # fmt: skip
        return self._blocking("WSPSend", args, lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPSendTo(
        self,
        s: Any,
        lpBuffers: Any,
        dwBufferCount: Any,
        lpNumberOfBytesSent: Any,
        dwFlags: Any,
        lpTo: Any,
        iTolen: Any,
        lpOverlapped: Any,
        lpCompletionRoutine: Any,
        lpThreadId: Any,
        lpErrno: Any,
    ) -> int:
        """0 with the count in *lpNumberOfBytesSent*, or SOCKET_ERROR with the codes of
        Provider.WSPSendTo (WSAETIMEDOUT after SO_SNDTIMEO, WSAEINTR when cancelled)."""
        args = (s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpTo, iTolen,
                lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno)  # fmt: skip
        return self._blocking("WSPSendTo", args, lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPRecv(
        self,
        s: Any,
        lpBuffers: Any,
        dwBufferCount: Any,
        lpNumberOfBytesRecvd: Any,
        lpFlags: Any,
        lpOverlapped: Any,
        lpCompletionRoutine: Any,
        lpThreadId: Any,
        lpErrno: Any,
    ) -> int:
        """0 with the count in *lpNumberOfBytesRecvd* (0 bytes: the peer closed), or
        SOCKET_ERROR with the codes of Provider.WSPRecv (WSAETIMEDOUT after
        SO_RCVTIMEO, WSAEINTR when cancelled)."""
        args = (s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpOverlapped,
                lpCompletionRoutine, lpThreadId, lpErrno)  # fmt: skip
        return self._blocking("WSPRecv", args, lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]

    def WSPRecvFrom(
        self,
        s: Any,
        lpBuffers: Any,
        dwBufferCount: Any,
        lpNumberOfBytesRecvd: Any,
        lpFlags: Any,
        lpFrom: Any,
        lpFromlen: Any,
        lpOverlapped: Any,
        lpCompletionRoutine: Any,
        lpThreadId: Any,
        lpErrno: Any,
    ) -> int:
        """0 with the count in *lpNumberOfBytesRecvd* and the sender in *lpFrom*, or
        SOCKET_ERROR with the codes of Provider.WSPRecvFrom (WSAETIMEDOUT after
        SO_RCVTIMEO, WSAEINTR when cancelled)."""
        args = (s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpFrom, lpFromlen,
                lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno)  # fmt: skip
        return self._blocking("WSPRecvFrom", args, lpErrno, SOCKET_ERROR)  # type: ignore[no-any-return]


async def _make_provider(version: int) -> Provider:
    return Provider(version)


def _inherit_contracts() -> None:
    """Append each Provider WSP docstring to its twin: one contract, stated once."""
    import inspect

    for name, twin in vars(SyncProvider).items():
        original = getattr(Provider, name, None) if name.startswith("WSP") else None
        if original is not None and original.__doc__:
            twin.__doc__ = (
                f"{inspect.cleandoc(twin.__doc__ or '')}\n\n"
                f"Provider.{name}, whose arguments and results these are:\n\n"
                f"{inspect.cleandoc(original.__doc__)}"
            )


_inherit_contracts()
