"""WSAError: a Winsock error code as a Python exception.

Internals raise WSAError carrying an ErrorCode; the SPI surface catches it once
and turns it into SOCKET_ERROR + lpErrno (STYLE.md, "Errors are translated
once"). Python callers who prefer exceptions get the same type from ``check``.
Construction is cheap because the internals raise it on ordinary paths
(WSAEWOULDBLOCK on every nonblocking connect).
"""

from __future__ import annotations

from typing import Any

from ._constants import INVALID_SOCKET, SOCKET_ERROR, ErrorCode, error_name

_MEMBERS: dict[int, ErrorCode] = {code.value: code for code in ErrorCode}


class WSAError(OSError):
    """A Winsock error.

    ``WSAError(code)`` takes an int or ErrorCode. ``.code`` is the ErrorCode
    (the plain int if the number is no known code), ``.winerror`` the int,
    ``.errno`` None. str() reads like "[WinError 10061] WSAECONNREFUSED".
    """

    code: ErrorCode | int
    winerror: int

    def __init__(self, code: int) -> None:
        if type(code) is not ErrorCode:
            code = _MEMBERS.get(code, code)
        super().__init__(code)
        self.code = code
        self.winerror = int(code)

    def __str__(self) -> str:
        return f"[WinError {self.winerror}] {error_name(self.winerror)}"


def check(rc: int, errno_box: Any) -> int:
    """Return ``rc``, or raise WSAError(errno_box.value) if ``rc`` is
    SOCKET_ERROR or INVALID_SOCKET (the SPI's failure returns)."""
    if rc == SOCKET_ERROR or rc == INVALID_SOCKET:
        raise WSAError(errno_box.value)
    return rc
