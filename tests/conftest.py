"""Fixtures: the stand-in, browsers and session processes, and nodes against
a RabbitMQ virtual host and a Redis database of the tests' own.  Helpers
live in support.py."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest
import redis as redislib

import containers
from hacluster import RabbitMember
from sessionproc import browser
from support import (RUN_MARK, TEST_REDIS_DB, TEST_VHOST, Client, FakeSessions, NodeProcess, S3Server, SessionProcess, SmallDisk,
                     all_gone, leftover_processes, make_profile_template,
                     chrome_processes_under, create_ready, idle_cgroup, new_phone, processes_using, purge_queues,
                     rabbitmqctl, wait_for)
from wwnode.amqp.topology import COMMAND_QUEUES, DEAD_LETTER_QUEUE, LEGACY_EVENT_QUEUES, REROUTE_QUEUE, node_queue_name
from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control

# Every process the run starts carries this mark in its environment (set
# before any is started; parallel workers inherit the first process's), so
# the run can tell, at its end, what of its own is still running.
os.environ.setdefault(RUN_MARK, uuid.uuid4().hex)
# One folder of profile templates for every node of the run (it inherits
# the variable), made once before the first test (``pytest_configure``),
# not by each test's node at its start (wwnode/templates.py).  A test of
# the making gives its node a folder of its own.
OWN_TEMPLATES = "PROFILE_TEMPLATE_DIR" not in os.environ  # else the caller's, and kept
TEMPLATES = os.environ.setdefault("PROFILE_TEMPLATE_DIR", os.path.join(
    tempfile.gettempdir(), f"wwnode-tests-{os.environ[RUN_MARK]}", "profile-templates"))


def pytest_configure(config):
    if hasattr(config, "workerinput") or not os.path.exists(browser.DEFAULT_CHROME):
        return  # the first process makes it, before the workers start
    # Not made (a machine without Chromium's driver): each node makes it, as in production.
    make_profile_template(Path(TEMPLATES), browser.DEFAULT_CHROME)


# The test files that take longest, longest first (seconds of one run with
# four workers: 130, 122, 117, 91, 78, 58, 58, 57, 52, 50, 45, 44, 38, 37,
# 33, 30): handed to the parallel workers first, so that none is left
# running one alone at the end of the run while the others wait
# (deploy/run-tests.sh keeps this order).  The rest keep theirs.  The
# container tests come early too: on a new machine they build the images
# first, minutes more.
SLOW_FIRST = ("test_ha", "test_sessionproc", "test_faults", "test_cli", "test_wwebjs", "test_compose", "test_soak",
              "test_deploy", "test_cluster", "test_portable", "test_node_e2e", "test_node", "test_fakewa_page",
              "test_operator", "test_demo", "test_orphans", "test_container_image")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: n for n, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


def pytest_sessionfinish(session, exitstatus):
    """A run that leaves a session process, chromedriver or Chromium behind
    fails, and what it left is named and killed (a leak loads every test
    after it, and in production is a browser still linked to an account)."""
    if hasattr(session.config, "workerinput"):
        return  # a parallel worker: the first process checks once all are done
    if OWN_TEMPLATES:
        shutil.rmtree(os.path.dirname(TEMPLATES), ignore_errors=True)
    left = leftover_processes(os.environ[RUN_MARK], wait=20)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  pid {p.pid}: {' '.join((p.info.get('cmdline') or [p.info.get('name') or '?'])[:4])[:200]}"
             for p in left]
    message = f"the run left {len(left)} of its processes running (now killed):\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True)
    else:
        print(message)
    for p in left:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# The node's own queues are durable and outlive a test by an hour, and every
# test reuses the ids node-a, node-b...: a command routed to node-a and left
# there would reach the next test's node-a.  So every node queue is emptied
# before each test: those found on the broker at the start of the run, and
# those of every node started since.
_node_queues: set[str] = set()


# The page syncs this long after CONNECTED (the real page takes a couple of
# seconds, the stand-in's default); short here so the suite stays fast.
TEST_SYNC_DELAY = 0.25


@dataclasses.dataclass
class Linked:
    """What ``linked_node`` gives a module: its stand-in, its node, a
    client, the linked session's phone and its ``ready_instance``."""

    wa: FakeWA
    node: NodeProcess
    rabbit: Client
    phone: str
    ready: dict


@contextlib.contextmanager
def linked_node(tmp, rabbit_url: str, node_id: str, key: str, env: dict | None = None):
    """A node with one session of ``key`` linked to a new phone, on a
    stand-in of its own, for the tests of one module to share (a browser
    starts once): the tests' Redis database and queues emptied first, and
    at the end the node stopped and no Chrome of it left.  ``env``: more of
    the node's settings."""
    r = redislib.Redis(db=TEST_REDIS_DB, decode_responses=True)
    r.flushdb()
    r.close()
    _node_queues.add(node_queue_name(node_id))
    rabbit = Client(rabbit_url)
    queues = COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE, REROUTE_QUEUE)
    for queue in queues:
        rabbit.ch.queue_declare(queue, durable=True)
    purge_queues(rabbit.conn, queues + tuple(sorted(_node_queues)))
    wa = FakeWA(settings=Settings(sync_delay=TEST_SYNC_DELAY)).start()
    node = NodeProcess(node_id, tmp / node_id, {"RABBIT_MQ_URL": rabbit_url,
                                                "REDIS_URL": f"redis://127.0.0.1:6379/{TEST_REDIS_DB}", "WA_URL": wa.url,
                                                "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp / "cgroup")), **(env or {})})
    phone = new_phone()
    try:
        ready = create_ready(rabbit, Control(wa.url), key, phone)
        yield Linked(wa, node, rabbit, phone, ready)
    finally:
        node.terminate()
        wait_for(lambda: all_gone(chrome_processes_under(node.data_dir)), timeout=15, what="no Chrome left")
        rabbit.close()
        wa.stop()


@pytest.fixture
def make_wa():
    """Start stand-ins with given settings (a short sync unless one is
    given); each has its own port, so its pages have their own origin and
    storage even in a shared browser.  ``tls=True`` serves HTTPS;
    ``world=other.world`` makes a second front on another's phones."""
    started = []

    def make(tls: bool = False, world=None, **settings) -> FakeWA:
        if world is None:
            settings.setdefault("sync_delay", TEST_SYNC_DELAY)
            wa = FakeWA(settings=Settings(**settings), tls=tls).start()
        else:
            wa = FakeWA(tls=tls, world=world).start()
        started.append(wa)
        return wa

    yield make
    for wa in started:
        wa.stop()


@pytest.fixture
def wa(make_wa) -> FakeWA:
    return make_wa()


@pytest.fixture
def control(wa) -> Control:
    return Control(wa.url)


@pytest.fixture(scope="session")
def shared_browser(tmp_path_factory):
    """One Chromium for the tests that only need a page, not a profile of
    their own.  Each test opens a fresh tab on its own stand-in."""
    driver = browser.launch(browser.BrowserConfig(profile_dir=tmp_path_factory.mktemp("shared-profile")))
    yield driver
    driver.quit()


@pytest.fixture
def page(shared_browser):
    """A new tab in the shared browser, closed afterwards."""
    driver = shared_browser
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    yield driver
    driver.close()
    driver.switch_to.window(first)


@pytest.fixture
def browsers(tmp_path):
    """Start browsers on profiles of their own; all quit at the end."""
    started = []

    def launch(profile_name: str = "profile"):
        driver = browser.launch(browser.BrowserConfig(profile_dir=tmp_path / profile_name))
        started.append(driver)
        return driver

    yield launch
    for driver in started:
        driver.quit()


@pytest.fixture
def sessions(tmp_path, wa):
    """Start session processes; at the end each is stopped and its Chrome
    must be gone."""
    started: list[SessionProcess] = []

    def start(key: str = "k1", *extra: str, url: str | None = None, profile=None) -> SessionProcess:
        profile = profile or tmp_path / "profiles" / key
        proc = SessionProcess(key, profile, url or wa.url, tmp_path / "logs" / f"{key}.log", *extra)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.stop()
        wait_for(lambda: all_gone(chrome_processes_under(proc.profile)), timeout=10, what="Chrome to exit")


# ------------------------------------------------------------------ nodes

@pytest.fixture(scope="session")
def rabbit_url():
    """A virtual host of the tests' own on the local RabbitMQ."""
    rabbitmqctl("add_vhost", TEST_VHOST, check=False)
    done = rabbitmqctl("set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*", check=False)
    assert done.returncode == 0, done.stderr.decode()
    listed = rabbitmqctl("list_queues", "-p", TEST_VHOST, "--quiet", "--no-table-headers", "name").stdout
    prefix = node_queue_name("")
    _node_queues.update(name for name in listed.decode().split() if name.startswith(prefix))
    return f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}"


def clean_client(url: str) -> Client:
    """A client on a virtual host whose queues the node uses (command,
    event, dead-letter, reroute and node queues) are declared and empty."""
    client = Client(url)
    for queue in COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE, REROUTE_QUEUE):
        client.ch.queue_declare(queue, durable=True)
    purge_queues(client.conn, COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE, REROUTE_QUEUE))
    purge_queues(client.conn, sorted(_node_queues))
    return client


@pytest.fixture
def rabbit(rabbit_url):
    """A client on a clean virtual host (``clean_client``)."""
    client = clean_client(rabbit_url)
    yield client
    client.close()


@pytest.fixture
def own_broker(tmp_path):
    """A RabbitMQ server of the test's own (one member, free ports, a folder
    of the test's), for a test that stops the broker or sets its alarms:
    the machine's broker serves every other test meanwhile, parallel
    workers included.  Its URL: ``own_broker.url``."""
    home = tmp_path / "rabbit-home"
    home.mkdir()
    cookie = home / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(16))
    cookie.chmod(0o400)
    member = RabbitMember(tmp_path / "rabbit", f"wwown-{secrets.token_hex(3)}@localhost", home, seed=None)
    member.start()
    try:
        member.await_first_start()
        member.url = f"amqp://guest:guest@127.0.0.1:{member.port}/%2F"
        yield member
    finally:
        member.stop()


@pytest.fixture
def own_rabbit(own_broker):
    """A client of ``own_broker``, as ``rabbit`` is of the shared one."""
    client = clean_client(own_broker.url)
    yield client
    client.close()


@pytest.fixture
def redis_url():
    r = redislib.Redis(db=TEST_REDIS_DB)
    r.flushdb()
    r.close()
    return f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"


@pytest.fixture
def redis_client(redis_url):
    r = redislib.Redis.from_url(redis_url, decode_responses=True)
    yield r
    r.close()


def _node_factory(tmp_path, base: dict, session_module: str):
    """Nodes read idle load figures (see support.idle_cgroup) unless a test
    asks for the machine's own with ``load_cgroup_root=""``."""
    started: list[NodeProcess] = []
    base = {"LOAD_CGROUP_ROOT": str(idle_cgroup(tmp_path / "idle-cgroup")), **base}

    def start(node_id: str = "node-a", **env) -> NodeProcess:
        _node_queues.add(node_queue_name(node_id))
        settings = {**base, **{k.upper(): str(v) for k, v in env.items()}}
        node = NodeProcess(node_id, tmp_path / node_id, settings, session_module=session_module)
        started.append(node)
        return node

    return start, started


@pytest.fixture
def nodes(tmp_path, wa, rabbit_url, redis_url):
    """Start nodes (``wwnode run``) with real session processes (Chromium)
    against the test vhost, Redis db and stand-in.  At the end each is
    stopped and no Chrome may be left."""
    start, started = _node_factory(tmp_path, {"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url,
                                              "WA_URL": wa.url}, "sessionproc")
    yield start
    for node in started:
        node.terminate()
    for node in started:
        wait_for(lambda: all_gone(chrome_processes_under(node.data_dir)), timeout=15, what="no Chrome left")


@pytest.fixture
def fake(tmp_path) -> FakeSessions:
    """The controls of the fake session processes that ``fake_nodes`` run."""
    return FakeSessions(tmp_path / "fake")


@pytest.fixture
def fake_nodes(tmp_path, fake, rabbit_url, redis_url):
    """Start nodes whose sessions are fake session processes (no browser),
    scripted through ``fake``.  At the end each is stopped and none of its
    processes may be left."""
    start, started = _node_factory(tmp_path, {"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url,
                                              "FAKESESSION_DIR": str(fake.dir)}, "fakesession")
    yield start
    for node in started:
        node.terminate()
    for node in started:
        wait_for(lambda: all_gone(processes_using(node.data_dir)), timeout=15, what="no session process left")


@pytest.fixture
def small_disk(tmp_path):
    """Mount small tmpfs disks (``small_disk(name, size)`` on
    ``tmp_path/name``: a node's DATA_DIR when named after it); unmounted at
    the end.  Ask for it before ``fake_nodes``, so nodes stop first."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[SmallDisk] = []

    def mount(name: str, size: str = "16m") -> SmallDisk:
        disk = SmallDisk(tmp_path / name, size)
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        disk.unmount()


# ------------------------------------------------------------ containers

@pytest.fixture(scope="session")
def node_image():
    """The node's image, built once a run on a base made locally
    (tests/containers.py); skipped, with the reason, where Podman cannot
    run.  Its build figures: ``node_image["build_seconds"]`` and so on."""
    reason = containers.why_not_here()
    if reason:
        pytest.skip(reason)
    figures = containers.build_image()
    print(f"\nnode image {containers.IMAGE}: {figures['size_bytes'] / 1e6:.0f} MB, base "
          f"{figures['base_seconds']:.1f} s, build {figures['build_seconds']:.1f} s")
    return {"name": containers.IMAGE, **figures}


@pytest.fixture
def podman_run():
    """Containers and volumes for one test, removed at its end."""
    made = containers.Containers()
    yield made
    made.remove_all()


# ------------------------------------------------------------ blob store

@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto's) on a port of its own, for the
    ``s3://`` blob store; stopped at the end of the run."""
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def aws_credentials(monkeypatch):
    """Test credentials and region in the environment, for an S3 client
    aimed at something that is not S3 (a closed port, a silent one): its
    requests are signed and sent, and fail as the test means them to."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """A fresh bucket on the local S3 server; the environment a node (or
    ``open_blob_store``) needs to reach it.  Returns (BLOB_STORE_URL, env)."""
    bucket = s3_server.new_bucket()
    env = s3_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{bucket}/wwnode", env
