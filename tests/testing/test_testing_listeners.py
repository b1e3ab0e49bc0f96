"""The loopback peers: accept policies as a client sees them, refused and pending
addresses, the UDP peer; every thread and socket gone after close."""

from __future__ import annotations

import socket
import threading

import pytest

from wspasync import (
    AF_INET,
    FD_CLOSE,
    FD_CONNECT,
    FD_WRITE,
    IPPROTO_TCP,
    SOCK_STREAM,
    Errno,
    Window,
    parse_sockaddr,
)
from wspasync.testing import ACCEPT_POLICIES, LoopbackListener, expect_messages, expect_no_notification

WM = 0x0401


async def watched_connect(wsp, listener):
    window = Window()
    s = wsp.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0, Errno())
    wsp.WSPAsyncSelect(s, window, WM, FD_CONNECT | FD_WRITE | FD_CLOSE, Errno())
    await wsp.WSPConnect(s, listener.addr, len(listener.addr), None, None, None, None, Errno())
    await expect_messages(window, ["FD_CONNECT(0)", "FD_WRITE(0)"], exact=False)
    return s, window


@pytest.mark.parametrize("policy", ["hold", "delay", "never"])
async def test_connect_completes_whatever_the_server_does_later(wsp, loopback_listener, policy):
    # Linux completes the handshake in the kernel while the queue has room.
    listener = loopback_listener(accept=policy, delay=0.05)
    s, window = await watched_connect(wsp, listener)
    await expect_no_notification(window)
    if policy == "never":
        assert not listener.wait_accepted(1, timeout=0.05)
    else:
        assert listener.wait_accepted(1, timeout=5)
        assert len(listener.accepted) == 1
    wsp.WSPCloseSocket(s, Errno())


@pytest.mark.parametrize(("policy", "close"), [("close", "FD_CLOSE(0)"), ("reset", "FD_CLOSE(WSAECONNABORTED)")])
async def test_accept_and_close_or_reset_reaches_the_client(wsp, loopback_listener, policy, close):
    # A short delay: the server acts after the client has seen its connect complete.
    listener = loopback_listener(accept=policy, delay=0.05)
    s, window = await watched_connect(wsp, listener)
    assert listener.wait_accepted(1, timeout=5)
    await expect_messages(window, [close], timeout=5)
    wsp.WSPCloseSocket(s, Errno())


def test_policies_and_aliases():
    assert ACCEPT_POLICIES == ("hold", "close", "reset", "delay", "never")
    with LoopbackListener(accept="accept-and-reset") as listener:
        assert listener.policy == "reset"
    with pytest.raises(ValueError, match="accept policy"):
        LoopbackListener(accept="sometimes")


def test_close_joins_the_thread_and_closes_everything():
    before = {t.name for t in threading.enumerate()}
    listener = LoopbackListener(accept="hold")
    with socket.create_connection(("127.0.0.1", listener.port)):
        assert listener.wait_accepted(1)
    listener.close()
    assert {t.name for t in threading.enumerate()} == before
    assert listener.sock.fileno() == -1 and listener.accepted == []


def test_delay_listener_closed_during_its_delay_stops_at_once():
    listener = LoopbackListener(accept="delay", delay=30)
    listener.close()  # would hang for 30 s if the delay did not watch for close


def test_refused_and_pending_addresses(refused_addr, pending_addr):
    for addr in (refused_addr, pending_addr):
        family, host, port = parse_sockaddr(addr)
        assert (family, host) == (AF_INET, "127.0.0.1") and port > 0
    _, _, port = parse_sockaddr(refused_addr)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_ipv6_listener():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with LoopbackListener(family=socket.AF_INET6) as listener:
        assert parse_sockaddr(listener.addr)[1] == "::1"


def test_udp_peer_round_trip(udp_peer):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", 0))
        other.sendto(b"ping", ("127.0.0.1", udp_peer.port))
        data, sender = udp_peer.recv(timeout=1)
        assert data == b"ping"
        assert parse_sockaddr(sender)[2] == other.getsockname()[1]
        udp_peer.send_to(sender, b"pong")
        assert other.recv(16) == b"pong"
    with pytest.raises(TimeoutError):
        udp_peer.recv(timeout=0.01)
