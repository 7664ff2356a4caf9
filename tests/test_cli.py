"""The command line as a user runs it (``python -m wwnode.tools.cli ...`` in a
process of its own) against the real RabbitMQ and Redis, with nodes whose
sessions are fake session processes: create with its QR code, send,
destroy, qr, events, status and capacity, bad input, and servers that
cannot be reached."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from support import (CliProcess, SilentServer, closed_port, create_ready, decode_qr_matrix, decode_qr_png, new_phone, run_cli,
                     terminal_qr_matrix, wait_for)

pytestmark = pytest.mark.services


@pytest.fixture
def env(rabbit_url, redis_url) -> dict:
    return {"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url}


def test_create_wait_shows_the_qr_then_returns_once_ready(fake_nodes, fake, rabbit, redis_client, env, tmp_path):
    fake_nodes()
    png = tmp_path / "qr.png"
    cli = CliProcess("create", "c-1", "--wait", "--png", str(png), "--timeout", "30", env=env)
    out = cli.wait_output("QR code 1 for c-1")
    qr = redis_client.get("instances:c-1:qr_code")
    assert decode_qr_matrix(terminal_qr_matrix(out)) == [qr]
    assert decode_qr_png(png) == [qr]
    assert cli.proc.poll() is None  # still waiting for the scan
    phone = new_phone()
    fake.scan(qr, phone)
    assert cli.wait() == 0
    assert f"c-1 is ready as {phone}@c.us" in cli.text()
    assert "Traceback" not in cli.text("stderr")


def test_create_without_wait_returns_once_scanned_and_says_when_it_runs_already(fake_nodes, fake, rabbit, env):
    fake_nodes()
    cli = CliProcess("create", "c-2", env=env)
    cli.wait_output("QR code 1 for c-2")
    fake.scan(rabbit.expect("qr_instance", key="c-2")["qr"], new_phone())
    assert cli.wait() == 0
    assert "c-2 is linked" in cli.text()
    rabbit.expect("state_instance", key="c-2", state="ready")  # published once Redis has it
    again = run_cli("create", "c-2", "--wait", env=env)
    assert again.returncode == 0 and "runs already and is ready" in again.stdout


def test_create_wait_says_when_the_session_ends_before_it_is_ready(fake_nodes, fake, rabbit, env):
    fake_nodes()
    cli = CliProcess("create", "c-3", "--wait", env=env)
    cli.wait_output("QR code 1 for c-3")
    fake.act("c-3", {"do": "conflict"})
    assert cli.wait() == 6
    assert "c-3 disconnected (CONFLICT)" in cli.text("stderr")


def test_create_wait_gives_up_after_its_timeout(fake_nodes, rabbit, env):
    fake_nodes()
    done = run_cli("create", "c-4", "--wait", "--timeout", "1", env=env)
    assert done.returncode == 4 and "no outcome within 1 s" in done.stderr
    # A timeout ends the command, not the session: it says so, and how to see or stop it.
    rabbit.expect("qr_instance", key="c-4")
    again = run_cli("create", "c-4", "--wait", "--timeout", "1", env=env)
    assert again.returncode == 4
    assert ("the session of c-4 still runs (qr): `wwnode qr c-4` shows its code now, `wwnode events --key c-4` "
            "follows it, `wwnode destroy c-4` stops it") in again.stderr


def test_create_timeout_without_a_node_says_the_create_waits_in_its_queue(rabbit, env):
    done = run_cli("create", "c-5", "--timeout", "1", env=env)
    assert done.returncode == 4
    assert "the create of c-5 waits in its queue for a node with room" in done.stderr
    assert rabbit.depth("create_instance")[0] == 1


def test_send_waits_for_its_own_outcome(fake_nodes, fake, rabbit, env):
    fake_nodes()
    phone = new_phone()
    create_ready(rabbit, fake, "s-1", phone)
    sent = run_cli("send", "s-1", "5511999990001@c.us", "hello from the command line", "--id", "cli-1", env=env)
    assert sent.returncode == 0, sent.stderr
    assert "sent: message_id=" in sent.stdout and "id=cli-1" in sent.stdout
    assert [m["body"] for m in fake.sent_by(phone)] == ["hello from the command line"]

    again = run_cli("send", "s-1", "5511999990001@c.us", "hello from the command line", "--id", "cli-1", env=env)
    assert again.returncode == 0 and "already sent earlier" in again.stdout
    assert len(fake.sent_by(phone)) == 1

    fake.sends(phone, "fail")
    failed = run_cli("send", "s-1", "5511999990001@c.us", "refused", env=env)
    assert failed.returncode == 1 and "not sent: rejected" in failed.stderr

    nobody = run_cli("send", "nobody", "5511999990001@c.us", "hi", env=env)
    assert nobody.returncode == 1 and "unknown_instance" in nobody.stderr


def test_command_publishes_any_answered_command_and_prints_its_answer(fake_nodes, fake, rabbit, env):
    fake_nodes()
    create_ready(rabbit, fake, "cm-1", new_phone())
    checked = run_cli("command", "check_number", '{"key": "cm-1", "phone": "5511999990007"}', env=env)
    assert checked.returncode == 0, checked.stderr
    answer = orjson.loads(checked.stdout)
    assert (answer["event"], answer["registered"], answer["wid"]) == ("number_checked_instance", True,
                                                                     "5511999990007@c.us")
    typing = run_cli("command", "chat_action", '{"key": "cm-1", "chat_id": "5511999990007@c.us", "action": "typing", '
                                               '"id": "cm-typing"}', env=env)
    assert typing.returncode == 0 and orjson.loads(typing.stdout)["command_id"] == "cm-typing"
    nobody = run_cli("command", "set_presence", '{"key": "nobody", "state": "available"}', env=env)
    assert nobody.returncode == 1 and "unknown_instance" in nobody.stderr
    for queue, body, words in [("query", '{"key": "cm-1", "what": "chats", "limit": 0}', "(bad_limit)"),
                               ("query", "[1]", "(not_object)"),
                               ("create_instance", '{"key": "cm-2"}', "(unknown_command)")]:
        refused = run_cli("command", queue, body, env=env)
        assert refused.returncode == 2 and words in refused.stderr and refused.stdout == ""


def test_destroy_stops_the_session_and_says_when_there_is_none(fake_nodes, fake, rabbit, redis_client, env):
    node = fake_nodes()
    create_ready(rabbit, fake, "d-1", new_phone())
    done = run_cli("destroy", "d-1", "--logout", env=env)
    assert done.returncode == 0 and "d-1 stopped and unlinked" in done.stdout
    assert list(redis_client.scan_iter(match="instances:d-1:*")) == []
    wait_for(lambda: node.session_pids() == [], what="the session process to end")
    again = run_cli("destroy", "d-1", env=env)
    assert again.returncode == 1 and "unknown_instance" in again.stderr


def test_qr_shows_the_current_code_or_says_why_there_is_none(fake_nodes, rabbit, redis_client, env, tmp_path):
    fake_nodes()
    rabbit.publish("create_instance", {"key": "q-1"})
    qr = rabbit.expect("qr_instance", key="q-1")["qr"]
    png = tmp_path / "q.png"
    shown = run_cli("qr", "q-1", "--png", str(png), env=env)
    assert shown.returncode == 0
    assert decode_qr_matrix(terminal_qr_matrix(shown.stdout)) == [qr] == decode_qr_png(png)
    none = run_cli("qr", "nobody", env=env)
    assert none.returncode == 1 and "no QR code for nobody now (no session of it is known)" in none.stderr


def test_events_follows_one_key_readably_or_as_json(fake_nodes, fake, rabbit, env):
    fake_nodes()
    readable = CliProcess("events", "--key", "e-1", "ready_instance", "state_instance", env=env)
    as_json = CliProcess("events", "--key", "e-1", "--json", "--count", "2", "ready_instance", "qr_instance",
                         env=env)
    everything = CliProcess("events", "--json", env=env)
    for cli in (readable, as_json, everything):
        cli.wait_output("following events", name="stderr")
    phone = new_phone()
    create_ready(rabbit, fake, "e-0", new_phone())  # another key: not shown to the --key followers
    create_ready(rabbit, fake, "e-1", phone)

    assert as_json.wait() == 0
    got = [orjson.loads(line) for line in as_json.text().splitlines()]
    assert [(e["event"], e["key"]) for e in got] == [("qr_instance", "e-1"), ("ready_instance", "e-1")]
    assert got[1]["me"] == f"{phone}@c.us"

    readable.wait_output(f"me={phone}@c.us")
    readable.interrupt()
    assert readable.wait() == 0
    lines = readable.text().splitlines()
    assert all("key=e-1" in line for line in lines)
    assert any("state_instance" in line and "state=ready" in line for line in lines)
    assert not any("qr_instance" in line for line in lines)
    assert "Traceback" not in readable.text("stderr")

    everything.wait_output('"key":"e-0"')
    everything.interrupt()
    assert everything.wait() == 0


def test_bad_input_is_refused_before_anything_is_published(rabbit, env):
    too_long = "x" * 65537
    for args, says in [
        (("create", "../etc"), "bad_key"),
        (("create", "k" * 65), "bad_key"),
        (("send", "k-1", "12345", "hi"), "bad_chat_id"),
        (("send", "k-1", "5511999990001@c.us", ""), "empty_message"),
        (("send", "k-1", "5511999990001@c.us", too_long), "too_long"),
        (("send", "k-1", "5511999990001@c.us", "hi", "--id", "i" * 201), "wrong_type"),
        (("destroy", "a b"), "bad_key"),
        (("qr", "a/b"), "bad_key"),
        (("events", "--key", "a/b"), "bad_key"),
        (("events", "no spaces"), "not an event name"),
    ]:
        done = run_cli(*args, env=env)
        assert done.returncode == 2, (args, done.stderr)
        assert says in done.stderr and "Traceback" not in done.stderr
    for queue in ("create_instance", "send_message", "destroy_instance"):
        assert rabbit.depth(queue)[0] == 0


def test_status_says_which_server_cannot_be_reached(fake_nodes, rabbit, env):
    fake_nodes()
    up = wait_for(lambda: (done := run_cli("status", env=env)).returncode == 0 and "node-a" in done.stdout and done,
                  what="status to show the node")
    assert "creates waiting: 0" in up.stdout
    closed = closed_port()
    try:
        port = closed.getsockname()[1]
        no_redis = run_cli("status", env={**env, "REDIS_URL": f"redis://:secret@127.0.0.1:{port}/0"})
        assert no_redis.returncode == 3
        assert f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0" in no_redis.stderr
        assert "secret" not in no_redis.stderr + no_redis.stdout and "Traceback" not in no_redis.stderr
        assert "creates waiting: 0" in no_redis.stdout  # what RabbitMQ said is still shown

        no_rabbit = run_cli("status", "--json", env={**env, "RABBIT_MQ_URL": f"amqp://guest:guest@127.0.0.1:{port}/x"})
        assert no_rabbit.returncode == 3
        assert f"cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:{port}/x" in no_rabbit.stderr
        assert "Traceback" not in no_rabbit.stderr
        assert "node-a" in orjson.loads(no_rabbit.stdout)["nodes"]
    finally:
        closed.close()


def test_a_broker_that_accepts_and_never_speaks_is_said_in_one_line_with_exit_3(env):
    """It used to take 15 s, then print pika's AMQPConnectorStackTimeout
    as a traceback, with exit 1."""
    silent = SilentServer()
    try:
        url = f"amqp://guest:s3cret-pw@127.0.0.1:{silent.port}/"

        def timed(args: tuple[str, ...]):
            started = time.monotonic()
            return args, run_cli(*args, env={**env, "RABBIT_MQ_URL": url}), time.monotonic() - started

        # Both at once: each waits out the 5 s.
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(timed, [("status",), ("events", "--count", "1")]))
        for args, done, took in runs:
            assert done.returncode == 3, (args, done.stderr)
            assert f"cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:{silent.port}/" in done.stderr
            assert "no AMQP answer within 5 s" in done.stderr
            assert "Traceback" not in done.stderr and "s3cret-pw" not in done.stderr + done.stdout
            assert took < 12
    finally:
        silent.close()


def test_status_watch_refreshes_until_interrupted(fake_nodes, env):
    fake_nodes()
    cli = CliProcess("status", "--watch", "0.2", env=env)
    wait_for(lambda: cli.text().count("creates waiting") >= 2, what="two refreshes")
    cli.interrupt()
    assert cli.wait() == 0 and "Traceback" not in cli.text("stderr")


def test_capacity_tells_when_creates_wait_for_room(fake_nodes, rabbit, env):
    for i in range(3):
        rabbit.publish("create_instance", {"key": f"cap-{i}"})
    wait_for(lambda: rabbit.depth("create_instance")[0] == 3, what="three creates in the queue")
    waiting = orjson.loads(run_cli("capacity", "--json", env=env).stdout)
    assert (waiting["creates_waiting"], waiting["nodes_accepting"], waiting["scale_up"]) == (3, 0, True)

    fake_nodes(max_sessions=5)  # the heartbeat says so: room for 2 more
    for i in range(3):
        rabbit.expect("qr_instance", key=f"cap-{i}")

    def capacity() -> dict | None:  # once the heartbeat counts the three
        m = orjson.loads(run_cli("capacity", "--json", env=env).stdout)
        return m if m["per_node"].get("node-a", {}).get("sessions") == 3 else None

    taken = wait_for(capacity, what="the heartbeat to count three sessions")
    assert (taken["creates_waiting"], taken["nodes_accepting"], taken["scale_up"]) == (0, 1, False)
    assert taken["create_consumers"] == 1
    assert (taken["per_node"]["node-a"]["fits"], taken["per_node"]["node-a"]["basis"]) == (2, "max_sessions")
    assert (taken["sessions_fit"], taken["fits_known"]) == (2, True)
    text = run_cli("capacity", env=env).stdout
    assert "creates waiting      0" in text and "nodes accepting      1 of 1" in text


def test_ctrl_c_on_create_says_what_it_leaves_behind(rabbit, env):
    """No node runs: the create is published and waits; Ctrl-C ends the
    command, which says the create goes on and how to end it."""
    cli = CliProcess("create", "c-int", "--wait", env=env)
    cli.wait_output("create_instance published for c-int")
    cli.interrupt()
    assert cli.wait() == 130
    said = cli.text("stderr")
    assert "the create of c-int goes on" in said and "wwnode destroy c-int" in said and "Traceback" not in said
    assert rabbit.depth("create_instance")[0] == 1  # still there for a node to take


def test_a_data_dir_that_cannot_be_made_is_said_in_one_line(tmp_path, env):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = run_cli("run", env={**env, "DATA_DIR": str(blocker / "data"), "NODE_ID": "cannot-start"})
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "DATA_DIR" in done.stderr and "Traceback" not in done.stderr


def test_a_refused_client_is_told_in_plain_words_where_the_passwords_are(rabbit_url, tmp_path):
    from support import RedisServer

    server = RedisServer(tmp_path, password="rd-secret-1")
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        no_password = run_cli("status", env={"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": url})
        assert no_password.returncode == 3
        assert f"Redis at {url} asks for a password, and the URL gives none" in no_password.stderr
        assert "HELLO" not in no_password.stderr and "credentials" not in no_password.stderr
        # A run command's folder beside: the refusal says where its servers' URLs are.
        run = tmp_path / "run"
        run.mkdir()
        (run / "credentials").write_text("REDIS_URL=redis://:x@127.0.0.1:1/0\n")
        wrong = run_cli("status", env={"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": f"redis://:nope@127.0.0.1:{server.port}/0",
                                       "WWNODE_RUN": str(run)})
        assert wrong.returncode == 3
        assert "refused the user name or password" in wrong.stderr and "nope" not in wrong.stderr
        assert f"set -a; . {run}/credentials; set +a" in wrong.stderr
        broker = run_cli("events", "--count", "1", env={"RABBIT_MQ_URL": rabbit_url.replace("guest:guest", "guest:nope"),
                                                        "REDIS_URL": url, "WWNODE_RUN": str(run)})
        assert broker.returncode == 3
        assert "RabbitMQ at" in broker.stderr and f"{run}/credentials" in broker.stderr
    finally:
        server.stop()


def test_events_follows_again_after_the_broker_link_is_lost(rabbit, redis_url):
    from support import TEST_VHOST, TcpProxy, amqp_url_via
    from wwnode.amqp.topology import EVENTS_EXCHANGE

    proxy = TcpProxy(5672)
    cli = CliProcess("events", "--json", "--count", "2", "ping_instance",
                     env={"RABBIT_MQ_URL": amqp_url_via(proxy, TEST_VHOST), "REDIS_URL": redis_url})
    try:
        def publish(n: int) -> None:
            rabbit.ch.basic_publish(EVENTS_EXCHANGE, "ping_instance", orjson.dumps({"event": "ping_instance", "n": n}))

        cli.wait_output("following events", name="stderr")
        publish(1)
        cli.wait_output('"n":1')
        proxy.cut()  # the broker gone, as a restart or a dropped network looks to the client
        cli.wait_output("lost RabbitMQ", name="stderr")
        assert cli.proc.poll() is None, "it waits for the broker instead of exiting"
        proxy.restore()
        cli.wait_output("following events again", name="stderr")
        publish(2)
        assert cli.wait() == 0  # --count 2: one before the loss, one after
        assert [orjson.loads(line)["n"] for line in cli.text().splitlines()] == [1, 2]
        assert "Traceback" not in cli.text("stderr")
    finally:
        cli.kill()
        proxy.close()
