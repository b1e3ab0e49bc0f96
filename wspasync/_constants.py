"""Windows numbers, the ErrorCode enum, and the one Linux errno -> WSAE table.

Every constant has the value winsock2.h gives it (Wine's include/winsock.h,
winsock2.h and ws2def.h were the reference; they match the Windows SDK), never
the Linux value: ``AF_INET6`` is 23 here, not 10.

The errno table (SEMANTICS.md §6)
---------------------------------
Linux reports failures as errno values; Windows reports WSAE codes. The rule is
that an errno maps to the WSAE code of the same name (ECONNREFUSED ->
WSAECONNREFUSED, ...). The exceptions, and why:

* EINPROGRESS and EAGAIN/EWOULDBLOCK -> WSAEWOULDBLOCK. A nonblocking connect
  on Windows fails with WSAEWOULDBLOCK; WSAEINPROGRESS means something else
  there ("a blocking call is already in progress on this socket", SEMANTICS.md
  §5), so Linux EINPROGRESS must never become it.
* EPIPE -> WSAECONNRESET. Windows has no SIGPIPE/EPIPE; a send on a connection
  the peer reset fails with WSAECONNRESET.
* EPERM -> WSAEACCES (Winsock has no WSAEPERM; a refused permission is EACCES).
* ENOMEM -> WSAENOBUFS, ENFILE -> WSAEMFILE (no WSAE twins; Winsock reports
  resource exhaustion with these two).
* EBADF -> WSAENOTSOCK. A descriptor gone bad under a live handle means the
  handle no longer names a socket; Winsock returns WSAENOTSOCK for that, and
  WSAEBADF is not returned by socket calls.
* In an FD_CLOSE notification a reset (ECONNRESET) is reported as
  WSAECONNABORTED: that is what Windows was observed to post for an abortive
  peer close (Wine dlls/ws2_32/tests/sock.c), although the WSAAsyncSelect page
  says WSAECONNRESET. That one context-dependent rule is ``fd_close_error``.

An errno outside the table becomes WSASYSCALLFAILURE ("a system call that
should never fail has failed"), the closest Winsock has to "unexpected".
"""

from __future__ import annotations

import enum
import errno as _errno

# -- return values ------------------------------------------------------------

SOCKET_ERROR = -1
INVALID_SOCKET = 2**64 - 1  # (SOCKET)(~0) with a 64-bit UINT_PTR

# -- families, types, protocols -----------------------------------------------

AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 23
SOCK_STREAM = 1
SOCK_DGRAM = 2
IPPROTO_TCP = 6
IPPROTO_UDP = 17

# -- socket options -----------------------------------------------------------

SOL_SOCKET = 0xFFFF
SO_REUSEADDR = 0x0004
SO_KEEPALIVE = 0x0008
SO_BROADCAST = 0x0020
SO_LINGER = 0x0080
SO_OOBINLINE = 0x0100
SO_SNDBUF = 0x1001
SO_RCVBUF = 0x1002
SO_SNDTIMEO = 0x1005
SO_RCVTIMEO = 0x1006
SO_ERROR = 0x1007
SO_TYPE = 0x1008
SO_CONNECT_TIME = 0x700C
SO_EXCLUSIVEADDRUSE = ~SO_REUSEADDR  # (int)(~SO_REUSEADDR) == -5
TCP_NODELAY = 0x0001
TCP_MAXRT = 5  # IPPROTO_TCP level, in seconds

# -- send/recv flags, shutdown ------------------------------------------------

MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_PARTIAL = 0x8000
SD_RECEIVE = 0
SD_SEND = 1
SD_BOTH = 2

# -- ioctls -------------------------------------------------------------------

FIONBIO = 0x8004667E  # _IOW('f', 126, u_long)
FIONREAD = 0x4004667F  # _IOR('f', 127, u_long)
SIOCATMARK = 0x40047307  # _IOR('s', 7, u_long)
SIO_SET_QOS = 0x8800000B  # _WSAIOW(IOC_WS2, 11)
SIO_GET_QOS = 0xC8000007  # _WSAIORW(IOC_WS2, 7)

# -- network events -----------------------------------------------------------

FD_READ_BIT = 0
FD_WRITE_BIT = 1
FD_OOB_BIT = 2
FD_ACCEPT_BIT = 3
FD_CONNECT_BIT = 4
FD_CLOSE_BIT = 5
FD_QOS_BIT = 6
FD_GROUP_QOS_BIT = 7
FD_ROUTING_INTERFACE_CHANGE_BIT = 8
FD_ADDRESS_LIST_CHANGE_BIT = 9
FD_MAX_EVENTS = 10

FD_READ = 1 << FD_READ_BIT
FD_WRITE = 1 << FD_WRITE_BIT
FD_OOB = 1 << FD_OOB_BIT
FD_ACCEPT = 1 << FD_ACCEPT_BIT
FD_CONNECT = 1 << FD_CONNECT_BIT
FD_CLOSE = 1 << FD_CLOSE_BIT
FD_QOS = 1 << FD_QOS_BIT
FD_GROUP_QOS = 1 << FD_GROUP_QOS_BIT
FD_ROUTING_INTERFACE_CHANGE = 1 << FD_ROUTING_INTERFACE_CHANGE_BIT
FD_ADDRESS_LIST_CHANGE = 1 << FD_ADDRESS_LIST_CHANGE_BIT
FD_ALL_EVENTS = (1 << FD_MAX_EVENTS) - 1

#: (bit index, value, name) of the ten network events, in bit order.
FD_EVENTS: tuple[tuple[int, int, str], ...] = (
    (FD_READ_BIT, FD_READ, "FD_READ"),
    (FD_WRITE_BIT, FD_WRITE, "FD_WRITE"),
    (FD_OOB_BIT, FD_OOB, "FD_OOB"),
    (FD_ACCEPT_BIT, FD_ACCEPT, "FD_ACCEPT"),
    (FD_CONNECT_BIT, FD_CONNECT, "FD_CONNECT"),
    (FD_CLOSE_BIT, FD_CLOSE, "FD_CLOSE"),
    (FD_QOS_BIT, FD_QOS, "FD_QOS"),
    (FD_GROUP_QOS_BIT, FD_GROUP_QOS, "FD_GROUP_QOS"),
    (FD_ROUTING_INTERFACE_CHANGE_BIT, FD_ROUTING_INTERFACE_CHANGE,
     "FD_ROUTING_INTERFACE_CHANGE"),
    (FD_ADDRESS_LIST_CHANGE_BIT, FD_ADDRESS_LIST_CHANGE,
     "FD_ADDRESS_LIST_CHANGE"),
)

# -- waits, select ------------------------------------------------------------

WSA_WAIT_EVENT_0 = 0  # WAIT_OBJECT_0
WSA_WAIT_IO_COMPLETION = 0xC0  # WAIT_IO_COMPLETION
WSA_WAIT_TIMEOUT = 258  # WAIT_TIMEOUT
WSA_WAIT_FAILED = 0xFFFFFFFF  # (DWORD)-1
WSA_INFINITE = 0xFFFFFFFF  # INFINITE
WSA_MAXIMUM_WAIT_EVENTS = 64  # MAXIMUM_WAIT_OBJECTS
FD_SETSIZE = 64

# -- accept condition results -------------------------------------------------

CF_ACCEPT = 0
CF_REJECT = 1
CF_DEFER = 2

# -- QoS ----------------------------------------------------------------------

QOS_NOT_SPECIFIED = 0xFFFFFFFF
SERVICETYPE_NOTRAFFIC = 0
SERVICETYPE_BESTEFFORT = 1
SERVICETYPE_CONTROLLEDLOAD = 2
SERVICETYPE_GUARANTEED = 3
SERVICETYPE_NOCHANGE = 6

# -- versions (MAKEWORD(major, minor)) ----------------------------------------

WINSOCK_1_1 = 0x0101
WINSOCK_2_2 = 0x0202

# -- WSAPROTOCOL_INFO.dwServiceFlags1 (winsock2.h) ----------------------------

XP1_CONNECTIONLESS = 0x00000001
XP1_GUARANTEED_DELIVERY = 0x00000002
XP1_GUARANTEED_ORDER = 0x00000004
XP1_MESSAGE_ORIENTED = 0x00000008
XP1_PSEUDO_STREAM = 0x00000010
XP1_GRACEFUL_CLOSE = 0x00000020
XP1_EXPEDITED_DATA = 0x00000040
XP1_CONNECT_DATA = 0x00000080
XP1_DISCONNECT_DATA = 0x00000100
XP1_SUPPORT_BROADCAST = 0x00000200
XP1_SUPPORT_MULTIPOINT = 0x00000400
XP1_MULTIPOINT_CONTROL_PLANE = 0x00000800
XP1_MULTIPOINT_DATA_PLANE = 0x00001000
XP1_QOS_SUPPORTED = 0x00002000
XP1_INTERRUPT = 0x00004000
XP1_UNI_SEND = 0x00008000
XP1_UNI_RECV = 0x00010000
XP1_IFS_HANDLES = 0x00020000
XP1_PARTIAL_MESSAGE = 0x00040000


# -- error codes --------------------------------------------------------------


class ErrorCode(enum.IntEnum):
    """Every error code of winsock2.h, with its Windows name and value."""

    # Overlapped I/O and event errors are Win32 errors (winerror.h).
    WSA_INVALID_HANDLE = 6
    WSA_NOT_ENOUGH_MEMORY = 8
    WSA_INVALID_PARAMETER = 87
    WSA_OPERATION_ABORTED = 995
    WSA_IO_INCOMPLETE = 996
    WSA_IO_PENDING = 997

    # WSABASEERR (10000) + the matching Berkeley errno number.
    WSAEINTR = 10004
    WSAEBADF = 10009
    WSAEACCES = 10013
    WSAEFAULT = 10014
    WSAEINVAL = 10022
    WSAEMFILE = 10024
    WSAEWOULDBLOCK = 10035
    WSAEINPROGRESS = 10036
    WSAEALREADY = 10037
    WSAENOTSOCK = 10038
    WSAEDESTADDRREQ = 10039
    WSAEMSGSIZE = 10040
    WSAEPROTOTYPE = 10041
    WSAENOPROTOOPT = 10042
    WSAEPROTONOSUPPORT = 10043
    WSAESOCKTNOSUPPORT = 10044
    WSAEOPNOTSUPP = 10045
    WSAEPFNOSUPPORT = 10046
    WSAEAFNOSUPPORT = 10047
    WSAEADDRINUSE = 10048
    WSAEADDRNOTAVAIL = 10049
    WSAENETDOWN = 10050
    WSAENETUNREACH = 10051
    WSAENETRESET = 10052
    WSAECONNABORTED = 10053
    WSAECONNRESET = 10054
    WSAENOBUFS = 10055
    WSAEISCONN = 10056
    WSAENOTCONN = 10057
    WSAESHUTDOWN = 10058
    WSAETOOMANYREFS = 10059
    WSAETIMEDOUT = 10060
    WSAECONNREFUSED = 10061
    WSAELOOP = 10062
    WSAENAMETOOLONG = 10063
    WSAEHOSTDOWN = 10064
    WSAEHOSTUNREACH = 10065
    WSAENOTEMPTY = 10066
    WSAEPROCLIM = 10067
    WSAEUSERS = 10068
    WSAEDQUOT = 10069
    WSAESTALE = 10070
    WSAEREMOTE = 10071

    # Winsock-specific.
    WSASYSNOTREADY = 10091
    WSAVERNOTSUPPORTED = 10092
    WSANOTINITIALISED = 10093
    WSAEDISCON = 10101
    WSAENOMORE = 10102
    WSAECANCELLED = 10103
    WSAEINVALIDPROCTABLE = 10104
    WSAEINVALIDPROVIDER = 10105
    WSAEPROVIDERFAILEDINIT = 10106
    WSASYSCALLFAILURE = 10107
    WSASERVICE_NOT_FOUND = 10108
    WSATYPE_NOT_FOUND = 10109
    WSA_E_NO_MORE = 10110
    WSA_E_CANCELLED = 10111
    WSAEREFUSED = 10112

    # Name resolution (the h_errno values).
    WSAHOST_NOT_FOUND = 11001
    WSATRY_AGAIN = 11002
    WSANO_RECOVERY = 11003
    WSANO_DATA = 11004
    WSANO_ADDRESS = 11004  # alias of WSANO_DATA, as in winsock.h

    # QoS.
    WSA_QOS_RECEIVERS = 11005
    WSA_QOS_SENDERS = 11006
    WSA_QOS_NO_SENDERS = 11007
    WSA_QOS_NO_RECEIVERS = 11008
    WSA_QOS_REQUEST_CONFIRMED = 11009
    WSA_QOS_ADMISSION_FAILURE = 11010
    WSA_QOS_POLICY_FAILURE = 11011
    WSA_QOS_BAD_STYLE = 11012
    WSA_QOS_BAD_OBJECT = 11013
    WSA_QOS_TRAFFIC_CTRL_ERROR = 11014
    WSA_QOS_GENERIC_ERROR = 11015
    WSA_QOS_ESERVICETYPE = 11016
    WSA_QOS_EFLOWSPEC = 11017
    WSA_QOS_EPROVSPECBUF = 11018
    WSA_QOS_EFILTERSTYLE = 11019
    WSA_QOS_EFILTERTYPE = 11020
    WSA_QOS_EFILTERCOUNT = 11021
    WSA_QOS_EOBJLENGTH = 11022
    WSA_QOS_EFLOWCOUNT = 11023
    WSA_QOS_EUNKOWNPSOBJ = 11024  # sic: Microsoft's spelling
    WSA_QOS_EPOLICYOBJ = 11025
    WSA_QOS_EFLOWDESC = 11026
    WSA_QOS_EPSFLOWSPEC = 11027
    WSA_QOS_EPSFILTERSPEC = 11028
    WSA_QOS_ESDMODEOBJ = 11029
    WSA_QOS_ESHAPERATEOBJ = 11030
    WSA_QOS_RESERVED_PETYPE = 11031


# Module-level names, spelled out so that type checkers and readers see them.
WSA_INVALID_HANDLE = ErrorCode.WSA_INVALID_HANDLE
WSA_NOT_ENOUGH_MEMORY = ErrorCode.WSA_NOT_ENOUGH_MEMORY
WSA_INVALID_PARAMETER = ErrorCode.WSA_INVALID_PARAMETER
WSA_OPERATION_ABORTED = ErrorCode.WSA_OPERATION_ABORTED
WSA_IO_INCOMPLETE = ErrorCode.WSA_IO_INCOMPLETE
WSA_IO_PENDING = ErrorCode.WSA_IO_PENDING
WSAEINTR = ErrorCode.WSAEINTR
WSAEBADF = ErrorCode.WSAEBADF
WSAEACCES = ErrorCode.WSAEACCES
WSAEFAULT = ErrorCode.WSAEFAULT
WSAEINVAL = ErrorCode.WSAEINVAL
WSAEMFILE = ErrorCode.WSAEMFILE
WSAEWOULDBLOCK = ErrorCode.WSAEWOULDBLOCK
WSAEINPROGRESS = ErrorCode.WSAEINPROGRESS
WSAEALREADY = ErrorCode.WSAEALREADY
WSAENOTSOCK = ErrorCode.WSAENOTSOCK
WSAEDESTADDRREQ = ErrorCode.WSAEDESTADDRREQ
WSAEMSGSIZE = ErrorCode.WSAEMSGSIZE
WSAEPROTOTYPE = ErrorCode.WSAEPROTOTYPE
WSAENOPROTOOPT = ErrorCode.WSAENOPROTOOPT
WSAEPROTONOSUPPORT = ErrorCode.WSAEPROTONOSUPPORT
WSAESOCKTNOSUPPORT = ErrorCode.WSAESOCKTNOSUPPORT
WSAEOPNOTSUPP = ErrorCode.WSAEOPNOTSUPP
WSAEPFNOSUPPORT = ErrorCode.WSAEPFNOSUPPORT
WSAEAFNOSUPPORT = ErrorCode.WSAEAFNOSUPPORT
WSAEADDRINUSE = ErrorCode.WSAEADDRINUSE
WSAEADDRNOTAVAIL = ErrorCode.WSAEADDRNOTAVAIL
WSAENETDOWN = ErrorCode.WSAENETDOWN
WSAENETUNREACH = ErrorCode.WSAENETUNREACH
WSAENETRESET = ErrorCode.WSAENETRESET
WSAECONNABORTED = ErrorCode.WSAECONNABORTED
WSAECONNRESET = ErrorCode.WSAECONNRESET
WSAENOBUFS = ErrorCode.WSAENOBUFS
WSAEISCONN = ErrorCode.WSAEISCONN
WSAENOTCONN = ErrorCode.WSAENOTCONN
WSAESHUTDOWN = ErrorCode.WSAESHUTDOWN
WSAETOOMANYREFS = ErrorCode.WSAETOOMANYREFS
WSAETIMEDOUT = ErrorCode.WSAETIMEDOUT
WSAECONNREFUSED = ErrorCode.WSAECONNREFUSED
WSAELOOP = ErrorCode.WSAELOOP
WSAENAMETOOLONG = ErrorCode.WSAENAMETOOLONG
WSAEHOSTDOWN = ErrorCode.WSAEHOSTDOWN
WSAEHOSTUNREACH = ErrorCode.WSAEHOSTUNREACH
WSAENOTEMPTY = ErrorCode.WSAENOTEMPTY
WSAEPROCLIM = ErrorCode.WSAEPROCLIM
WSAEUSERS = ErrorCode.WSAEUSERS
WSAEDQUOT = ErrorCode.WSAEDQUOT
WSAESTALE = ErrorCode.WSAESTALE
WSAEREMOTE = ErrorCode.WSAEREMOTE
WSASYSNOTREADY = ErrorCode.WSASYSNOTREADY
WSAVERNOTSUPPORTED = ErrorCode.WSAVERNOTSUPPORTED
WSANOTINITIALISED = ErrorCode.WSANOTINITIALISED
WSAEDISCON = ErrorCode.WSAEDISCON
WSAENOMORE = ErrorCode.WSAENOMORE
WSAECANCELLED = ErrorCode.WSAECANCELLED
WSAEINVALIDPROCTABLE = ErrorCode.WSAEINVALIDPROCTABLE
WSAEINVALIDPROVIDER = ErrorCode.WSAEINVALIDPROVIDER
WSAEPROVIDERFAILEDINIT = ErrorCode.WSAEPROVIDERFAILEDINIT
WSASYSCALLFAILURE = ErrorCode.WSASYSCALLFAILURE
WSASERVICE_NOT_FOUND = ErrorCode.WSASERVICE_NOT_FOUND
WSATYPE_NOT_FOUND = ErrorCode.WSATYPE_NOT_FOUND
WSA_E_NO_MORE = ErrorCode.WSA_E_NO_MORE
WSA_E_CANCELLED = ErrorCode.WSA_E_CANCELLED
WSAEREFUSED = ErrorCode.WSAEREFUSED
WSAHOST_NOT_FOUND = ErrorCode.WSAHOST_NOT_FOUND
WSATRY_AGAIN = ErrorCode.WSATRY_AGAIN
WSANO_RECOVERY = ErrorCode.WSANO_RECOVERY
WSANO_DATA = ErrorCode.WSANO_DATA
WSANO_ADDRESS = ErrorCode.WSANO_ADDRESS
WSA_QOS_RECEIVERS = ErrorCode.WSA_QOS_RECEIVERS
WSA_QOS_SENDERS = ErrorCode.WSA_QOS_SENDERS
WSA_QOS_NO_SENDERS = ErrorCode.WSA_QOS_NO_SENDERS
WSA_QOS_NO_RECEIVERS = ErrorCode.WSA_QOS_NO_RECEIVERS
WSA_QOS_REQUEST_CONFIRMED = ErrorCode.WSA_QOS_REQUEST_CONFIRMED
WSA_QOS_ADMISSION_FAILURE = ErrorCode.WSA_QOS_ADMISSION_FAILURE
WSA_QOS_POLICY_FAILURE = ErrorCode.WSA_QOS_POLICY_FAILURE
WSA_QOS_BAD_STYLE = ErrorCode.WSA_QOS_BAD_STYLE
WSA_QOS_BAD_OBJECT = ErrorCode.WSA_QOS_BAD_OBJECT
WSA_QOS_TRAFFIC_CTRL_ERROR = ErrorCode.WSA_QOS_TRAFFIC_CTRL_ERROR
WSA_QOS_GENERIC_ERROR = ErrorCode.WSA_QOS_GENERIC_ERROR
WSA_QOS_ESERVICETYPE = ErrorCode.WSA_QOS_ESERVICETYPE
WSA_QOS_EFLOWSPEC = ErrorCode.WSA_QOS_EFLOWSPEC
WSA_QOS_EPROVSPECBUF = ErrorCode.WSA_QOS_EPROVSPECBUF
WSA_QOS_EFILTERSTYLE = ErrorCode.WSA_QOS_EFILTERSTYLE
WSA_QOS_EFILTERTYPE = ErrorCode.WSA_QOS_EFILTERTYPE
WSA_QOS_EFILTERCOUNT = ErrorCode.WSA_QOS_EFILTERCOUNT
WSA_QOS_EOBJLENGTH = ErrorCode.WSA_QOS_EOBJLENGTH
WSA_QOS_EFLOWCOUNT = ErrorCode.WSA_QOS_EFLOWCOUNT
WSA_QOS_EUNKOWNPSOBJ = ErrorCode.WSA_QOS_EUNKOWNPSOBJ
WSA_QOS_EPOLICYOBJ = ErrorCode.WSA_QOS_EPOLICYOBJ
WSA_QOS_EFLOWDESC = ErrorCode.WSA_QOS_EFLOWDESC
WSA_QOS_EPSFLOWSPEC = ErrorCode.WSA_QOS_EPSFLOWSPEC
WSA_QOS_EPSFILTERSPEC = ErrorCode.WSA_QOS_EPSFILTERSPEC
WSA_QOS_ESDMODEOBJ = ErrorCode.WSA_QOS_ESDMODEOBJ
WSA_QOS_ESHAPERATEOBJ = ErrorCode.WSA_QOS_ESHAPERATEOBJ
WSA_QOS_RESERVED_PETYPE = ErrorCode.WSA_QOS_RESERVED_PETYPE


# -- the errno -> WSAE table --------------------------------------------------


def _build_errno_table() -> dict[int, ErrorCode]:
    # Same-name rule first: errno.ECONNREFUSED -> WSAECONNREFUSED, for every
    # WSAE code whose errno twin exists on this platform.
    table = {
        getattr(_errno, code.name[3:]): code
        for code in ErrorCode
        if code.name.startswith("WSAE") and hasattr(_errno, code.name[3:])
    }
    # The exceptions of SEMANTICS.md §6, explained in the module docstring.
    # EAGAIN is listed on its own in case a platform makes it differ from
    # EWOULDBLOCK (Linux does not).
    table.update({
        _errno.EINPROGRESS: ErrorCode.WSAEWOULDBLOCK,
        _errno.EAGAIN: ErrorCode.WSAEWOULDBLOCK,
        _errno.EWOULDBLOCK: ErrorCode.WSAEWOULDBLOCK,
        _errno.EPIPE: ErrorCode.WSAECONNRESET,
        _errno.EPERM: ErrorCode.WSAEACCES,
        _errno.ENOMEM: ErrorCode.WSAENOBUFS,
        _errno.ENFILE: ErrorCode.WSAEMFILE,
        _errno.EBADF: ErrorCode.WSAENOTSOCK,
    })
    return table


#: Linux errno -> ErrorCode; the only such table in the project.
ERRNO_TO_WSA: dict[int, ErrorCode] = _build_errno_table()


def errno_to_wsa(err: int) -> ErrorCode:
    """Return the WSAE code for Linux errno ``err``.

    Unknown errno values (including 0, which is not an error) give
    WSASYSCALLFAILURE.
    """
    return ERRNO_TO_WSA.get(err, ErrorCode.WSASYSCALLFAILURE)


def fd_close_error(err: int) -> ErrorCode:
    """Return the error an FD_CLOSE notification carries for Linux errno ``err``.

    As ``errno_to_wsa``, except that a reset (ECONNRESET, and EPIPE, which the
    table also reads as a reset) is WSAECONNABORTED, as observed on Windows.
    """
    code = ERRNO_TO_WSA.get(err, ErrorCode.WSASYSCALLFAILURE)
    if code == ErrorCode.WSAECONNRESET:
        return ErrorCode.WSAECONNABORTED
    return code


def datagram_error(err: int) -> ErrorCode:
    """Return the error a send/recv on a datagram socket reports for errno ``err``.

    As ``errno_to_wsa``, except that ECONNREFUSED (Linux's report of an ICMP port
    unreachable on a connected datagram socket) is WSAECONNRESET, as Windows reports
    it (the SIO_UDP_CONNRESET behaviour, on by default).
    """
    if err == _errno.ECONNREFUSED:
        return ErrorCode.WSAECONNRESET
    return ERRNO_TO_WSA.get(err, ErrorCode.WSASYSCALLFAILURE)


# -- WSAAsyncSelect lParam (winsock2.h macros) --------------------------------


def WSAMAKESELECTREPLY(event: int, error: int) -> int:
    """Return MAKELONG(event, error): the event in the low word, error high."""
    return (event & 0xFFFF) | ((error & 0xFFFF) << 16)


def WSAGETSELECTEVENT(lparam: int) -> int:
    """Return the low word of an async-select lParam: the FD_* event."""
    return lparam & 0xFFFF


def WSAGETSELECTERROR(lparam: int) -> int:
    """Return the high word of an async-select lParam: the error code or 0."""
    return (lparam >> 16) & 0xFFFF


# -- readable output ----------------------------------------------------------

_ERROR_NAMES = {code.value: code.name for code in ErrorCode}
_EVENT_NAMES = {value: name for _, value, name in FD_EVENTS}


def error_name(code: int) -> str:
    """Return the Windows name of ``code`` ("WSAECONNREFUSED").

    0 gives "0"; a number that is no error code gives the number as text.
    """
    return _ERROR_NAMES.get(code) or str(int(code))


def event_name(bit_value: int) -> str:
    """Return the name of an FD_* value ("FD_CONNECT").

    A mask of several events gives their names joined by "|", in bit order;
    bits that name no event are appended in hex; 0 gives "0".
    """
    name = _EVENT_NAMES.get(bit_value)
    if name is not None:
        return name
    parts = [name for _, value, name in FD_EVENTS if bit_value & value]
    rest = bit_value & ~FD_ALL_EVENTS
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or "0"
