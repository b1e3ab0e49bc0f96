"""The Winsock structures of the SPI, as attrs classes (API.md §3-§4).

Field names are the Windows ones, so code ported from C reads the same.
Mutable records are filled in place by the WSP calls that take them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ._constants import (
    AF_INET,
    AF_INET6,
    FD_MAX_EVENTS,
    FD_SETSIZE,
    IPPROTO_TCP,
    IPPROTO_UDP,
    QOS_NOT_SPECIFIED,
    SERVICETYPE_NOTRAFFIC,
    SOCK_DGRAM,
    SOCK_STREAM,
    XP1_CONNECTIONLESS,
    XP1_EXPEDITED_DATA,
    XP1_GRACEFUL_CLOSE,
    XP1_GUARANTEED_DELIVERY,
    XP1_GUARANTEED_ORDER,
    XP1_IFS_HANDLES,
    XP1_MESSAGE_ORIENTED,
    XP1_SUPPORT_BROADCAST,
    XP1_SUPPORT_MULTIPOINT,
)


@attrs.define
class Errno:
    """A box for an ``lpErrno`` out-parameter; ``value`` is the error code."""

    value: int = 0


@attrs.define
class WSABuf:
    """WSABUF: ``len`` bytes of ``buf``.

    For lpCalleeData, ``len`` is the room on input and the received length
    on output.
    """

    len: int = 0
    buf: bytearray | None = None


@attrs.define
class FlowSpec:
    """FLOWSPEC: every field QOS_NOT_SPECIFIED unless set, ServiceType
    SERVICETYPE_NOTRAFFIC."""

    TokenRate: int = QOS_NOT_SPECIFIED
    TokenBucketSize: int = QOS_NOT_SPECIFIED
    PeakBandwidth: int = QOS_NOT_SPECIFIED
    Latency: int = QOS_NOT_SPECIFIED
    DelayVariation: int = QOS_NOT_SPECIFIED
    ServiceType: int = SERVICETYPE_NOTRAFFIC
    MaxSduSize: int = QOS_NOT_SPECIFIED
    MinimumPolicedSize: int = QOS_NOT_SPECIFIED


@attrs.define
class QOS:
    """QOS: both flow specs (fresh defaults per instance) and a
    provider-specific buffer (empty by default)."""

    SendingFlowspec: FlowSpec = attrs.Factory(FlowSpec)
    ReceivingFlowspec: FlowSpec = attrs.Factory(FlowSpec)
    ProviderSpecific: WSABuf = attrs.Factory(WSABuf)


@attrs.define(init=False)
class FdSet:
    """fd_set: up to ``capacity`` socket handles, without duplicates.

    The methods behave as the winsock2.h macros: FD_SET ignores a handle
    already present or one past capacity; FD_CLR removes a handle (no-op if
    absent). ``fd_count`` is always ``len(fd_array)``; assigning a smaller
    count drops the handles past it, as the C struct ignores them.
    """

    fd_array: list[int]
    capacity: int

    def __init__(self, sockets: Iterable[int] = (),
                 capacity: int = FD_SETSIZE) -> None:
        self.__attrs_init__([], capacity)
        for s in sockets:
            self.FD_SET(s)

    @property
    def fd_count(self) -> int:
        return len(self.fd_array)

    @fd_count.setter
    def fd_count(self, count: int) -> None:
        if not 0 <= count <= len(self.fd_array):
            raise ValueError(f"fd_count must be in 0..{len(self.fd_array)}")
        del self.fd_array[count:]

    def FD_SET(self, s: int) -> None:
        if s not in self.fd_array and len(self.fd_array) < self.capacity:
            self.fd_array.append(s)

    def FD_CLR(self, s: int) -> None:
        if s in self.fd_array:
            self.fd_array.remove(s)

    def FD_ISSET(self, s: int) -> bool:
        return s in self.fd_array

    def FD_ZERO(self) -> None:
        self.fd_array.clear()


@attrs.define
class TimeVal:
    """timeval: ``tv_sec`` seconds plus ``tv_usec`` microseconds."""

    tv_sec: int = 0
    tv_usec: int = 0


def _zero_error_codes() -> list[int]:
    return [0] * FD_MAX_EVENTS


@attrs.define
class WSANetworkEvents:
    """WSANETWORKEVENTS: the FD_* bits that occurred, and one error code per
    bit index (``iErrorCode[FD_CONNECT_BIT]``)."""

    lNetworkEvents: int = 0
    iErrorCode: list[int] = attrs.Factory(_zero_error_codes)


@attrs.frozen
class Message:
    """A window message posted by WSPAsyncSelect: ``wParam`` is the socket,
    ``lParam`` is WSAMAKESELECTREPLY(event, error)."""

    hwnd: Any
    msg: int
    wParam: int
    lParam: int


@attrs.frozen
class ProtocolInfo:
    """The parts of WSAPROTOCOL_INFO the provider uses.

    ``iMaxSockAddr`` / ``iMinSockAddr`` are the sockaddr sizes the protocol
    takes (0: not stated).
    """

    iAddressFamily: int
    iSocketType: int
    iProtocol: int
    dwServiceFlags1: int
    szProtocol: str
    iMaxSockAddr: int = 0
    iMinSockAddr: int = 0


# Service flags as Windows' MSAFD provider reports them (0x20066 and 0x20609;
# Wine copies the same values in dlls/ws2_32/socket.c `supported_protocols`).
# No XP1_CONNECT_DATA and no XP1_QOS_SUPPORTED: TCP/IP carries no connect
# data and plain MSAFD does no QoS (that was the separate RSVP provider).
_TCP_FLAGS = (XP1_GUARANTEED_DELIVERY | XP1_GUARANTEED_ORDER
              | XP1_GRACEFUL_CLOSE | XP1_EXPEDITED_DATA | XP1_IFS_HANDLES)
_UDP_FLAGS = (XP1_CONNECTIONLESS | XP1_MESSAGE_ORIENTED | XP1_SUPPORT_BROADCAST
              | XP1_SUPPORT_MULTIPOINT | XP1_IFS_HANDLES)

_PROTOCOLS = (
    ProtocolInfo(AF_INET, SOCK_STREAM, IPPROTO_TCP, _TCP_FLAGS,
                 "MSAFD Tcpip [TCP/IP]", 16, 16),
    ProtocolInfo(AF_INET, SOCK_DGRAM, IPPROTO_UDP, _UDP_FLAGS,
                 "MSAFD Tcpip [UDP/IP]", 16, 16),
    ProtocolInfo(AF_INET6, SOCK_STREAM, IPPROTO_TCP, _TCP_FLAGS,
                 "MSAFD Tcpip [TCP/IPv6]", 28, 28),
    ProtocolInfo(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, _UDP_FLAGS,
                 "MSAFD Tcpip [UDP/IPv6]", 28, 28),
)


def enum_protocols() -> list[ProtocolInfo]:
    """Return the protocol catalog: TCP and UDP over IPv4 and IPv6, in that
    order (a new list on each call)."""
    return list(_PROTOCOLS)
