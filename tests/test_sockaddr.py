"""Windows sockaddr bytes: layout, validation edge, round trips."""

import ctypes
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wspasync._constants import AF_INET, AF_INET6, WSAEAFNOSUPPORT, WSAEFAULT
from wspasync._errors import WSAError
from wspasync._sockaddr import (
    SockAddr,
    parse_sockaddr,
    sockaddr_in,
    sockaddr_in6,
    write_sockaddr,
)
from wspasync._structs import Errno

LOOPBACK_80 = b"\x02\x00\x00\x50\x7f\x00\x00\x01" + bytes(8)
LOOPBACK6_8080 = (b"\x17\x00\x1f\x90" + b"\x00\x00\x00\x05" + bytes(15)
                  + b"\x01" + b"\x07\x00\x00\x00")

ipv4 = st.builds(lambda n: str(ipaddress.IPv4Address(n)),
                 st.integers(0, 2**32 - 1))
ipv6 = st.builds(lambda n: ipaddress.IPv6Address(n).compressed,
                 st.integers(0, 2**128 - 1))
ports = st.integers(0, 0xFFFF)
u32 = st.integers(0, 2**32 - 1)


def fault_code(call):
    with pytest.raises(WSAError) as info:
        call()
    return info.value.code


# -- layout -------------------------------------------------------------------


def test_sockaddr_in_layout():
    assert sockaddr_in("127.0.0.1", 80) == LOOPBACK_80
    assert len(sockaddr_in("0.0.0.0", 0)) == 16


def test_sockaddr_in6_layout():
    # flowinfo in network order, scope id in host (little-endian) order.
    assert sockaddr_in6("::1", 8080, flowinfo=5, scope_id=7) == LOOPBACK6_8080
    assert len(sockaddr_in6("::", 0)) == 28


@pytest.mark.parametrize("args", [
    ("localhost", 80), ("1.2.3.4.5", 80), ("::1", 80), ("1.2.3.4", -1),
    ("1.2.3.4", 65536), (b"1.2.3.4", 80), (None, 80), ("1.2.3.4", "80"),
])
def test_sockaddr_in_rejects(args):
    with pytest.raises(ValueError):
        sockaddr_in(*args)


@pytest.mark.parametrize("args", [
    ("127.0.0.1", 80), ("::1", 70000), ("::1", 80, -1), ("::1", 80, 0, 2**32),
    ("fe80::1%2", 80),
])
def test_sockaddr_in6_rejects(args):
    with pytest.raises(ValueError):
        sockaddr_in6(*args)


def test_parse_sockaddr():
    assert parse_sockaddr(LOOPBACK_80) == (AF_INET, "127.0.0.1", 80)
    assert parse_sockaddr(bytearray(LOOPBACK6_8080)) == (
        AF_INET6, "::1", 8080, 5, 7)
    # A sockaddr_storage-sized buffer holding a sockaddr_in is fine.
    assert parse_sockaddr(LOOPBACK_80 + bytes(112)) == (
        AF_INET, "127.0.0.1", 80)


@pytest.mark.parametrize("data", [
    None, "127.0.0.1", 80, LOOPBACK_80[:15], LOOPBACK6_8080[:27], b"",
    b"\x00\x00" + bytes(14), b"\x01\x00" + bytes(14), [2, 0, 0, 80],
])
def test_parse_sockaddr_rejects(data):
    with pytest.raises(ValueError):
        parse_sockaddr(data)


# -- from_bytes: the validation edge ------------------------------------------


def test_from_bytes_decodes():
    addr = SockAddr.from_bytes(LOOPBACK_80, 16)
    assert addr == SockAddr(AF_INET, "127.0.0.1", 80)
    assert addr.size == 16
    addr6 = SockAddr.from_bytes(memoryview(LOOPBACK6_8080), 28)
    assert addr6 == SockAddr(AF_INET6, "::1", 8080, 5, 7)
    assert addr6.size == 28


def test_from_bytes_ignores_bytes_past_namelen_and_size():
    assert SockAddr.from_bytes(LOOPBACK_80 + b"junk", 16).port == 80
    assert SockAddr.from_bytes(LOOPBACK_80 + b"junk", 20).port == 80


@pytest.mark.parametrize("data, namelen", [
    (None, 16), ("abc", 3), (12345, 16), (object(), 16),
    (LOOPBACK_80, None), (LOOPBACK_80, "16"), (LOOPBACK_80, 16.0),
    (LOOPBACK_80, 0), (LOOPBACK_80, 1), (LOOPBACK_80, -16),
    (LOOPBACK_80, 17), (LOOPBACK_80, 15), (LOOPBACK6_8080, 27),
    (LOOPBACK6_8080, 16), (b"", 0),
])
def test_from_bytes_fault(data, namelen):
    assert fault_code(lambda: SockAddr.from_bytes(data, namelen)) == WSAEFAULT


@pytest.mark.parametrize("family", [0, 1, 3, 10, 17, 0x0200, 0xFFFF])
def test_from_bytes_unknown_family(family):
    data = family.to_bytes(2, "little") + bytes(26)
    assert (fault_code(lambda: SockAddr.from_bytes(data, 28))
            == WSAEAFNOSUPPORT)


def test_from_bytes_family_is_little_endian():
    # Linux order (big-endian family bytes 0x0002) is not AF_INET on Windows.
    data = b"\x00\x02" + LOOPBACK_80[2:]
    assert fault_code(lambda: SockAddr.from_bytes(data, 16)) == WSAEAFNOSUPPORT


@given(st.one_of(st.binary(max_size=40), st.builds(bytearray, st.binary())),
       st.integers(-5, 50))
def test_from_bytes_garbage_only_raises_wsa_error(data, namelen):
    try:
        addr = SockAddr.from_bytes(data, namelen)
    except WSAError as exc:
        assert exc.code in (WSAEFAULT, WSAEAFNOSUPPORT)
    else:
        assert addr.family in (AF_INET, AF_INET6)
        assert namelen >= addr.size
        if addr.family == AF_INET6:
            assert addr.to_bytes() == bytes(data[:28])
        else:  # sin_zero is not carried
            assert addr.to_bytes() == bytes(data[:8]) + bytes(8)


@given(st.one_of(st.none(), st.integers(), st.text(), st.floats(),
                 st.lists(st.integers(0, 255))),
       st.one_of(st.integers(), st.none(), st.text()))
def test_from_bytes_non_buffers_are_faults(data, namelen):
    assert fault_code(lambda: SockAddr.from_bytes(data, namelen)) == WSAEFAULT


# -- round trips --------------------------------------------------------------


@given(ipv4, ports)
def test_ipv4_round_trip(host, port):
    data = sockaddr_in(host, port)
    addr = SockAddr.from_bytes(data, len(data))
    assert (addr.host, addr.port) == (host, port)
    assert addr.to_bytes() == data
    assert addr.to_os() == (host, port)
    assert SockAddr.from_os(AF_INET, addr.to_os()) == addr
    assert parse_sockaddr(data) == (AF_INET, host, port)


@given(ipv6, ports, u32, u32)
def test_ipv6_round_trip(host, port, flowinfo, scope_id):
    data = sockaddr_in6(host, port, flowinfo, scope_id)
    addr = SockAddr.from_bytes(bytearray(data), 28)
    assert addr == SockAddr(AF_INET6, host, port, flowinfo, scope_id)
    assert addr.to_bytes() == data
    assert parse_sockaddr(data) == (AF_INET6, host, port, flowinfo, scope_id)
    host_os, port_os, flow_os, scope_os = addr.to_os()
    assert (host_os, port_os, scope_os) == (host, port, scope_id)
    assert flow_os == flowinfo & 0xFFFFF


def test_from_os():
    assert SockAddr.from_os(AF_INET, ("10.0.0.1", 5)) == SockAddr(
        AF_INET, "10.0.0.1", 5)
    # Linux's AF_INET6 (10), a getnameinfo "%ifname" suffix, and a
    # non-canonical spelling all land on the same record.
    addr = SockAddr.from_os(10, ("FE80:0::1%eth0", 5, 0, 2))
    assert addr == SockAddr(AF_INET6, "fe80::1", 5, 0, 2)
    assert SockAddr.from_os(AF_INET6, ("fe80::1", 5, 0, 2)) == addr
    with pytest.raises(ValueError):
        SockAddr.from_os(1, ("/tmp/sock",))


def test_zero_and_broadcast():
    assert SockAddr(AF_INET, "0.0.0.0", 80).is_zero_address
    assert SockAddr.from_bytes(sockaddr_in6("::", 80), 28).is_zero_address
    assert not SockAddr(AF_INET, "127.0.0.1", 80).is_zero_address
    assert not SockAddr(AF_INET6, "::1", 80).is_zero_address
    assert SockAddr(AF_INET, "255.255.255.255", 9).is_broadcast
    assert not SockAddr(AF_INET, "192.168.1.255", 9).is_broadcast
    assert not SockAddr(AF_INET6, "ff02::1", 9).is_broadcast


# -- write_sockaddr -----------------------------------------------------------


def test_write_sockaddr_fills_buffer_and_length():
    addr = SockAddr(AF_INET, "127.0.0.1", 80)
    buf = bytearray(b"\xaa" * 20)
    box = Errno(20)
    write_sockaddr(addr, buf, box)
    assert buf == LOOPBACK_80 + b"\xaa" * 4
    assert box.value == 16


def test_write_sockaddr_accepts_ctypes_box_and_memoryview():
    addr = SockAddr(AF_INET6, "::1", 8080, 5, 7)
    buf = bytearray(28)
    box = ctypes.c_int(28)
    write_sockaddr(addr, memoryview(buf), box)
    assert bytes(buf) == LOOPBACK6_8080
    assert box.value == 28


@pytest.mark.parametrize("buf, box", [
    (bytearray(16), Errno(15)),  # room too small
    (bytearray(15), Errno(16)),  # buffer too small
    (bytes(16), Errno(16)),  # not writable
    (memoryview(bytes(16)), Errno(16)),
    (None, Errno(16)),
    ("x" * 16, Errno(16)),
    (bytearray(16), Errno(None)),  # box holds no int
    (bytearray(16), None),  # no box
    (bytearray(16), object()),
    (bytearray(16), Errno(-1)),
])
def test_write_sockaddr_faults_without_writing(buf, box):
    addr = SockAddr(AF_INET, "127.0.0.1", 80)
    before = bytes(buf) if isinstance(buf, (bytes, bytearray)) else None
    room = getattr(box, "value", "no box")
    assert fault_code(lambda: write_sockaddr(addr, buf, box)) == WSAEFAULT
    if before is not None:
        assert bytes(buf) == before
    assert getattr(box, "value", "no box") == room
