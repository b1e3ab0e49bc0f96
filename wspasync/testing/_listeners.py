"""Loopback peers for tests: listeners with an accept policy, refused and pending
addresses, a UDP peer. Plain OS sockets, so they work beside any provider and any loop.

Some facts about Linux that shape them:

* The kernel completes a TCP handshake by itself while the listener's accept queue
  has room; ``accept`` only hands over a connection that is already established. So
  an accept policy changes what the *server side* does with a connection (keep it,
  close it, reset it, take it late), not when the client's connect completes. A
  client whose connect must stay pending needs a listener whose queue is full
  (``never`` with ``fill=True``: ``tcp_conn_request`` drops the SYN when
  ``sk_acceptq_is_full``, and the client keeps retransmitting it).
* ``listen(0)`` still queues one connection (the check is ``>``, not ``>=``); the
  fillers below occupy it, and the SYNs of later connects are dropped.
* Refused: bind 127.0.0.1:0, close, connect -- nothing listens there, the kernel
  answers the SYN with a RST (ECONNREFUSED).

The accept policies other than ``never`` run on one short-lived thread per listener,
stopped and joined by :meth:`LoopbackListener.close`; no thread outlives it.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from typing import Any

from .._sockaddr import sockaddr_in, sockaddr_in6

__all__ = [
    "ACCEPT_POLICIES",
    "LoopbackListener",
    "UdpPeer",
    "refused_sockaddr",
    "full_backlog_listener",
]

#: hold: accept and keep the connection open; close: accept and close gracefully (the
#: client sees FD_CLOSE(0)); reset: accept and close with a RST (SO_LINGER 0: the client
#: sees FD_CLOSE(WSAECONNABORTED)); delay: accept after ``delay`` seconds and hold;
#: never: do not accept at all. ``delay`` also postpones the first accept of "close"
#: and "reset": a reset that comes at once can beat the client's own check that its
#: connect completed (Linux then reports the connect itself as reset).
ACCEPT_POLICIES = ("hold", "close", "reset", "delay", "never")
_ALIASES = {
    "accept-and-hold": "hold",
    "accept-and-close": "close",
    "accept-and-reset": "reset",
    "delayed": "delay",
    "delayed-accept": "delay",
    "never-accept": "never",
}


def _host(family: int) -> str:
    return "::1" if family == socket.AF_INET6 else "127.0.0.1"


def _winsock_addr(family: int, host: str, port: int) -> bytes:
    return sockaddr_in6(host, port) if family == socket.AF_INET6 else sockaddr_in(host, port)


def refused_sockaddr(family: int = socket.AF_INET) -> bytes:
    """A loopback sockaddr (Winsock bytes) where nothing listens: bind :0, close."""
    host = _host(family)
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    return _winsock_addr(family, host, port)


class LoopbackListener:
    """A loopback TCP listener with an accept policy.

    ``addr`` is its Winsock sockaddr bytes (pass it to WSPConnect), ``host``/``port``
    the same as text and int, ``sock`` the listening OS socket, ``accepted`` the
    connections accepted and held (``hold``/``delay``), ``accept_count`` how many were
    accepted under any policy. *delay* (seconds) postpones accepting for every policy
    but "never". :meth:`wait_accepted` waits for a count (from a thread
    or, via ``asyncio.to_thread``, from a coroutine). :meth:`close` stops the accept
    thread, joins it and closes every socket.
    """

    def __init__(
        self,
        backlog: int = 16,
        accept: str = "hold",
        *,
        delay: float = 0.0,
        family: int = socket.AF_INET,
        fill: bool = False,
    ) -> None:
        accept = _ALIASES.get(accept, accept)
        if accept not in ACCEPT_POLICIES:
            raise ValueError(f"accept policy must be one of {ACCEPT_POLICIES}, got {accept!r}")
        self.policy = accept
        self.delay = delay
        self.family = family
        self.host = _host(family)
        self.accepted: list[socket.socket] = []
        self.accept_count = 0
        self.fillers: list[socket.socket] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.bind((self.host, 0))
            self.sock.listen(backlog)
            self.port: int = self.sock.getsockname()[1]
            self.addr: bytes = _winsock_addr(family, self.host, self.port)
            if fill:
                self._fill()
            if accept != "never":
                self._wake_r, self._wake_w = socket.socketpair()
                self._thread = threading.Thread(
                    target=self._run, name=f"wspasync-listener-{self.port}", daemon=True
                )
                self._thread.start()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<LoopbackListener {self.host}:{self.port} accept={self.policy}>"

    def __enter__(self) -> LoopbackListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fill(self) -> None:
        """Occupy the accept queue: later connects stay pending (their SYN is dropped)."""
        for _ in range(8):
            c = socket.socket(self.family, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex((self.host, self.port))
            self.fillers.append(c)

    def _run(self) -> None:
        assert self._wake_r is not None
        if self.delay:
            # Wait out the delay, but wake at once if closed meanwhile.
            with selectors.DefaultSelector() as sel:
                sel.register(self._wake_r, selectors.EVENT_READ)
                if sel.select(self.delay):
                    return
        self.sock.setblocking(False)
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ, "accept")
            sel.register(self._wake_r, selectors.EVENT_READ, "stop")
            while True:
                for key, _ in sel.select():
                    if key.data == "stop":
                        return
                    try:
                        conn, _peer = self.sock.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        return
                    self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        if self.policy == "close":
            conn.close()
        elif self.policy == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        else:
            with self._cond:
                self.accepted.append(conn)
        with self._cond:
            self.accept_count += 1
            self._cond.notify_all()

    def wait_accepted(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until *count* connections were accepted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.accept_count < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self) -> None:
        """Stop accepting, join the thread, close the listener and every connection."""
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None
        with self._cond:
            conns, self.accepted = self.accepted, []
        for conn in conns + self.fillers:
            conn.close()
        self.fillers = []
        self.sock.close()


def full_backlog_listener(family: int = socket.AF_INET) -> LoopbackListener:
    """A listener that never accepts and whose queue is full: connects to it stay
    pending until the connect budget (21 s, or TCP_MAXRT) ends them with WSAETIMEDOUT."""
    return LoopbackListener(backlog=0, accept="never", family=family, fill=True)


class UdpPeer:
    """A UDP socket on loopback for datagram tests.

    ``addr`` is its Winsock sockaddr bytes; :meth:`recv` returns the next datagram and
    the sender's Winsock sockaddr (waiting up to *timeout*, on the calling thread:
    from a coroutine, call it once the provider's send has returned -- loopback
    delivery is immediate); :meth:`send_to` sends to a Winsock sockaddr.
    """

    def __init__(self, family: int = socket.AF_INET) -> None:
        self.family = family
        self.host = _host(family)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((self.host, 0))
        self.port: int = self.sock.getsockname()[1]
        self.addr: bytes = _winsock_addr(family, self.host, self.port)

    def __repr__(self) -> str:
        return f"<UdpPeer {self.host}:{self.port}>"

    def recv(self, timeout: float = 1.0, size: int = 65536) -> tuple[bytes, bytes]:
        """(data, sender sockaddr bytes); raises TimeoutError if nothing arrives."""
        self.sock.settimeout(timeout)
        try:
            data, peer = self.sock.recvfrom(size)
        except socket.timeout:
            raise TimeoutError(f"no datagram within {timeout:g} s") from None
        return data, _winsock_addr(self.family, peer[0], peer[1])

    def send_to(self, addr: Any, data: bytes) -> int:
        """Send *data* to *addr* (Winsock sockaddr bytes, or an OS address tuple)."""
        if isinstance(addr, (bytes, bytearray, memoryview)):
            from .._sockaddr import parse_sockaddr

            _, host, port, *_ = parse_sockaddr(bytes(addr))
            addr = (host, port)
        return self.sock.sendto(data, addr)

    def close(self) -> None:
        self.sock.close()
