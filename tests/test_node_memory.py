"""SESSION_MEMORY_LIMIT with a real browser: the node measures the real
process tree (psutil, PSS) and restarts a session past the limit.  The
rule itself is tested without a browser in test_memory.py."""

from __future__ import annotations

import pytest

from support import counter, create_ready, new_phone, wait_for

pytestmark = pytest.mark.browser


def test_a_browser_past_the_memory_limit_is_restarted_from_its_profile(nodes, rabbit, redis_client, control):
    # 1 MB: any real browser is past it.  A session showing a QR code is
    # restarted too: 3 s leave the scan time to come first.
    nodes(session_memory_limit=1, memory_check_interval=3)
    phone = new_phone()
    create_ready(rabbit, control, "big", phone)
    restarting = rabbit.expect("state_instance", key="big", state="restarting", timeout=30)
    assert restarting["reason"] == "memory_limit" and restarting["previous"] == "ready"
    rabbit.expect("ready_instance", key="big", timeout=60)  # back from its profile: no scan
    assert len(rabbit.find("qr_instance", key="big")) == 1  # only the first start showed one
    assert rabbit.find("disconnected_instance", key="big") == []
    wait_for(lambda: counter(redis_client, "node-a", "memory_restarts") >= 1, what="the counter")
    assert counter(redis_client, "node-a", "crashes") == 0
    rabbit.publish("destroy_instance", {"key": "big"})
    rabbit.expect("state_instance", key="big", state="stopped", timeout=60)
