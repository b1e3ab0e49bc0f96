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
import fcntl
import select
import socket
import struct
import termios
import time
from typing import Any

import attrs

from . import _notify
from ._constants import (
    AF_INET,
    AF_INET6,
    ErrorCode,
    FD_CLOSE,
    FD_OOB,
    FD_READ,
    SO_OOBINLINE,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOL_SOCKET,
    IPPROTO_TCP,
    TCP_MAXRT,
    errno_to_wsa,
    fd_close_error,
)
from ._errors import WSAError
from ._notify import Notifications
from ._options import OPTIONS, apply_os
from ._sockaddr import SockAddr
from ._state import (
    BindRequested,
    Cancelled,
    CloseRequested,
    ConnectRequested,
    ListenRequested,
    PeerCleared,
    PeerSet,
    State,
    next_state,
)

__all__ = ["SocketRecord", "Engine", "ConnectTiming", "DEFAULT_CONNECT_BUDGET_S"]

# The state a connect attempt enters, from the transition table (the same from
# UNBOUND and BOUND; Engine.connect_blocking relies on that).
_CONNECTING = next_state(State.UNBOUND, ConnectRequested)
assert next_state(State.BOUND, ConnectRequested) is _CONNECTING

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

# TCP states (include/net/tcp_states.h) as TCP_INFO's first byte reports them.
_TCP_SYN_SENT = 2
_TCP_CLOSE = 7


def connect_budget(rec: SocketRecord) -> float | None:
    """Seconds an unanswered connect may take: Windows' 21 s, or TCP_MAXRT (0: the
    default, -1 / 0xFFFFFFFF: no limit)."""
    maxrt = rec.options.get(_TCP_MAXRT_KEY) if rec.options else None
    if not maxrt:
        return DEFAULT_CONNECT_BUDGET_S
    if maxrt in (-1, 0xFFFFFFFF):
        return None
    return float(maxrt)


def os_connect(sock: socket.socket, addr: SockAddr) -> int:
    """Start a nonblocking TCP connect: the errno it ended with at once (0: established),
    or -1 while the handshake is in flight. Raises WSAError for an error the call itself
    reports (no port for the implicit bind, no buffers, ...): that attempt never started.

    ``connect_ex``, not ``connect``: CPython builds an OSError with its strerror text
    for every EINPROGRESS, which costs more than the rest of a loopback connect's
    Python work put together.
    """
    code = sock.connect_ex(addr.os)
    if code == _errno.EINPROGRESS or code == _errno.EINTR:
        return handshake_outcome(sock)
    if code and code not in _ASYNC_OUTCOMES:
        raise WSAError(errno_to_wsa(code))
    return code


def handshake_outcome(sock: socket.socket) -> int:
    """Where a connect in progress stands, in one syscall: -1 still in flight, 0
    established, else the errno it failed with.

    On loopback the kernel has usually finished the handshake before connect returned.
    TCP_INFO's state byte tells SYN_SENT (in flight) from ESTABLISHED (or CLOSE_WAIT:
    established, and the peer already sent its FIN) and from CLOSE (failed; SO_ERROR
    says why -- if it is already gone, the connection was established and reset).
    """
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    if state == _TCP_SYN_SENT:
        return -1
    if state == _TCP_CLOSE:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or _errno.ECONNRESET
    return 0


_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR | select.POLLRDHUP
_POLLOUT = select.POLLOUT
_OOBINLINE_KEY = (SOL_SOCKET, SO_OOBINLINE)
_TCP_MAXRT_KEY = (IPPROTO_TCP, TCP_MAXRT)


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
    writing: bool = False  # connect in progress: add_writer armed
    io: Any = None  # DataWatch, once data-side state is needed

    @property
    def stream(self) -> bool:
        return self.type == SOCK_STREAM


# -- data watching: one dispatcher for every data-side waiter ----------------------
#
# Why a provider-level epoll, and not loop.add_reader per socket:
#
# * Windows reports *edges* where loops offer *levels*: event mode signals FD_READ
#   again on each new arrival while earlier data is still unread, and FD_CLOSE when the
#   FIN arrives behind unread data (Wine sock.c test_read_events/test_close_events).
#   asyncio's and uvloop's readers are level-triggered (a reader on a socket with
#   unread data would spin) and see no EPOLLRDHUP. An edge-triggered epoll instance
#   (epoll(7), EPOLLET) watching EPOLLIN|EPOLLPRI|EPOLLRDHUP reports exactly the
#   transport facts: each wakeup is a new segment or datagram (sk_data_ready), urgent
#   data, a FIN or a reset (sk_state_change); write-space wakeups carry only EPOLLOUT
#   in their key and are filtered out by epoll until EPOLLOUT is in the interest.
# * A loop allows one reader and one writer per fd; connect completion already uses
#   the writer. The epoll descriptor is the only fd this dispatcher gives the loop
#   (one add_reader, both loops support it), so the loop's per-fd slots stay free and
#   connect completion, FD_* recording, blocking recv/send and WSPSelect waits all go
#   through one callback, with one epoll_wait per batch of ready sockets.
# * EPOLL_CTL_ADD reports the socket's current readiness as a first edge, so a socket
#   that starts being watched late (registered after the peer closed or after data
#   came) catches up on the facts it missed -- as Windows, which records network events
#   whether or not anyone selected for them. A watched socket stays watched until it is
#   closed; the epoll descriptor itself is closed when the last watched socket goes.
#
# Only the facts are found here; what they mean for the routes is _notify's business.

#: Mask bits that need the transport watched (FD_WRITE needs it only after a send
#: would block, which arms it itself).
WATCH_EVENTS = FD_READ | FD_OOB | FD_CLOSE
_EP_READ = select.EPOLLIN | select.EPOLLPRI | select.EPOLLRDHUP | select.EPOLLET
_EP_READ_SIDE = (
    select.EPOLLIN | select.EPOLLPRI | select.EPOLLRDHUP | select.EPOLLERR | select.EPOLLHUP
)
# TCP states in which the peer's FIN has arrived (include/net/tcp_states.h).
_FIN_SEEN_STATES = frozenset({6, 7, 8, 9, 11})  # TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK CLOSING


@attrs.define(eq=False)
class DataWatch:
    """The data-side facts of one socket, created on first need (``SocketRecord.io``)."""

    fd: int = -1  # registered in the provider's epoll, or -1
    interest: int = 0
    unread: bool = False  # an arrival was reported and recv has not drained it
    closed: bool = False  # the peer's FIN or a reset was reported (FD_CLOSE sent)
    reset: int = 0  # WSAE code recv/send report after a reset (sticky, as Windows)
    shut_rd: bool = False  # local shutdown(SD_RECEIVE)
    shut_wr: bool = False  # local shutdown(SD_SEND)
    write_blocked: bool = False  # a send would block: FD_WRITE when room returns
    select_out: int = 0  # WSPSelect calls waiting for this socket to be writable
    disconnected: bool = False  # datagram: the default peer was dissolved by connect
    read_waiters: list[asyncio.Future[Any]] | None = None
    write_waiters: list[asyncio.Future[Any]] | None = None


def _fionread(sock: socket.socket) -> int:
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _peer_fin_seen(sock: socket.socket) -> bool:
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] in _FIN_SEEN_STATES
    except OSError:
        return False


def _wake_all(waiters: list[asyncio.Future[Any]] | None) -> None:
    if waiters:
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        waiters.clear()


def _fail_all(waiters: list[asyncio.Future[Any]] | None, code: int) -> None:
    if waiters:
        for fut in waiters:
            if not fut.done():
                fut.set_exception(WSAError(code))
        waiters.clear()


class _DataWatching:
    """The Engine's data-side half: the epoll dispatcher and the transport facts."""

    loop: asyncio.AbstractEventLoop
    select_waiters: set[asyncio.Future[None]]
    close_through_loop: bool
    _ep: select.epoll | None = None
    _watched: dict[int, SocketRecord] | None = None

    def release(self, fileobj: socket.socket | select.epoll, registered: bool) -> None:
        """Close an OS descriptor; through the loop if it had a reader or writer and
        the loop may still be applying the removal (``close_through_loop``)."""
        if registered and self.close_through_loop:
            self.loop.call_soon(fileobj.close)
        else:
            fileobj.close()

    def io(self, rec: SocketRecord) -> DataWatch:
        """The data-side state of *rec*, created unwatched on first use."""
        io = rec.io
        if io is None:
            io = rec.io = DataWatch()
        return io

    def watch(self, rec: SocketRecord) -> DataWatch:
        """Report *rec*'s transport facts from now on; catch up on earlier ones now.

        A stream socket is watched only once connected (an unconnected TCP socket
        polls as hung up). The catch-up runs synchronously, so a registration made
        right after this sees every fact that happened before it.
        """
        io = rec.io
        if io is None:
            io = rec.io = DataWatch()
        if io.fd >= 0:
            return io
        sock = rec.sock
        if sock is None or (rec.type == SOCK_STREAM and rec.state is not State.CONNECTED):
            return io
        ep = self._ep
        if ep is None:
            ep = self._ep = select.epoll()
            self._watched = {}
            self.loop.add_reader(ep.fileno(), self._pump)
        fd = sock.fileno()
        io.interest = self._interest(io)
        ep.register(fd, io.interest)
        io.fd = fd
        self._watched[fd] = rec  # type: ignore[index]
        self._pump()
        return io

    def unwatch(self, rec: SocketRecord, code: int = ErrorCode.WSAEINTR) -> None:
        """Stop watching *rec* (it is being closed); blocked recv/send get *code*."""
        io = rec.io
        if io is None:
            return
        _fail_all(io.read_waiters, code)
        _fail_all(io.write_waiters, code)
        if io.fd < 0:
            return
        watched, ep = self._watched, self._ep
        fd, io.fd = io.fd, -1
        if watched is not None and watched.get(fd) is rec:
            del watched[fd]
            try:
                ep.unregister(fd)  # type: ignore[union-attr]
            except (OSError, ValueError):
                pass
            if not watched:
                self.loop.remove_reader(ep.fileno())  # type: ignore[union-attr]
                self.release(ep, True)  # type: ignore[arg-type]
                self._ep = self._watched = None

    @staticmethod
    def _interest(io: DataWatch) -> int:
        if io.write_blocked or io.write_waiters or io.select_out:
            return _EP_READ | select.EPOLLOUT
        return _EP_READ

    def update_interest(self, rec: SocketRecord) -> None:
        """Add or drop EPOLLOUT as the waiters of *rec* need it (watches if needed)."""
        io = self.watch(rec)
        if io.fd < 0:
            return
        interest = self._interest(io)
        if interest != io.interest:
            io.interest = interest
            self._ep.modify(io.fd, interest)  # type: ignore[union-attr]
            # EPOLL_CTL_MOD re-polls: room that is already there is reported now.
            self._pump()

    def _pump(self) -> None:
        ep, watched = self._ep, self._watched
        if ep is None or watched is None:
            return
        woke = False
        for fd, events in ep.poll(0):
            rec = watched.get(fd)
            if rec is not None and rec.io is not None:
                self._on_io(rec, rec.io, events)
                woke = True
        if woke and self.select_waiters:
            self.wake_selects()  # type: ignore[attr-defined]

    def _on_io(self, rec: SocketRecord, io: DataWatch, events: int) -> None:
        if events & _EP_READ_SIDE:
            if rec.type == SOCK_STREAM:
                self._stream_facts(rec, io, events)
            elif not io.shut_rd:
                # Each wakeup is a datagram (or an ICMP error, which recv reports).
                io.unread = True
                _notify.data_arrived(rec)
            if io.read_waiters:
                _wake_all(io.read_waiters)
        if events & select.EPOLLOUT:
            if io.write_blocked:
                io.write_blocked = False
                _notify.room_again(rec)
            if io.write_waiters:
                _wake_all(io.write_waiters)
            interest = self._interest(io)
            if interest != io.interest and io.fd >= 0:
                io.interest = interest
                self._ep.modify(io.fd, interest)  # type: ignore[union-attr]

    def _stream_facts(self, rec: SocketRecord, io: DataWatch, events: int) -> None:
        if io.closed:
            return
        sock = rec.sock
        if sock is None:
            return
        if events & select.EPOLLERR:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                # A reset: Windows drops unread data and every later recv/send fails.
                io.reset = errno_to_wsa(code)
                io.closed = True
                _notify.peer_closed(rec, fd_close_error(code))
                return
        if events & select.EPOLLPRI and not (rec.options and rec.options.get(_OOBINLINE_KEY)):
            _notify.oob_arrived(rec)
        if events & select.EPOLLRDHUP:
            if io.shut_rd:
                # Our own shutdown(SD_RECEIVE) also reads as RDHUP; only the TCP state
                # tells whether the peer's FIN came too. Local shutdown posts nothing.
                if not _peer_fin_seen(sock):
                    return
            elif not io.unread and _fionread(sock) > 0:
                # Data that came with the FIN: FD_READ first, then FD_CLOSE.
                io.unread = True
                _notify.data_arrived(rec)
            io.closed = True
            _notify.peer_closed(rec, 0)
            return
        if events & select.EPOLLIN and not io.shut_rd:
            io.unread = True
            _notify.data_arrived(rec)


class Engine(_DataWatching):
    """Loop-facing half of a provider. All methods run on the provider's loop thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._batch: list[tuple[SocketRecord, int, int]] = []
        self._deadlines: dict[float, collections.deque[tuple[float, SocketRecord, int]]] = {}
        self.select_waiters: set[asyncio.Future[None]] = set()
        self.observer: Any = None  # set by a trace recorder
        # One-shot connect outcomes a fault layer (wspasync.testing) put in place for a
        # handle: called instead of the OS connect, after the state checks and the
        # attempt bookkeeping, so the outcome goes through the real core. None (the
        # usual case) costs one attribute test per connect.
        self.faults: dict[int, Any] | None = None
        # True when the loop may apply a reader/writer change after the call that
        # asked for it returned (SyncProvider on uvloop: a caller's thread cannot touch
        # libuv, so its add_/remove_ calls are queued for the loop thread). A
        # descriptor that had a registration is then closed through the loop as well,
        # after its removal: closing it at once could hand its number to a new socket
        # before the queued removal ran, which would then unregister the wrong socket.
        self.close_through_loop = False

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
        # Remember the address actually bound (the port the kernel picked for port 0):
        # a retry's fresh OS socket must come back on the same local name, as the
        # Windows socket never left it.
        try:
            rec.local = SockAddr.from_os(rec.family, rec.sock.getsockname())  # type: ignore[union-attr]
        except OSError:
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
        rec.state = next_state(rec.state, CloseRequested)
        rec.mode = _notify.MODE_NONE
        rec.mask = 0
        rec.window = rec.event = None
        rec.attempt += 1
        if rec.io is not None:
            self.unwatch(rec)
        registered = rec.writing or rec.reading
        if registered:
            self._disarm(rec)
        if rec.accepts:
            for conn, _ in rec.accepts:
                conn.close()
            rec.accepts.clear()
        waiter = rec.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(WSAError(ErrorCode.WSAEINTR))
        rec.waiter = None
        sock = rec.sock
        if sock is not None:
            rec.sock = None
            if registered:
                self.release(sock, True)
            else:
                sock.close()
        if self.select_waiters:
            # select page: a socket closed while select waits counts as readable.
            self.wake_selects()

    def _disarm(self, rec: SocketRecord) -> None:
        sock = rec.sock
        if sock is not None and sock.fileno() >= 0:
            fd = sock.fileno()
            # Only what was armed: asyncio's remove_* of an unknown fd raises and
            # catches a KeyError inside, which a connect storm would pay per close.
            if rec.writing:
                self.loop.remove_writer(fd)
            if rec.reading:
                self.loop.remove_reader(fd)
        rec.reading = rec.writing = False

    def swap(self, rec: SocketRecord) -> None:
        """Replace the OS socket behind *rec* with a fresh one, re-applying bind/options."""
        registered = rec.writing or rec.reading
        self._disarm(rec)
        old = rec.sock
        if old is not None:
            self.release(old, registered)
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

    def start_connect(self, rec: SocketRecord, addr: SockAddr) -> int:
        """Start a stream connect attempt.

        Returns the Winsock code the attempt finished with at once (0 for success), or
        -1 when it is in progress (a writer and a timer are armed). Raises WSAError for
        refusals that the call itself reports (state, implicit bind failures).
        """
        new = next_state(rec.state, ConnectRequested)
        if addr.is_zero_address:
            # Linux would connect to the local host; Windows refuses (connect page).
            raise WSAError(ErrorCode.WSAEADDRNOTAVAIL)
        if rec.state is State.FAILED:
            self.swap(rec)
        sock = rec.sock
        assert sock is not None
        rec.attempt += 1
        rec.peer = addr
        rec.started_ns = time.monotonic_ns()
        rec.completed_ns = 0
        if self.faults:
            fault = self.faults.pop(rec.handle, None)
            if fault is not None:
                # Returns like this method (a code, or -1 with a timer armed via
                # finish_after) and sets rec.state = new itself; may raise WSAError.
                return fault(self, rec, new)
        return self._begun(rec, new, os_connect(sock, addr))

    def _begun(self, rec: SocketRecord, new: State, code: int) -> int:
        """The attempt's OS connect returned *code* (os_connect): enter *new* and arm
        the writer and deadline while it is in flight. Returns like start_connect."""
        rec.state = new
        if code < 0:
            sock = rec.sock
            assert sock is not None
            self.loop.add_writer(sock.fileno(), self._on_connect_writable, rec, rec.attempt)
            rec.writing = True
            budget_s = connect_budget(rec)
            if budget_s is not None:
                self._arm_deadline(rec, budget_s)
            return -1
        rec.completed_ns = time.monotonic_ns()
        return self._attempt_ended(rec, code) if code else 0

    def connect_blocking(self, rec: SocketRecord, addr: SockAddr) -> int | None:
        """A blocking stream socket's connect, in one step for the common case.

        The case: *rec* is UNBOUND or BOUND (start_connect would neither refuse nor
        swap in a fresh OS socket), *addr* is not the unspecified address, no fault is
        queued and no trace is attached. Returns None for anything else (the caller
        takes the general path, nothing changed). Otherwise it is start_connect
        followed, for an outcome known at once, by finish(rec, error, True): returns
        0, the failure code, or -1 while the handshake is in flight.

        Why it exists: issue 4's cost bar (a blocking connect through SyncProvider
        within 1.5x of a plain socket.connect; benchmarks/sync_connect.py). A loopback
        connect usually completes inside connect(), and when nothing else is
        registered on the socket finishing it only updates the record, so that outcome
        goes straight to connect_finished instead of through four general calls.
        tests/test_hot_path.py checks it against the general path state by state.
        """
        state = rec.state
        if (
            (state is not State.UNBOUND and state is not State.BOUND)
            or self.faults
            or rec.observer is not None
            or addr.unspecified
        ):
            return None
        rec.attempt += 1
        rec.peer = addr
        rec.started_ns = time.monotonic_ns()
        rec.completed_ns = 0
        code = os_connect(rec.sock, addr)  # type: ignore[arg-type]
        if code or rec.mode or rec.io is not None or rec.errors is not None or self.select_waiters:
            error = self._begun(rec, _CONNECTING, code)
            if error >= 0:
                self.finish(rec, error, True)
            return error
        # Established at once, and nothing registered, watching or selecting: all that
        # finish() would do is connect_finished.
        rec.completed_ns = time.monotonic_ns()
        rec.state = _CONNECTING
        _notify.connect_finished(rec, 0, True)
        return 0

    def _attempt_ended(self, rec: SocketRecord, code: int) -> int:
        """The Winsock outcome of an attempt whose socket reported errno *code*.

        ECONNRESET is not a failed handshake (a refused SYN is ECONNREFUSED): the
        connection was established and the peer aborted it before we looked, e.g. a
        server that accepts and resets at once. Windows reports that as FD_CONNECT(0)
        and then FD_CLOSE(WSAECONNABORTED); the reset is kept for finish() to report
        and for recv/send to return.
        """
        if code == _errno.ECONNRESET:
            self.io(rec).reset = errno_to_wsa(code)
            return 0
        return errno_to_wsa(code)

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
        rec.writing = False
        if rec.attempt != attempt or rec.state is not State.CONNECTING:
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        rec.completed_ns = time.monotonic_ns()
        self.finish(rec, self._attempt_ended(rec, code) if code else 0, rec.waiter is not None)

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
        if rec.sock is not None and rec.writing:
            self.loop.remove_writer(rec.sock.fileno())
            rec.writing = False
        rec.completed_ns = time.monotonic_ns()
        self.finish(rec, ErrorCode.WSAETIMEDOUT, rec.waiter is not None)

    def finish_after(self, rec: SocketRecord, delay_s: float, error: int | None) -> None:
        """End *rec*'s attempt in progress after *delay_s* (a fault layer's outcome).

        *error* is the Winsock code to finish with; None means "whatever the OS socket
        says then" (connected: 0; SO_ERROR set: that; still in progress: arm the
        writer as usual). Like the budget's deadlines, the timer goes stale rather than
        being cancelled: close, cancellation and a new attempt bump ``rec.attempt``.
        """
        self.loop.call_later(delay_s, self._on_finish_timer, rec, rec.attempt, error)

    def _on_finish_timer(self, rec: SocketRecord, attempt: int, error: int | None) -> None:
        if rec.attempt != attempt or rec.state is not State.CONNECTING:
            return
        sock = rec.sock
        if error is None and sock is not None:
            code = handshake_outcome(sock)
            if code < 0:
                self.loop.add_writer(sock.fileno(), self._on_connect_writable, rec, attempt)
                rec.writing = True
                return
            error = self._attempt_ended(rec, code) if code else 0
        rec.completed_ns = time.monotonic_ns()
        self.finish(rec, error or 0, rec.waiter is not None)

    def finish(self, rec: SocketRecord, error: int, synchronous: bool) -> None:
        """The attempt in progress ended with *error*: run the core event, wake waiters."""
        _notify.connect_finished(rec, error, synchronous)
        io = rec.io
        if io is not None and io.reset and not error and not io.closed:
            io.closed = True  # reset behind the handshake (_attempt_ended)
            _notify.peer_closed(rec, fd_close_error(_errno.ECONNRESET))
        if rec.mask & WATCH_EVENTS and not error:
            self.watch(rec)  # registered for data events: start after FD_CONNECT/FD_WRITE
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

    def clear_peer(self, rec: SocketRecord) -> None:
        """connect on a datagram socket to an all-zero name or AF_UNSPEC: no peer."""
        self.set_peer(rec, None)

    def set_peer(self, rec: SocketRecord, addr: SockAddr | None) -> None:
        """connect on a datagram socket: set (or, for an all-zero name, clear) the peer."""
        sock = rec.sock
        assert sock is not None
        if addr is None or addr.is_zero_address:
            new = next_state(rec.state, PeerCleared)
            try:
                # connect(AF_UNSPEC) dissolves the association (connect(2)).
                _dissolve(sock)
            except OSError as exc:
                raise WSAError(errno_to_wsa(exc.errno or 0)) from None
            if rec.local is None and rec.state is State.UNBOUND:
                try:
                    sock.bind(("::", 0, 0, 0) if rec.family == AF_INET6 else ("0.0.0.0", 0))
                except OSError as exc:
                    raise WSAError(errno_to_wsa(exc.errno or 0)) from None
            rec.peer = None
        else:
            new = next_state(rec.state, PeerSet)
            try:
                # Linux's connect on UDP filters other senders from now on (udp(7)).
                sock.connect(addr.to_os())
            except OSError as exc:
                raise WSAError(errno_to_wsa(exc.errno or 0)) from None
            if rec.peer != addr:
                # A new name (the first one included) discards what is already queued,
                # which may come from senders the new association would have filtered
                # (SEMANTICS.md §2). Connect first, then drain: what arrives later is
                # the new peer's.
                _drain(sock)
                if rec.io is not None:
                    rec.io.unread = False
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
        """The FD_* conditions that hold now, for a message-mode (re-)registration.

        Facts that are reported once (the peer's close) come from the data watch, which
        the caller has brought up to date; data, urgent data and room come from a poll.
        """
        if rec.state is State.LISTENING:
            return _notify.level_events(rec.state, True, len(rec.accepts or ()), False, False, False, False, False)
        sock = rec.sock
        if sock is None or (rec.state is not State.CONNECTED and rec.stream):
            return 0
        mask = self.levels([rec]).get(sock.fileno(), 0)
        io = rec.io
        data = bool(mask & select.POLLIN)
        if data and rec.stream and mask & (select.POLLRDHUP | select.POLLHUP):
            data = _fionread(sock) > 0  # readable may only mean "closed"
        writable = bool(mask & _POLLOUT) and not (io is not None and (io.shut_wr or io.reset))
        return _notify.level_events(
            rec.state,
            rec.stream,
            0,
            data and not (io is not None and (io.shut_rd or io.reset)),
            writable,
            rec.stream and bool(mask & select.POLLPRI),
            bool(rec.options and rec.options.get(_OOBINLINE_KEY)),
            io is not None and io.closed,
        )

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
