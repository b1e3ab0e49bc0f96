"""The engine: real OS sockets, loop readiness and timers, pumping the pure core.

Theory of operation
-------------------
Every OS socket is nonblocking at the OS level, always; "blocking" is a Winsock-level
flag that decides whether a WSP coroutine suspends. The engine copies the proven
asyncio idiom (CPython ``selector_events._sock_connect``): try ``connect`` first;
``EINPROGRESS`` means in progress; arm ``add_writer``; on wake-up read ``SO_ERROR``;
remove the writer on every path. It uses only loop APIs that asyncio and uvloop share.

Some facts about Linux that shape it:

* On loopback the kernel has usually finished the three-way handshake by the time
  ``connect`` returns ``EINPROGRESS`` (the SYN-ACK is processed in the same softirq).
  ``getpeername`` tells in one syscall; only if it fails do we read ``SO_ERROR`` and,
  if that is still 0, arm a writer. Completions found this way are delivered from a
  single ``call_soon`` per loop iteration (FD_CONNECT must never be posted before
  connect has returned), so a connect storm costs no Task and no handle per connect.
* A socket whose connect failed is not reliably reusable on Linux (a refused socket's
  next connect gives ECONNABORTED once), while Winsock lets the application retry on
  the same handle. A retry after a failure therefore swaps in a fresh OS socket and
  re-applies the explicit bind and the options (SEMANTICS.md §1).
* Linux retries an unanswered SYN for about 127 s; Windows gives up after about 21 s
  (3 + 6 + 12 s) unless TCP_MAXRT says otherwise. The engine runs its own clock:
  pending attempts with the same budget expire in the order they started, so one
  FIFO and one loop timer per budget replace a TimerHandle per connect (about 250
  bytes less per connect in flight; an entry whose attempt ended is skipped).
"""

from __future__ import annotations

import asyncio
import collections
import errno as _errno
import select
import socket
import time
from typing import Any

import attrs

from . import _notify
from ._constants import (
    AF_INET,
    AF_INET6,
    ErrorCode,
    FD_ACCEPT,
    FD_READ,
    FD_WRITE,
    SOCK_DGRAM,
    SOCK_STREAM,
    errno_to_wsa,
)
from ._errors import WSAError
from ._notify import Notifications
from ._options import OPTIONS, apply_os
from ._sockaddr import SockAddr
from ._state import (
    BindRequested,
    Cancelled,
    ConnectRequested,
    ListenRequested,
    PeerCleared,
    PeerSet,
    State,
    next_state,
)

__all__ = ["SocketRecord", "Engine", "ConnectTiming", "DEFAULT_CONNECT_BUDGET_S"]

_OS_FAMILY = {AF_INET: socket.AF_INET, AF_INET6: socket.AF_INET6}
_OS_TYPE = {SOCK_STREAM: socket.SOCK_STREAM, SOCK_DGRAM: socket.SOCK_DGRAM}
_OS_FLAGS = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC

#: Windows' default connect budget for an unanswered SYN: the initial RTO of 3 s
#: doubled twice (TcpMaxConnectRetransmissions = 2): 3 + 6 + 12 = 21 s.
DEFAULT_CONNECT_BUDGET_S = 21.0

# Linux errors that a nonblocking Winsock connect reports later, through FD_CONNECT /
# exceptfds, rather than from the call: the outcome of the attempt on the wire.
_ASYNC_OUTCOMES = frozenset(
    {
        _errno.ECONNREFUSED,
        _errno.ETIMEDOUT,
        _errno.ENETUNREACH,
        _errno.EHOSTUNREACH,
        _errno.ECONNRESET,
        _errno.ECONNABORTED,
    }
)

_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR | select.POLLRDHUP
_POLLOUT = select.POLLOUT


@attrs.frozen
class ConnectTiming:
    """When a connect attempt started and when the engine saw it finish (monotonic ns)."""

    started_ns: int
    completed_ns: int


@attrs.define(eq=False)
class SocketRecord(Notifications):
    """One provider socket: the Winsock view (state, flags) and the OS socket behind it."""

    family: int = AF_INET
    type: int = SOCK_STREAM
    protocol: int = 0
    sock: socket.socket | None = None
    state: State = State.UNBOUND
    nonblocking: bool = False
    so_error: int = 0
    connect_error: int = 0
    attempt: int = 0
    local: SockAddr | None = None  # explicit bind, re-applied on a swap
    peer: SockAddr | None = None
    options: dict[tuple[int, int], Any] | None = None  # Winsock-level values set
    started_ns: int = 0
    completed_ns: int = 0
    waiter: asyncio.Future[Any] | None = None
    busy: bool = False  # a blocking call is in progress (WSAEINPROGRESS)
    backlog: int = 0
    accepts: collections.deque[tuple[socket.socket, Any]] | None = None
    reading: bool = False  # listener: add_reader armed

    @property
    def stream(self) -> bool:
        return self.type == SOCK_STREAM


class Engine:
    """Loop-facing half of a provider. All methods run on the provider's loop thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._batch: list[tuple[SocketRecord, int, int]] = []
        self._deadlines: dict[float, collections.deque[tuple[float, SocketRecord, int]]] = {}
        self.select_waiters: set[asyncio.Future[None]] = set()
        self.observer: Any = None  # set by a trace recorder

    # -- sockets ---------------------------------------------------------------

    def open_socket(self, family: int, type_: int) -> socket.socket:
        try:
            sock = socket.socket(_OS_FAMILY[family], _OS_TYPE[type_] | _OS_FLAGS)
        except OSError as exc:
            raise WSAError(errno_to_wsa(exc.errno or 0)) from None
        if family == AF_INET6:
            # Windows' default is IPV6_V6ONLY on (IPV6_V6ONLY page); Linux's is off.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        return sock

    def bind(self, rec: SocketRecord, addr: SockAddr) -> None:
        new = next_state(rec.state, BindRequested)
        try:
            rec.sock.bind(addr.to_os())  # type: ignore[union-attr]
        except OSError as exc:
            raise WSAError(errno_to_wsa(exc.errno or 0)) from None
        rec.state = new
        rec.local = addr

    def listen(self, rec: SocketRecord, backlog: int) -> None:
        new = next_state(rec.state, ListenRequested)
        backlog = max(1, min(backlog, 4096))
        try:
            rec.sock.listen(backlog)  # type: ignore[union-attr]
        except OSError as exc:
            raise WSAError(errno_to_wsa(exc.errno or 0)) from None
        rec.state = new
        rec.backlog = backlog
        if rec.accepts is None:
            rec.accepts = collections.deque()
        self._arm_accept(rec)

    def close(self, rec: SocketRecord) -> None:
        """Release everything behind *rec*; posts nothing (closesocket page)."""
        rec.state = State.CLOSED
        rec.mode = _notify.MODE_NONE
        rec.mask = 0
        rec.window = rec.event = None
        rec.attempt += 1
        self._disarm(rec)
        if rec.accepts:
            for conn, _ in rec.accepts:
                conn.close()
            rec.accepts.clear()
        waiter = rec.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(WSAError(ErrorCode.WSAEINTR))
        rec.waiter = None
        if rec.sock is not None:
            rec.sock.close()
            rec.sock = None
        self.wake_selects()

    def _disarm(self, rec: SocketRecord) -> None:
        sock = rec.sock
        if sock is not None and sock.fileno() >= 0:
            fd = sock.fileno()
            self.loop.remove_writer(fd)
            if rec.reading:
                self.loop.remove_reader(fd)
        rec.reading = False

    def swap(self, rec: SocketRecord) -> None:
        """Replace the OS socket behind *rec* with a fresh one, re-applying bind/options."""
        self._disarm(rec)
        old = rec.sock
        if old is not None:
            old.close()
        rec.sock = None
        sock = self.open_socket(rec.family, rec.type)
        try:
            for key, value in (rec.options or {}).items():
                spec = OPTIONS[key]
                if spec.kind == "os":
                    apply_os(sock, spec, value)
            if rec.local is not None:
                sock.bind(rec.local.to_os())
        except OSError as exc:
            sock.close()
            raise WSAError(errno_to_wsa(exc.errno or 0)) from None
        rec.sock = sock

    # -- connect -----------------------------------------------------------------

    def start_connect(self, rec: SocketRecord, addr: SockAddr, budget_s: float | None) -> int:
        """Start a stream connect attempt.

        Returns the Winsock code the attempt finished with at once (0 for success), or
        -1 when it is in progress (a writer and a timer are armed). Raises WSAError for
        refusals that the call itself reports (state, implicit bind failures).
        """
        new = next_state(rec.state, ConnectRequested)
        if rec.state is State.FAILED:
            self.swap(rec)
        sock = rec.sock
        assert sock is not None
        rec.attempt += 1
        rec.peer = addr
        rec.started_ns = time.monotonic_ns()
        rec.completed_ns = 0
        try:
            sock.connect(addr.to_os())
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            code = exc.errno or 0
            if code not in _ASYNC_OUTCOMES:
                # Refused by the call itself (no port to bind, no buffers, ...): the
                # attempt never started and Winsock reports it from connect.
                raise WSAError(errno_to_wsa(code)) from None
            rec.state = new
            rec.completed_ns = time.monotonic_ns()
            return errno_to_wsa(code)
        else:
            rec.state = new
            rec.completed_ns = time.monotonic_ns()
            return 0
        rec.state = new
        try:
            sock.getpeername()
        except OSError:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                rec.completed_ns = time.monotonic_ns()
                return errno_to_wsa(code)
            self.loop.add_writer(sock.fileno(), self._on_connect_writable, rec, rec.attempt)
            if budget_s is not None:
                self._arm_deadline(rec, budget_s)
            return -1
        rec.completed_ns = time.monotonic_ns()
        return 0

    def deliver_later(self, rec: SocketRecord, error: int) -> None:
        """Finish *rec*'s attempt with *error* on the next loop iteration (batched)."""
        batch = self._batch
        if not batch:
            self.loop.call_soon(self._flush)
        batch.append((rec, rec.attempt, error))

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        for rec, attempt, error in batch:
            if rec.attempt == attempt and rec.state is State.CONNECTING:
                self.finish(rec, error, False)

    def _on_connect_writable(self, rec: SocketRecord, attempt: int) -> None:
        sock = rec.sock
        if sock is None:
            return
        self.loop.remove_writer(sock.fileno())
        if rec.attempt != attempt or rec.state is not State.CONNECTING:
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        rec.completed_ns = time.monotonic_ns()
        self.finish(rec, errno_to_wsa(code) if code else 0, rec.waiter is not None)

    def _arm_deadline(self, rec: SocketRecord, budget_s: float) -> None:
        queue = self._deadlines.get(budget_s)
        if queue is None:
            queue = self._deadlines[budget_s] = collections.deque()
        deadline = self.loop.time() + budget_s
        queue.append((deadline, rec, rec.attempt))
        if len(queue) == 1:
            self.loop.call_at(deadline, self._expire, budget_s)

    def _expire(self, budget_s: float) -> None:
        queue = self._deadlines[budget_s]
        now = self.loop.time() + 0.001  # asyncio may run a timer a hair early
        while queue and queue[0][0] <= now:
            _, rec, attempt = queue.popleft()
            if rec.attempt == attempt and rec.state is State.CONNECTING:
                self._on_connect_timeout(rec)
        if queue:
            self.loop.call_at(queue[0][0], self._expire, budget_s)
        else:
            del self._deadlines[budget_s]

    def _on_connect_timeout(self, rec: SocketRecord) -> None:
        if rec.sock is not None:
            self.loop.remove_writer(rec.sock.fileno())
        rec.completed_ns = time.monotonic_ns()
        self.finish(rec, ErrorCode.WSAETIMEDOUT, rec.waiter is not None)

    def finish(self, rec: SocketRecord, error: int, synchronous: bool) -> None:
        """The attempt in progress ended with *error*: run the core event, wake waiters."""
        _notify.connect_finished(rec, error, synchronous)
        waiter = rec.waiter
        if waiter is not None:
            rec.waiter = None
            if not waiter.done():
                waiter.set_result(error)
        if self.select_waiters:
            self.wake_selects()

    def cancel_connect(self, rec: SocketRecord) -> None:
        """A blocking connect was cancelled: stop it; the handle is good only for close."""
        self._disarm(rec)
        rec.attempt += 1
        if rec.state is State.CONNECTING:
            rec.state = next_state(rec.state, Cancelled)
        else:
            rec.state = State.DEAD
        if self.observer is not None:
            self.observer.state_changed(rec)

    # -- datagram peers ------------------------------------------------------------

    def set_peer(self, rec: SocketRecord, addr: SockAddr) -> None:
        """connect on a datagram socket: set (or, for an all-zero name, clear) the peer."""
        sock = rec.sock
        assert sock is not None
        if addr.is_zero_address:
            new = next_state(rec.state, PeerCleared)
            try:
                # connect(AF_UNSPEC) dissolves the association (connect(2)).
                _dissolve(sock)
            except OSError as exc:
                raise WSAError(errno_to_wsa(exc.errno or 0)) from None
            if rec.local is None and rec.state is State.UNBOUND:
                sock.bind(("::", 0, 0, 0) if rec.family == AF_INET6 else ("0.0.0.0", 0))
            rec.peer = None
        else:
            new = next_state(rec.state, PeerSet)
            try:
                sock.connect(addr.to_os())
            except OSError as exc:
                raise WSAError(errno_to_wsa(exc.errno or 0)) from None
            if rec.peer is not None and rec.peer != addr:
                _drain(sock)
            rec.peer = addr
        rec.state = new

    # -- accept ------------------------------------------------------------------

    def _arm_accept(self, rec: SocketRecord) -> None:
        if not rec.reading and rec.sock is not None and len(rec.accepts) < rec.backlog:  # type: ignore[arg-type]
            self.loop.add_reader(rec.sock.fileno(), self._on_acceptable, rec)
            rec.reading = True

    def _on_acceptable(self, rec: SocketRecord) -> None:
        sock, accepts = rec.sock, rec.accepts
        if sock is None or accepts is None:
            return
        arrived = 0
        while len(accepts) < rec.backlog:
            try:
                conn, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # ECONNABORTED and friends: the connection died in the queue.
                continue
            conn.setblocking(False)
            accepts.append((conn, peer))
            arrived += 1
        if len(accepts) >= rec.backlog and rec.reading:
            self.loop.remove_reader(sock.fileno())
            rec.reading = False
        for _ in range(arrived):
            _notify.connection_pending(rec)
        if arrived:
            waiter = rec.waiter
            if waiter is not None:
                rec.waiter = None
                if not waiter.done():
                    waiter.set_result(0)
            if self.select_waiters:
                self.wake_selects()

    def take_pending(self, rec: SocketRecord) -> tuple[socket.socket, Any] | None:
        accepts = rec.accepts
        if not accepts:
            return None
        item = accepts.popleft()
        self._arm_accept(rec)
        return item

    def put_back(self, rec: SocketRecord, item: tuple[socket.socket, Any]) -> None:
        rec.accepts.appendleft(item)  # type: ignore[union-attr]

    # -- levels and select --------------------------------------------------------

    def levels(self, recs: list[SocketRecord]) -> dict[int, int]:
        """OS poll levels (readable / writable bits) of the connected sockets in *recs*."""
        poller = select.poll()
        fds = 0
        for rec in recs:
            if rec.sock is not None and (rec.state is State.CONNECTED or not rec.stream):
                poller.register(rec.sock.fileno(), _POLLIN | _POLLOUT)
                fds += 1
        if not fds:
            return {}
        return dict(poller.poll(0))

    def level_bits(self, rec: SocketRecord) -> int:
        """The FD_* conditions that hold now, for a message-mode (re-)registration."""
        if rec.state is State.LISTENING:
            return FD_ACCEPT if rec.accepts else 0
        if rec.state is not State.CONNECTED and rec.stream:
            return 0
        bits = 0
        mask = self.levels([rec]).get(rec.sock.fileno(), 0) if rec.sock is not None else 0
        if mask & _POLLOUT:
            bits |= FD_WRITE
        if mask & select.POLLIN:
            bits |= FD_READ
        return bits

    def wake_selects(self) -> None:
        waiters = self.select_waiters
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        waiters.clear()


def _dissolve(sock: socket.socket) -> None:
    """connect(AF_UNSPEC) on a datagram socket: drop the default peer."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    addr = (ctypes.c_ubyte * 16)()  # sa_family = AF_UNSPEC (0)
    if libc.connect(sock.fileno(), addr, 16) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "connect(AF_UNSPEC)")


def _drain(sock: socket.socket) -> None:
    """Discard the datagrams queued for receipt (connect to a new name, SEMANTICS §2)."""
    while True:
        try:
            sock.recv(65536)
        except OSError:
            return
