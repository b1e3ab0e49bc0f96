"""Windows sockaddr bytes <-> addresses (API.md §2).

Layouts, from ws2def.h / ws2ipdef.h::

    sockaddr_in   (16 bytes)  family u16 LE | port u16 BE | addr[4]  | zero[8]
    sockaddr_in6  (28 bytes)  family u16 LE | port u16 BE | flowinfo u32 BE
                              | addr[16] | scope_id u32 LE

The family is in host order (little-endian on every Windows CPU); port and
address are in network order. sin6_flowinfo is kept in network order, as
Windows' own users of it (and CPython's socket module on Windows and Linux
alike) treat it; sin6_scope_id is an interface index in host order.

``SockAddr.from_bytes`` is the validation edge of every WSP call that takes a
``name``: it turns whatever the caller passed into a SockAddr or a WSAError.
It sits on the connect path, so the common case (bytes of the right size) does
one slice, a few integer reads, and a cached address-to-text lookup.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

import attrs

from ._constants import AF_INET, AF_INET6, WSAEAFNOSUPPORT, WSAEFAULT
from ._errors import WSAError

SOCKADDR_IN_SIZE = 16
SOCKADDR_IN6_SIZE = 28

_SIZES = {AF_INET: SOCKADDR_IN_SIZE, AF_INET6: SOCKADDR_IN6_SIZE}

# Linux's AF_INET6 is 10; accepted by from_os so that the engine can pass
# sock.family straight through. (This module may not import socket.)
_OS_FAMILIES = {AF_INET: AF_INET, AF_INET6: AF_INET6, 10: AF_INET6}

# Python's socket module refuses an IPv6 flowinfo outside the 20-bit flow
# label ("flowinfo must be 0-1048575").
_FLOW_LABEL_MASK = 0xFFFFF


@functools.lru_cache(maxsize=4096)
def _ipv4_text(packed: bytes) -> str:
    return "%d.%d.%d.%d" % tuple(packed)


@functools.lru_cache(maxsize=4096)
def _ipv6_text(packed: bytes) -> str:
    return ipaddress.IPv6Address(packed).compressed


@functools.lru_cache(maxsize=4096)
def _ipv4_packed(host: str) -> bytes:
    return ipaddress.IPv4Address(host).packed


@functools.lru_cache(maxsize=4096)
def _ipv6_packed(host: str) -> bytes:
    address = ipaddress.IPv6Address(host)
    if address.scope_id is not None:
        raise ValueError(f"{host!r}: pass the scope id separately")
    return address.packed


def _check_port(port: int) -> None:
    if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise ValueError(f"port must be an int in 0..65535, not {port!r}")


def _check_u32(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} must be an int in 0..2**32-1, not {value!r}")


def _pack_in(packed: bytes, port: int) -> bytes:
    return b"\x02\x00" + port.to_bytes(2, "big") + packed + bytes(8)


def _pack_in6(packed: bytes, port: int, flowinfo: int, scope_id: int) -> bytes:
    return (b"\x17\x00" + port.to_bytes(2, "big") + flowinfo.to_bytes(4, "big")
            + packed + scope_id.to_bytes(4, "little"))


def sockaddr_in(host: str, port: int) -> bytes:
    """Return the 16-byte Windows sockaddr_in for dotted-quad ``host``:``port``.

    Raises ValueError for a host that is no IPv4 address or a port outside
    0..65535.
    """
    if not isinstance(host, str):
        raise ValueError(f"host must be a str, not {host!r}")
    _check_port(port)
    return _pack_in(_ipv4_packed(host), port)


def sockaddr_in6(host: str, port: int, flowinfo: int = 0,
                 scope_id: int = 0) -> bytes:
    """Return the 28-byte Windows sockaddr_in6 for IPv6 ``host``:``port``.

    Raises ValueError for a host that is no IPv6 address (or carries a
    "%scope" suffix), a port outside 0..65535, or a flowinfo or scope_id
    outside 0..2**32-1.
    """
    if not isinstance(host, str):
        raise ValueError(f"host must be a str, not {host!r}")
    _check_port(port)
    _check_u32("flowinfo", flowinfo)
    _check_u32("scope_id", scope_id)
    return _pack_in6(_ipv6_packed(host), port, flowinfo, scope_id)


def parse_sockaddr(data: Any) -> tuple:
    """Return ``(AF_INET, host, port)`` or
    ``(AF_INET6, host, port, flowinfo, scope_id)`` for Windows sockaddr bytes.

    ``data`` may be longer than the address (a sockaddr_storage buffer).
    Raises ValueError for anything else: not bytes-like, too short, or a
    family other than AF_INET / AF_INET6.
    """
    try:
        with memoryview(data) as view:
            namelen = view.nbytes
        addr = SockAddr.from_bytes(data, namelen)
    except (TypeError, ValueError, BufferError, WSAError):
        raise ValueError(f"not a Windows sockaddr: {data!r:.80}") from None
    if addr.family == AF_INET:
        return (AF_INET, addr.host, addr.port)
    return (AF_INET6, addr.host, addr.port, addr.flowinfo, addr.scope_id)


_DECODED: dict[bytes, SockAddr] = {}
_DECODED_MAX = 4096


def known_sockaddr(data: Any, namelen: Any) -> SockAddr | None:
    """The address that bytes *data* decoded to before, when *namelen* is exactly
    their length (so :meth:`SockAddr.from_bytes` would return it); else None."""
    if type(data) is bytes and type(namelen) is int and namelen == len(data):
        return _DECODED.get(data)
    return None


def _remember(data: bytes, addr: SockAddr) -> None:
    if len(_DECODED) >= _DECODED_MAX:
        _DECODED.clear()
    _DECODED[data] = addr


@attrs.frozen
class SockAddr:
    """An IPv4 or IPv6 socket address, with ``family`` a Windows AF_* number.

    ``host`` is canonical text ("127.0.0.1", "::1"), so equal addresses
    compare equal whichever constructor made them.
    """

    family: int
    host: str
    port: int
    flowinfo: int = 0
    scope_id: int = 0
    # Derived once, at construction: a decoded name is reused by every connect to it
    # (the decode cache), and these are read on the connect path.
    os: tuple = attrs.field(init=False, eq=False, repr=False)  # what to_os() returns
    unspecified: bool = attrs.field(init=False, eq=False, repr=False)  # is_zero_address

    def __attrs_post_init__(self) -> None:
        if self.family == AF_INET:
            os_addr: tuple = (self.host, self.port)
        else:
            os_addr = (self.host, self.port, self.flowinfo & _FLOW_LABEL_MASK, self.scope_id)
        object.__setattr__(self, "os", os_addr)
        object.__setattr__(self, "unspecified", self.host == "0.0.0.0" or self.host == "::")

    @classmethod
    def from_bytes(cls, data: Any, namelen: Any) -> SockAddr:
        """Validate a caller's ``name``/``namelen`` pair and decode it.

        Raises WSAError with WSAEFAULT when ``data`` is not bytes-like,
        ``namelen`` is not an int, ``namelen`` < 2 or > len(data), or
        ``namelen`` is shorter than the family's sockaddr (16 / 28 bytes);
        with WSAEAFNOSUPPORT when the family is neither AF_INET nor AF_INET6.
        Bytes past the family's size are ignored, as Windows does.
        """
        if type(data) is bytes and type(namelen) is int:
            # Connect storms pass the same name again and again: decode it once.
            hit = _DECODED.get(data)
            # A name decoded before fits in its own bytes: namelen == len(data) is
            # enough; a shorter namelen must still cover the family's size.
            if hit is not None and (namelen == len(data) or hit.size <= namelen < len(data)):
                return hit
        if not isinstance(namelen, int):
            raise WSAError(WSAEFAULT)
        if type(data) is not bytes:
            try:
                with memoryview(data) as view:
                    data = view.tobytes()
            except (TypeError, ValueError, BufferError):
                raise WSAError(WSAEFAULT) from None
        if namelen < 2 or namelen > len(data):
            raise WSAError(WSAEFAULT)
        family = data[0] | data[1] << 8
        if family == AF_INET:
            if namelen < SOCKADDR_IN_SIZE:
                raise WSAError(WSAEFAULT)
            addr = cls(AF_INET, _ipv4_text(data[4:8]), data[2] << 8 | data[3])
            _remember(data, addr)
            return addr
        if family == AF_INET6:
            if namelen < SOCKADDR_IN6_SIZE:
                raise WSAError(WSAEFAULT)
            addr = cls(AF_INET6, _ipv6_text(data[8:24]),
                       data[2] << 8 | data[3],
                       int.from_bytes(data[4:8], "big"),
                       int.from_bytes(data[24:28], "little"))
            _remember(data, addr)
            return addr
        raise WSAError(WSAEAFNOSUPPORT)

    @classmethod
    def from_os(cls, family: int, addr: tuple) -> SockAddr:
        """Build from an address tuple of Python's socket module.

        ``family`` is AF_INET or AF_INET6 (the Windows 23 or Linux's 10);
        ``addr`` is ``(host, port)`` or ``(host, port, flowinfo, scope_id)``.
        A "%ifname" suffix on an IPv6 host (getnameinfo adds one for
        link-local addresses) is dropped: the scope travels in scope_id.
        Raises ValueError for anything else.
        """
        windows_family = _OS_FAMILIES.get(family)
        if windows_family == AF_INET:
            host, port = addr
            return cls(AF_INET, _ipv4_text(_ipv4_packed(host)), port)
        if windows_family == AF_INET6:
            host, port, flowinfo, scope_id = addr
            host = _ipv6_text(_ipv6_packed(host.partition("%")[0]))
            return cls(AF_INET6, host, port, flowinfo, scope_id)
        raise ValueError(f"not an IP family: {family!r}")

    def to_bytes(self) -> bytes:
        """Return the Windows sockaddr_in / sockaddr_in6 bytes."""
        if self.family == AF_INET:
            return _pack_in(_ipv4_packed(self.host), self.port)
        return _pack_in6(_ipv6_packed(self.host), self.port, self.flowinfo,
                         self.scope_id)

    def to_os(self) -> tuple:
        """Return the address tuple Python's socket module takes.

        ``(host, port)``, or ``(host, port, flowinfo, scope_id)`` with
        flowinfo cut to the 20-bit flow label Python accepts.
        """
        return self.os

    @property
    def size(self) -> int:
        """The sockaddr size in bytes: 16 for AF_INET, 28 for AF_INET6."""
        return _SIZES[self.family]

    @property
    def is_zero_address(self) -> bool:
        """True for 0.0.0.0 and ::, the unspecified ("any") addresses."""
        return self.unspecified

    @property
    def is_broadcast(self) -> bool:
        """True for the limited broadcast address 255.255.255.255.

        A directed broadcast (e.g. 192.168.1.255) is not recognised: that
        needs the interfaces' netmasks, which this pure module does not know.
        """
        return self.host == "255.255.255.255"


def write_sockaddr(addr: SockAddr, buf: Any, namelen_box: Any) -> None:
    """Fill a caller's ``buf`` and ``namelen_box`` as WSPGetSockName does.

    ``namelen_box.value`` is the room on input; on success ``addr.size``
    bytes are written to the start of ``buf`` and the box is set to
    ``addr.size``. Raises WSAError(WSAEFAULT), writing nothing, when the room
    or ``buf`` is smaller than the address, ``buf`` is not a writable buffer,
    or the box holds no int ``.value``.
    """
    size = addr.size
    try:
        room = namelen_box.value
    except AttributeError:
        raise WSAError(WSAEFAULT) from None
    if not isinstance(room, int) or room < size:
        raise WSAError(WSAEFAULT)
    try:
        with memoryview(buf) as view:
            if view.readonly or view.nbytes < size:
                raise WSAError(WSAEFAULT)
            with view.cast("B") as octets:
                octets[:size] = addr.to_bytes()
    except (TypeError, ValueError, BufferError):
        raise WSAError(WSAEFAULT) from None
    namelen_box.value = size
