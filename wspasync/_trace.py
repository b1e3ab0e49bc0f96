"""A recorder of everything a provider does, in order, with monotonic timestamps.

Attaching a :class:`Trace` wraps the provider's WSP methods on the instance (calls and
returns), and becomes the observer the engine and the notification core report to
(state changes, events posted, recorded or signalled). Nothing is paid when no trace
is attached: the hot paths only test an attribute for None.

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
    """One thing that happened: ``kind`` is call, return, state, event or note."""

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
                {k: _describe(v, k) for k, v in fields.items() if k != "lpErrno"},
            )
            return handle if isinstance(handle, int) else None

        def record_return(handle: int | None, args: tuple[Any, ...], rc: Any) -> None:
            box = args[-1] if args else None
            code = getattr(box, "value", 0)
            detail = {"rc": rc}
            if rc == SOCKET_ERROR or (name in ("WSPSocket", "WSPAccept") and rc == 2**64 - 1):
                detail["error"] = error_name(code)
            elif name in ("WSPSocket", "WSPAccept"):
                handle = rc
            self.add("return", handle, name, detail)
            # Calls change state synchronously (bind, listen, connect starting, close);
            # completions that come later are reported by the engine.
            rec = provider._sockets.get(handle) if isinstance(handle, int) else None
            if rec is not None:
                self.state_changed(rec)
            elif handle in self._states and self._states[handle] != "CLOSED":
                self._states[handle] = "CLOSED"
                self.add("state", handle, "-> CLOSED", {"to": "CLOSED"})

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
        self.add(
            "event",
            rec.handle,
            f"{event_name(value)}({error_name(error)})",
            {"event": event_name(value), "error": error_name(error), "outcome": outcome},
        )

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
