"""The node's image (Dockerfile) as a user runs it: a container of it on
the host's network, against the machine's RabbitMQ and Redis (they listen
on 127.0.0.1 only) and a stand-in started here, driven through the public
contract only.  Built on a base made locally (tests/containers.py);
skipped, with the reason, where Podman cannot run."""

from __future__ import annotations

import psutil
import pytest

from containers import podman
from support import Client, all_gone, create_ready, free_port, idle_cgroup, new_phone, wait_for
from wwnode.fakewa.client import Control

# A cold machine builds the images first (a few minutes: see docs/operating.md, "Their tests").
pytestmark = [pytest.mark.container, pytest.mark.browser, pytest.mark.timeout(900)]

UID = 10001  # the image's user (Dockerfile)


def chrome_of(key: str) -> list[psutil.Process]:
    """The Chromium processes of a container's session, seen from the host
    (a container's processes are the host's too), by the profile folder
    on their command line."""
    mark = f"--user-data-dir=/data/sessions/{key}/profile"
    return [p for p in psutil.process_iter(["cmdline"]) if mark in (p.info["cmdline"] or [])]


def node_container(podman_run, image, name, volume, env, idle):
    # The host's idle load figures (support.idle_cgroup), as the other node
    # tests give theirs: on a machine other jobs keep busy, admission would
    # otherwise refuse the create this test is about.
    return podman_run.run(
        name, "--network", "host", "-v", f"{volume}:/data", "-v", f"{idle}:/idle:ro",
        image["name"], env={**env, "LOAD_CGROUP_ROOT": "/idle"})


def test_a_container_runs_a_session_and_keeps_it_across_a_stop(node_image, podman_run, tmp_path, wa, rabbit_url,
                                                               redis_url, rabbit: Client, redis_client):
    control = Control(wa.url)
    metrics_port = free_port()
    env = {"NODE_ID": "ctr-node", "RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url, "WA_URL": wa.url,
           "METRICS_ADDR": f"127.0.0.1:{metrics_port}", "LOG_LEVEL": "INFO"}
    idle = idle_cgroup(tmp_path / "idle-cgroup")
    volume = podman_run.volume("data")
    first = node_container(podman_run, node_image, "node-1", volume, env, idle)

    phone, friend = new_phone(), new_phone()
    ready = create_ready(rabbit, control, "ctr-1", phone)
    assert ready["me"] == f"{phone}@c.us" and ready["node"] == "ctr-node"

    rabbit.publish("send_message", {"key": "ctr-1", "chat_id": f"{friend}@c.us", "message": "from a container",
                                    "id": "ctr-send-1"})
    sent = rabbit.expect("message_sent_instance", key="ctr-1")
    assert sent["command_id"] == "ctr-send-1"
    assert [m["body"] for m in control.sent_by(phone)] == ["from a container"]
    control.deliver(phone, friend, "to a container")
    assert rabbit.expect("message_instance", key="ctr-1")["message"]["body"] == "to a container"

    # The image's HEALTHCHECK command, run as the engine would run it.
    assert podman("healthcheck", "run", first, check=False).returncode == 0

    # Chromium runs as the image's user, with its sandbox on.
    chrome = chrome_of("ctr-1")
    assert chrome, "the session's Chromium is not running"
    for p in chrome:
        assert p.uids().real == UID
        assert "--no-sandbox" not in p.cmdline()

    profile = podman_run.volume_path(volume) / "sessions" / "ctr-1" / "profile"
    assert (profile / "SingletonLock").is_symlink()  # Chromium's, while it has the profile open

    # SIGTERM (podman stop): the node stops its sessions and exits by
    # itself well inside the grace period, 0 as on a host; a kill at the
    # end of the period would be 137.
    podman("stop", "-t", "60", first, timeout=90)
    state = podman_run.state(first)
    assert state["ExitCode"] == 0, podman_run.logs(first)[-3000:]
    assert all_gone(chrome)
    # Chromium closed its profile itself (a killed one leaves its lock).
    assert profile.is_dir() and not (profile / "SingletonLock").is_symlink()

    # A new container on the same volume restores the session: ready again
    # with no QR code shown.
    qr_before = len(rabbit.find("qr_instance", key="ctr-1"))
    node_container(podman_run, node_image, "node-2", volume, env, idle)
    assert rabbit.expect("ready_instance", key="ctr-1", timeout=90)["me"] == f"{phone}@c.us"
    assert len(rabbit.find("qr_instance", key="ctr-1")) == qr_before

    rabbit.publish("destroy_instance", {"key": "ctr-1"})
    rabbit.expect("state_instance", key="ctr-1", state="stopped")
    wait_for(lambda: not chrome_of("ctr-1"), timeout=20, what="the session's Chromium to exit")
    assert redis_client.get("instances:ctr-1:qr_code") is None
