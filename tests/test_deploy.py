"""The run command and the project's supervisord configuration.

- Which servers the run command runs itself (deploy/local_services.py),
  and the passwords it gives them.
- The run command on ports of its own, beside the machine's RabbitMQ and
  Redis: its servers take no one without their passwords (no RabbitMQ
  guest), which no log, event or command line shows; the broker bounds the
  queues nobody may read; stopped the way Ctrl-C stops it, it leaves no
  RabbitMQ, epmd, Redis, node, session process or Chrome behind.
- The node under supervisord, killed with SIGKILL: it is restarted, its
  sessions come back without a QR, the command it held unacknowledged is
  carried out, and no Chrome is left over."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pika.exceptions
import psutil
import pytest
import redis as redislib

from support import (Client, all_gone, chrome_processes_under, create_ready, descendants, free_ports, idle_cgroup,
                     new_phone, wait_for)
from wwnode.amqp.topology import bounded_policy

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "deploy" / "supervisord.conf"
RUN_NODE = ROOT / "deploy" / "run-node.sh"


def _load_local_services():
    spec = importlib.util.spec_from_file_location("local_services", ROOT / "deploy" / "local_services.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


local_services = _load_local_services()


def _load_ready_notice():
    spec = importlib.util.spec_from_file_location("ready_notice", ROOT / "deploy" / "ready_notice.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ready_notice = _load_ready_notice()


def tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


# ------------------------------------------------------- which servers run here

HOME = Path("/srv/checkout")
URLS = ("amqp://guest:guest@127.0.0.1:5672/%2F", "redis://127.0.0.1:6379/0")


def machine(listening=(), uid=0, users=("rabbitmq", "redis")):
    homes = {"root": Path("/root"), "alice": Path("/home/alice"), **{u: Path(f"/var/lib/{u}") for u in users}}
    return local_services.Machine(listening=lambda port: port in listening, uid=uid, home_of=homes.get,
                                  name_of=lambda uid: "root" if uid == 0 else "alice")


def test_free_local_ports_get_servers_of_their_own_users():
    env = local_services.plan({}, *URLS, HOME, machine())
    assert env["WWNODE_LOCAL_RABBITMQ"] == env["WWNODE_LOCAL_REDIS"] == env["WWNODE_LOCAL_EPMD"] == "true"
    assert (env["WWNODE_RABBITMQ_USER"], env["WWNODE_RABBITMQ_HOME"]) == ("rabbitmq", "/var/lib/rabbitmq")
    assert env["WWNODE_RABBITMQ_DIR"] == "/var/lib/rabbitmq/wwnode-5672"
    assert (env["WWNODE_RABBITMQ_NODENAME"], env["WWNODE_RABBITMQ_DIST_PORT"]) == ("wwnode-5672@localhost", "25672")
    assert (env["WWNODE_REDIS_USER"], env["WWNODE_REDIS_DIR"]) == ("redis", "/var/lib/redis/wwnode-6379")
    assert env["ERL_EPMD_PORT"] == "4369"


def test_servers_already_listening_or_elsewhere_are_left_alone():
    env = local_services.plan({}, *URLS, HOME, machine(listening={5672, 6379, 4369}))
    assert env["WWNODE_LOCAL_RABBITMQ"] == env["WWNODE_LOCAL_REDIS"] == env["WWNODE_LOCAL_EPMD"] == "false"
    for urls in [("amqp://u:p@rabbit.example:5672/%2F", "redis://cache.example:6379/0"),
                 ("amqps://guest:guest@127.0.0.1:5671/%2F", "rediss://127.0.0.1:6380/0"),
                 ("amqp://guest:guest@[::1]:5672/%2F", "unix:///run/redis.sock")]:
        env = local_services.plan({}, *urls, HOME, machine())
        assert env["WWNODE_LOCAL_RABBITMQ"] == env["WWNODE_LOCAL_REDIS"] == "false"


def test_a_running_epmd_is_shared():
    env = local_services.plan({"ERL_EPMD_PORT": "4400"}, *URLS, HOME, machine(listening={4400}))
    assert (env["WWNODE_LOCAL_RABBITMQ"], env["WWNODE_LOCAL_EPMD"], env["ERL_EPMD_PORT"]) == ("true", "false", "4400")


def test_own_ports_and_folders_follow_the_urls_and_settings():
    settings = {"WWNODE_RABBITMQ_DIST_PORT": "26001", "WWNODE_RABBITMQ_DIR": "srv/mq",
                "WWNODE_RABBITMQ_NODENAME": "mq-a@localhost", "WWNODE_REDIS_DIR": "/tmp/r"}
    env = local_services.plan(settings, "amqp://guest:guest@localhost:6001/%2F", "redis://127.0.0.1:6002/3", HOME,
                              machine(uid=1000))
    assert (env["WWNODE_RABBITMQ_PORT"], env["WWNODE_RABBITMQ_DIST_PORT"], env["WWNODE_REDIS_PORT"]) == \
        ("6001", "26001", "6002")
    assert (env["WWNODE_RABBITMQ_DIR"], env["WWNODE_REDIS_DIR"]) == ("/srv/checkout/srv/mq", "/tmp/r")
    assert env["WWNODE_RABBITMQ_NODENAME"] == "mq-a@localhost"
    assert env["WWNODE_RABBITMQ_USER"] == env["WWNODE_REDIS_USER"] == "alice"  # not root: no switch


def test_without_the_servers_users_root_runs_them_in_the_checkout():
    env = local_services.plan({}, *URLS, HOME, machine(users=()))
    assert (env["WWNODE_RABBITMQ_USER"], env["WWNODE_RABBITMQ_DIR"]) == ("root", "/srv/checkout/data/rabbitmq-5672")
    assert env["WWNODE_REDIS_DIR"] == "/srv/checkout/data/redis-6379"


@pytest.mark.parametrize("settings, listening, words", [
    ({}, {25672}, "25672 .WWNODE_RABBITMQ_DIST_PORT. is in use"),
    ({"WWNODE_RABBITMQ_DIST_PORT": "70000"}, (), "WWNODE_RABBITMQ_DIST_PORT"),
    ({"ERL_EPMD_PORT": "epmd"}, (), "ERL_EPMD_PORT"),
    ({"WWNODE_RABBITMQ_NODENAME": "no host"}, (), "WWNODE_RABBITMQ_NODENAME"),
    ({"WWNODE_REDIS_DIR": '/tmp/a"b'}, (), "WWNODE_REDIS_DIR"),
    ({"WWNODE_QUEUE_MAX_LENGTH": "0"}, (), "WWNODE_QUEUE_MAX_LENGTH"),
    ({"WWNODE_QUEUE_TTL": "a week"}, (), "WWNODE_QUEUE_TTL"),
])
def test_bad_settings_are_named(settings, listening, words):
    with pytest.raises(local_services.PlanError, match=words):
        local_services.plan(settings, *URLS, HOME, machine(listening=listening))


def test_the_broker_run_here_gets_its_management_panel(tmp_path):
    env = local_services.plan({"WWNODE_RABBITMQ_MANAGEMENT_PORT": "16001"}, *URLS, HOME, machine())
    assert env["WWNODE_RABBITMQ_MANAGEMENT_PORT"] == "16001"
    assert local_services.plan({}, *URLS, HOME, machine())["WWNODE_RABBITMQ_MANAGEMENT_PORT"] == "15672"
    with pytest.raises(local_services.PlanError, match="15672 .WWNODE_RABBITMQ_MANAGEMENT_PORT"):
        local_services.plan({}, *URLS, HOME, machine(listening={15672}))
    (tmp_path / "enabled_plugins").write_text("[rabbitmq_shovel].\n")  # the user's own: kept
    local_services.management_panel(tmp_path, 16001)
    assert (tmp_path / "enabled_plugins").read_text() == "[rabbitmq_shovel,rabbitmq_management].\n"
    conf = (tmp_path / local_services.MANAGEMENT_CONF).read_text()
    assert "management.tcp.ip = 127.0.0.1" in conf and "management.tcp.port = 16001" in conf
    local_services.management_panel(tmp_path, 16001)  # again, at the next start: the same
    assert (tmp_path / "enabled_plugins").read_text() == "[rabbitmq_shovel,rabbitmq_management].\n"


def test_a_bad_port_in_a_url_is_named_without_its_password():
    with pytest.raises(local_services.PlanError, match="not a valid port") as caught:
        local_services.plan({}, "amqp://guest:s3cret@127.0.0.1:99999/%2F", URLS[1], HOME, machine())
    assert "s3cret" not in str(caught.value)


def test_servers_run_here_get_passwords_of_their_own_kept_private(tmp_path):
    made = iter(["mq-Zq7vK2pW", "rd-Zq7vK2pW"])
    kept = tmp_path / "run" / "credentials"
    kept.parent.mkdir()
    creds = local_services.credentials(kept, make=lambda: next(made))
    env = local_services.plan({}, "amqp://guest:guest@127.0.0.1:5672/%2F", "redis://127.0.0.1:6379/0?password=old",
                              HOME, machine())
    urls = local_services.node_urls(env, "amqp://guest:guest@127.0.0.1:5672/%2F",
                                    "redis://127.0.0.1:6379/0?password=old", creds)
    assert urls == {"RABBIT_MQ_URL": "amqp://wwnode:mq-Zq7vK2pW@127.0.0.1:5672/%2F",
                    "REDIS_URL": "redis://:rd-Zq7vK2pW@127.0.0.1:6379/0", "WWNODE_RABBITMQ_PASSWORD": "mq-Zq7vK2pW"}
    env.update(urls)
    local_services.keep_credentials(kept, creds, env)
    assert kept.stat().st_mode & 0o777 == 0o600
    text = kept.read_text()
    assert f"RABBIT_MQ_URL={urls['RABBIT_MQ_URL']}\n" in text and f"REDIS_URL={urls['REDIS_URL']}\n" in text

    def no_new_password():
        raise AssertionError("a kept password is made again")

    assert local_services.credentials(kept, make=no_new_password) == creds  # kept across starts


def test_servers_not_run_here_keep_their_urls_and_get_no_password():
    env = local_services.plan({}, *URLS, HOME, machine(listening={5672, 6379}))
    assert local_services.node_urls(env, *URLS, local_services.Credentials("a" * 8, "b" * 8)) == {}
    assert env["WWNODE_RABBITMQ_PASSWORD"] == ""


def test_the_broker_run_here_gets_the_policy_and_the_urls_virtual_host():
    env = local_services.plan({"WWNODE_QUEUE_MAX_LENGTH": "500", "WWNODE_QUEUE_TTL": "60"},
                              "amqp://guest:guest@127.0.0.1:5672/prod", URLS[1], HOME, machine())
    assert env["WWNODE_RABBITMQ_VHOST"] == "prod"
    assert (env["WWNODE_QUEUE_POLICY_PATTERN"], env["WWNODE_QUEUE_POLICY"]) == bounded_policy(500, 60)
    assert local_services.plan({}, *URLS, HOME, machine())["WWNODE_RABBITMQ_VHOST"] == "/"


def test_the_local_redis_reads_its_password_from_a_private_file(tmp_path):
    env = local_services.plan({"WWNODE_REDIS_DIR": str(tmp_path / "r")}, *URLS, HOME,
                              machine(uid=os.getuid(), users=()))
    env.update(WWNODE_LOCAL_RABBITMQ="false", WWNODE_LOCAL_EPMD="false",
               WWNODE_REDIS_USER=pwd.getpwuid(os.getuid()).pw_name)
    local_services.prepare(env, os.getuid(), local_services.Credentials("mq-pw-1234", "rd-pw-1234"))
    conf = tmp_path / "r" / local_services.REDIS_CONF
    assert conf.stat().st_mode & 0o777 == 0o600 and "requirepass rd-pw-1234\n" in conf.read_text()
    assert "wwnode-redis.conf" in CONF.read_text() and "rd-pw-1234" not in CONF.read_text()


def test_the_folders_of_servers_that_run_here_are_made_private(tmp_path):
    env = local_services.plan({"WWNODE_RABBITMQ_DIR": str(tmp_path / "mq"), "WWNODE_REDIS_DIR": str(tmp_path / "r")},
                              *URLS, HOME, machine(uid=os.getuid(), users=()))
    env.update(WWNODE_LOCAL_REDIS="false", WWNODE_RABBITMQ_USER=pwd.getpwuid(os.getuid()).pw_name)
    local_services.prepare(env, os.getuid())
    assert (tmp_path / "mq").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "mq").stat().st_uid == os.getuid()
    assert not (tmp_path / "r").exists()  # Redis does not run here


# ------------------------------------------------- what the run command says when ready

def test_the_ready_block_says_where_the_urls_logs_and_panel_are_and_how_to_stop():
    text = ready_notice.block("n1", 4.25, "amqp://wwnode:***@127.0.0.1:5672/%2F", HOME / "data" / "run", HOME,
                              credentials=True, panel_port="15672", python=str(HOME / ".venv" / "bin" / "python"))
    lines = text.splitlines()
    assert lines[0] == ("run-node: ready: node n1 takes commands from RabbitMQ at "
                        "amqp://wwnode:***@127.0.0.1:5672/%2F (4.2 s)")
    assert "set -a; . data/run/credentials; set +a" in text
    assert ".venv/bin/wwnode status" in text
    assert "data/run/wwnode.out" in text and "http://127.0.0.1:15672/" in text
    assert lines[-1].split(":", 1)[1].strip().startswith("Ctrl-C here")


def test_without_servers_run_here_the_block_names_the_nodes_own_urls():
    text = ready_notice.block("n1", 1.0, "amqp://127.0.0.1:5672/%2F", Path("/var/run/wwnode"), HOME,
                              credentials=False, panel_port=None, python="/opt/venv/bin/python")
    assert "credentials" not in text and "RABBIT_MQ_URL and REDIS_URL" in text
    assert "/var/run/wwnode/wwnode.out" in text and "/opt/venv/bin/wwnode status" in text
    assert "panel" not in text


@pytest.mark.parametrize("taking_from, states, outcome", [
    (3, ["STARTING"] * 10, "ready"),
    (None, ["STARTING", "BACKOFF", "FATAL"], "fatal"),
    (None, ["RUNNING"] * 100, "timeout"),
])
def test_the_notice_waits_for_a_consumer_or_says_why_not(taking_from, states, outcome):
    now = [0.0]
    polls = []

    def taking():
        polls.append(now[0])
        return taking_from is not None and len(polls) > taking_from

    def state():
        return states[min(len(polls) - 1, len(states) - 1)]

    def pause(s):
        now[0] += s

    assert ready_notice.wait_ready(taking, state, lambda: now[0], pause, timeout=10) == outcome
    if outcome == "timeout":
        assert now[0] >= 10


# ------------------------------------------------- the run command, stopped

def listening_pids(ports) -> set[int]:
    return {c.pid for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port in ports and c.pid}


def ours(run_dir: Path, markers: list[str], ports: list[int]) -> list[psutil.Process]:
    """Live processes anywhere on the machine that belong to this run: they
    listen on its ports, name its folders, or carry its WWNODE_RUN in their
    environment (all that supervisord starts inherits it, re-parented or not)."""
    by_port = listening_pids(ports)
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            cmdline = " ".join(p.info["cmdline"] or [])
            mine = p.pid in by_port or any(m in cmdline for m in markers) \
                or p.environ().get("WWNODE_RUN") == str(run_dir)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if mine:
            found.append(p)
    return found


def node_routes(r: redislib.Redis, node: str) -> bool:
    try:
        return r.hget(f"nodes:{node}", "router") == b"1"
    except redislib.ConnectionError:
        return False


def connect(url: str) -> Client | None:
    try:
        return Client(url)
    except pika.exceptions.AMQPConnectionError:
        return None


def read_credentials(run_dir: Path) -> dict[str, str] | None:
    path = run_dir / local_services.CREDENTIALS
    return local_services.read_kept(path) if path.exists() else None


def refused(call) -> bool:
    try:
        call()
    except (redislib.AuthenticationError, redislib.ResponseError, pika.exceptions.AMQPConnectionError):
        return True
    return False


def panel_answer(port: int, user: str, password: str) -> tuple[int, bytes] | None:
    """The management API's whoami as this user: (status, body); None
    while nothing answers."""
    import base64
    import urllib.error
    import urllib.request

    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/whoami", headers={"Authorization": f"Basic {auth}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None


def listening_addresses() -> set[tuple[str, int]]:
    return {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN}


def setup_done(run_dir: Path) -> bool:
    out = run_dir / "rabbitmq-setup.out"
    return out.exists() and "rabbitmq-setup: user wwnode" in out.read_text(errors="replace")


@pytest.mark.browser
def test_ctrl_c_stops_everything_the_run_command_started(tmp_path, wa):
    amqp, dist, epmd, redis_port, panel = free_ports(5)
    # Outside tmp_path, which only root may enter: the servers run as their own users.
    servers = Path(tempfile.mkdtemp(prefix="wwnode-deploy-"))
    servers.chmod(0o755)
    data, run_dir = tmp_path / "data", tmp_path / "run"
    env = {
        **os.environ, "RABBIT_MQ_URL": f"amqp://guest:guest@127.0.0.1:{amqp}/%2F",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "ERL_EPMD_PORT": str(epmd),
        "WWNODE_RABBITMQ_DIST_PORT": str(dist), "WWNODE_RABBITMQ_DIR": str(servers / "rabbitmq"),
        "WWNODE_RABBITMQ_MANAGEMENT_PORT": str(panel), "METRICS_ADDR": "127.0.0.1:0",
        "WWNODE_REDIS_DIR": str(servers / "redis"), "WWNODE_RUN": str(run_dir), "DATA_DIR": str(data),
        "WA_URL": wa.url, "NODE_ID": "deploy-node", "HEARTBEAT_INTERVAL": "1", "WWNODE_QUEUE_MAX_LENGTH": "3",
        "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp_path / "idle-cgroup")),  # a busy machine still takes the create
    }
    ports, markers = [amqp, dist, epmd, redis_port, panel], [str(tmp_path), str(servers)]
    assert not listening_pids(ports)
    out = open(tmp_path / "run-node.out", "wb")
    began = time.monotonic()
    run = subprocess.Popen(["bash", str(RUN_NODE)], env=env, stdout=out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    client = r = None
    try:
        creds = wait_for(lambda: read_credentials(run_dir), timeout=240, interval=0.2, what="the credentials file")
        assert (run_dir / "credentials").stat().st_mode & 0o777 == 0o600
        secrets = [creds["WWNODE_RABBITMQ_PASSWORD"], creds["WWNODE_REDIS_PASSWORD"]]
        assert creds["RABBIT_MQ_URL"] == f"amqp://wwnode:{secrets[0]}@127.0.0.1:{amqp}/%2F"
        r = redislib.Redis.from_url(creds["REDIS_URL"])
        wait_for(lambda: node_routes(r, "deploy-node"), timeout=240, interval=0.2,
                 what="the node's heartbeat, routing, in its own Redis")
        up = time.monotonic() - began
        wait_for(lambda: setup_done(run_dir), timeout=120, interval=0.5, what="the broker's setup")
        client = wait_for(lambda: connect(creds["RABBIT_MQ_URL"]), timeout=30, what="its own RabbitMQ")
        # Nobody gets in without the passwords: no guest, no Redis without AUTH.
        assert refused(lambda: Client(f"amqp://guest:guest@127.0.0.1:{amqp}/%2F"))
        assert refused(lambda: redislib.Redis(port=redis_port).get("nodes:deploy-node"))
        # The broker's management panel, on its own port, for the deploy's user only.
        me = wait_for(lambda: panel_answer(panel, "wwnode", secrets[0]), timeout=60, what="the management panel")
        assert me[0] == 200 and orjson.loads(me[1])["name"] == "wwnode"
        assert panel_answer(panel, "guest", "guest")[0] == 401
        assert listening_pids([panel]) and ("127.0.0.1", panel) in listening_addresses()
        # The queues nobody may read are bounded (WWNODE_QUEUE_MAX_LENGTH=3).
        for n in range(5):
            client.publish("authenticated_instance", {"n": n})
        wait_for(lambda: client.depth("authenticated_instance")[0] == 3, what="the old event queue bounded")

        client.ch.queue_declare("create_instance", durable=True)
        client.publish("create_instance", {"key": "k-deploy"})
        client.expect("qr_instance", key="k-deploy", timeout=90)
        assert chrome_processes_under(data), "a session's Chrome runs"
        started = [psutil.Process(run.pid), *descendants(run.pid)]
        started_pids = {p.pid for p in started}
        # Every port of this run is served by supervisord's descendants, none re-parented away.
        assert all(listening_pids([port]) and listening_pids([port]) <= started_pids for port in ports)
        kinds = {p.name() for p in started}
        assert {"epmd", "beam.smp", "redis-server"} <= kinds
        assert any("sessionproc" in p.cmdline() for p in started)
        assert started_pids <= {p.pid for p in ours(run_dir, markers, ports)}  # the check below sees them all
        # No command line (any local user reads them) holds a password, nor
        # does the environment of a session or its Chrome.
        browsers = {c.pid for c in chrome_processes_under(data)}
        for p in started:
            try:
                seen = " ".join(p.cmdline())
                if "sessionproc" in seen or p.pid in browsers:
                    seen += " ".join(f"{k}={v}" for k, v in p.environ().items())
            except psutil.NoSuchProcess:
                continue  # a browser helper that just ended
            assert not any(secret in seen for secret in secrets), f"a password shows in process {p.pid}"
        client.close()
        # Once the node takes commands, the terminal says so, once, with what to do next; nothing
        # else it shows looks like trouble (supervisord's lines go to its log, pip does not run again).
        said_ready = wait_for(lambda: "run-node: ready:" in (tmp_path / "run-node.out").read_text() and
                              (tmp_path / "run-node.out").read_text(), timeout=60, what="the ready block")
        print("\n" + said_ready)
        assert said_ready.count("run-node: ready: node deploy-node takes commands") == 1
        assert f"set -a; . {run_dir}/credentials; set +a" in said_ready
        assert f"http://127.0.0.1:{panel}/" in said_ready
        assert not [line for line in said_ready.splitlines()
                    if any(w in line for w in ("CRIT", "WARN", "Warning", "Traceback", "setuptools"))]

        stopping = time.monotonic()
        run.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        assert run.wait(120) == 0
        stopped = time.monotonic() - stopping
        wait_for(lambda: all_gone(started), timeout=15, what="every process the run command started to exit")
        assert ours(run_dir, markers, ports) == []
        assert not listening_pids(ports)
        listening = local_services.this_machine().listening
        assert listening(5672) and listening(6379)  # the machine's own servers are untouched
        # No log of the run and no event holds a password.
        said = [p.read_text(errors="replace") for p in [*run_dir.iterdir(), data / "logs" / "node.log",
                                                         tmp_path / "run-node.out"]
                if p.is_file() and p.name != local_services.CREDENTIALS]
        said += [str(e) for e in client.events]
        assert "RabbitMQ amqp://wwnode:***@127.0.0.1" in (data / "logs" / "node.log").read_text()
        assert not [secret for secret in secrets for text in said if secret in text]
        print(f"\nrun command: node up and routing after {up:.1f} s; stopped in {stopped:.1f} s")
    finally:
        if r is not None:
            r.close()
        if client:
            client.close()
        if run.poll() is None:
            run.terminate()
            run.wait(120)
        for p in ours(run_dir, markers, ports):  # only after a failure: leave the machine clean
            p.kill()
        out.close()
        shutil.rmtree(servers, ignore_errors=True)


# ------------------------------------------------- the node under supervisord

@pytest.fixture
def supervised(tmp_path, wa, rabbit_url, redis_url):
    run = tmp_path / "run"
    run.mkdir()
    env = {
        **os.environ, "WWNODE_HOME": str(tmp_path), "WWNODE_RUN": str(run), "WWNODE_PYTHON": sys.executable,
        "RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url, "WA_URL": wa.url, "NODE_ID": "sup-node",
        "DATA_DIR": str(tmp_path / "data"), "PING_INTERVAL": "30", "RESTORE_STAGGER": "0.3", "LEASE_TTL": "6",
        "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp_path / "idle-cgroup")),  # a busy machine still takes the create
    }
    # The machine's RabbitMQ and Redis listen: supervisord runs the node alone.
    services = local_services.plan(env, rabbit_url, redis_url, tmp_path, local_services.this_machine())
    assert services["WWNODE_LOCAL_RABBITMQ"] == services["WWNODE_LOCAL_REDIS"] == "false"
    env.update(services)
    proc = subprocess.Popen([tool("supervisord"), "-c", str(CONF)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def node_pid() -> int:
        out = subprocess.run([tool("supervisorctl"), "-c", str(CONF), "pid", "wwnode"], env=env,
                             capture_output=True, text=True).stdout.strip()
        return int(out) if out.isdigit() and out != "0" else 0

    yield node_pid, tmp_path / "data"
    proc.send_signal(signal.SIGTERM)
    proc.wait(90)
    wait_for(lambda: all_gone(chrome_processes_under(tmp_path / "data")), timeout=15, what="no Chrome left")


@pytest.mark.browser
def test_kill_9_under_supervisord(supervised, rabbit, control):
    node_pid, data = supervised
    first = wait_for(node_pid, timeout=30, what="supervisord to start the node")
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-sup", phone)
    old_tree = psutil.Process(first).children(recursive=True)

    assert control.freeze(phone) == 1  # the send below hangs in the page: in flight, unacked
    # Without an id, so it is done again when redelivered (at least once; a
    # send with an id would end in outcome_unknown instead: at most once).
    rabbit.publish("send_message", {"key": "k-sup", "chat_id": f"{friend}@c.us", "message": "in flight"})
    wait_for(lambda: rabbit.depth("send_message")[0] == 0, what="the node to take the send")
    os.kill(first, signal.SIGKILL)

    second = wait_for(lambda: node_pid() not in (0, first) and node_pid(), timeout=30, what="a new node")
    assert second != first
    rabbit.expect("ready_instance", key="k-sup", timeout=60)  # the restored session
    assert rabbit.expect("message_sent_instance", key="k-sup", timeout=60)["command_id"] is None
    assert [m["body"] for m in control.sent_by(phone)] == ["in flight"]
    assert len(rabbit.find("qr_instance", key="k-sup")) == 1
    wait_for(lambda: all_gone(old_tree), timeout=15, what="the old node's sessions and Chrome to be gone")
    assert len(chrome_processes_under(data)) > 0  # the restored session's browser runs
