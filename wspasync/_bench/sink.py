"""The embedded loopback sink: a listener in its own process(es) that the bench connects to.

Theory of operation
-------------------
A connect benchmark measures the client; the listener must never be the bottleneck and
must never share the client's core, its event loop or its descriptor limit. So the sink
is a separate interpreter (``python -m wspasync._bench.sink``) running a plain epoll
loop -- no asyncio, no Python socket objects on the accept path (``_accept()`` returns a
bare descriptor that is closed with ``os.close``).

Several sink processes may share one port with ``SO_REUSEPORT`` (Linux spreads incoming
connections over them by hash, see socket(7)); that is how the sink holds more than one
process's 20,000 descriptors in ``accept-hold`` mode. The first process binds port 0 and
reports the port; the others bind that port.

Accept policies (what the client observes):

``accept-close``  accept and close at once; drains the backlog as fast as it fills.
``accept-hold``   accept and keep the connection until the client closes it.
``reset``         accept and close with SO_LINGER(1, 0): the client sees an RST.
``delayed``       accept, keep for ``--delay`` seconds, then close.
``never``         listen but never accept: once the accept queue (the backlog) is full
                  Linux drops further SYNs, so connects pend until they time out.

A sink process prints ``READY <port>`` on stdout once listening and exits when its
standard input reaches end of file (the parent closed it or died) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import collections
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

__all__ = ["POLICIES", "SinkGroup", "main"]

POLICIES = ("accept-close", "accept-hold", "reset", "delayed", "never")
_LINGER_RST = struct.pack("ii", 1, 0)


def _serve(listener: socket.socket, policy: str, delay: float) -> None:
    ep = select.epoll()
    lfd = listener.fileno()
    stdin_fd = sys.stdin.fileno()
    ep.register(stdin_fd, select.EPOLLIN | select.EPOLLHUP)
    if policy != "never":
        ep.register(lfd, select.EPOLLIN)
    # socket._accept() returns a bare descriptor: no socket object per connection.
    accept = listener._accept  # type: ignore[attr-defined]
    close = os.close
    held: set[int] = set()
    delayed: collections.deque[tuple[float, int]] = collections.deque()
    paused_until = 0.0
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        while not stop:
            timeout = -1.0
            if delayed:
                timeout = max(0.0, delayed[0][0] - time.monotonic())
            if paused_until:
                timeout = 0.05 if timeout < 0 else min(timeout, 0.05)
            try:
                events = ep.poll(timeout)
            except InterruptedError:
                continue
            if paused_until and time.monotonic() >= paused_until:
                paused_until = 0.0
                ep.register(lfd, select.EPOLLIN)
            for fd, mask in events:
                if fd == lfd:
                    while True:
                        try:
                            cfd, _ = accept()
                        except BlockingIOError:
                            break
                        except OSError:  # EMFILE/ENFILE/ENOBUFS: back off, let the backlog hold
                            ep.unregister(lfd)
                            paused_until = time.monotonic() + 0.1
                            break
                        if policy == "accept-close":
                            close(cfd)
                        elif policy == "accept-hold":
                            held.add(cfd)
                            ep.register(cfd, select.EPOLLRDHUP | select.EPOLLIN)
                        elif policy == "reset":
                            try:
                                s = socket.socket(fileno=cfd)
                                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                                s.close()
                            except OSError:
                                close(cfd)
                        else:  # delayed
                            delayed.append((time.monotonic() + delay, cfd))
                elif fd == stdin_fd:
                    if mask & (select.EPOLLHUP | select.EPOLLERR) or not os.read(stdin_fd, 4096):
                        stop = True
                elif fd in held:  # the client closed (FIN or RST): release the descriptor
                    ep.unregister(fd)
                    held.discard(fd)
                    close(fd)
            if delayed:
                now = time.monotonic()
                while delayed and delayed[0][0] <= now:
                    close(delayed.popleft()[1])
    finally:
        for fd in held:
            close(fd)
        for _, fd in delayed:
            close(fd)
        ep.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wspasync._bench.sink")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--policy", choices=POLICIES, default="accept-close")
    p.add_argument("--backlog", type=int, default=4096)
    p.add_argument("--delay", type=float, default=0.1)
    a = p.parse_args(argv)
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    ls.bind((a.host, a.port))
    ls.listen(a.backlog)
    ls.setblocking(False)
    print(f"READY {ls.getsockname()[1]}", flush=True)
    try:
        _serve(ls, a.policy, a.delay)
    finally:
        ls.close()
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


class SinkGroup:
    """``procs`` sink processes sharing one loopback port; a context manager.

    ``port`` is valid after ``start()``; ``cpu_seconds()`` sums the processes' CPU time
    (from /proc) so a run can show that the sink was not the bottleneck.
    """

    def __init__(
        self,
        policy: str = "accept-close",
        *,
        procs: int = 1,
        backlog: int = 4096,
        delay: float = 0.1,
        host: str = "127.0.0.1",
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown accept policy {policy!r}")
        self.policy, self.procs, self.backlog, self.delay, self.host = (
            policy,
            max(1, procs) if policy != "never" else 1,
            backlog,
            delay,
            host,
        )
        self.port = 0
        self._children: list[subprocess.Popen[str]] = []

    def _spawn(self, port: int) -> int:
        cmd = [
            sys.executable, "-m", "wspasync._bench.sink", "--host", self.host,
            "--port", str(port), "--policy", self.policy,
            "--backlog", str(self.backlog), "--delay", str(self.delay),
        ]
        child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._children.append(child)
        assert child.stdout is not None
        line = child.stdout.readline().split()
        if len(line) != 2 or line[0] != "READY":
            self.stop()
            raise RuntimeError(f"the sink did not start (policy {self.policy}, port {port})")
        return int(line[1])

    def start(self) -> SinkGroup:
        self.port = self._spawn(0)
        for _ in range(self.procs - 1):
            self._spawn(self.port)
        return self

    def cpu_seconds(self) -> float:
        hz = os.sysconf("SC_CLK_TCK")
        return sum(_cpu_ticks(c.pid) for c in self._children) / hz

    def stop(self) -> None:
        for c in self._children:
            for stream in (c.stdin, c.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        for c in self._children:
            try:
                c.wait(timeout=5)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
        self._children.clear()

    def __enter__(self) -> SinkGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
