"""Windows numbers, the errno table, and the async-select lParam macros."""

import errno
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wspasync import _constants as c
from wspasync._constants import ErrorCode
from wspasync._errors import WSAError, check
from wspasync._structs import Errno

# API.md §1, value for value.
API_VALUES = {
    "SOCKET_ERROR": -1, "INVALID_SOCKET": 2**64 - 1,
    "AF_UNSPEC": 0, "AF_INET": 2, "AF_INET6": 23,
    "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17,
    "SOL_SOCKET": 0xFFFF, "SO_REUSEADDR": 0x0004, "SO_KEEPALIVE": 0x0008,
    "SO_BROADCAST": 0x0020, "SO_LINGER": 0x0080, "SO_SNDBUF": 0x1001,
    "SO_RCVBUF": 0x1002, "SO_ERROR": 0x1007, "SO_TYPE": 0x1008,
    "SO_CONNECT_TIME": 0x700C, "SO_EXCLUSIVEADDRUSE": -5,
    "SO_OOBINLINE": 0x0100, "SO_SNDTIMEO": 0x1005, "SO_RCVTIMEO": 0x1006,
    "TCP_NODELAY": 0x0001, "TCP_MAXRT": 5,
    "MSG_OOB": 0x1, "MSG_PEEK": 0x2, "MSG_PARTIAL": 0x8000,
    "SD_RECEIVE": 0, "SD_SEND": 1, "SD_BOTH": 2,
    "FIONBIO": 0x8004667E, "FIONREAD": 0x4004667F, "SIOCATMARK": 0x40047307,
    "SIO_SET_QOS": 0x8800000B, "SIO_GET_QOS": 0xC8000007,
    "FD_READ": 0x01, "FD_WRITE": 0x02, "FD_OOB": 0x04, "FD_ACCEPT": 0x08,
    "FD_CONNECT": 0x10, "FD_CLOSE": 0x20, "FD_QOS": 0x40,
    "FD_GROUP_QOS": 0x80, "FD_ROUTING_INTERFACE_CHANGE": 0x100,
    "FD_ADDRESS_LIST_CHANGE": 0x200, "FD_MAX_EVENTS": 10,
    "FD_ALL_EVENTS": 0x3FF,
    "WSA_WAIT_EVENT_0": 0, "WSA_WAIT_TIMEOUT": 258,
    "WSA_WAIT_FAILED": 0xFFFFFFFF, "WSA_INFINITE": 0xFFFFFFFF,
    "WSA_MAXIMUM_WAIT_EVENTS": 64, "FD_SETSIZE": 64,
    "CF_ACCEPT": 0, "CF_REJECT": 1, "CF_DEFER": 2, "WSATRY_AGAIN": 11002,
    "QOS_NOT_SPECIFIED": 0xFFFFFFFF, "SERVICETYPE_NOTRAFFIC": 0,
    "SERVICETYPE_BESTEFFORT": 1, "SERVICETYPE_CONTROLLEDLOAD": 2,
    "SERVICETYPE_GUARANTEED": 3, "SERVICETYPE_NOCHANGE": 6,
    "WINSOCK_1_1": 0x0101, "WINSOCK_2_2": 0x0202,
    "XP1_CONNECTIONLESS": 0x1, "XP1_GUARANTEED_DELIVERY": 0x2,
    "XP1_CONNECT_DATA": 0x80, "XP1_QOS_SUPPORTED": 0x2000,
}

# winsock2.h / winerror.h; spot values checked against Microsoft's
# "Windows Sockets Error Codes" page.
ERROR_VALUES = {
    "WSA_INVALID_HANDLE": 6, "WSA_NOT_ENOUGH_MEMORY": 8,
    "WSA_INVALID_PARAMETER": 87, "WSA_OPERATION_ABORTED": 995,
    "WSA_IO_INCOMPLETE": 996, "WSA_IO_PENDING": 997,
    "WSAEINTR": 10004, "WSAEBADF": 10009, "WSAEACCES": 10013,
    "WSAEFAULT": 10014, "WSAEINVAL": 10022, "WSAEMFILE": 10024,
    "WSAEWOULDBLOCK": 10035, "WSAEINPROGRESS": 10036, "WSAEALREADY": 10037,
    "WSAENOTSOCK": 10038, "WSAEDESTADDRREQ": 10039, "WSAEMSGSIZE": 10040,
    "WSAEPROTOTYPE": 10041, "WSAENOPROTOOPT": 10042,
    "WSAEPROTONOSUPPORT": 10043, "WSAESOCKTNOSUPPORT": 10044,
    "WSAEOPNOTSUPP": 10045, "WSAEPFNOSUPPORT": 10046,
    "WSAEAFNOSUPPORT": 10047, "WSAEADDRINUSE": 10048,
    "WSAEADDRNOTAVAIL": 10049, "WSAENETDOWN": 10050,
    "WSAENETUNREACH": 10051, "WSAENETRESET": 10052,
    "WSAECONNABORTED": 10053, "WSAECONNRESET": 10054, "WSAENOBUFS": 10055,
    "WSAEISCONN": 10056, "WSAENOTCONN": 10057, "WSAESHUTDOWN": 10058,
    "WSAETOOMANYREFS": 10059, "WSAETIMEDOUT": 10060,
    "WSAECONNREFUSED": 10061, "WSAELOOP": 10062, "WSAENAMETOOLONG": 10063,
    "WSAEHOSTDOWN": 10064, "WSAEHOSTUNREACH": 10065, "WSAENOTEMPTY": 10066,
    "WSAEPROCLIM": 10067, "WSAEUSERS": 10068, "WSAEDQUOT": 10069,
    "WSAESTALE": 10070, "WSAEREMOTE": 10071, "WSASYSNOTREADY": 10091,
    "WSAVERNOTSUPPORTED": 10092, "WSANOTINITIALISED": 10093,
    "WSAEDISCON": 10101, "WSAENOMORE": 10102, "WSAECANCELLED": 10103,
    "WSAEINVALIDPROCTABLE": 10104, "WSAEINVALIDPROVIDER": 10105,
    "WSAEPROVIDERFAILEDINIT": 10106, "WSASYSCALLFAILURE": 10107,
    "WSASERVICE_NOT_FOUND": 10108, "WSATYPE_NOT_FOUND": 10109,
    "WSA_E_NO_MORE": 10110, "WSA_E_CANCELLED": 10111, "WSAEREFUSED": 10112,
    "WSAHOST_NOT_FOUND": 11001, "WSATRY_AGAIN": 11002,
    "WSANO_RECOVERY": 11003, "WSANO_DATA": 11004,
    "WSA_QOS_RECEIVERS": 11005, "WSA_QOS_SENDERS": 11006,
    "WSA_QOS_NO_SENDERS": 11007, "WSA_QOS_NO_RECEIVERS": 11008,
    "WSA_QOS_REQUEST_CONFIRMED": 11009, "WSA_QOS_ADMISSION_FAILURE": 11010,
    "WSA_QOS_POLICY_FAILURE": 11011, "WSA_QOS_BAD_STYLE": 11012,
    "WSA_QOS_BAD_OBJECT": 11013, "WSA_QOS_TRAFFIC_CTRL_ERROR": 11014,
    "WSA_QOS_GENERIC_ERROR": 11015, "WSA_QOS_ESERVICETYPE": 11016,
    "WSA_QOS_EFLOWSPEC": 11017, "WSA_QOS_EPROVSPECBUF": 11018,
    "WSA_QOS_EFILTERSTYLE": 11019, "WSA_QOS_EFILTERTYPE": 11020,
    "WSA_QOS_EFILTERCOUNT": 11021, "WSA_QOS_EOBJLENGTH": 11022,
    "WSA_QOS_EFLOWCOUNT": 11023, "WSA_QOS_EUNKOWNPSOBJ": 11024,
    "WSA_QOS_EPOLICYOBJ": 11025, "WSA_QOS_EFLOWDESC": 11026,
    "WSA_QOS_EPSFLOWSPEC": 11027, "WSA_QOS_EPSFILTERSPEC": 11028,
    "WSA_QOS_ESDMODEOBJ": 11029, "WSA_QOS_ESHAPERATEOBJ": 11030,
    "WSA_QOS_RESERVED_PETYPE": 11031,
}


@pytest.mark.parametrize("name, value", sorted(API_VALUES.items()))
def test_api_constant_has_windows_value(name, value):
    assert getattr(c, name) == value


def test_error_codes_are_exactly_winsock2_h():
    assert {code.name: code.value for code in ErrorCode} == ERROR_VALUES
    assert ErrorCode.WSANO_ADDRESS is ErrorCode.WSANO_DATA
    for name, value in ERROR_VALUES.items():
        assert getattr(c, name) == value
        assert getattr(c, name) is ErrorCode[name]


def test_fd_bits_and_event_table():
    assert [(bit, value) for bit, value, _ in c.FD_EVENTS] == [
        (i, 1 << i) for i in range(10)]
    for bit, value, name in c.FD_EVENTS:
        assert getattr(c, name) == value
        assert getattr(c, name + "_BIT") == bit
        assert c.event_name(value) == name
    assert c.FD_CONNECT_BIT == 4 and c.FD_CLOSE_BIT == 5


def test_event_name_of_masks():
    assert c.event_name(0) == "0"
    assert c.event_name(c.FD_CONNECT | c.FD_WRITE) == "FD_WRITE|FD_CONNECT"
    assert c.event_name(0x400 | c.FD_READ) == "FD_READ|0x400"


def test_error_name():
    assert c.error_name(10061) == "WSAECONNREFUSED"
    assert c.error_name(ErrorCode.WSAEWOULDBLOCK) == "WSAEWOULDBLOCK"
    assert c.error_name(11004) == "WSANO_DATA"
    assert c.error_name(0) == "0"
    assert c.error_name(4242) == "4242"


def test_xp1_flags_are_winsock2_h_bits():
    flags = [getattr(c, n) for n in dir(c) if n.startswith("XP1_")]
    assert len(flags) == 19
    assert sorted(flags) == [1 << i for i in range(19)]
    assert c.XP1_GUARANTEED_ORDER == 0x4 and c.XP1_MESSAGE_ORIENTED == 0x8
    assert c.XP1_IFS_HANDLES == 0x20000


# -- errno -> WSAE ------------------------------------------------------------

EXCEPTIONS = {
    "EINPROGRESS": "WSAEWOULDBLOCK", "EAGAIN": "WSAEWOULDBLOCK",
    "EWOULDBLOCK": "WSAEWOULDBLOCK", "EPIPE": "WSAECONNRESET",
    "EACCES": "WSAEACCES", "EPERM": "WSAEACCES",
    "ENOBUFS": "WSAENOBUFS", "ENOMEM": "WSAENOBUFS",
    "EMFILE": "WSAEMFILE", "ENFILE": "WSAEMFILE",
    "EBADF": "WSAENOTSOCK", "ENOTSOCK": "WSAENOTSOCK",
}


@pytest.mark.parametrize("err, wsa", sorted(EXCEPTIONS.items()))
def test_errno_exceptions(err, wsa):
    assert c.errno_to_wsa(getattr(errno, err)) is ErrorCode[wsa]


def test_every_errno_with_a_wsae_twin_maps_to_it():
    twins = [code for code in ErrorCode
             if code.name.startswith("WSAE") and hasattr(errno, code.name[3:])
             and code.name[3:] not in EXCEPTIONS]
    assert len(twins) >= 30  # the loop below is not vacuous
    for code in twins:
        assert c.errno_to_wsa(getattr(errno, code.name[3:])) is code, code


def test_errno_table_covers_semantics_list():
    listed = ("EALREADY ECONNABORTED ENOPROTOOPT EOPNOTSUPP EINTR EFAULT "
              "EMSGSIZE ENETDOWN EHOSTDOWN ESHUTDOWN ENOTCONN EISCONN "
              "EDESTADDRREQ EPROTOTYPE EPROTONOSUPPORT ESOCKTNOSUPPORT "
              "EPFNOSUPPORT EAFNOSUPPORT ENETRESET ETOOMANYREFS ELOOP "
              "ENAMETOOLONG ENOTEMPTY EUSERS EDQUOT ESTALE EREMOTE "
              "EHOSTUNREACH ENETUNREACH ETIMEDOUT ECONNREFUSED ECONNRESET "
              "EADDRINUSE EADDRNOTAVAIL EINVAL").split()
    for name in listed:
        assert c.ERRNO_TO_WSA[getattr(errno, name)].name == "WSA" + name


def test_in_progress_is_never_wsaeinprogress():
    assert ErrorCode.WSAEINPROGRESS not in c.ERRNO_TO_WSA.values()


def test_unknown_errno_is_syscall_failure():
    assert c.errno_to_wsa(errno.EPROTO) is ErrorCode.WSASYSCALLFAILURE
    assert c.errno_to_wsa(0) is ErrorCode.WSASYSCALLFAILURE
    assert c.errno_to_wsa(99999) is ErrorCode.WSASYSCALLFAILURE


def test_fd_close_error_reads_reset_as_abort():
    assert c.fd_close_error(errno.ECONNRESET) is ErrorCode.WSAECONNABORTED
    assert c.fd_close_error(errno.EPIPE) is ErrorCode.WSAECONNABORTED
    assert c.fd_close_error(errno.ETIMEDOUT) is ErrorCode.WSAETIMEDOUT
    assert c.errno_to_wsa(errno.ECONNRESET) is ErrorCode.WSAECONNRESET


def test_datagram_error_reads_port_unreachable_as_reset():
    # Linux reports an ICMP port unreachable on a connected UDP socket as
    # ECONNREFUSED; Windows as WSAECONNRESET. Everything else follows the table.
    assert c.datagram_error(errno.ECONNREFUSED) is ErrorCode.WSAECONNRESET
    assert c.datagram_error(errno.EMSGSIZE) is ErrorCode.WSAEMSGSIZE
    assert c.datagram_error(errno.EACCES) is ErrorCode.WSAEACCES


# -- WSAMAKESELECTREPLY -------------------------------------------------------


def test_select_reply_layout():
    lparam = c.WSAMAKESELECTREPLY(c.FD_CONNECT, c.WSAECONNREFUSED)
    assert lparam == (10061 << 16) | 0x10
    assert c.WSAGETSELECTEVENT(lparam) == c.FD_CONNECT
    assert c.WSAGETSELECTERROR(lparam) == c.WSAECONNREFUSED
    assert c.WSAMAKESELECTREPLY(c.FD_WRITE, 0) == 2


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_select_reply_round_trip(event, error):
    lparam = c.WSAMAKESELECTREPLY(event, error)
    assert 0 <= lparam <= 0xFFFFFFFF
    assert c.WSAGETSELECTEVENT(lparam) == event
    assert c.WSAGETSELECTERROR(lparam) == error


# -- WSAError and check -------------------------------------------------------


def test_wsa_error_carries_code():
    err = WSAError(10061)
    assert isinstance(err, OSError)
    assert err.code is ErrorCode.WSAECONNREFUSED
    assert err.winerror == 10061
    assert err.errno is None
    assert str(err) == "[WinError 10061] WSAECONNREFUSED"
    again = pickle.loads(pickle.dumps(err))
    assert again.code is ErrorCode.WSAECONNREFUSED


def test_wsa_error_unknown_code_keeps_int():
    err = WSAError(4242)
    assert err.code == 4242 and type(err.code) is int
    assert str(err) == "[WinError 4242] 4242"


def test_check():
    box = Errno(c.WSAEWOULDBLOCK)
    assert check(0, box) == 0
    assert check(7, box) == 7
    for failed in (c.SOCKET_ERROR, c.INVALID_SOCKET):
        with pytest.raises(WSAError) as info:
            check(failed, box)
        assert info.value.code is ErrorCode.WSAEWOULDBLOCK
