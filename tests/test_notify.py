"""Notification rules (pure, no loop): one connect outcome, three projections.

Fakes stand in for the targets: a window that records the messages posted to it and an
event object that records set()/reset(). Everything asserted is what a caller would
observe: messages, the event-select record and its error codes, select sets, SO_ERROR.
"""

from __future__ import annotations

import attrs
import pytest

from wspasync import (
    FD_ACCEPT,
    FD_ACCEPT_BIT,
    FD_CLOSE,
    FD_CLOSE_BIT,
    FD_CONNECT,
    FD_CONNECT_BIT,
    FD_READ,
    FD_READ_BIT,
    FD_WRITE,
    FD_WRITE_BIT,
    WSAECONNREFUSED,
    WSAETIMEDOUT,
    WSAGETSELECTERROR,
    WSAGETSELECTEVENT,
    WSANetworkEvents,
)
from wspasync._notify import (
    MODE_EVENT,
    MODE_MESSAGE,
    MODE_NONE,
    Notifications,
    accept_called,
    connect_finished,
    connection_pending,
    enum_network_events,
    fire,
    inherit_registration,
    recv_called,
    register,
    select_ready,
)
from wspasync._state import IllegalTransition, State

HANDLE = 0x1234
WM = 0x400 + 7


class FakeWindow:
    def __init__(self):
        self.posted = []

    def post_message(self, message):
        self.posted.append(message)

    def events(self):
        """(event, error) of every message posted, in order."""
        return [(WSAGETSELECTEVENT(m.lParam), WSAGETSELECTERROR(m.lParam)) for m in self.posted]


class FakeEvent:
    def __init__(self):
        self.calls = []

    def set(self):
        self.calls.append("set")

    def reset(self):
        self.calls.append("reset")


@attrs.define(eq=False)
class Rec(Notifications):
    """The fields connect_finished needs besides the registration (as SocketRecord has)."""

    state: State = State.CONNECTING
    so_error: int = 0
    connect_error: int = 0


def message_rec(mask=FD_CONNECT | FD_WRITE | FD_READ | FD_CLOSE | FD_ACCEPT, level=0):
    rec = Rec(HANDLE)
    window = FakeWindow()
    register(rec, MODE_MESSAGE, mask, window, WM, level)
    return rec, window


def event_rec(mask=FD_CONNECT | FD_WRITE | FD_READ | FD_CLOSE | FD_ACCEPT):
    rec = Rec(HANDLE)
    event = FakeEvent()
    register(rec, MODE_EVENT, mask, event, 0, 0)
    return rec, event


def enum(rec, event=None, out=None):
    out = out if out is not None else WSANetworkEvents()
    enum_network_events(rec, out, event)
    return out


# -- connect outcome, message mode ---------------------------------------------------


def test_success_posts_connect_then_write():
    rec, window = message_rec()
    connect_finished(rec, 0, synchronous=False)
    assert window.events() == [(FD_CONNECT, 0), (FD_WRITE, 0)]
    for m in window.posted:
        assert (m.hwnd, m.msg, m.wParam) == (window, WM, HANDLE)
    assert rec.state is State.CONNECTED


@pytest.mark.parametrize("error", [WSAECONNREFUSED, WSAETIMEDOUT])
def test_failure_posts_one_connect_with_the_error(error):
    rec, window = message_rec()
    connect_finished(rec, error, synchronous=False)
    assert window.events() == [(FD_CONNECT, error)]
    assert rec.state is State.FAILED


def test_completion_is_one_per_attempt():
    """A second completion of the same attempt is illegal (the table refuses it)."""
    rec, window = message_rec()
    connect_finished(rec, WSAECONNREFUSED, synchronous=False)
    with pytest.raises(IllegalTransition):
        connect_finished(rec, 0, synchronous=False)
    assert window.events() == [(FD_CONNECT, WSAECONNREFUSED)]


def test_retry_after_failure_posts_a_new_connect():
    rec, window = message_rec()
    connect_finished(rec, WSAECONNREFUSED, synchronous=False)
    rec.state = State.CONNECTING  # the engine's ConnectRequested
    connect_finished(rec, 0, synchronous=False)
    assert window.events() == [(FD_CONNECT, WSAECONNREFUSED), (FD_CONNECT, 0), (FD_WRITE, 0)]


def test_masked_out_events_are_not_posted():
    rec, window = message_rec(mask=FD_CONNECT)
    connect_finished(rec, 0, synchronous=False)
    assert window.events() == [(FD_CONNECT, 0)]


def test_message_mode_holds_until_reenabled():
    rec, window = message_rec(mask=FD_READ | FD_WRITE | FD_ACCEPT)
    fire(rec, FD_READ, FD_READ_BIT, 0)
    fire(rec, FD_READ, FD_READ_BIT, 0)  # held: no second message
    assert window.events() == [(FD_READ, 0)]
    recv_called(rec, oob=False, succeeded=True, remains=False)  # recv re-enables
    fire(rec, FD_READ, FD_READ_BIT, 0)
    assert window.events() == [(FD_READ, 0), (FD_READ, 0)]
    # Re-enabling one event does not release another.
    fire(rec, FD_WRITE, FD_WRITE_BIT, 0)
    recv_called(rec, oob=False, succeeded=True, remains=False)  # recv re-enables
    fire(rec, FD_WRITE, FD_WRITE_BIT, 0)
    assert window.events().count((FD_WRITE, 0)) == 1


def test_connect_and_close_are_never_held():
    rec, window = message_rec()
    fire(rec, FD_CLOSE, FD_CLOSE_BIT, 0)
    fire(rec, FD_CONNECT, FD_CONNECT_BIT, 0)
    fire(rec, FD_CONNECT, FD_CONNECT_BIT, 0)
    assert rec.held & (FD_CONNECT | FD_CLOSE) == 0
    assert window.events() == [(FD_CLOSE, 0), (FD_CONNECT, 0), (FD_CONNECT, 0)]


# -- connect outcome, event mode -------------------------------------------------------


def test_event_mode_success_is_one_enum_with_both_bits():
    rec, event = event_rec()
    connect_finished(rec, 0, synchronous=False)
    assert "set" in event.calls
    out = enum(rec, event)
    assert out.lNetworkEvents == FD_CONNECT | FD_WRITE == 0x12
    assert out.iErrorCode[FD_CONNECT_BIT] == 0
    assert out.iErrorCode[FD_WRITE_BIT] == 0
    assert event.calls[-1] == "reset"
    assert enum(rec).lNetworkEvents == 0  # cleared


def test_event_mode_failure_reports_connect_only_with_the_error():
    rec, event = event_rec()
    connect_finished(rec, WSAECONNREFUSED, synchronous=False)
    out = enum(rec, event)
    assert out.lNetworkEvents == FD_CONNECT
    assert out.iErrorCode[FD_CONNECT_BIT] == WSAECONNREFUSED


def test_event_mode_signals_every_arrival():
    rec, event = event_rec()
    connection_pending(rec)
    connection_pending(rec)
    assert event.calls == ["set", "set"]


def test_event_mode_record_kept_while_masked_out():
    rec, event = event_rec(mask=FD_READ)
    connect_finished(rec, 0, synchronous=False)
    assert event.calls == []  # nothing admitted
    assert enum(rec, event).lNetworkEvents == 0  # nothing reported ...
    # ... but the record survives and is reported once the mask admits it.
    register(rec, MODE_EVENT, FD_CONNECT | FD_WRITE, event, 0, 0)
    assert event.calls[-1] == "set"
    out = enum(rec, event)
    assert out.lNetworkEvents == FD_CONNECT | FD_WRITE


def test_enum_writes_error_codes_only_for_reported_bits():
    rec, event = event_rec(mask=FD_CONNECT)
    fire(rec, FD_CLOSE, FD_CLOSE_BIT, 10053)  # recorded, masked out
    connect_finished(rec, WSAECONNREFUSED, synchronous=False)
    out = WSANetworkEvents(iErrorCode=[-7] * 10)
    enum(rec, event, out)
    assert out.lNetworkEvents == FD_CONNECT
    assert out.iErrorCode[FD_CONNECT_BIT] == WSAECONNREFUSED
    assert [c for i, c in enumerate(out.iErrorCode) if i != FD_CONNECT_BIT] == [-7] * 9
    # The masked-out part of the record is left alone.
    assert rec.recorded & FD_CLOSE


def test_enum_clears_and_resets_with_none_event():
    rec, event = event_rec()
    connect_finished(rec, 0, synchronous=False)
    out = enum(rec, None)
    assert out.lNetworkEvents == 0x12
    assert event.calls == ["set", "set"]  # no reset: hEventObject was None
    assert enum(rec, event).lNetworkEvents == 0
    assert event.calls[-1] == "reset"


# -- (re-)registration ---------------------------------------------------------------------


def test_message_registration_after_connect_posts_write_only():
    rec = Rec(HANDLE)
    connect_finished(rec, 0, synchronous=False)  # unregistered: only recorded
    window = FakeWindow()
    register(rec, MODE_MESSAGE, FD_CONNECT | FD_WRITE | FD_READ, window, WM, level=FD_WRITE)
    assert window.events() == [(FD_WRITE, 0)]


def test_event_registration_after_connect_reports_connect_and_write():
    rec = Rec(HANDLE)
    connect_finished(rec, 0, synchronous=False)
    event = FakeEvent()
    register(rec, MODE_EVENT, FD_CONNECT | FD_WRITE | FD_READ, event, 0, 0)
    assert event.calls == ["set"]
    assert enum(rec, event).lNetworkEvents == 0x12


def test_message_reregistration_reposts_write_only():
    rec, window = message_rec()
    connect_finished(rec, 0, synchronous=False)
    register(rec, MODE_MESSAGE, FD_CONNECT | FD_WRITE, window, WM, level=FD_WRITE)
    assert window.events() == [(FD_CONNECT, 0), (FD_WRITE, 0), (FD_WRITE, 0)]


def test_message_reregistration_posts_level_conditions_in_bit_order():
    rec, window = message_rec(mask=0)
    rec.state = State.CONNECTED
    register(rec, MODE_MESSAGE, FD_READ | FD_WRITE | FD_CLOSE, window, WM,
             level=FD_CLOSE | FD_WRITE | FD_READ)
    assert [e for e, _ in window.events()] == [FD_READ, FD_WRITE, FD_CLOSE]


def test_event_reregistration_reports_nothing_new():
    rec, event = event_rec()
    connect_finished(rec, 0, synchronous=False)
    enum(rec, event)
    register(rec, MODE_EVENT, FD_CONNECT | FD_WRITE, event, 0, FD_WRITE)
    assert event.calls[-1] == "reset"
    assert enum(rec, event).lNetworkEvents == 0


def test_reregistration_keeps_unconsumed_record():
    rec, event = event_rec()
    connect_finished(rec, WSAECONNREFUSED, synchronous=False)
    event2 = FakeEvent()
    register(rec, MODE_EVENT, FD_CONNECT, event2, 0, 0)
    assert event2.calls == ["set"]
    out = enum(rec, event2)
    assert out.lNetworkEvents == FD_CONNECT
    assert out.iErrorCode[FD_CONNECT_BIT] == WSAECONNREFUSED


def test_registration_cancels_the_other_mode():
    rec, event = event_rec()
    window = FakeWindow()
    register(rec, MODE_MESSAGE, FD_CONNECT | FD_WRITE, window, WM, 0)
    connect_finished(rec, 0, synchronous=False)
    assert event.calls == []
    assert window.events() == [(FD_CONNECT, 0), (FD_WRITE, 0)]
    # and back: the window gets nothing more
    register(rec, MODE_EVENT, FD_READ, event, 0, 0)
    fire(rec, FD_READ, FD_READ_BIT, 0)
    assert len(window.posted) == 2 and event.calls == ["set"]


def test_zero_mask_unregisters():
    rec, window = message_rec()
    register(rec, MODE_MESSAGE, 0, window, WM, FD_WRITE)
    assert rec.mode == MODE_NONE and rec.mask == 0
    connect_finished(rec, 0, synchronous=False)
    assert window.posted == []


# -- SO_ERROR persistence ------------------------------------------------------------------


def test_so_error_async_failure_keeps_the_code():
    rec = Rec(HANDLE)
    connect_finished(rec, WSAECONNREFUSED, synchronous=False)
    assert rec.so_error == WSAECONNREFUSED
    assert rec.so_error == WSAECONNREFUSED  # reading does not clear
    rec.state = State.CONNECTING  # a retry starts ...
    assert rec.so_error == WSAECONNREFUSED  # ... and does not reset it


def test_so_error_synchronous_failure_reads_zero():
    rec = Rec(HANDLE)
    connect_finished(rec, WSAECONNREFUSED, synchronous=True)
    assert rec.so_error == 0
    assert rec.connect_error == WSAECONNREFUSED
    assert rec.state is State.FAILED


def test_so_error_success_resets():
    rec = Rec(HANDLE)
    connect_finished(rec, WSAECONNREFUSED, synchronous=False)
    rec.state = State.CONNECTING
    connect_finished(rec, 0, synchronous=False)
    assert rec.so_error == 0
    assert rec.connect_error == 0


# -- select view -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "stream", "error", "r", "w", "accepts", "expected"),
    [
        (State.CONNECTED, True, 0, False, True, 0, (False, True, False)),
        (State.CONNECTED, True, 0, True, True, 0, (True, True, False)),
        (State.FAILED, True, WSAECONNREFUSED, True, True, 0, (False, False, True)),
        (State.CONNECTING, True, 0, False, True, 0, (False, False, False)),
        (State.CONNECTING, True, WSAECONNREFUSED, True, True, 0, (False, False, False)),  # retry
        (State.UNBOUND, True, 0, True, True, 0, (False, False, False)),  # never connected
        (State.BOUND, True, 0, True, True, 0, (False, False, False)),
        (State.LISTENING, True, 0, False, False, 2, (True, False, False)),
        (State.LISTENING, True, 0, True, True, 0, (False, False, False)),
        (State.UNBOUND, False, 0, False, False, 0, (False, True, False)),  # UDP writable
    ],
)
def test_select_ready(state, stream, error, r, w, accepts, expected):
    assert select_ready(state, stream, error, r, w, accepts) == expected


# -- accept ----------------------------------------------------------------------------------


def test_fd_accept_message_mode_once_until_accept():
    rec, window = message_rec(mask=FD_ACCEPT)
    connection_pending(rec)
    connection_pending(rec)  # held: the first is not yet re-enabled
    assert window.events() == [(FD_ACCEPT, 0)]
    accept_called(rec, remaining=1, deferred=False)  # re-enables and one still waits
    assert window.events() == [(FD_ACCEPT, 0), (FD_ACCEPT, 0)]
    accept_called(rec, remaining=0, deferred=False)
    assert len(window.posted) == 2
    connection_pending(rec)
    assert len(window.posted) == 3


def test_fd_accept_defer_does_not_reenable():
    rec, window = message_rec(mask=FD_ACCEPT)
    connection_pending(rec)
    accept_called(rec, remaining=1, deferred=True)
    assert len(window.posted) == 1
    assert rec.held & FD_ACCEPT


def test_fd_accept_event_mode():
    rec, event = event_rec(mask=FD_ACCEPT)
    connection_pending(rec)
    out = enum(rec, event)
    assert out.lNetworkEvents == FD_ACCEPT and out.iErrorCode[FD_ACCEPT_BIT] == 0


@pytest.mark.parametrize("mode", [MODE_MESSAGE, MODE_EVENT])
def test_accepted_socket_inherits_registration(mode):
    listener = Rec(HANDLE, state=State.LISTENING)
    target = FakeWindow() if mode == MODE_MESSAGE else FakeEvent()
    register(listener, mode, FD_ACCEPT | FD_CONNECT | FD_WRITE | FD_READ, target, WM, 0)
    new = Rec(HANDLE + 4, state=State.CONNECTED)
    inherit_registration(new, listener)
    assert (new.mode, new.mask) == (listener.mode, listener.mask)
    if mode == MODE_MESSAGE:
        assert target.events() == [(FD_WRITE, 0)]
        assert target.posted[0].wParam == HANDLE + 4
    else:
        assert new.event is target and target.calls == ["set"]
        assert enum(new, target).lNetworkEvents == FD_WRITE  # never FD_CONNECT
