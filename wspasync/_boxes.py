"""Out-parameters and caller buffers: the edge where user objects are read and written.

Every WSP method takes its results out through "boxes" (any object with a writable
``.value``) and caller buffers (bytes-like in, bytearray/writable memoryview out), as
API.md §3 fixes. These helpers are shared by the provider and its mixins; a box that
cannot be written never raises -- the SPI return value still tells the caller.
"""

from __future__ import annotations

from typing import Any

from ._constants import SOCKET_ERROR, ErrorCode
from ._errors import WSAError

E = ErrorCode


def set_errno(box: Any, code: int) -> None:
    try:
        box.value = int(code)
    except Exception:  # a box we cannot write: the return value still says it failed
        pass


def fail(box: Any, code: int) -> int:
    set_errno(box, code)
    return SOCKET_ERROR


def is_int(value: Any) -> bool:
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def read_bytes(data: Any, length: Any, need: int) -> bytes:
    """The first *need* bytes of a caller's input buffer; WSAEFAULT if it is short."""
    if not is_int(length) or length < need:
        raise WSAError(E.WSAEFAULT)
    if type(data) is bytes:
        if len(data) < need or length > len(data):
            raise WSAError(E.WSAEFAULT)
        return data if len(data) == need else data[:need]
    try:
        view = memoryview(data)
    except TypeError:
        raise WSAError(E.WSAEFAULT) from None
    with view:
        # A declared length past the end of the buffer is a bad pointer in C: WSAEFAULT.
        if view.nbytes < need or view.nbytes < length:
            raise WSAError(E.WSAEFAULT)
        return view.cast("B")[:need].tobytes()


def write_out(buf: Any, box: Any, payload: bytes) -> None:
    """Fill a caller's (buffer, length box) pair; WSAEFAULT if it cannot hold *payload*."""
    try:
        room = box.value
    except AttributeError:
        raise WSAError(E.WSAEFAULT) from None
    if not is_int(room) or room < len(payload):
        raise WSAError(E.WSAEFAULT)
    try:
        view = memoryview(buf)
    except TypeError:
        raise WSAError(E.WSAEFAULT) from None
    with view:
        if view.readonly or view.nbytes < len(payload):
            raise WSAError(E.WSAEFAULT)
        view.cast("B")[: len(payload)] = payload
    box.value = len(payload)


class Scratch:
    """A throwaway out-parameter box."""

    __slots__ = ("value",)

    def __init__(self, value: Any = 0) -> None:
        self.value = value


def set_count(box: Any, count: int) -> None:
    if box is not None:
        set_errno(box, count)
