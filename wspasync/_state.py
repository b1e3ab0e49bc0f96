"""The per-socket state machine: pure, no I/O, no clock.

Theory of operation
-------------------
Winsock keeps its own idea of a socket's state and never asks the transport what it
thinks (SEMANTICS.md §1). Linux disagrees with Windows in several places -- a
nonblocking loopback connect is often complete before ``connect`` returns, a socket
whose connect failed may not be reusable, a never-connected stream socket polls as
writable -- so the provider tracks the Windows state itself, here.

A socket moves between the conditions of :class:`State` only through the transitions
listed in :data:`TRANSITIONS`, keyed by ``(state, event type)`` as h11 does. A pair
that is not in the table is refused; :data:`REFUSALS` names the Winsock error code
each refusal carries (everything else is ``WSAEINVAL``). The engine feeds events in;
nothing here knows whether a loop, a thread or a test is driving it.

Events are classes used as keys. They are not instantiated on the connect path: data
that goes with an event (the error code a connect finished with) is passed alongside.
"""

from __future__ import annotations

import enum

from ._constants import ErrorCode

__all__ = [
    "State",
    "Event",
    "BindRequested",
    "ListenRequested",
    "ConnectRequested",
    "ConnectSucceeded",
    "ConnectFailed",
    "PeerSet",
    "PeerCleared",
    "Cancelled",
    "CloseRequested",
    "TRANSITIONS",
    "REFUSALS",
    "next_state",
]


class State(enum.Enum):
    UNBOUND = "UNBOUND"
    BOUND = "BOUND"
    LISTENING = "LISTENING"
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    FAILED = "FAILED"
    # A blocking call was cancelled (WSPCancelBlockingCall, or asyncio cancellation of
    # a blocking connect): per the WSPCancelBlockingCall page the socket is then good
    # for nothing but closesocket.
    DEAD = "DEAD"
    CLOSED = "CLOSED"

    # Members are singletons compared by identity, so identity hashing is consistent;
    # Enum's own __hash__ is a Python-level hash(self._name_), paid by every
    # next_state() lookup (three per connect cycle).
    __hash__ = object.__hash__


class Event:
    """Base of the core's input events; the subclasses are the table's keys."""


class BindRequested(Event):
    """WSPBind, explicit."""


class ListenRequested(Event):
    """WSPListen."""


class ConnectRequested(Event):
    """A stream connect attempt starts (first attempt or a retry after a failure)."""


class ConnectSucceeded(Event):
    """The attempt in progress finished with error 0 (ConnectFinished, success side)."""


class ConnectFailed(Event):
    """The attempt in progress finished with a Winsock error (ConnectFinished, failure)."""


class PeerSet(Event):
    """A datagram socket's default peer was set by connect (completes at once)."""


class PeerCleared(Event):
    """A datagram socket was disconnected by connect to an all-zero name."""


class Cancelled(Event):
    """A blocking connect was cancelled; only closesocket remains legal."""


class CloseRequested(Event):
    """WSPCloseSocket."""


S = State

#: (state, event type) -> new state. Every legal move is here; nothing else is legal.
TRANSITIONS: dict[tuple[State, type[Event]], State] = {
    (S.UNBOUND, BindRequested): S.BOUND,
    (S.UNBOUND, ConnectRequested): S.CONNECTING,
    (S.BOUND, ConnectRequested): S.CONNECTING,
    (S.BOUND, ListenRequested): S.LISTENING,
    # listen() again on a listener only changes the backlog (listen page: "a
    # subsequent call ... will update the current backlog").
    (S.LISTENING, ListenRequested): S.LISTENING,
    (S.CONNECTING, ConnectSucceeded): S.CONNECTED,
    (S.CONNECTING, ConnectFailed): S.FAILED,
    (S.CONNECTING, Cancelled): S.DEAD,
    # A failed attempt may be retried on the same handle (connect page: "If the
    # connection attempt fails ... the application can call connect again").
    (S.FAILED, ConnectRequested): S.CONNECTING,
    # Datagram sockets: connect sets or clears the default peer, at once.
    (S.UNBOUND, PeerSet): S.CONNECTED,
    (S.BOUND, PeerSet): S.CONNECTED,
    (S.CONNECTED, PeerSet): S.CONNECTED,
    (S.UNBOUND, PeerCleared): S.BOUND,
    (S.BOUND, PeerCleared): S.BOUND,
    (S.CONNECTED, PeerCleared): S.BOUND,
}
for _state in State:
    if _state is not S.CLOSED:
        TRANSITIONS[(_state, CloseRequested)] = S.CLOSED
del _state

#: The Winsock error of an illegal (state, event) pair, where it is not WSAEINVAL.
REFUSALS: dict[tuple[State, type[Event]], ErrorCode] = {
    (S.CONNECTING, ConnectRequested): ErrorCode.WSAEALREADY,
    (S.CONNECTED, ConnectRequested): ErrorCode.WSAEISCONN,
    (S.CONNECTING, ListenRequested): ErrorCode.WSAEISCONN,
    (S.CONNECTED, ListenRequested): ErrorCode.WSAEISCONN,
    (S.CLOSED, ConnectRequested): ErrorCode.WSAENOTSOCK,
    (S.CLOSED, BindRequested): ErrorCode.WSAENOTSOCK,
    (S.CLOSED, ListenRequested): ErrorCode.WSAENOTSOCK,
}


class IllegalTransition(Exception):
    """An event that the table does not allow in the current state."""

    def __init__(self, state: State, event: type[Event], code: ErrorCode) -> None:
        super().__init__(f"{event.__name__} in {state.value}: {code.name}")
        self.state = state
        self.event = event
        self.code = code


def next_state(state: State, event: type[Event]) -> State:
    """The state after *event*; raises :class:`IllegalTransition` with the Winsock code."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        code = REFUSALS.get((state, event), ErrorCode.WSAEINVAL)
        raise IllegalTransition(state, event, code) from None
