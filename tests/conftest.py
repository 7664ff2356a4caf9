from __future__ import annotations

import pytest

from sessionproc import browser
from support import SessionProcess, all_gone, chrome_processes_using, wait_for
from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control


# The page syncs this long after CONNECTED (the real page takes a couple of
# seconds, the stand-in's default); short here so the suite stays fast.
TEST_SYNC_DELAY = 0.25


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
        wait_for(lambda: all_gone(chrome_processes_using(proc.profile)), timeout=10, what="Chrome to exit")


# ------------------------------------------------------------------ nodes
import os
import shutil
import subprocess

import redis as redislib

from support import Client, NodeProcess

# Overridable, so two checkouts can run their suites on one machine at once
# without purging each other's queues.
TEST_VHOST = os.environ.get("WWNODE_TEST_VHOST", "wwnode-test")
TEST_REDIS_DB = int(os.environ.get("WWNODE_TEST_REDIS_DB", "15"))


@pytest.fixture(scope="session")
def rabbit_url():
    """A virtual host of the tests' own on the local RabbitMQ."""
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, "add_vhost", TEST_VHOST], capture_output=True, timeout=120)
    done = subprocess.run([ctl, "set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*"],
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}"


@pytest.fixture
def rabbit(rabbit_url):
    """A client on a clean virtual host: the command, event and dead-letter
    queues are emptied before the test."""
    client = Client(rabbit_url)
    for queue in ("create_instance", "destroy_instance", "send_message", "authenticated_instance",
                  "disconnected_instance", "auth_failure_instance", "message_instance", "wa.dead_letter"):
        client.ch.queue_declare(queue, durable=True)
        client.ch.queue_purge(queue)
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


@pytest.fixture
def nodes(tmp_path, wa, rabbit_url, redis_url):
    """Start nodes (``wwnode run``) against the test vhost, Redis db and
    stand-in.  At the end each is stopped and no Chrome may be left."""
    started: list[NodeProcess] = []

    def start(node_id: str = "node-a", **env) -> NodeProcess:
        base = {"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url, "WA_URL": wa.url}
        node = NodeProcess(node_id, tmp_path / node_id, {**base, **{k.upper(): str(v) for k, v in env.items()}})
        started.append(node)
        return node

    yield start
    for node in started:
        node.terminate()
    for node in started:
        wait_for(lambda: all_gone(chrome_processes_under(node.data_dir)), timeout=15, what="no Chrome left")


def chrome_processes_under(folder) -> list:
    import psutil

    marker = f"--user-data-dir={folder.resolve()}"
    return [p for p in psutil.process_iter(["cmdline"]) if any(a.startswith(marker) for a in (p.info["cmdline"] or []))]
