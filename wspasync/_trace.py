"""A recorder of everything a provider does, in order, with monotonic timestamps.

Attaching a :class:`Trace` wraps the provider's WSP methods on the instance (calls and
returns), and becomes the observer the engine and the notification core report to
(state changes, events posted, recorded or signalled). Nothing is paid when no trace
is attached: the hot paths only test an attribute for None.

Derived here, from what the wrapped calls see, so the core needs no extra hooks:

* ``reenable`` -- a message-mode event that was held (posted, waiting for its
  re-enabling call) is re-armed, with the call that did it as the cause ("FD_READ
  re-enabled by WSPRecv"); a re-registration counts as one;
* ``eventobj`` -- an event object signalled (by the core, or by a WSPEventSelect whose
  record already holds events) or reset (by WSPEnumNetworkEvents); event objects
  and windows are named by order of appearance (``event#1``), so the names are the
  same on every loop;
* ``fault`` -- a rule of a fault layer (``wspasync.testing.FaultLayer``) fired.

A trace is a list of :class:`TraceEntry`. ``sequence()`` drops the timestamps, so the
same scenario gives the same sequence on asyncio and uvloop.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from typing import Any

import attrs

from ._constants import AF_INET6, SOCKET_ERROR, error_name, event_name
from ._sockaddr import parse_sockaddr

__all__ = ["Trace", "TraceEntry"]

_TRACED_METHODS = (
    "WSPSocket",
    "WSPBind",
    "WSPListen",
    "WSPAccept",
    "WSPConnect",
    "WSPSend",
    "WSPSendTo",
    "WSPRecv",
    "WSPRecvFrom",
    "WSPSelect",
    "WSPAsyncSelect",
    "WSPEventSelect",
    "WSPEnumNetworkEvents",
    "WSPGetSockName",
    "WSPGetPeerName",
    "WSPGetSockOpt",
    "WSPSetSockOpt",
    "WSPIoctl",
    "WSPShutdown",
    "WSPCloseSocket",
    "WSPCancelBlockingCall",
    "WSPCleanup",
)


@attrs.frozen
class TraceEntry:
    """One thing that happened: ``kind`` is call, return, state, event, reenable,
    eventobj, fault or note."""

    t_ns: int
    kind: str
    handle: int | None
    what: str
    detail: dict[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "t_ns": self.t_ns,
            "kind": self.kind,
            "handle": self.handle,
            "what": self.what,
            "detail": self.detail,
        }


_SOCKADDR_PARAMS = frozenset({"name", "lpTo", "lpFrom", "addr"})


def _describe(value: Any, param: str = "") -> Any:
    if param in _SOCKADDR_PARAMS and isinstance(value, (bytes, bytearray, memoryview)):
        try:
            family, host, port, *_ = parse_sockaddr(value)
            return f"[{host}]:{port}" if family == AF_INET6 else f"{host}:{port}"
        except ValueError:
            pass
    if hasattr(value, "value") and type(value).__name__ in ("Errno", "c_int", "c_uint", "c_long"):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return repr(value)


class Trace:
    """Records a provider's calls, returns, state changes and notifications."""

    def __init__(self) -> None:
        self.entries: list[TraceEntry] = []
        self.t0_ns = time.monotonic_ns()
        self._states: dict[int, str] = {}
        self._provider: Any = None
        # id(event object or window) -> (the object, "event#1"); the object is kept so
        # that its id cannot be reused by another one while the trace lives.
        self._names: dict[int, tuple[Any, str]] = {}
        self._held: dict[int, int] = {}  # handle -> held bits when its call began
        self._calls: dict[int, str] = {}  # handle -> WSP call in progress on it

    # -- attaching ----------------------------------------------------------------

    def attach(self, provider: Any) -> Trace:
        """Start recording *provider* (sockets that exist already included)."""
        self._provider = provider
        provider._engine.observer = self
        for rec in provider._sockets.values():
            rec.observer = self
            self._states[rec.handle] = rec.state.value
        for name in _TRACED_METHODS:
            method = getattr(type(provider), name, None)
            if method is not None:
                setattr(provider, name, self._wrap(provider, name, method))
        return self

    def detach(self) -> None:
        provider = self._provider
        if provider is None:
            return
        provider._engine.observer = None
        for rec in provider._sockets.values():
            rec.observer = None
        for name in _TRACED_METHODS:
            provider.__dict__.pop(name, None)
        self._provider = None

    def _wrap(self, provider: Any, name: str, method: Any) -> Any:
        params = list(inspect.signature(method).parameters)[1:]
        bound = method.__get__(provider)

        def record_call(args: tuple[Any, ...]) -> int | None:
            fields = dict(zip(params, args))
            handle = fields.get("s")
            self.add(
                "call",
                handle if isinstance(handle, int) else None,
                name,
                {k: self._describe(v, k) for k, v in fields.items() if k != "lpErrno"},
            )
            if not isinstance(handle, int):
                return None
            rec = provider._sockets.get(handle)
            if rec is not None:
                self._held[handle] = rec.held
                self._calls[handle] = name
                if name == "WSPEventSelect":
                    obj = fields.get("hEventObject")
                    was_set = getattr(obj, "is_set", lambda: True)()
                    self._calls[handle] = name if was_set else f"{name}:unset"
            return handle

        def record_return(handle: int | None, args: tuple[Any, ...], rc: Any) -> None:
            box = args[-1] if args else None
            code = getattr(box, "value", 0)
            detail = {"rc": rc}
            if rc == SOCKET_ERROR or (name in ("WSPSocket", "WSPAccept") and rc == 2**64 - 1):
                detail["error"] = error_name(code)
            elif name in ("WSPSocket", "WSPAccept"):
                handle = rc
            self.add("return", handle, name, detail)
            self._after_call(provider, name, handle, args)
            # Calls change state synchronously (bind, listen, connect starting, close);
            # completions that come later are reported by the engine.
            rec = provider._sockets.get(handle) if isinstance(handle, int) else None
            if rec is not None:
                self.state_changed(rec)
            elif handle in self._states and self._states[handle] != "CLOSED":
                old = self._states[handle]
                self._states[handle] = "CLOSED"
                self.add("state", handle, f"{old} -> CLOSED", {"from": old, "to": "CLOSED"})

        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def traced_async(*args: Any) -> Any:
                handle = record_call(args)
                rc = await bound(*args)
                record_return(handle, args, rc)
                return rc

            return traced_async

        @functools.wraps(method)
        def traced(*args: Any) -> Any:
            handle = record_call(args)
            rc = bound(*args)
            record_return(handle, args, rc)
            return rc

        return traced

    # -- what the engine and the core report -------------------------------------------

    def add(self, kind: str, handle: int | None, what: str, detail: dict[str, Any] | None = None) -> None:
        self.entries.append(TraceEntry(time.monotonic_ns(), kind, handle, what, detail or {}))

    def state_changed(self, rec: Any) -> None:
        new = rec.state.value
        old = self._states.get(rec.handle)
        if old == new:
            return
        self._states[rec.handle] = new
        self.add("state", rec.handle, f"{old} -> {new}", {"from": old, "to": new})

    def fired(self, rec: Any, value: int, error: int, outcome: str) -> None:
        if rec.observer is None:
            rec.observer = self
        handle = rec.handle
        if outcome == "posted":
            held = self._held.get(handle, 0)
            if held & value and handle in self._calls:
                # Held when the call began, posted again now: this call re-enabled it.
                self._held[handle] = held & ~value
                self._reenabled(handle, value)
        self.add(
            "event",
            handle,
            f"{event_name(value)}({error_name(error)})",
            {"event": event_name(value), "error": error_name(error), "outcome": outcome},
        )
        if outcome == "signalled":
            self._event_object(handle, "set", rec.event, event_name(value))

    def fault(self, rule: Any, handle: int | None, detail: str = "") -> None:
        """A fault layer's rule fired (``wspasync.testing.FaultLayer``)."""
        what = rule.describe() + (f": {detail}" if detail else "")
        self.add("fault", handle, what, {"rule": rule.describe(), "hits": rule.hits})

    def _name(self, obj: Any, kind: str) -> str:
        known = self._names.get(id(obj))
        if known is not None:
            return known[1]
        count = sum(1 for _, n in self._names.values() if n.startswith(kind + "#"))
        name = f"{kind}#{count + 1}"
        self._names[id(obj)] = (obj, name)
        return name

    def _describe(self, value: Any, param: str = "") -> Any:
        if param == "hEventObject" and value is not None:
            return self._name(value, "event")
        if param == "hWnd" and value is not None:
            return self._name(value, "window")
        return _describe(value, param)

    def _reenabled(self, handle: int, bits: int) -> None:
        cause = self._calls.get(handle, "?").partition(":")[0]
        self.add(
            "reenable",
            handle,
            f"{event_name(bits)} re-enabled by {cause}",
            {"events": event_name(bits), "cause": cause},
        )

    def _event_object(self, handle: int | None, action: str, obj: Any, why: str) -> None:
        if obj is None:
            return
        name = self._name(obj, "event")
        self.add(
            "eventobj",
            handle,
            f"{name} {action} by {why}",
            {"object": name, "action": action, "by": why},
        )

    def _after_call(self, provider: Any, name: str, handle: int | None, args: tuple[Any, ...]) -> None:
        if handle is None:
            return
        call = self._calls.pop(handle, name)
        held = self._held.pop(handle, 0)
        rec = provider._sockets.get(handle)
        if rec is None:
            return
        cleared = held & ~rec.held
        if cleared:
            self._reenabled(handle, cleared)
        if name == "WSPEnumNetworkEvents" and len(args) >= 2 and args[1] is not None:
            self._event_object(handle, "reset", args[1], name)
        elif name == "WSPEventSelect" and ":" in call and rec.event is not None and rec.event.is_set():
            # Signalled by the registration itself: the record already held events.
            self._event_object(handle, "set", rec.event, name)

    def note(self, what: str, handle: int | None = None, **detail: Any) -> None:
        """An application-level mark (e.g. "GetMessage returned ...")."""
        self.add("note", handle, what, detail)

    # -- reading ---------------------------------------------------------------------------

    def sequence(self) -> list[tuple[str, str]]:
        """(kind, what) pairs without timestamps or handles: comparable across loops."""
        return [(e.kind, e.what) for e in self.entries]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "wspasync.trace/1",
            "t0_ns": self.t0_ns,
            "entries": [e.to_json() for e in self.entries],
        }

    def dump(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
