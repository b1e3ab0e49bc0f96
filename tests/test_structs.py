"""The attrs structures: defaults, fd_set macro semantics, the catalog."""

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wspasync import _constants as c
from wspasync._structs import (
    QOS,
    Errno,
    FdSet,
    FlowSpec,
    Message,
    ProtocolInfo,
    TimeVal,
    WSABuf,
    WSANetworkEvents,
    enum_protocols,
)


def test_errno_box():
    box = Errno()
    assert box.value == 0
    box.value = c.WSAEFAULT
    assert box.value == 10014


def test_wsabuf():
    buf = WSABuf(4, bytearray(b"abcd"))
    assert (buf.len, buf.buf) == (4, bytearray(b"abcd"))
    assert (WSABuf().len, WSABuf().buf) == (0, None)


def test_flowspec_defaults():
    spec = FlowSpec()
    fields = [f.name for f in attrs.fields(FlowSpec)]
    assert fields == ["TokenRate", "TokenBucketSize", "PeakBandwidth",
                      "Latency", "DelayVariation", "ServiceType",
                      "MaxSduSize", "MinimumPolicedSize"]
    for name in fields:
        expected = (c.SERVICETYPE_NOTRAFFIC if name == "ServiceType"
                    else c.QOS_NOT_SPECIFIED)
        assert getattr(spec, name) == expected


def test_qos_defaults_are_fresh():
    a, b = QOS(), QOS()
    assert a.SendingFlowspec == FlowSpec() and a.ReceivingFlowspec == FlowSpec()
    assert a.SendingFlowspec is not a.ReceivingFlowspec
    assert a.SendingFlowspec is not b.SendingFlowspec
    assert (a.ProviderSpecific.len, a.ProviderSpecific.buf) == (0, None)
    a.SendingFlowspec.TokenRate = 1000
    assert b.SendingFlowspec.TokenRate == c.QOS_NOT_SPECIFIED


def test_timeval():
    assert (TimeVal().tv_sec, TimeVal().tv_usec) == (0, 0)
    assert TimeVal(1, 500).tv_usec == 500


def test_network_events_list_not_shared():
    a, b = WSANetworkEvents(), WSANetworkEvents()
    assert a.lNetworkEvents == 0
    assert a.iErrorCode == [0] * c.FD_MAX_EVENTS
    a.iErrorCode[c.FD_CONNECT_BIT] = c.WSAECONNREFUSED
    assert b.iErrorCode == [0] * c.FD_MAX_EVENTS
    assert a.iErrorCode is not b.iErrorCode


def test_message_is_frozen():
    msg = Message(None, 0x400, 5, c.WSAMAKESELECTREPLY(c.FD_CONNECT, 0))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        msg.lParam = 0
    assert msg == Message(None, 0x400, 5, 0x10)


# -- FdSet --------------------------------------------------------------------


def test_fdset_macros():
    fds = FdSet()
    assert fds.fd_count == 0 and fds.fd_array == []
    fds.FD_SET(7)
    fds.FD_SET(3)
    fds.FD_SET(7)  # duplicate: ignored
    assert fds.fd_array == [7, 3] and fds.fd_count == 2
    assert fds.FD_ISSET(3) and not fds.FD_ISSET(4)
    fds.FD_CLR(7)
    assert fds.fd_array == [3]
    fds.FD_CLR(99)  # absent: no-op
    assert fds.fd_array == [3]
    fds.FD_ZERO()
    assert fds.fd_count == 0 and not fds.FD_ISSET(3)


def test_fdset_capacity():
    fds = FdSet(range(100))
    assert fds.fd_count == c.FD_SETSIZE == 64
    assert fds.fd_array == list(range(64))
    small = FdSet([1, 2, 2, 3, 4], capacity=3)
    assert small.fd_array == [1, 2, 3]
    small.FD_SET(9)
    assert not small.FD_ISSET(9)
    small.FD_CLR(1)
    small.FD_SET(9)  # room again
    assert small.fd_array == [2, 3, 9]


def test_fdset_count_assignment_truncates():
    fds = FdSet([1, 2, 3])
    fds.fd_count = 1
    assert fds.fd_array == [1]
    with pytest.raises(ValueError):
        fds.fd_count = 5


@given(st.lists(st.tuples(st.sampled_from("sc"), st.integers(0, 20))),
       st.integers(0, 8))
def test_fdset_matches_a_model(ops, capacity):
    fds, model = FdSet(capacity=capacity), []
    for op, s in ops:
        if op == "s":
            fds.FD_SET(s)
            if s not in model and len(model) < capacity:
                model.append(s)
        else:
            fds.FD_CLR(s)
            if s in model:
                model.remove(s)
        assert fds.fd_array == model
        assert fds.fd_count == len(model)


# -- protocol catalog ---------------------------------------------------------


def test_enum_protocols():
    protocols = enum_protocols()
    assert [(p.iAddressFamily, p.iSocketType, p.iProtocol, p.szProtocol)
            for p in protocols] == [
        (c.AF_INET, c.SOCK_STREAM, c.IPPROTO_TCP, "MSAFD Tcpip [TCP/IP]"),
        (c.AF_INET, c.SOCK_DGRAM, c.IPPROTO_UDP, "MSAFD Tcpip [UDP/IP]"),
        (c.AF_INET6, c.SOCK_STREAM, c.IPPROTO_TCP, "MSAFD Tcpip [TCP/IPv6]"),
        (c.AF_INET6, c.SOCK_DGRAM, c.IPPROTO_UDP, "MSAFD Tcpip [UDP/IPv6]"),
    ]
    for p in protocols:
        size = 16 if p.iAddressFamily == c.AF_INET else 28
        assert p.iMaxSockAddr == p.iMinSockAddr == size
        # What `netsh winsock show catalog` prints for MSAFD Tcpip.
        expected = 0x20066 if p.iProtocol == c.IPPROTO_TCP else 0x20609
        assert p.dwServiceFlags1 == expected
        assert not p.dwServiceFlags1 & (c.XP1_CONNECT_DATA
                                        | c.XP1_QOS_SUPPORTED)
    tcp, udp = protocols[0].dwServiceFlags1, protocols[1].dwServiceFlags1
    assert tcp & c.XP1_GUARANTEED_DELIVERY and not tcp & c.XP1_CONNECTIONLESS
    assert udp & c.XP1_CONNECTIONLESS and udp & c.XP1_SUPPORT_BROADCAST


def test_enum_protocols_returns_a_new_list_of_frozen_records():
    first = enum_protocols()
    first.clear()
    assert len(enum_protocols()) == 4
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        enum_protocols()[0].iProtocol = 0
    assert ProtocolInfo(2, 1, 6, 0, "x") == ProtocolInfo(2, 1, 6, 0, "x", 0, 0)
