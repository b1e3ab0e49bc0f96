"""Notification rules: one network event, three projections. Pure: no loop, no socket.

Theory of operation
-------------------
Windows reports the same happening -- "the connect finished with WSAECONNREFUSED",
"a connection is pending on the listener" -- through three independent routes, and
each has its own bookkeeping (SEMANTICS.md §3-§4):

* ``WSPSelect`` is level-triggered and keeps no memory: :func:`select_ready` derives
  the three sets from the socket's Winsock state and the transport's current levels.
* ``WSPAsyncSelect`` (message mode) posts a message when an event happens, if the mask
  admits it and the event is not *held*: a posted FD_READ/FD_WRITE/FD_OOB/FD_ACCEPT/
  FD_QOS stays held until the matching re-enabling call (recv, a send that would
  block, accept, SIO_GET_QOS). FD_CONNECT and FD_CLOSE happen once per attempt or
  connection and have no re-enabling call.
* ``WSPEventSelect`` (event mode) records the event in the network-event record with
  its error code and signals the event object if the mask admits it; the record is
  kept even while masked out, and ``WSPEnumNetworkEvents`` hands over and clears the
  admitted part of it in one step. A new arrival records again, so event mode signals
  again without any re-enabling call.

:class:`Notifications` holds that per-socket bookkeeping and :func:`fire` is the one
place that projects an event into it. The socket record of the provider inherits the
fields, so the hot path pays no extra object per socket.

The targets are duck-typed: a window needs ``post_message(Message)``, an event object
needs ``set()`` and ``reset()``. They are the only way out of this module.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._constants import (
    FD_ACCEPT,
    FD_ACCEPT_BIT,
    FD_ADDRESS_LIST_CHANGE,
    FD_CLOSE,
    FD_CONNECT,
    FD_CONNECT_BIT,
    FD_GROUP_QOS,
    FD_CLOSE_BIT,
    FD_MAX_EVENTS,
    FD_OOB,
    FD_OOB_BIT,
    FD_QOS,
    FD_READ,
    FD_READ_BIT,
    FD_ROUTING_INTERFACE_CHANGE,
    FD_WRITE,
    FD_WRITE_BIT,
    WSAMAKESELECTREPLY,
)
from ._state import ConnectFailed, ConnectSucceeded, State, next_state
from ._structs import Message, WSANetworkEvents

__all__ = [
    "MODE_NONE",
    "MODE_MESSAGE",
    "MODE_EVENT",
    "REENABLED_BY_CALL",
    "Notifications",
    "fire",
    "register",
    "enum_network_events",
    "connect_finished",
    "select_ready",
    "connection_pending",
    "accept_called",
    "inherit_registration",
    "data_arrived",
    "oob_arrived",
    "peer_closed",
    "recv_called",
    "send_would_block",
    "room_again",
    "datagram_connected",
    "level_events",
]

MODE_NONE = 0
MODE_MESSAGE = 1
MODE_EVENT = 2

#: Message-mode events that, once posted, wait for a re-enabling call (WSAAsyncSelect
#: page, "Remarks": the re-enabling function table). FD_CONNECT and FD_CLOSE are not
#: here: they have no re-enabling function and happen once per attempt / connection.
REENABLED_BY_CALL = (
    FD_READ
    | FD_WRITE
    | FD_OOB
    | FD_ACCEPT
    | FD_QOS
    | FD_GROUP_QOS
    | FD_ROUTING_INTERFACE_CHANGE
    | FD_ADDRESS_LIST_CHANGE
)

_NO_ERRORS = (0,) * FD_MAX_EVENTS


@attrs.define(eq=False)
class Notifications:
    """Per-socket registration and network-event record.

    ``recorded`` is the event-select record (events not yet enumerated), ``errors`` its
    per-bit error codes (allocated on the first non-zero code), ``held`` the
    message-mode events posted and not yet re-enabled.
    """

    handle: int
    mode: int = MODE_NONE
    mask: int = 0
    window: Any = None
    wmsg: int = 0
    event: Any = None
    recorded: int = 0
    held: int = 0
    errors: list[int] | None = None
    observer: Any = None  # a trace recorder, when one is attached


def fire(rec: Notifications, value: int, index: int, error: int) -> None:
    """Project one network event (bit *value*, index *index*) with *error* into *rec*."""
    errors = rec.errors
    if errors is not None:
        errors[index] = error
    elif error:
        errors = rec.errors = [0] * FD_MAX_EVENTS
        errors[index] = error
    mode = rec.mode
    if mode == MODE_MESSAGE and rec.mask & value and not rec.held & value:
        message = Message(rec.window, rec.wmsg, rec.handle, WSAMAKESELECTREPLY(value, error))
        rec.window.post_message(message)
        if value & REENABLED_BY_CALL:
            rec.held |= value
        outcome = "posted"
    else:
        rec.recorded |= value
        if mode == MODE_EVENT and rec.mask & value:
            rec.event.set()
            outcome = "signalled"
        else:
            outcome = "recorded"
    if rec.observer is not None:
        rec.observer.fired(rec, value, error, outcome)


def register(
    rec: Notifications, mode: int, mask: int, target: Any, wmsg: int, level: int
) -> None:
    """WSPAsyncSelect (``MODE_MESSAGE``) or WSPEventSelect (``MODE_EVENT``) on *rec*.

    One registration per socket: this replaces whatever was there. A zero mask leaves
    the socket unregistered. *level* holds the conditions true right now (writable,
    unread data, pending accept, peer closed) as FD bits: message mode re-posts the
    ones the mask admits, in bit order; event mode posts nothing new but signals for
    what the record (kept across re-registration, observed) already holds.
    """
    if not mask:
        rec.mode, rec.mask, rec.window, rec.event = MODE_NONE, 0, None, None
        return
    rec.mode, rec.mask = mode, mask
    rec.held = 0
    if mode == MODE_MESSAGE:
        rec.window, rec.wmsg, rec.event = target, wmsg, None
        posting = level & mask
        bit = 1
        index = 0
        while posting:
            if posting & bit:
                error = rec.errors[index] if rec.errors is not None and bit == FD_CLOSE else 0
                fire(rec, bit, index, error)
                posting &= ~bit
            bit <<= 1
            index += 1
    else:
        rec.window, rec.event = None, target
        if rec.recorded & mask:
            target.set()


def enum_network_events(rec: Notifications, out: WSANetworkEvents, event: Any) -> None:
    """WSPEnumNetworkEvents: copy the admitted record into *out*, clear it, reset *event*.

    Error codes are written only for the bits reported (WSAEnumNetworkEvents page).
    """
    reported = rec.recorded & rec.mask
    rec.recorded &= ~reported
    out.lNetworkEvents = reported
    errors = rec.errors or _NO_ERRORS
    codes = out.iErrorCode
    index = 0
    bits = reported
    while bits:
        if bits & 1:
            codes[index] = errors[index]
        bits >>= 1
        index += 1
    if event is not None:
        event.reset()


def connect_finished(rec: Any, error: int, synchronous: bool) -> None:
    """The end of a connect attempt: the one core event behind every route.

    *rec* carries :class:`Notifications` plus ``state``, ``so_error`` and
    ``connect_error``. Success: CONNECTED, SO_ERROR 0, FD_CONNECT(0) then FD_WRITE(0).
    Failure: FAILED, one FD_CONNECT(error) and nothing else; SO_ERROR keeps the code
    (observed: reading does not clear it, a retry does not reset it), except after a
    synchronous (blocking) failure, where it reads 0 (observed, Wine sock.c).
    """
    if error:
        rec.state = next_state(rec.state, ConnectFailed)
        rec.connect_error = error
        if not synchronous:
            rec.so_error = error
        if rec.observer is not None:
            rec.observer.state_changed(rec)
        fire(rec, FD_CONNECT, FD_CONNECT_BIT, error)
    else:
        rec.state = next_state(rec.state, ConnectSucceeded)
        rec.connect_error = 0
        rec.so_error = 0
        if rec.mode == MODE_NONE and rec.observer is None and rec.errors is None:
            # Nobody registered or watching: both events only enter the record. What
            # fire() would do, without its two calls (a blocking connect's hot path).
            rec.recorded |= FD_CONNECT | FD_WRITE
            return
        if rec.observer is not None:
            rec.observer.state_changed(rec)
        fire(rec, FD_CONNECT, FD_CONNECT_BIT, 0)
        fire(rec, FD_WRITE, FD_WRITE_BIT, 0)


def select_ready(
    state: State,
    stream: bool,
    connect_error: int,
    os_readable: bool,
    os_writable: bool,
    pending_accepts: int,
    oob_pending: bool = False,
    oob_inline: bool = False,
) -> tuple[bool, bool, bool]:
    """(readable, writable, exceptional) as WSPSelect sees a socket.

    *os_readable*/*os_writable* are the transport's levels (data, a graceful peer
    close or a reset; room to send); the Winsock state decides what they mean. A
    stream socket that never connected is in no set (Linux would call it writable and
    hung up); a failed connect is in exceptfds only, until a new attempt starts; a
    connecting socket is in no set. Urgent (OOB) data puts a connected socket in
    exceptfds unless SO_OOBINLINE is on, in which case it is ordinary data and makes
    the socket readable (select page; Wine sock.c test_select).
    """
    if state is State.CONNECTED:
        if oob_pending:
            if oob_inline:
                return True, os_writable, False
            return os_readable, os_writable, True
        return os_readable, os_writable, False
    if state is State.LISTENING:
        return pending_accepts > 0, False, False
    if state is State.FAILED:
        return False, False, connect_error != 0
    if not stream and state in (State.UNBOUND, State.BOUND):
        # An unconnected datagram socket can always sendto; it is readable when a
        # datagram waits.
        return os_readable, True, False
    return False, False, False


def connection_pending(rec: Notifications) -> None:
    """A connection arrived on a listener: FD_ACCEPT, once per pending connection.

    Message mode posts it unless an earlier FD_ACCEPT is still held; event mode
    records and signals on every arrival (SEMANTICS.md §4).
    """
    fire(rec, FD_ACCEPT, FD_ACCEPT_BIT, 0)


def accept_called(rec: Notifications, remaining: int, deferred: bool) -> None:
    """WSPAccept ran (successfully or not); *remaining* connections still wait.

    accept re-enables FD_ACCEPT even when it fails, and if more connections are
    pending a new FD_ACCEPT follows. A condition function that answered CF_DEFER
    does not re-enable (WSPAccept page).
    """
    if deferred:
        return
    rec.held &= ~FD_ACCEPT
    if remaining:
        fire(rec, FD_ACCEPT, FD_ACCEPT_BIT, 0)


def inherit_registration(new: Notifications, listener: Notifications) -> None:
    """An accepted socket takes the listener's registration and reports FD_WRITE.

    It never reports FD_CONNECT (WSAAsyncSelect page; Wine sock.c).
    """
    new.mode, new.mask = listener.mode, listener.mask
    new.window, new.wmsg, new.event = listener.window, listener.wmsg, listener.event
    fire(new, FD_WRITE, FD_WRITE_BIT, 0)


# -- data transfer: FD_READ, FD_OOB, FD_WRITE, FD_CLOSE ------------------------------
#
# The engine reports transport facts -- "data arrived", "urgent data arrived", "the
# peer closed (gracefully or by a reset)", "room to send again" -- and the calls the
# application makes (recv, a send that would block). What each means for the three
# routes is decided here. Sources: the WSAAsyncSelect and WSAEventSelect pages
# ("Remarks": the re-enabling table, "FD_READ ... posted again if data remains") and
# the event sequences Wine's dlls/ws2_32/tests/sock.c (test_read_events,
# test_write_events, test_oob_events, test_close_events, test_connect_events) expects
# from real Windows; "(observed)" marks where those tests and the docs disagree.


def data_arrived(rec: Notifications) -> None:
    """New data (a stream segment, a datagram) arrived: FD_READ.

    Message mode posts it unless an FD_READ is held (posted and not yet re-enabled by
    recv); event mode records and signals on every arrival, even with the earlier data
    still unread (observed: Wine test_read_events, "check_events_todo ... FD_READ").
    """
    fire(rec, FD_READ, FD_READ_BIT, 0)


def oob_arrived(rec: Notifications) -> None:
    """Urgent data arrived on a socket without SO_OOBINLINE: FD_OOB (held like FD_READ)."""
    fire(rec, FD_OOB, FD_OOB_BIT, 0)


def peer_closed(rec: Notifications, error: int) -> None:
    """The peer closed the connection: FD_CLOSE once, with *error*.

    The engine calls this once per connection. A graceful close or a peer
    shutdown(SD_SEND) carries 0 and is posted when the FIN arrives, even with data
    still unread -- after the FD_READ for that data (observed: Wine test_close_events,
    "Test sending data before calling closesocket()"). An abortive close (RST) carries
    WSAECONNABORTED (observed; the docs say WSAECONNRESET): the engine passes
    ``fd_close_error(errno)``. FD_CLOSE has no re-enabling call; a message-mode
    re-registration re-posts it, with the same error, as a level condition.
    """
    fire(rec, FD_CLOSE, FD_CLOSE_BIT, error)


def recv_called(rec: Notifications, oob: bool, succeeded: bool, remains: bool) -> None:
    """A recv (FD_OOB for MSG_OOB, else FD_READ) ran; *remains*: data is still queued.

    * Message mode: recv re-enables the event even when it fails, and if data remains
      the event is posted again at once (WSAAsyncSelect page; observed: a recv failing
      with WSAEFAULT re-posts FD_READ, Wine test_read_events).
    * Event mode and no registration: a successful recv clears the recorded bit (a
      later registration must not report data already read: Wine test_read_events,
      "select 0; send; sync_recv; select" reports nothing) and records it again if
      data remains; a failing recv changes nothing (observed, same test).
    """
    value, index = (FD_OOB, FD_OOB_BIT) if oob else (FD_READ, FD_READ_BIT)
    if succeeded:
        rec.held &= ~value
        rec.recorded &= ~value
    elif rec.mode == MODE_MESSAGE:
        rec.held &= ~value
    else:
        return
    if remains:
        fire(rec, value, index, 0)


def send_would_block(rec: Notifications) -> None:
    """A send failed with WSAEWOULDBLOCK: the one call that re-enables FD_WRITE.

    The engine then watches for room and reports :func:`room_again`. A successful
    send neither re-enables nor clears FD_WRITE (observed: Wine test_write_events,
    "Despite the documentation ... calling send() doesn't clear the FD_WRITE bit").
    """
    rec.held &= ~FD_WRITE


def room_again(rec: Notifications) -> None:
    """Room to send returned after a send that would block: FD_WRITE, once."""
    fire(rec, FD_WRITE, FD_WRITE_BIT, 0)


def datagram_connected(rec: Notifications) -> None:
    """connect on a datagram socket set the default peer (it completes at once).

    Event mode reports FD_CONNECT with FD_WRITE; message mode posts FD_WRITE (again,
    if the registration already posted one) and no FD_CONNECT (observed: Wine
    test_connect_events, "Test with UDP sockets").
    """
    if rec.mode == MODE_MESSAGE:
        rec.held &= ~FD_WRITE
    else:
        fire(rec, FD_CONNECT, FD_CONNECT_BIT, 0)
    fire(rec, FD_WRITE, FD_WRITE_BIT, 0)


def level_events(
    state: State,
    stream: bool,
    pending_accepts: int,
    data: bool,
    writable: bool,
    oob: bool,
    oob_inline: bool,
    closed: bool,
) -> int:
    """The FD_* conditions that hold now, which a message-mode registration re-posts.

    Writable (a connected stream socket, or any datagram socket, with room), unread
    data, urgent data (FD_READ instead with SO_OOBINLINE), a pending connection, and a
    peer that closed (observed: Wine test_*_events re-register and expect FD_WRITE,
    FD_READ, FD_OOB, FD_ACCEPT and FD_CLOSE again in message mode only).
    """
    if state is State.LISTENING:
        return FD_ACCEPT if pending_accepts else 0
    if stream and state is not State.CONNECTED:
        return 0
    bits = 0
    if data or (oob and oob_inline):
        bits |= FD_READ
    if writable:
        bits |= FD_WRITE
    if oob and not oob_inline:
        bits |= FD_OOB
    if closed:
        bits |= FD_CLOSE
    return bits
