"""tests/testing exercises the plugin's own fixtures, not the repository conftest's.

The root conftest defines a ``wsp`` of its own (a conftest fixture overrides a plugin
fixture of the same name); re-exporting the plugin's versions here, closer to these
tests, makes them the ones resolved below this directory.
"""

from wspasync.testing._plugin import (  # noqa: F401
    fault_layer,
    loopback_listener,
    pending_addr,
    refused_addr,
    sync_wsp,
    udp_peer,
    wsp,
)
