"""A node's disk as an operator meets it: full (a small tmpfs as DATA_DIR,
filled and freed) and logs that grow.  Real RabbitMQ, Redis and node
processes, fake session processes; driven as a client publishes and an
operator runs ``wwnode status``."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import create_ready, heartbeat_field, new_phone, wait_for, wwnode_status

pytestmark = pytest.mark.services


def status_line(text: str, node: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.startswith(node + " "))


def test_a_full_disk_does_not_stop_the_node_and_clears_by_itself(small_disk, fake_nodes, fake, rabbit, redis_client,
                                                                 redis_url):
    disk = small_disk("node-a", "16m")  # the node's DATA_DIR
    node = fake_nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k1", phone)
    wait_for(lambda: heartbeat_field(redis_client, "node-a", "disk_ok") == "1", what="a heartbeat")
    assert status_line(wwnode_status(redis_url), "node-a")[-1] == "ok"

    disk.fill()
    # An inbound message while full: reported all the same, without its copy on disk.
    fake.deliver(phone, friend, "while the disk is full")
    assert rabbit.expect("message_instance", key="k1")["message"]["body"] == "while the disk is full"
    wait_for(lambda: heartbeat_field(redis_client, "node-a", "disk_ok") == "0", what="the heartbeat to say so")
    assert int(heartbeat_field(redis_client, "node-a", "events_not_journaled")) >= 1
    rabbit.publish("create_instance", {"key": "k2"})
    assert rabbit.expect("command_failed", key="k2")["reason"] == "storage_error"
    status = wwnode_status(redis_url)
    assert status_line(status, "node-a")[-1] == "ERROR"
    assert "node-a: DATA_DIR takes no writes" in status
    # The running session goes on: a second message, and the node lives.
    fake.deliver(phone, friend, "still full")
    assert rabbit.expect("message_instance", key="k1")["message"]["body"] == "still full"
    assert node.alive()

    disk.free()
    wait_for(lambda: heartbeat_field(redis_client, "node-a", "disk_ok") == "1", what="the condition to clear")
    status = wwnode_status(redis_url)
    assert status_line(status, "node-a")[-1] == "ok" and "takes no writes" not in status
    rabbit.publish("create_instance", {"key": "k2"})
    rabbit.expect("qr_instance", key="k2")
    assert node.alive() and int(heartbeat_field(redis_client, "node-a", "storage_errors")) >= 1


def text_if_there(path: Path) -> str:
    """The file's text, or nothing while it is not there: a rotation
    renames the backups one after the other, so a file seen a moment ago
    may be gone (moved to the next name) when it is opened."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_logs_rotate_by_size_and_keep_their_backups_bounded(fake_nodes, fake, rabbit):
    node = fake_nodes(log_max_bytes=4096, log_backups=2)
    phone = new_phone()
    create_ready(rabbit, fake, "k1", phone)
    logs = node.data_dir / "logs"
    session_log = logs / "sessions" / "k1.log"
    first_backup = logs / "sessions" / "k1.log.1"
    for round_ in range(4):
        # Written to the stderr the node opened for the session, as Chrome writes.
        fake.noise("k1", f"round {round_} " + "x" * 90, repeat=100)  # one write: one rotation takes it whole
        # Done when the copy is in the backup and the log is truncated: the
        # node renames the copy in before it truncates, and a round written
        # in between would be truncated away (the in-place rotation's known
        # loss, logfiles.py).
        wait_for(lambda: f"round {round_}" in text_if_there(first_backup)
                 and f"round {round_}" not in text_if_there(session_log),
                 what=f"the session log to be rotated ({round_})")
    assert sorted(p.name for p in (logs / "sessions").iterdir()) == ["k1.log", "k1.log.1", "k1.log.2"]
    assert "round 2" in (logs / "sessions" / "k1.log.2").read_text()
    fake.noise("k1", "after the rotations")
    wait_for(lambda: "after the rotations" in session_log.read_text(), what="the session to write on")
    # The node's own log: rotated by its handler, its backups bounded too.
    # Each bad command is a line or two of it.
    for i in range(100):
        rabbit.publish("create_instance", {"key": f"bad key {i}"})
    for _ in range(100):
        rabbit.expect("command_failed", reason="bad_key")
    names = sorted(p.name for p in logs.iterdir() if p.name.startswith("node.log"))
    assert names == ["node.log", "node.log.1", "node.log.2"]
    assert all((logs / n).stat().st_size <= 4096 for n in names)
    assert all(oct((logs / n).stat().st_mode & 0o777) == "0o600" for n in names)
