"""wspasync.testing: test your code's connect and notification handling.

The pytest plugin (fixtures ``wsp``, ``sync_wsp``, ``loopback_listener``,
``refused_addr``, ``pending_addr``, ``udp_peer``, ``fault_layer``) is registered through
the ``pytest11`` entry point and needs no import. This module holds the rest:

* event-sequence assertions: :func:`expect_messages` (async-select, ordered),
  :func:`expect_network_events` (event-select, a set of bits with error codes),
  :func:`expect_no_notification`, :func:`expect_select` (the three sets);
* fault injection: :class:`LayeredProvider` (the SPI's layered-provider model) and
  :class:`FaultLayer`;
* loopback peers: :class:`LoopbackListener`, :class:`UdpPeer`, :func:`refused_sockaddr`,
  :func:`full_backlog_listener`; :func:`in_isolated_network` for a real
  "network unreachable";
* :class:`Trace`, the recorder the ``wsp`` fixture attaches.

The guide is docs/testing.md.
"""

from .._trace import Trace, TraceEntry
from ._assertions import (
    NotificationMismatch,
    expect_messages,
    expect_network_events,
    expect_no_notification,
    expect_select,
    format_events,
    parse_expected,
    settle,
)
from ._fault import ASYNC_CONNECT_ERRORS, FaultLayer, FaultRule, LayeredProvider
from ._listeners import (
    ACCEPT_POLICIES,
    LoopbackListener,
    UdpPeer,
    full_backlog_listener,
    refused_sockaddr,
)
from ._netns import in_isolated_network, isolated_network_available

__all__ = [
    "ACCEPT_POLICIES",
    "ASYNC_CONNECT_ERRORS",
    "FaultLayer",
    "FaultRule",
    "LayeredProvider",
    "LoopbackListener",
    "NotificationMismatch",
    "Trace",
    "TraceEntry",
    "UdpPeer",
    "expect_messages",
    "expect_network_events",
    "expect_no_notification",
    "expect_select",
    "format_events",
    "full_backlog_listener",
    "in_isolated_network",
    "isolated_network_available",
    "parse_expected",
    "refused_sockaddr",
    "settle",
]
