"""The per-socket state table (pure): every (state, event) pair, and the layering rule.

The table is the single source of truth (STYLE.md, h11's EVENT_TRIGGERED_TRANSITIONS):
these tests enumerate every pair from it, so a row added to TRANSITIONS or REFUSALS is
checked without touching this file.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

import wspasync
from wspasync._constants import ErrorCode
from wspasync._state import (
    REFUSALS,
    TRANSITIONS,
    BindRequested,
    Cancelled,
    CloseRequested,
    ConnectFailed,
    ConnectRequested,
    ConnectSucceeded,
    Event,
    IllegalTransition,
    ListenRequested,
    PeerCleared,
    PeerSet,
    State,
    next_state,
)

S = State
EVENTS = [BindRequested, ListenRequested, ConnectRequested, ConnectSucceeded, ConnectFailed,
          PeerSet, PeerCleared, Cancelled, CloseRequested]
ALL_PAIRS = list(itertools.product(State, EVENTS))


def test_event_list_is_complete():
    """Every Event subclass the module defines is enumerated here."""
    assert set(Event.__subclasses__()) == set(EVENTS)


def test_table_keys_are_states_and_events():
    for state, event in itertools.chain(TRANSITIONS, REFUSALS):
        assert isinstance(state, State)
        assert event in EVENTS
    for new in TRANSITIONS.values():
        assert isinstance(new, State)
    for code in REFUSALS.values():
        assert isinstance(code, ErrorCode)


def test_refusals_and_transitions_are_disjoint():
    assert not set(TRANSITIONS) & set(REFUSALS)


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=lambda v: getattr(v, "name", None) or v.__name__)
def test_next_state_follows_the_table(state, event):
    """Legal pairs move as the table says; every other pair is refused with its code."""
    if (state, event) in TRANSITIONS:
        assert next_state(state, event) is TRANSITIONS[state, event]
    else:
        with pytest.raises(IllegalTransition) as info:
            next_state(state, event)
        assert info.value.code == REFUSALS.get((state, event), ErrorCode.WSAEINVAL)
        assert info.value.state is state and info.value.event is event


# The Winsock rows of SEMANTICS.md §1 that the table must encode.
@pytest.mark.parametrize(
    ("state", "event", "outcome"),
    [
        (S.UNBOUND, ConnectRequested, S.CONNECTING),
        (S.BOUND, ConnectRequested, S.CONNECTING),
        (S.FAILED, ConnectRequested, S.CONNECTING),  # retry after failure
        (S.CONNECTING, ConnectSucceeded, S.CONNECTED),
        (S.CONNECTING, ConnectFailed, S.FAILED),
        (S.CONNECTING, ConnectRequested, ErrorCode.WSAEALREADY),
        (S.CONNECTED, ConnectRequested, ErrorCode.WSAEISCONN),
        (S.LISTENING, ConnectRequested, ErrorCode.WSAEINVAL),
        (S.UNBOUND, ListenRequested, ErrorCode.WSAEINVAL),  # listen before bind
        (S.BOUND, BindRequested, ErrorCode.WSAEINVAL),  # bind twice
        (S.LISTENING, BindRequested, ErrorCode.WSAEINVAL),
        (S.BOUND, ListenRequested, S.LISTENING),
        (S.CONNECTING, Cancelled, S.DEAD),
        (S.DEAD, ConnectRequested, ErrorCode.WSAEINVAL),
        (S.CLOSED, ConnectRequested, ErrorCode.WSAENOTSOCK),
        (S.CLOSED, CloseRequested, ErrorCode.WSAEINVAL),
        (S.UNBOUND, ConnectSucceeded, ErrorCode.WSAEINVAL),  # no completion without an attempt
        (S.FAILED, ConnectFailed, ErrorCode.WSAEINVAL),  # one FD_CONNECT per attempt
    ],
)
def test_semantics_rows(state, event, outcome):
    if isinstance(outcome, State):
        assert next_state(state, event) is outcome
    else:
        with pytest.raises(IllegalTransition) as info:
            next_state(state, event)
        assert info.value.code == outcome


@pytest.mark.parametrize("state", [s for s in State if s is not S.CLOSED])
def test_every_live_state_can_close(state):
    assert next_state(state, CloseRequested) is S.CLOSED


def test_nothing_leaves_closed():
    assert not [key for key in TRANSITIONS if key[0] is S.CLOSED]


# -- layering: the pure core imports no I/O ---------------------------------------------

PACKAGE = Path(wspasync.__file__).parent
# _options.py is deliberately NOT in this list: its table names the Linux option
# numbers through the socket module (socket.SO_REUSEADDR ...), whose values differ
# between Linux architectures, so hard-coding them would be worse than the import.
# It is configuration for the engine, not part of the pure rules.
PURE_MODULES = ["_state", "_notify", "_constants", "_structs", "_sockaddr", "_errors"]
FORBIDDEN = {"asyncio", "socket", "threading", "select", "selectors", "uvloop", "time",
             "_thread", "concurrent", "multiprocessing", "subprocess", "ssl"}


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(absolute top-level modules, package-relative modules) imported anywhere in it."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    absolute: set[str] = set()
    relative: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.module:
                    relative.add(node.module.split(".")[0])
                else:
                    relative.update(alias.name for alias in node.names)
            else:
                absolute.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            absolute.add("<dynamic __import__>")
    return absolute, relative


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_no_io(module):
    absolute, relative = _imports(module)
    assert not absolute & FORBIDDEN, f"{module} imports {sorted(absolute & FORBIDDEN)}"
    assert "<dynamic __import__>" not in absolute
    # ... and whatever it imports from the package is pure too.
    assert relative <= set(PURE_MODULES), f"{module} imports {sorted(relative - set(PURE_MODULES))}"
