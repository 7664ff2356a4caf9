"""Portable logins across nodes: a session's login saved to the blob store
(a folder both nodes share, or S3), restored by another node without a QR
code, deleted with a logout; failover. Real RabbitMQ, Redis and nodes, each
with a DATA_DIR of its own; fake session processes (their login lives in
the profile, as the real page's: the linked marker)."""

from __future__ import annotations

import shutil

import pytest

from support import counter, create_ready, new_phone, owner, takes_creates, wait_for
from wwnode.blobstore import open_blob_store
from wwnode.snapshots import Snapshots

pytestmark = pytest.mark.services

FAST = {"lease_ttl": 3, "heartbeat_interval": 0.5, "node_queue_ttl": 4, "amqp_heartbeat": 2}


@pytest.fixture
def blob_settings(s3_env):
    """Node settings naming an S3 blob store every node shares (the browser
    test, test_portable_e2e.py, shares a folder)."""
    url, env = s3_env
    return {"blob_store_url": url, **{k.lower(): v for k, v in env.items()}}


def snapshots_of(settings, tmp_path) -> Snapshots:
    return Snapshots(open_blob_store(settings["blob_store_url"], tmp_path, settings.get("blob_store_endpoint")))


def test_a_lost_node_s_session_starts_elsewhere_without_a_qr(fake_nodes, fake, rabbit, redis_client, blob_settings,
                                                             tmp_path):
    store = snapshots_of(blob_settings, tmp_path)
    a = fake_nodes("node-a", **FAST, **blob_settings)
    phone = new_phone()
    create_ready(rabbit, fake, "k1", phone)
    wait_for(lambda: store.newest("k1") is not None, what="the login saved")
    b = fake_nodes("node-b", **FAST, **blob_settings)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 2, timeout=30, what="two create consumers")
    a.kill()
    shutil.rmtree(a.data_dir)  # the machine is gone, its disk with it
    seen_qr = len(rabbit.find("qr_instance", key="k1"))
    rabbit.expect("state_instance", key="k1", state="lost", timeout=30)
    rabbit.publish("create_instance", {"key": "k1"})
    auth = rabbit.expect("authenticated_instance", key="k1", node="node-b", timeout=30)
    ready = rabbit.expect("ready_instance", key="k1", node="node-b")
    assert ready["me"] == f"{phone}@c.us" and auth["node"] == "node-b"
    assert len(rabbit.find("qr_instance", key="k1")) == seen_qr  # no QR code since the move
    assert redis_client.get("instances:k1:qr_code") is None
    assert owner(redis_client, "k1") == "node-b"
    # Counted in node-b's heartbeat, which may come after ready does.
    wait_for(lambda: counter(redis_client, "node-b", "snapshots_restored") == 1, what="the restore counted")
    # Its new owner saves it under its own, greater fence.
    wait_for(lambda: counter(redis_client, "node-b", "snapshots_saved") >= 1, what="node-b to save the login")
    fence = int(redis_client.get("instances:k1:owner").rsplit(":", 1)[1])
    assert store.newest("k1").fence == fence
    # Sends reach it there.
    rabbit.publish("send_message", {"key": "k1", "chat_id": "5511999990000@c.us", "message": "hi", "id": "s1"})
    assert rabbit.expect("message_sent_instance", command_id="s1")["node"] == "node-b"
    # A logout unlinks it, and its saved logins go with it.
    rabbit.publish("destroy_instance", {"key": "k1", "logout": True})
    rabbit.expect("state_instance", key="k1", state="stopped")
    wait_for(lambda: store.names("k1") == [], what="the saved logins deleted")
    assert b.alive()


def test_failover_auto_starts_a_lost_node_s_sessions_elsewhere(fake_nodes, fake, rabbit, redis_client, tmp_path):
    """And sends published while the keys were lost wait for them: the second
    key's create goes out RESTORE_STAGGER seconds after the first's."""
    settings = {"blob_store_url": (tmp_path / "shared-blobs").as_uri(), "failover": "auto", "restore_stagger": 4,
                **FAST}
    store = snapshots_of(settings, tmp_path)
    a = fake_nodes("node-a", **settings)
    phones = {key: new_phone() for key in ("f1", "f2")}
    for key, phone in phones.items():
        create_ready(rabbit, fake, key, phone)
        wait_for(lambda: store.newest(key) is not None, what="the login saved")
    fake_nodes("node-b", **settings)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 2, timeout=30, what="two create consumers")
    wait_for(lambda: takes_creates(redis_client, "node-b"), timeout=30, what="node-b's heartbeat to take creates")
    seen_qr = len(rabbit.find("qr_instance"))
    a.kill()
    for key in phones:
        rabbit.expect("state_instance", key=key, state="lost", timeout=30)
    for key in phones:  # one of them waits a stagger for its create
        rabbit.publish("send_message", {"key": key, "chat_id": "5511999990000@c.us", "message": "hi", "id": key})
    for key in phones:
        assert rabbit.expect("message_sent_instance", command_id=key, timeout=30)["node"] == "node-b"
    assert rabbit.find("command_failed") == []
    for key, phone in phones.items():
        lost = rabbit.find("state_instance", key=key, state="lost")[0]
        assert lost["owner"] == "node-a"
        ready = rabbit.expect("ready_instance", key=key, node="node-b", timeout=30)
        assert ready["me"] == f"{phone}@c.us"
        starting = rabbit.find("state_instance", key=key, state="starting", node="node-b")
        assert starting and starting[-1]["previous"] is None
    assert len(rabbit.find("qr_instance")) == seen_qr
    assert {owner(redis_client, key) for key in phones} == {"node-b"}


def test_drain_moves_every_session_without_a_qr_and_sends_wait(fake_nodes, fake, rabbit, redis_client, tmp_path,
                                                               rabbit_url, redis_url):
    import os
    import subprocess
    import sys

    # The nodes' own lease (6 s): a busy machine may hold a node's loop
    # back for seconds, and a lost lease is another test's business.
    settings = {"blob_store_url": (tmp_path / "shared-blobs").as_uri()}
    fake_nodes("node-a", **settings)
    phones = {key: new_phone() for key in ("d1", "d2", "d3")}
    for key, phone in phones.items():
        create_ready(rabbit, fake, key, phone)
    fake_nodes("node-b", **settings)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 2, timeout=30, what="two create consumers")
    wait_for(lambda: takes_creates(redis_client, "node-b"), timeout=30, what="node-b's heartbeat to take creates")
    seen_qr = len(rabbit.find("qr_instance"))
    env = {**os.environ, "RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url}
    drain = subprocess.Popen([sys.executable, "-m", "wwnode.tools.cli", "drain", "node-a", "--timeout", "120"], env=env,
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Sends keep coming while the sessions move.
    friend = new_phone()
    sent_ids = []
    n = 0
    while drain.poll() is None:
        for key in phones:
            n += 1
            sent_ids.append((key, f"{key}-{n}"))
            rabbit.publish("send_message", {"key": key, "chat_id": f"{friend}@c.us", "message": f"m{n}",
                                            "id": f"{key}-{n}"})
        rabbit.pump(0.3)
    out, err = drain.communicate()
    assert drain.returncode == 0, (out, err)
    assert "node-a is drained" in out and "3 sessions left" in out and "ready on node-b" in out
    for key in phones:
        assert owner(redis_client, key) == "node-b"
        rabbit.expect("ready_instance", key=key, node="node-b")
        rabbit.expect("state_instance", key=key, state="moving", node="node-a")
    for _key, cid in sent_ids:
        rabbit.expect("message_sent_instance", command_id=cid, timeout=30)
    assert not rabbit.find("command_failed")
    for key, phone in phones.items():
        bodies = [m["body"] for m in fake.sent_by(phone)]
        assert sorted(bodies) == sorted({f"m{cid.split('-')[1]}" for k, cid in sent_ids if k == key})  # once each
    assert len(rabbit.find("qr_instance")) == seen_qr
    assert len(sent_ids) >= 6  # sends were published during the moves
    assert counter(redis_client, "node-a", "sessions_moved") == 3
    beat = redis_client.hgetall("nodes:node-a")
    assert beat["sessions"] == "0" and beat["accepting"] == "0" and beat["draining"] == "1"
    done = subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "undrain", "node-a"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: redis_client.hget("nodes:node-a", "accepting") == "1", what="node-a to take creates again")


def _wwnode(*args, rabbit_url, redis_url, cwd):
    import os
    import subprocess
    import sys

    env = {**os.environ, "RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "-m", "wwnode.tools.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_a_drain_that_would_lose_logins_or_strand_sessions_is_refused(fake_nodes, fake, rabbit, redis_client,
                                                                       tmp_path, rabbit_url, redis_url):
    """Each node with its own folder of logins (the default store): a drain
    would bring every session back elsewhere with a QR code.  One shared
    store but no other node: the sessions would stop with nowhere to go.
    Both refused, saying why, and nothing changes; --force drains all the
    same."""
    urls = {"rabbit_url": rabbit_url, "redis_url": redis_url, "cwd": tmp_path}
    fake_nodes("node-a")
    create_ready(rabbit, fake, "r1", new_phone())
    fake_nodes("node-b")
    wait_for(lambda: redis_client.hget("nodes:node-b", "accepting") == "1", what="node-b's heartbeat")
    assert redis_client.hget("nodes:node-a", "blob_store") == ""
    done = _wwnode("drain", "node-a", **urls)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "its own folder" in done.stderr and "--force" in done.stderr
    assert not redis_client.exists("nodes:node-a:drain")
    assert redis_client.hget("instances:r1:state", "state") == "ready" and owner(redis_client, "r1") == "node-a"



def test_draining_the_only_node_that_shares_its_store_is_refused_unless_forced(
        fake_nodes, fake, rabbit, redis_client, tmp_path, rabbit_url, redis_url):
    urls = {"rabbit_url": rabbit_url, "redis_url": redis_url, "cwd": tmp_path}
    shared = {"blob_store_url": (tmp_path / "shared").as_uri()}
    fake_nodes("node-a", **shared)
    create_ready(rabbit, fake, "s1", new_phone())
    fake_nodes("node-b")  # takes sessions, but reads another store
    wait_for(lambda: redis_client.hget("nodes:node-b", "accepting") == "1", what="node-b's heartbeat")
    done = _wwnode("drain", "node-a", **urls)
    assert done.returncode == 1 and "no other node that shares its blob store" in done.stderr, done.stderr
    assert not redis_client.exists("nodes:node-a:drain") and owner(redis_client, "s1") == "node-a"
    forced = _wwnode("drain", "node-a", "--force", "--timeout", "1", **urls)
    assert forced.returncode == 4, (forced.stdout, forced.stderr)
    assert redis_client.exists("nodes:node-a:drain")
    assert _wwnode("undrain", "node-a", **urls).returncode == 0


def test_undrain_of_a_node_that_is_not_there_says_so(rabbit, redis_client, tmp_path, rabbit_url, redis_url):
    done = _wwnode("undrain", "no-such-node", rabbit_url=rabbit_url, redis_url=redis_url, cwd=tmp_path)
    assert done.returncode == 1 and "no node no-such-node" in done.stderr, (done.stdout, done.stderr)


def test_a_snapshot_copied_from_another_key_never_runs_and_is_set_aside(fake_nodes, fake, rabbit, redis_client,
                                                                         tmp_path):
    """Someone who can write the store copies V's saved login under K's
    prefix: K's create finds it, refuses it (sealed for V), sets it aside,
    counts it, and K shows a QR code instead of running as V's number."""
    settings = {"blob_store_url": (tmp_path / "shared").as_uri(), "snapshot_secret": "s3cret-fleet-key"}
    fake_nodes("node-a", **FAST, **settings)
    store = Snapshots(open_blob_store(settings["blob_store_url"], tmp_path), secret=b"s3cret-fleet-key")
    create_ready(rabbit, fake, "victim", new_phone())
    wait_for(lambda: store.newest("victim") is not None, what="the victim's login saved")
    stolen = store.newest("victim")
    store.blobs.put_bytes(stolen.blob_id("k"), store.blobs.get_bytes(stolen.blob_id("victim")))
    rabbit.publish("create_instance", {"key": "k"})
    rabbit.expect("qr_instance", key="k")
    assert not rabbit.find("ready_instance", key="k")
    wait_for(lambda: counter(redis_client, "node-a", "snapshots_rejected") == 1, what="the rejection counted")
    assert store.names("k") == []
    assert store.blobs.exists(f"snapshots-rejected/k/{stolen.fence:020d}-{stolen.ms:013d}.tgz")
