"""Fault injection the way the SPI itself allows it: a layered provider.

Theory of operation
-------------------
Winsock 2 lets a *layered service provider* sit on top of a base provider: the
application calls the layer, the layer calls the provider below for every WSP
function it does not care about, and changes the ones it does (WSPStartup page, "Layered
Service Providers"; the SPI's WSPPROC_TABLE / upcall model). :class:`LayeredProvider`
is that model in Python: every WSP method delegates to ``base`` unchanged, and a
subclass overrides the few it wants.

:class:`FaultLayer` is such a layer, with rules that make things go wrong on demand.
A failing connect is never faked in the layer: the layer hands the base provider a
one-shot *outcome* for that handle (``Engine.faults``) and then delegates the call. The
provider does all its usual checks (a bad name is still WSAEFAULT, a connecting
socket is still WSAEALREADY), the engine does the attempt's bookkeeping, and instead of
the OS ``connect`` it runs the outcome:

* a code Windows reports from the call (WSAENETDOWN, WSAENOBUFS, ...): raised, so the
  call fails with it and the socket's state does not change;
* a code Windows reports when the attempt ends (WSAECONNREFUSED, WSAETIMEDOUT,
  WSAENETUNREACH, ...): the attempt starts (CONNECTING) and ends through the real
  core, ``_notify.connect_finished`` via ``Engine.finish`` -- so a nonblocking connect
  returns WSAEWOULDBLOCK and the outcome shows in exceptfds, in one FD_CONNECT message
  and in the event record exactly as a real refusal would, and a blocking connect
  returns it;
* pending forever (no timer: only close or WSPCancelBlockingCall end it), or a real
  connect whose completion is reported after a delay.

Notification delays wrap the window or event object a WSPAsyncSelect / WSPEventSelect
registers, as a real LSP substitutes its own window: the core posts to the layer's
proxy, which forwards after the delay.

Every rule that fires is written to the trace attached to the base provider (kind
``fault``), so a failing test's timeline says which failures were injected.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from typing import Any

import attrs

from .._constants import (
    FD_ALL_EVENTS,
    SOCKET_ERROR,
    WSAGETSELECTEVENT,
    error_name,
    errno_to_wsa,
    event_name,
)
from .._engine import _ASYNC_OUTCOMES, os_connect
from .._errors import WSAError
from .._sockaddr import parse_sockaddr
from .._structs import Message
from .._waitables import Window, WSAEvent

__all__ = ["LayeredProvider", "FaultLayer", "FaultRule", "ASYNC_CONNECT_ERRORS"]

#: Codes that a nonblocking Winsock connect reports when the attempt ends (FD_CONNECT,
#: exceptfds) rather than from the call: the engine's own list of wire outcomes.
ASYNC_CONNECT_ERRORS: frozenset[int] = frozenset(errno_to_wsa(e) for e in _ASYNC_OUTCOMES)


# -- the layered-provider model -----------------------------------------------------


class LayeredProvider:
    """A provider that wraps another one call by call (the SPI's layered-provider model).

    ``LayeredProvider(base)`` behaves exactly like *base*: every ``WSP*`` method is
    passed down unchanged, and so is every other attribute (``handles()``,
    ``os_socket``, ``close()``, ``async with``...). Subclass it and override the WSP
    methods you want to change; call ``self.base.WSPx(...)`` to pass a call on. Layers
    stack: the base may itself be a layer. ``provider`` is the bottom
    :class:`~wspasync.Provider`.
    """

    def __init__(self, base: Any) -> None:
        self.base = base

    @property
    def provider(self) -> Any:
        """The bottom provider (the one that owns the sockets)."""
        p = self.base
        while isinstance(p, LayeredProvider):
            p = p.base
        return p

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this class does not define: pass them down.
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __len__(self) -> int:
        return len(self.base)

    async def __aenter__(self) -> LayeredProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.base.__aexit__(*exc)

    # The SPI's WSP functions, in API.md's order; the signatures are spelled out so
    # that tools that read them (the trace recorder) see the SPI's parameter names.
    def WSPSocket(self, af, type, protocol, lpProtocolInfo, g, dwFlags, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPSocket(af, type, protocol, lpProtocolInfo, g, dwFlags, lpErrno)

    def WSPBind(self, s, name, namelen, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPBind(s, name, namelen, lpErrno)

    def WSPListen(self, s, backlog, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPListen(s, backlog, lpErrno)

    async def WSPAccept(self, s, addr, addrlen, lpfnCondition, dwCallbackData, lpErrno):  # type: ignore[no-untyped-def]
        return await self.base.WSPAccept(s, addr, addrlen, lpfnCondition, dwCallbackData, lpErrno)

    async def WSPConnect(self, s, name, namelen, lpCallerData, lpCalleeData, lpSQOS, lpGQOS, lpErrno):  # type: ignore[no-untyped-def]
        return await self.base.WSPConnect(
            s, name, namelen, lpCallerData, lpCalleeData, lpSQOS, lpGQOS, lpErrno
        )

    async def WSPSend(self, s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno):  # type: ignore[no-untyped-def]
        return await self.base.WSPSend(
            s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpOverlapped,
            lpCompletionRoutine, lpThreadId, lpErrno,
        )

    async def WSPSendTo(self, s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpTo, iTolen, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno):  # type: ignore[no-untyped-def]
        return await self.base.WSPSendTo(
            s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpTo, iTolen,
            lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno,
        )

    async def WSPRecv(self, s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno):  # type: ignore[no-untyped-def]
        return await self.base.WSPRecv(
            s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpOverlapped,
            lpCompletionRoutine, lpThreadId, lpErrno,
        )

    async def WSPRecvFrom(self, s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpFrom, lpFromlen, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno):  # type: ignore[no-untyped-def]
        return await self.base.WSPRecvFrom(
            s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpFrom, lpFromlen,
            lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno,
        )

    async def WSPSelect(self, nfds, readfds, writefds, exceptfds, timeout, lpErrno):  # type: ignore[no-untyped-def]
        return await self.base.WSPSelect(nfds, readfds, writefds, exceptfds, timeout, lpErrno)

    def WSPAsyncSelect(self, s, hWnd, wMsg, lEvent, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPAsyncSelect(s, hWnd, wMsg, lEvent, lpErrno)

    def WSPEventSelect(self, s, hEventObject, lNetworkEvents, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPEventSelect(s, hEventObject, lNetworkEvents, lpErrno)

    def WSPEnumNetworkEvents(self, s, hEventObject, lpNetworkEvents, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPEnumNetworkEvents(s, hEventObject, lpNetworkEvents, lpErrno)

    def WSPGetSockName(self, s, name, namelen, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPGetSockName(s, name, namelen, lpErrno)

    def WSPGetPeerName(self, s, name, namelen, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPGetPeerName(s, name, namelen, lpErrno)

    def WSPGetSockOpt(self, s, level, optname, optval, optlen, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPGetSockOpt(s, level, optname, optval, optlen, lpErrno)

    def WSPSetSockOpt(self, s, level, optname, optval, optlen, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPSetSockOpt(s, level, optname, optval, optlen, lpErrno)

    def WSPIoctl(self, s, dwIoControlCode, lpvInBuffer, cbInBuffer, lpvOutBuffer, cbOutBuffer, lpcbBytesReturned, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPIoctl(
            s, dwIoControlCode, lpvInBuffer, cbInBuffer, lpvOutBuffer, cbOutBuffer,
            lpcbBytesReturned, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno,
        )

    def WSPShutdown(self, s, how, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPShutdown(s, how, lpErrno)

    def WSPCloseSocket(self, s, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPCloseSocket(s, lpErrno)

    def WSPCancelBlockingCall(self, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPCancelBlockingCall(lpErrno)

    def WSPCleanup(self, lpErrno):  # type: ignore[no-untyped-def]
        return self.base.WSPCleanup(lpErrno)


# -- rules ----------------------------------------------------------------------------


def _destination(to: Any) -> tuple[str, int] | None:
    """A rule's ``to=``: sockaddr bytes, "host:port", "[v6]:port" or (host, port)."""
    if to is None:
        return None
    if isinstance(to, (bytes, bytearray, memoryview)):
        family, host, port, *_ = parse_sockaddr(bytes(to))
        return host, port
    if isinstance(to, str):
        host, sep, port = to.rpartition(":")
        if not sep:
            raise ValueError(f"to= wants HOST:PORT, got {to!r}")
        return host.strip("[]"), int(port)
    host, port = to
    return str(host), int(port)


@attrs.define(eq=False)
class FaultRule:
    """One injected fault. ``hits`` counts the times it fired; ``calls`` the calls it saw.

    Selection (all given conditions must hold): ``to`` -- the destination (connect,
    sendto); ``s`` -- the handle; ``nth`` -- the nth matching call, counted from 1 (an
    int or a collection of ints); ``probability`` -- drawn from the layer's seeded
    generator; ``times`` -- stop after this many hits.
    """

    op: str  # "connect", "send", "recv", "notify"
    action: str  # "fail", "hang", "delay"
    error: int = 0
    synchronous: bool | None = None
    delay: float = 0.0
    events: int = FD_ALL_EVENTS
    to: tuple[str, int] | None = None
    s: int | None = None
    nth: frozenset[int] | None = None
    probability: float | None = None
    times: int | None = None
    calls: int = 0
    hits: int = 0
    active: bool = True

    def describe(self) -> str:
        what = {
            "fail": f"fail {error_name(self.error)}"
            + ("" if self.op != "connect" else " (sync)" if self.synchronous else " (async)"),
            "hang": "stay pending",
            "delay": f"delay {self.delay:g} s",
        }[self.action]
        if self.action == "fail" and self.delay:
            what += f" after {self.delay:g} s"
        if self.op == "notify":
            what = f"delay {event_name(self.events)} by {self.delay:g} s"
        where = []
        if self.to is not None:
            where.append(f"to {self.to[0]}:{self.to[1]}")
        if self.s is not None:
            where.append(f"s={self.s:#x}")
        if self.nth is not None:
            where.append("nth " + ",".join(map(str, sorted(self.nth))))
        if self.probability is not None:
            where.append(f"p={self.probability:g}")
        return f"{self.op}: {what}" + (f" [{' '.join(where)}]" if where else "")

    def remove(self) -> None:
        """Stop applying this rule."""
        self.active = False


# -- the fault layer ---------------------------------------------------------------------


class FaultLayer(LayeredProvider):
    """A layered provider that injects failures by rule; see the module docstring.

    ``FaultLayer(base, seed=0)``; rules are added with :meth:`fail_connect`,
    :meth:`hang_connect`, :meth:`delay_connect`, :meth:`delay_notifications`,
    :meth:`fail_send` and :meth:`fail_recv`, each returning its :class:`FaultRule`.
    A call that no rule selects goes to *base* unchanged. :meth:`close` cancels
    delayed notifications still on their way (the ``fault_layer`` fixture does it).
    """

    def __init__(self, base: Any, seed: int = 0) -> None:
        super().__init__(base)
        self.rules: list[FaultRule] = []
        self.random = random.Random(seed)
        self._timers: set[asyncio.TimerHandle] = set()
        self._proxies: dict[tuple[int, int], Any] = {}

    # -- adding rules ------------------------------------------------------------------

    def _add(self, rule: FaultRule, to: Any, s: Any, nth: Any, probability: Any, times: Any) -> FaultRule:
        rule.to = _destination(to)
        rule.s = s
        if nth is not None:
            rule.nth = frozenset([nth] if isinstance(nth, int) else nth)
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        rule.probability = probability
        rule.times = times
        self.rules.append(rule)
        return rule

    def fail_connect(
        self,
        error: int,
        *,
        synchronous: bool | None = None,
        after: float = 0.0,
        to: Any = None,
        s: int | None = None,
        nth: int | Iterable[int] | None = None,
        probability: float | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Make matching connects fail with *error*.

        *synchronous* None means "as Windows reports that code": the codes in
        :data:`ASYNC_CONNECT_ERRORS` (WSAECONNREFUSED, WSAETIMEDOUT, WSAENETUNREACH,
        WSAEHOSTUNREACH, WSAECONNRESET, WSAECONNABORTED) end the attempt -- through
        FD_CONNECT / exceptfds for a nonblocking socket, *after* seconds later (0: on
        the next loop iteration, like a real loopback refusal) -- and every other code
        fails the call itself. ``synchronous=False`` forces the asynchronous path for
        any code; ``True`` the synchronous one.
        """
        if synchronous is None:
            synchronous = int(error) not in ASYNC_CONNECT_ERRORS
        rule = FaultRule("connect", "fail", error=int(error), synchronous=synchronous, delay=after)
        return self._add(rule, to, s, nth, probability, times)

    def hang_connect(
        self, *, to: Any = None, s: int | None = None, nth: Any = None,
        probability: float | None = None, times: int | None = None,
    ) -> FaultRule:
        """Matching connects stay pending forever (no SYN budget either): a nonblocking
        socket never reports FD_CONNECT; a blocking connect waits until
        WSPCancelBlockingCall (WSAEINTR) or close."""
        return self._add(FaultRule("connect", "hang"), to, s, nth, probability, times)

    def delay_connect(
        self, delay: float, *, to: Any = None, s: int | None = None, nth: Any = None,
        probability: float | None = None, times: int | None = None,
    ) -> FaultRule:
        """Matching connects really connect, but the outcome (success or the real
        failure) is reported *delay* seconds later, on every route."""
        return self._add(FaultRule("connect", "delay", delay=delay), to, s, nth, probability, times)

    def delay_notifications(
        self, delay: float, events: int = FD_ALL_EVENTS, *, s: int | None = None,
        nth: Any = None, probability: float | None = None, times: int | None = None,
    ) -> FaultRule:
        """Async-select messages and event-object signals for *events* reach the
        application *delay* seconds late (registrations made after this call).

        Message mode: each message for one of *events* is posted late, the others on
        time (so they can overtake). Event mode: a signal caused by one of *events*
        reaches the application's event object late; the record itself is current,
        so an early WSPEnumNetworkEvents already sees it."""
        rule = FaultRule("notify", "delay", delay=delay, events=events)
        return self._add(rule, None, s, nth, probability, times)

    def fail_send(
        self, error: int, *, to: Any = None, s: int | None = None, nth: Any = None,
        probability: float | None = None, times: int | None = None,
    ) -> FaultRule:
        """Matching WSPSend / WSPSendTo calls return SOCKET_ERROR with *error*; nothing
        is sent."""
        return self._add(FaultRule("send", "fail", error=int(error)), to, s, nth, probability, times)

    def fail_recv(
        self, error: int, *, s: int | None = None, nth: Any = None,
        probability: float | None = None, times: int | None = None,
    ) -> FaultRule:
        """Matching WSPRecv / WSPRecvFrom calls return SOCKET_ERROR with *error*;
        nothing is consumed."""
        return self._add(FaultRule("recv", "fail", error=int(error)), None, s, nth, probability, times)

    def clear(self) -> None:
        """Remove every rule."""
        for rule in self.rules:
            rule.active = False
        self.rules.clear()

    def close(self) -> None:
        """Cancel delayed notifications still on their way (rules stay)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # -- selecting a rule ----------------------------------------------------------------

    def _select(self, op: str, s: Any, dest: tuple[str, int] | None) -> FaultRule | None:
        """The first rule (in the order added) that fires for this call, or None.

        Every rule whose filters match counts the call, whichever rule fires, so
        ``nth`` means "the nth such call" for each rule independently.
        """
        matching = []
        for rule in self.rules:
            if not rule.active or rule.op != op:
                continue
            if rule.s is not None and rule.s != s:
                continue
            if rule.to is not None and rule.to != dest:
                continue
            rule.calls += 1
            matching.append(rule)
        for rule in matching:
            if rule.times is not None and rule.hits >= rule.times:
                continue
            if rule.nth is not None and rule.calls not in rule.nth:
                continue
            if rule.probability is not None and self.random.random() >= rule.probability:
                continue
            return rule
        return None

    def _record(self, rule: FaultRule, s: Any, detail: str = "") -> None:
        rule.hits += 1
        observer = self.provider._engine.observer
        if observer is not None and hasattr(observer, "fault"):
            observer.fault(rule, s if isinstance(s, int) else None, detail)

    # -- connect ---------------------------------------------------------------------------

    async def WSPConnect(self, s, name, namelen, lpCallerData, lpCalleeData, lpSQOS, lpGQOS, lpErrno):  # type: ignore[no-untyped-def]
        try:
            family, host, port, *_ = parse_sockaddr(bytes(name))
            dest = (host, port)
        except (TypeError, ValueError):
            dest = None
        rule = self._select("connect", s, dest) if self.rules else None
        if rule is None:
            return await self.base.WSPConnect(
                s, name, namelen, lpCallerData, lpCalleeData, lpSQOS, lpGQOS, lpErrno
            )
        engine = self.provider._engine
        if engine.faults is None:
            engine.faults = {}
        engine.faults[s] = self._outcome(rule, s)
        try:
            return await self.base.WSPConnect(
                s, name, namelen, lpCallerData, lpCalleeData, lpSQOS, lpGQOS, lpErrno
            )
        finally:
            # Still there if the provider refused the call before starting an attempt.
            if engine.faults:
                engine.faults.pop(s, None)

    def _outcome(self, rule: FaultRule, s: int) -> Any:
        """The one-shot outcome handed to ``Engine.start_connect`` for handle *s*."""

        def outcome(engine: Any, rec: Any, new: Any) -> int:
            if rule.action == "fail" and rule.synchronous:
                self._record(rule, s)
                raise WSAError(rule.error)
            if rule.action == "delay":
                self._record(rule, s)
                code = os_connect(rec.sock, rec.peer)  # may raise: the call refuses
                rec.state = new
                # The real outcome (read again when the delay is over) or the error
                # the OS gave at once.
                engine.finish_after(rec, rule.delay, errno_to_wsa(code) if code > 0 else None)
                return -1
            rec.state = new
            self._record(rule, s)
            if rule.action == "hang":
                return -1
            if rule.delay:
                engine.finish_after(rec, rule.delay, rule.error)
                return -1
            # Finished at once: the provider delivers it as it does a real immediate
            # loopback refusal (next loop iteration for a nonblocking socket).
            return rule.error

        return outcome

    # -- send / recv --------------------------------------------------------------------------

    def _io_fault(self, op: str, s: Any, dest: Any, count_box: Any, lpErrno: Any) -> int | None:
        rule = self._select(op, s, dest) if self.rules else None
        if rule is None:
            return None
        if s not in self.provider._sockets:
            return None  # let the provider report WSAENOTSOCK
        self._record(rule, s)
        if count_box is not None:
            try:
                count_box.value = 0
            except AttributeError:
                pass
        lpErrno.value = rule.error
        return SOCKET_ERROR

    async def WSPSend(self, s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno):  # type: ignore[no-untyped-def]
        rc = self._io_fault("send", s, None, lpNumberOfBytesSent, lpErrno)
        if rc is not None:
            return rc
        return await super().WSPSend(
            s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpOverlapped,
            lpCompletionRoutine, lpThreadId, lpErrno,
        )

    async def WSPSendTo(self, s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpTo, iTolen, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno):  # type: ignore[no-untyped-def]
        try:
            _, host, port, *_ = parse_sockaddr(bytes(lpTo))
            dest = (host, port)
        except (TypeError, ValueError):
            dest = None
        rc = self._io_fault("send", s, dest, lpNumberOfBytesSent, lpErrno)
        if rc is not None:
            return rc
        return await super().WSPSendTo(
            s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpTo, iTolen,
            lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno,
        )

    async def WSPRecv(self, s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno):  # type: ignore[no-untyped-def]
        rc = self._io_fault("recv", s, None, lpNumberOfBytesRecvd, lpErrno)
        if rc is not None:
            return rc
        return await super().WSPRecv(
            s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpOverlapped,
            lpCompletionRoutine, lpThreadId, lpErrno,
        )

    async def WSPRecvFrom(self, s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpFrom, lpFromlen, lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno):  # type: ignore[no-untyped-def]
        rc = self._io_fault("recv", s, None, lpNumberOfBytesRecvd, lpErrno)
        if rc is not None:
            return rc
        return await super().WSPRecvFrom(
            s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpFrom, lpFromlen,
            lpOverlapped, lpCompletionRoutine, lpThreadId, lpErrno,
        )

    # -- notification delays -------------------------------------------------------------------

    def WSPAsyncSelect(self, s, hWnd, wMsg, lEvent, lpErrno):  # type: ignore[no-untyped-def]
        rule = self._select("notify", s, None) if self.rules and lEvent else None
        if rule is not None and hWnd is not None and hasattr(hWnd, "post_message"):
            hWnd = _DelayedWindow(self, rule, s, hWnd)
        return self.base.WSPAsyncSelect(s, hWnd, wMsg, lEvent, lpErrno)

    def WSPEventSelect(self, s, hEventObject, lNetworkEvents, lpErrno):  # type: ignore[no-untyped-def]
        rule = self._select("notify", s, None) if self.rules and lNetworkEvents else None
        if rule is not None and hEventObject is not None:
            proxy = self._proxies.get((s, id(hEventObject)))
            if proxy is None:
                proxy = self._proxies[(s, id(hEventObject))] = _DelayedEvent(
                    self, rule, s, hEventObject
                )
            hEventObject = proxy
        return self.base.WSPEventSelect(s, hEventObject, lNetworkEvents, lpErrno)

    def WSPEnumNetworkEvents(self, s, hEventObject, lpNetworkEvents, lpErrno):  # type: ignore[no-untyped-def]
        proxy = self._proxies.get((s, id(hEventObject))) if hEventObject is not None else None
        if proxy is not None:
            # Reset both: the application's object and the layer's proxy.
            hEventObject.reset()
            hEventObject = proxy
        return self.base.WSPEnumNetworkEvents(s, hEventObject, lpNetworkEvents, lpErrno)

    def WSPCloseSocket(self, s, lpErrno):  # type: ignore[no-untyped-def]
        for key in [k for k in self._proxies if k[0] == s]:
            del self._proxies[key]
        return self.base.WSPCloseSocket(s, lpErrno)

    def _later(self, delay: float, callback: Any, *args: Any) -> None:
        loop = self.provider.loop
        timers = self._timers

        def fire() -> None:
            timers.discard(handle)
            callback(*args)

        handle = loop.call_later(delay, fire)
        timers.add(handle)


class _DelayedWindow(Window):
    """The layer's stand-in window (a real Window: the provider checks the type):
    forwards messages to the application's window, late for the rule's events."""

    __slots__ = ("layer", "rule", "s", "target")

    def __init__(self, layer: FaultLayer, rule: FaultRule, s: int, target: Any) -> None:
        super().__init__()
        self.layer, self.rule, self.s, self.target = layer, rule, s, target

    def post_message(self, message: Message) -> None:
        forwarded = Message(self.target, message.msg, message.wParam, message.lParam)
        event = WSAGETSELECTEVENT(message.lParam)
        if self.rule.active and event & self.rule.events:
            self.layer._record(self.rule, self.s, f"{event_name(event)} posted late")
            self.layer._later(self.rule.delay, self.target.post_message, forwarded)
        else:
            self.target.post_message(forwarded)


class _DelayedEvent(WSAEvent):
    """The layer's stand-in event object: a real WSAEvent (the provider checks the type)
    whose signal reaches the application's event object late."""

    __slots__ = ("layer", "rule", "s", "target")

    def __init__(self, layer: FaultLayer, rule: FaultRule, s: int, target: Any) -> None:
        super().__init__()
        self.layer, self.rule, self.s, self.target = layer, rule, s, target

    def set(self) -> None:
        if self.is_set():
            return
        super().set()
        # The core records the event before it signals: the record says which it was.
        rec = self.layer.provider._sockets.get(self.s)
        if self.rule.active and rec is not None and rec.recorded & self.rule.events:
            self.layer._record(self.rule, self.s, "event object signalled late")
            self.layer._later(self.rule.delay, self.target.set)
        else:
            self.target.set()
