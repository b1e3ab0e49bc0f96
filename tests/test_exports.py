"""The public surface matches API.md (trio's test_exports, fed from the contract itself).

Names and values are parsed from /work/shared/spec/API.md when it is there (the
contract file lives beside the repository, not in it); the fallback lists below are
the same names written out, so the test still means something on a fresh checkout.
"""

from __future__ import annotations

import ast
import builtins
import operator
import re
from pathlib import Path


import wspasync
from wspasync import ErrorCode

API_MD = Path("/work/shared/spec/API.md")

# Names API.md shows in call form that are methods, not package exports.
METHODS = {
    "FD_SET", "FD_CLR", "FD_ISSET", "FD_ZERO",  # FdSet methods
    "close", "get_message", "peek_message", "set", "reset", "is_set", "len",
}
# Names of API.md that a later issue delivers (excluded from the checks until then).
# Empty: every API.md name is delivered (SyncProvider came with issue 4).
PENDING: dict[str, str] = {}

# winsock2.h / winerror.h: every WSAE* code (10004 .. 10112) and the WSA* ones around it.
WINSOCK_ERRORS = {
    "WSAEINTR": 10004, "WSAEBADF": 10009, "WSAEACCES": 10013, "WSAEFAULT": 10014,
    "WSAEINVAL": 10022, "WSAEMFILE": 10024, "WSAEWOULDBLOCK": 10035,
    "WSAEINPROGRESS": 10036, "WSAEALREADY": 10037, "WSAENOTSOCK": 10038,
    "WSAEDESTADDRREQ": 10039, "WSAEMSGSIZE": 10040, "WSAEPROTOTYPE": 10041,
    "WSAENOPROTOOPT": 10042, "WSAEPROTONOSUPPORT": 10043, "WSAESOCKTNOSUPPORT": 10044,
    "WSAEOPNOTSUPP": 10045, "WSAEPFNOSUPPORT": 10046, "WSAEAFNOSUPPORT": 10047,
    "WSAEADDRINUSE": 10048, "WSAEADDRNOTAVAIL": 10049, "WSAENETDOWN": 10050,
    "WSAENETUNREACH": 10051, "WSAENETRESET": 10052, "WSAECONNABORTED": 10053,
    "WSAECONNRESET": 10054, "WSAENOBUFS": 10055, "WSAEISCONN": 10056,
    "WSAENOTCONN": 10057, "WSAESHUTDOWN": 10058, "WSAETOOMANYREFS": 10059,
    "WSAETIMEDOUT": 10060, "WSAECONNREFUSED": 10061, "WSAELOOP": 10062,
    "WSAENAMETOOLONG": 10063, "WSAEHOSTDOWN": 10064, "WSAEHOSTUNREACH": 10065,
    "WSAENOTEMPTY": 10066, "WSAEPROCLIM": 10067, "WSAEUSERS": 10068, "WSAEDQUOT": 10069,
    "WSAESTALE": 10070, "WSAEREMOTE": 10071, "WSASYSNOTREADY": 10091,
    "WSAVERNOTSUPPORTED": 10092, "WSANOTINITIALISED": 10093, "WSAEDISCON": 10101,
    "WSAENOMORE": 10102, "WSAECANCELLED": 10103, "WSAEINVALIDPROCTABLE": 10104,
    "WSAEINVALIDPROVIDER": 10105, "WSAEPROVIDERFAILEDINIT": 10106,
    "WSASYSCALLFAILURE": 10107, "WSASERVICE_NOT_FOUND": 10108, "WSATYPE_NOT_FOUND": 10109,
    "WSA_E_NO_MORE": 10110, "WSA_E_CANCELLED": 10111, "WSAEREFUSED": 10112,
    "WSAHOST_NOT_FOUND": 11001, "WSATRY_AGAIN": 11002, "WSANO_RECOVERY": 11003,
    "WSANO_DATA": 11004,
}

# Fallback: the names and values API.md writes out (used when the file is absent).
FALLBACK_VALUES = {
    "SOCKET_ERROR": -1, "INVALID_SOCKET": 2**64 - 1, "AF_UNSPEC": 0, "AF_INET": 2,
    "AF_INET6": 23, "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17,
    "SOL_SOCKET": 0xFFFF, "SO_REUSEADDR": 4, "SO_KEEPALIVE": 8, "SO_BROADCAST": 0x20,
    "SO_LINGER": 0x80, "SO_SNDBUF": 0x1001, "SO_RCVBUF": 0x1002, "SO_ERROR": 0x1007,
    "SO_TYPE": 0x1008, "SO_CONNECT_TIME": 0x700C, "SO_EXCLUSIVEADDRUSE": ~4,
    "SO_OOBINLINE": 0x100, "SO_SNDTIMEO": 0x1005, "SO_RCVTIMEO": 0x1006, "TCP_NODELAY": 1,
    "TCP_MAXRT": 5, "MSG_OOB": 1, "MSG_PEEK": 2, "MSG_PARTIAL": 0x8000, "SD_RECEIVE": 0,
    "SD_SEND": 1, "SD_BOTH": 2, "FIONBIO": 0x8004667E, "FIONREAD": 0x4004667F,
    "SIOCATMARK": 0x40047307, "SIO_SET_QOS": 0x8800000B, "SIO_GET_QOS": 0xC8000007,
    "FD_READ": 1, "FD_WRITE": 2, "FD_OOB": 4, "FD_ACCEPT": 8, "FD_CONNECT": 0x10,
    "FD_CLOSE": 0x20, "FD_QOS": 0x40, "FD_GROUP_QOS": 0x80,
    "FD_ROUTING_INTERFACE_CHANGE": 0x100, "FD_ADDRESS_LIST_CHANGE": 0x200,
    "FD_MAX_EVENTS": 10, "FD_ALL_EVENTS": 0x3FF, "WSA_WAIT_EVENT_0": 0,
    "WSA_WAIT_TIMEOUT": 258, "WSA_WAIT_FAILED": 0xFFFFFFFF, "WSA_INFINITE": 0xFFFFFFFF,
    "WSA_MAXIMUM_WAIT_EVENTS": 64, "FD_SETSIZE": 64, "CF_ACCEPT": 0, "CF_REJECT": 1,
    "CF_DEFER": 2, "WSATRY_AGAIN": 11002, "QOS_NOT_SPECIFIED": 0xFFFFFFFF,
    "SERVICETYPE_NOTRAFFIC": 0, "SERVICETYPE_BESTEFFORT": 1,
    "SERVICETYPE_CONTROLLEDLOAD": 2, "SERVICETYPE_GUARANTEED": 3,
    "SERVICETYPE_NOCHANGE": 6, "WINSOCK_1_1": 0x0101, "WINSOCK_2_2": 0x0202,
    "XP1_CONNECTIONLESS": 1, "XP1_GUARANTEED_DELIVERY": 2, "XP1_CONNECT_DATA": 0x80,
    "XP1_QOS_SUPPORTED": 0x2000,
}
FALLBACK_NAMES = {
    "ErrorCode", "WSAMAKESELECTREPLY", "WSAGETSELECTEVENT", "WSAGETSELECTERROR",
    "sockaddr_in", "sockaddr_in6", "parse_sockaddr", "Errno", "WSABuf", "FlowSpec", "QOS",
    "FdSet", "TimeVal", "WSANetworkEvents", "Message", "WSAEvent", "Window",
    "wait_for_multiple_events", "Provider", "enum_protocols", "ProtocolInfo",
    "SyncProvider", "WSAError", "check",
}

_OPS = {ast.Pow: operator.pow, ast.Sub: operator.sub, ast.Add: operator.add,
        ast.Mult: operator.mul, ast.LShift: operator.lshift}
_UNARY = {ast.Invert: operator.invert, ast.USub: operator.neg}


def _int_expr(text: str) -> int | None:
    """The value of a small integer literal expression (``2**64 - 1``, ``~0x0004``)."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None

    def ev(n):
        if isinstance(n, ast.Constant) and type(n.value) is int:
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and type(n.op) in _UNARY:
            return _UNARY[type(n.op)](ev(n.operand))
        raise ValueError(text)

    try:
        return ev(node)
    except ValueError:
        return None


def _from_api_md() -> tuple[set[str], dict[str, int]]:
    text = API_MD.read_text()
    sections = re.split(r"^## (\d+)\. ", text, flags=re.M)
    body = "".join(
        sections[i + 1] for i in range(1, len(sections), 2) if 1 <= int(sections[i]) <= 7
    )
    names: set[str] = set()
    values: dict[str, int] = {}
    for span in re.findall(r"`([^`]+)`", body):
        for m in re.finditer(r"(?<![.\w])([A-Z][A-Z0-9_]*)\s*=\s*([^,`]+)", span):
            value = _int_expr(m.group(2))
            if value is not None:
                values[m.group(1)] = value
        # Callables and classes: `Name(` -- the methods of WSP* and of the structs aside.
        for m in re.finditer(r"(?<![.\w])([A-Za-z_]\w*)\(", span):
            name = m.group(1)
            if not name.startswith("WSP") and name not in METHODS and name not in dir(builtins):
                names.add(name)
        if span.startswith("from wspasync import"):
            names.update(n.strip() for n in span[len("from wspasync import"):].split(",")
                         if n.strip().isidentifier())
        if re.fullmatch(r"[A-Z][A-Za-z0-9_]*", span) and not span.startswith("WSP") and span not in ("None", "ValueError"):
            names.add(span)
        for m in re.finditer(r"list\[([A-Z]\w*)\]", span):  # enum_protocols() -> list[ProtocolInfo]
            names.add(m.group(1))
    names.update(values)
    return names, values


if API_MD.exists():
    API_NAMES, API_VALUES = _from_api_md()
else:  # pragma: no cover - the contract lives outside the repository
    API_NAMES, API_VALUES = set(FALLBACK_NAMES) | set(FALLBACK_VALUES), dict(FALLBACK_VALUES)

FD_NAMES = ["FD_READ", "FD_WRITE", "FD_OOB", "FD_ACCEPT", "FD_CONNECT", "FD_CLOSE", "FD_QOS",
            "FD_GROUP_QOS", "FD_ROUTING_INTERFACE_CHANGE", "FD_ADDRESS_LIST_CHANGE"]
EXPECTED = API_NAMES | set(WINSOCK_ERRORS) | {f"{n}_BIT" for n in FD_NAMES}


def test_api_md_parsed_enough():
    """Guard the parser: it must find (at least) the fallback lists in the contract."""
    assert set(FALLBACK_VALUES) <= set(API_VALUES)
    assert FALLBACK_NAMES <= API_NAMES
    for name, value in FALLBACK_VALUES.items():
        assert API_VALUES[name] == value, name


def test_api_names_are_exported():
    missing = sorted(n for n in EXPECTED - set(wspasync.__all__) if n not in PENDING)
    assert not missing, f"API.md names not in wspasync.__all__: {missing}"
    absent = sorted(n for n in EXPECTED if n not in PENDING and not hasattr(wspasync, n))
    assert not absent


def test_every_exported_name_exists():
    missing = [name for name in wspasync.__all__ if not hasattr(wspasync, name)]
    assert not missing
    assert len(set(wspasync.__all__)) == len(wspasync.__all__), "duplicates in __all__"


def test_no_private_names_exported():
    assert not [n for n in wspasync.__all__ if n.startswith("_")]


def test_api_values():
    wrong = {n: (getattr(wspasync, n, None), v) for n, v in API_VALUES.items()
             if getattr(wspasync, n, None) != v}
    assert not wrong, f"(got, API.md) differ: {wrong}"


def test_error_codes():
    wrong = {n: v for n, v in WINSOCK_ERRORS.items()
             if getattr(wspasync, n, None) != v or ErrorCode[n] != v}
    assert not wrong


def test_fd_bits():
    for index, name in enumerate(FD_NAMES):
        assert getattr(wspasync, f"{name}_BIT") == index
        assert getattr(wspasync, name) == 1 << index


def test_select_reply_macros():
    lparam = wspasync.WSAMAKESELECTREPLY(wspasync.FD_CONNECT, wspasync.WSAECONNREFUSED)
    assert lparam == (10061 << 16) | 0x10
    assert wspasync.WSAGETSELECTEVENT(lparam) == 0x10
    assert wspasync.WSAGETSELECTERROR(lparam) == 10061


def test_errorcode_is_intenum_with_same_values():
    import enum

    assert issubclass(ErrorCode, enum.IntEnum)
    for code in ErrorCode:
        if code.name in wspasync.__all__:
            assert getattr(wspasync, code.name) == code.value
