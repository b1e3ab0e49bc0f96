"""Each accept policy of the embedded sink, driven by the bench's own drivers on both loops."""

from __future__ import annotations

import pytest

from wspasync._bench.load import Plan
from wspasync._bench.routes import make_driver
from wspasync._bench.sink import POLICIES, SinkGroup


async def _run(route: str, policy: str, **plan_kw):
    with SinkGroup(policy, backlog=8 if policy == "never" else 128, delay=0.05) as sink:
        plan = Plan(**{"concurrency": 10, "total": 40, "warmup": 0, "timeout": 5.0, "max_time": 30.0,
                       **plan_kw})
        driver = make_driver(route, plan, [(2, "127.0.0.1", sink.port)], None)
        await driver.run()
        return driver.result()


@pytest.mark.parametrize("route", ["baseline", "asyncselect", "eventselect", "select", "blocking"])
@pytest.mark.parametrize("policy", ["accept-close", "accept-hold", "delayed"])
async def test_accepting_policies_complete_every_connect(route, policy):
    res = await _run(route, policy, close="fin")
    assert res["connects"] == 40 and res["errors"] == {}
    assert len(res["lat_ns"]) == 40


@pytest.mark.parametrize("route", ["baseline", "asyncselect", "eventselect", "select", "blocking"])
async def test_resetting_sink(route):
    # the RST may arrive before the route learns of the completion: then the connect
    # itself reports the reset, by its WSAE name
    res = await _run(route, "reset", close="fin")
    assert set(res["errors"]) <= {"WSAECONNRESET", "WSAECONNABORTED"}
    assert res["connects"] + sum(res["errors"].values()) == 40


@pytest.mark.parametrize("route", ["baseline", "asyncselect", "eventselect"])
async def test_never_accepting_sink_makes_connects_time_out(route):
    res = await _run(route, "never", concurrency=30, total=30, timeout=0.5)
    # the accept queue (backlog 8) takes a few; the rest pend and time out
    assert res["errors"].get("WSAETIMEDOUT", 0) >= 15
    assert res["connects"] + res["errors"]["WSAETIMEDOUT"] == 30


async def test_refused_target_is_counted_by_name():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    plan = Plan(concurrency=5, total=10, warmup=0, timeout=5.0, max_time=30.0)
    for route in ("baseline", "asyncselect", "eventselect", "select"):
        driver = make_driver(route, plan, [(2, "127.0.0.1", port)], None)
        await driver.run()
        res = driver.result()
        assert res["errors"] == {"WSAECONNREFUSED": 10}, (route, res["errors"])
        assert res["examples"]["WSAECONNREFUSED"]


def test_policy_names():
    assert set(POLICIES) == {"accept-close", "accept-hold", "reset", "delayed", "never"}
    with pytest.raises(ValueError):
        SinkGroup("sometimes")
