"""Run a call inside a network namespace of its own: a real "network unreachable".

A socket belongs to the network namespace of the thread that created it, for its
whole life (network_namespaces(7)). ``unshare(CLONE_NEWNET)`` moves only the calling
thread into a new namespace (unshare(2): allowed in a multithreaded process for
CLONE_NEWNET), and that namespace holds nothing but a loopback interface that is
*down*: no address, no route. So a socket created on such a thread -- by
``wsp.WSPSocket`` called there -- gets ENETUNREACH from ``connect`` to any address,
127.0.0.1 included, without a packet leaving anywhere; wspasync reports it as
WSAENETUNREACH, through FD_CONNECT / exceptfds for a nonblocking socket.

The thread ends when the call returns (no thread survives); the namespace lives as
long as a socket created in it. Needs CAP_SYS_ADMIN (root): :func:`isolated_network_available`
tells, and :func:`in_isolated_network` raises PermissionError otherwise.

Limit: a retry after a failed connect swaps in a fresh OS socket, created on the
loop's thread, i.e. in the test's own namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["in_isolated_network", "isolated_network_available"]

_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def in_isolated_network(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(*args)`` on a new thread in a fresh network namespace; return its result.

    Raises PermissionError when namespaces cannot be created here (not root), and
    re-raises whatever *fn* raised.
    """
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            if _libc().unshare(_CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise PermissionError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
            result.append(fn(*args))
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="wspasync-netns")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


@functools.cache
def isolated_network_available() -> bool:
    """True if :func:`in_isolated_network` works on this machine (checked once)."""
    try:
        in_isolated_network(lambda: None)
    except PermissionError:
        return False
    return True
