"""Socket options and ioctls of issue 2 with Windows numbers and Windows values."""

from __future__ import annotations

import socket
import struct

import pytest

from wspasync import (
    AF_INET,
    FIONBIO,
    FIONREAD,
    INVALID_SOCKET,
    IPPROTO_TCP,
    IPPROTO_UDP,
    SO_BROADCAST,
    SO_CONNECT_TIME,
    SO_ERROR,
    SO_EXCLUSIVEADDRUSE,
    SO_KEEPALIVE,
    SO_LINGER,
    SO_RCVBUF,
    SO_REUSEADDR,
    SO_SNDBUF,
    SO_TYPE,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    TCP_MAXRT,
    TCP_NODELAY,
    WSAECONNREFUSED,
    WSAEFAULT,
    WSAEINVAL,
    WSAENOPROTOOPT,
    WSAENOTSOCK,
    Errno,
    parse_sockaddr,
    sockaddr_in,
)
from wsp_support import close, wait_readable

pytestmark = pytest.mark.timeout(30)


def sock(wsp, type_=SOCK_STREAM, proto=IPPROTO_TCP):
    err = Errno()
    s = wsp.WSPSocket(AF_INET, type_, proto, None, 0, 0, err)
    assert s != INVALID_SOCKET, err.value
    return s


def get_raw(wsp, s, level, opt, room=4):
    buf, box, err = bytearray(room), Errno(value=room), Errno()
    if wsp.WSPGetSockOpt(s, level, opt, buf, box, err) == SOCKET_ERROR:
        return err.value
    return bytes(buf[: box.value])


def get(wsp, s, level, opt):
    raw = get_raw(wsp, s, level, opt)
    assert isinstance(raw, bytes), raw
    assert len(raw) == 4
    return struct.unpack("<I", raw)[0]


def set_(wsp, s, level, opt, value, fmt="<i"):
    data = struct.pack(fmt, *value) if isinstance(value, tuple) else struct.pack(fmt, value)
    err = Errno()
    if wsp.WSPSetSockOpt(s, level, opt, data, len(data), err) == SOCKET_ERROR:
        return err.value
    return 0


async def connect(wsp, s, port):
    err = Errno()
    rc = await wsp.WSPConnect(s, sockaddr_in("127.0.0.1", port), 16, None, None, None, None, err)
    return rc if rc == 0 else err.value


async def test_so_type(wsp):
    s, u = sock(wsp), sock(wsp, SOCK_DGRAM, IPPROTO_UDP)
    assert get(wsp, s, SOL_SOCKET, SO_TYPE) == SOCK_STREAM == 1
    assert get(wsp, u, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM == 2
    assert set_(wsp, s, SOL_SOCKET, SO_TYPE, 2) == WSAENOPROTOOPT  # read-only
    close(wsp, s)
    close(wsp, u)


@pytest.mark.parametrize(
    ("level", "opt"),
    [(SOL_SOCKET, SO_REUSEADDR), (SOL_SOCKET, SO_KEEPALIVE), (IPPROTO_TCP, TCP_NODELAY),
     (SOL_SOCKET, SO_EXCLUSIVEADDRUSE)],
    ids=["SO_REUSEADDR", "SO_KEEPALIVE", "TCP_NODELAY", "SO_EXCLUSIVEADDRUSE"],
)
async def test_bool_options_round_trip(wsp, level, opt):
    s = sock(wsp)
    assert get(wsp, s, level, opt) == 0
    assert set_(wsp, s, level, opt, 1) == 0
    assert get(wsp, s, level, opt) == 1
    assert set_(wsp, s, level, opt, 0) == 0
    assert get(wsp, s, level, opt) == 0
    close(wsp, s)


async def test_os_options_reach_the_os_socket(wsp):
    s = sock(wsp)
    set_(wsp, s, SOL_SOCKET, SO_KEEPALIVE, 1)
    set_(wsp, s, IPPROTO_TCP, TCP_NODELAY, 1)
    set_(wsp, s, SOL_SOCKET, SO_REUSEADDR, 1)
    os_sock = wsp.os_socket(s)
    assert os_sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert os_sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    assert os_sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
    close(wsp, s)


async def test_reuseaddr_and_exclusiveaddruse_exclude_each_other(wsp):
    s = sock(wsp)
    assert set_(wsp, s, SOL_SOCKET, SO_REUSEADDR, 1) == 0
    assert set_(wsp, s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1) == WSAEINVAL
    assert get(wsp, s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE) == 0
    assert set_(wsp, s, SOL_SOCKET, SO_REUSEADDR, 0) == 0
    assert set_(wsp, s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1) == 0
    assert set_(wsp, s, SOL_SOCKET, SO_REUSEADDR, 1) == WSAEINVAL
    assert get(wsp, s, SOL_SOCKET, SO_REUSEADDR) == 0
    # turning one off is always allowed
    assert set_(wsp, s, SOL_SOCKET, SO_REUSEADDR, 0) == 0
    close(wsp, s)


async def test_so_broadcast_on_udp(wsp):
    u = sock(wsp, SOCK_DGRAM, IPPROTO_UDP)
    assert get(wsp, u, SOL_SOCKET, SO_BROADCAST) == 0
    assert set_(wsp, u, SOL_SOCKET, SO_BROADCAST, 1) == 0
    assert get(wsp, u, SOL_SOCKET, SO_BROADCAST) == 1
    assert wsp.os_socket(u).getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) == 1
    close(wsp, u)


async def test_so_linger_is_two_ushorts(wsp):
    s = sock(wsp)
    assert get_raw(wsp, s, SOL_SOCKET, SO_LINGER) == struct.pack("<HH", 0, 0)
    assert set_(wsp, s, SOL_SOCKET, SO_LINGER, (1, 7), "<HH") == 0
    assert get_raw(wsp, s, SOL_SOCKET, SO_LINGER) == struct.pack("<HH", 1, 7)
    assert get_raw(wsp, s, SOL_SOCKET, SO_LINGER, room=8)[:4] == struct.pack("<HH", 1, 7)
    onoff, seconds = struct.unpack("ii", wsp.os_socket(s).getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
    assert (bool(onoff), seconds) == (True, 7)
    assert get_raw(wsp, s, SOL_SOCKET, SO_LINGER, room=3) == WSAEFAULT
    close(wsp, s)


@pytest.mark.parametrize("opt", [SO_SNDBUF, SO_RCVBUF], ids=["SO_SNDBUF", "SO_RCVBUF"])
async def test_buffer_sizes_report_the_set_value(wsp, opt):
    s = sock(wsp)
    assert get(wsp, s, SOL_SOCKET, opt) > 0
    assert set_(wsp, s, SOL_SOCKET, opt, 32768) == 0
    assert get(wsp, s, SOL_SOCKET, opt) == 32768  # Linux would say 65536 (socket(7))
    close(wsp, s)


async def test_so_connect_time(wsp, listener):
    s = sock(wsp)
    assert get(wsp, s, SOL_SOCKET, SO_CONNECT_TIME) == 0xFFFFFFFF
    assert await connect(wsp, s, listener.getsockname()[1]) == 0
    assert get(wsp, s, SOL_SOCKET, SO_CONNECT_TIME) <= 1
    assert set_(wsp, s, SOL_SOCKET, SO_CONNECT_TIME, 5) == WSAENOPROTOOPT
    close(wsp, s)


async def test_so_connect_time_after_failure(wsp, refused_port):
    s = sock(wsp)
    assert await connect(wsp, s, refused_port) == WSAECONNREFUSED
    assert get(wsp, s, SOL_SOCKET, SO_CONNECT_TIME) == 0xFFFFFFFF
    close(wsp, s)


async def test_tcp_maxrt_round_trip(wsp):
    s = sock(wsp)
    assert set_(wsp, s, IPPROTO_TCP, TCP_MAXRT, 7) == 0
    assert get(wsp, s, IPPROTO_TCP, TCP_MAXRT) == 7
    u = sock(wsp, SOCK_DGRAM, IPPROTO_UDP)
    assert set_(wsp, u, IPPROTO_TCP, TCP_MAXRT, 7) == WSAENOPROTOOPT
    close(wsp, s)
    close(wsp, u)


async def test_so_error_is_read_only(wsp):
    s = sock(wsp)
    assert get(wsp, s, SOL_SOCKET, SO_ERROR) == 0
    assert set_(wsp, s, SOL_SOCKET, SO_ERROR, 1) == WSAENOPROTOOPT
    close(wsp, s)


async def test_option_errors(wsp):
    s = sock(wsp)
    assert get_raw(wsp, s, SOL_SOCKET, 0x7777) == WSAENOPROTOOPT
    assert get_raw(wsp, s, 0x1234, SO_REUSEADDR) == WSAEINVAL
    assert get_raw(wsp, s, SOL_SOCKET, SO_REUSEADDR, room=2) == WSAEFAULT
    err = Errno()
    assert wsp.WSPSetSockOpt(s, SOL_SOCKET, SO_REUSEADDR, b"\x01", 1, err) == SOCKET_ERROR
    assert err.value == WSAEFAULT
    assert wsp.WSPSetSockOpt(s, SOL_SOCKET, SO_REUSEADDR, struct.pack("<i", 1), 8, err) == SOCKET_ERROR
    assert err.value == WSAEFAULT  # optlen longer than the buffer
    assert wsp.WSPGetSockOpt(999, SOL_SOCKET, SO_TYPE, bytearray(4), Errno(value=4), err) == SOCKET_ERROR
    assert err.value == WSAENOTSOCK
    close(wsp, s)


async def test_options_and_bind_survive_the_retry_swap(wsp, refused_port):
    """A retry after a failure may run on a fresh OS socket: bind and options follow."""
    s = sock(wsp)
    set_(wsp, s, SOL_SOCKET, SO_KEEPALIVE, 1)
    set_(wsp, s, SOL_SOCKET, SO_RCVBUF, 32768)
    set_(wsp, s, SOL_SOCKET, SO_LINGER, (1, 3), "<HH")
    assert wsp.WSPBind(s, sockaddr_in("127.0.0.1", 0), 16, Errno()) == 0
    buf, box = bytearray(16), Errno(value=16)
    wsp.WSPGetSockName(s, buf, box, Errno())
    bound = parse_sockaddr(buf)
    assert await connect(wsp, s, refused_port) == WSAECONNREFUSED
    lst = socket.socket()
    try:
        lst.bind(("127.0.0.1", refused_port))
        lst.listen(1)
        assert await connect(wsp, s, refused_port) == 0
    finally:
        lst.close()
    os_sock = wsp.os_socket(s)
    assert os_sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert os_sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 32768
    assert struct.unpack("ii", os_sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))[1] == 3
    assert get(wsp, s, SOL_SOCKET, SO_RCVBUF) == 32768
    buf, box = bytearray(16), Errno(value=16)
    wsp.WSPGetSockName(s, buf, box, Errno())
    assert parse_sockaddr(buf) == bound
    close(wsp, s)


# -- ioctls ------------------------------------------------------------------------------------


def fionread(wsp, s, room=4):
    out, count, err = bytearray(room), Errno(), Errno()
    if wsp.WSPIoctl(s, FIONREAD, None, 0, out, room, count, None, None, None, err) == SOCKET_ERROR:
        return err.value
    assert count.value == 4
    return struct.unpack("<I", out[:4])[0]


async def test_fionread(wsp, listener):
    s = sock(wsp)
    assert fionread(wsp, s) == 0
    assert await connect(wsp, s, listener.getsockname()[1]) == 0
    conn, _ = listener.accept()
    try:
        assert fionread(wsp, s) == 0
        conn.sendall(b"x" * 100)
        # One 100-byte loopback segment: readable means all of it is queued.
        await wait_readable(wsp, s)
        assert fionread(wsp, s) == 100
        assert fionread(wsp, s, room=2) == WSAEFAULT
    finally:
        conn.close()
    close(wsp, s)


async def test_fionbio_argument_errors(wsp):
    s = sock(wsp)
    err = Errno()
    assert wsp.WSPIoctl(s, FIONBIO, b"\x01", 1, None, 0, Errno(), None, None, None, err) == SOCKET_ERROR
    assert err.value == WSAEFAULT
    assert wsp.WSPIoctl(s, 0x12345, None, 0, None, 0, Errno(), None, None, None, err) == SOCKET_ERROR
    assert err.value == WSAEINVAL
    close(wsp, s)
