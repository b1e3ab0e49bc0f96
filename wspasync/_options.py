"""Socket options: Winsock (level, name) -> how the value is kept and applied.

Three kinds of option exist here:

* ``os``: passed through to the Linux option of the same meaning, and remembered so a
  swapped-in OS socket gets it again (SEMANTICS.md §1).
* ``stored``: Winsock-only state the provider honours itself (SO_EXCLUSIVEADDRUSE,
  SO_SNDTIMEO/SO_RCVTIMEO in ms, TCP_MAXRT in seconds).
* ``derived``: read-only values computed from the provider's own state (SO_ERROR with
  Windows persistence, SO_TYPE, SO_CONNECT_TIME).

Linux doubles SO_SNDBUF/SO_RCVBUF on set (socket(7)) and reports the doubled value;
Windows reports what was set, so the set value is remembered and returned.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import attrs

from ._constants import (
    IPPROTO_TCP,
    SO_BROADCAST,
    SO_CONNECT_TIME,
    SO_ERROR,
    SO_EXCLUSIVEADDRUSE,
    SO_KEEPALIVE,
    SO_LINGER,
    SO_OOBINLINE,
    SO_RCVBUF,
    SO_RCVTIMEO,
    SO_REUSEADDR,
    SO_SNDBUF,
    SO_SNDTIMEO,
    SO_TYPE,
    SOL_SOCKET,
    TCP_MAXRT,
    TCP_NODELAY,
)

__all__ = ["OptionSpec", "OPTIONS", "encode_linger", "decode_linger"]


@attrs.frozen
class OptionSpec:
    kind: str  # "os", "stored" or "derived"
    size: int  # bytes of the Winsock value (BOOL/int/DWORD 4, linger 4)
    os_level: int = 0
    os_name: int = 0
    linger: bool = False
    stream_only: bool = False


def encode_linger(value: tuple[int, int]) -> bytes:
    """Windows' ``struct linger`` is two u_shorts."""
    return struct.pack("<HH", *value)


def decode_linger(data: bytes) -> tuple[int, int]:
    onoff, seconds = struct.unpack_from("<HH", data)
    return onoff, seconds


_SOL = socket.SOL_SOCKET
_TCP = socket.IPPROTO_TCP

OPTIONS: dict[tuple[int, int], OptionSpec] = {
    (SOL_SOCKET, SO_REUSEADDR): OptionSpec("os", 4, _SOL, socket.SO_REUSEADDR),
    (SOL_SOCKET, SO_KEEPALIVE): OptionSpec("os", 4, _SOL, socket.SO_KEEPALIVE),
    (SOL_SOCKET, SO_BROADCAST): OptionSpec("os", 4, _SOL, socket.SO_BROADCAST),
    (SOL_SOCKET, SO_OOBINLINE): OptionSpec("os", 4, _SOL, socket.SO_OOBINLINE),
    (SOL_SOCKET, SO_SNDBUF): OptionSpec("os", 4, _SOL, socket.SO_SNDBUF),
    (SOL_SOCKET, SO_RCVBUF): OptionSpec("os", 4, _SOL, socket.SO_RCVBUF),
    (SOL_SOCKET, SO_LINGER): OptionSpec("os", 4, _SOL, socket.SO_LINGER, linger=True),
    (IPPROTO_TCP, TCP_NODELAY): OptionSpec("os", 4, _TCP, socket.TCP_NODELAY, stream_only=True),
    (SOL_SOCKET, SO_EXCLUSIVEADDRUSE): OptionSpec("stored", 4),
    (SOL_SOCKET, SO_SNDTIMEO): OptionSpec("stored", 4),
    (SOL_SOCKET, SO_RCVTIMEO): OptionSpec("stored", 4),
    (IPPROTO_TCP, TCP_MAXRT): OptionSpec("stored", 4, stream_only=True),
    (SOL_SOCKET, SO_ERROR): OptionSpec("derived", 4),
    (SOL_SOCKET, SO_TYPE): OptionSpec("derived", 4),
    (SOL_SOCKET, SO_CONNECT_TIME): OptionSpec("derived", 4, stream_only=True),
}


def apply_os(sock: socket.socket, spec: OptionSpec, value: Any) -> None:
    """Put a Winsock option value on the OS socket (raises OSError)."""
    if spec.linger:
        onoff, seconds = value
        sock.setsockopt(spec.os_level, spec.os_name, struct.pack("ii", onoff, seconds))
    else:
        sock.setsockopt(spec.os_level, spec.os_name, int(value))


def read_os(sock: socket.socket, spec: OptionSpec) -> Any:
    if spec.linger:
        onoff, seconds = struct.unpack("ii", sock.getsockopt(spec.os_level, spec.os_name, 8))
        return (1 if onoff else 0, seconds & 0xFFFF)
    return sock.getsockopt(spec.os_level, spec.os_name)
