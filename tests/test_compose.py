"""deploy/compose: the compose file for one machine, as a user brings it
up with podman-compose (or docker compose): RabbitMQ with its panel and
the bounded-queue policy, Redis with a password, a node, the dashboard,
and the stand-in (profile "standin").  Skipped, with the reason, where
Podman cannot run."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
import yaml

import containers
from support import decode_qr_matrix, free_ports, idle_cgroup, new_phone, terminal_qr_matrix, wait_for
from wwnode.amqp.topology import bounded_policy
from wwnode.fakewa.client import Control

# A cold machine builds the images first (a few minutes: see docs/operating.md, "Their tests").
pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

COMPOSE_DIR = containers.REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
MAKE_SECRETS = COMPOSE_DIR / "make-secrets.sh"
PODMAN_COMPOSE = shutil.which("podman-compose", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                       os.environ.get("PATH", "")]))


@pytest.fixture
def podman_compose():
    if PODMAN_COMPOSE is None:
        pytest.skip("podman-compose is not installed (the test extras install it)")
    return PODMAN_COMPOSE


def compose(tool: str, env_file: Path, *args: str, project: str = "wwnode-test", timeout: float = 120,
            check: bool = True, overrides: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    # BUILDAH_FORMAT=docker: Podman's own image format has no HEALTHCHECK.
    env = {**containers.podman_env(), "BUILDAH_FORMAT": "docker"}
    done = subprocess.run([tool, *compose_files(overrides), "-p", project, "--env-file", str(env_file), *args],
                          capture_output=True, timeout=timeout, env=env, cwd=env_file.parent)
    if check and done.returncode != 0:
        raise AssertionError(f"podman-compose {' '.join(args[:2])} exited {done.returncode}: "
                             f"{(done.stdout + done.stderr).decode(errors='replace')[-3000:]}")
    return done


def compose_files(overrides: tuple[Path, ...]) -> list[str]:
    """The -f options: the project's compose file, then the test's overrides."""
    return [option for path in (COMPOSE_FILE, *overrides) for option in ("-f", str(path))]


def idle_node_override(folder: Path) -> Path:
    """A compose file that gives the node the host's idle load figures
    (support.idle_cgroup), as the other node tests give theirs.  The
    container has no CPU quota of its own, so the node reads the whole
    machine's CPU: on a machine other jobs keep busy, admission would
    refuse the create this test is about.  The project's file stays as a
    user runs it."""
    idle = idle_cgroup(folder / "idle-cgroup")
    path = folder / "idle-node.yaml"
    path.write_text(yaml.safe_dump({"services": {"node": {
        "environment": {"LOAD_CGROUP_ROOT": "/idle"},
        "volumes": [f"{idle}:/idle:ro"]}}}))
    return path


def secrets_file(folder: Path, **extra: str) -> Path:
    path = folder / "compose.env"
    subprocess.run([str(MAKE_SECRETS), str(path)], check=True, capture_output=True)
    with path.open("a") as f:
        for name, value in extra.items():
            f.write(f"{name}={value}\n")
    return path


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def http_status(url: str, user: str | None = None, password: str = "", token: str | None = None) -> int | None:
    """The status a GET gets (None: nothing answered), with basic
    authentication when a user is given, or a bearer token."""
    request = urllib.request.Request(url)
    if user is not None:
        request.add_header("Authorization", "Basic " + b64encode(f"{user}:{password}".encode()).decode())
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def http_json(url: str, user: str, password: str) -> dict:
    """The JSON a GET gets; {} for a 404 (a queue not declared yet)."""
    request = urllib.request.Request(url)
    request.add_header("Authorization", "Basic " + b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return {}
        raise


def test_make_secrets_writes_each_password_once_for_its_owner_only(tmp_path):
    first = secrets_file(tmp_path)
    values = read_env(first)
    assert set(values) == {"RABBITMQ_PASSWORD", "REDIS_PASSWORD", "DASHBOARD_TOKEN"}
    assert all(len(v) == 48 and int(v, 16) >= 0 for v in values.values())
    assert len(set(values.values())) == 3
    assert first.stat().st_mode & 0o777 == 0o600
    subprocess.run([str(MAKE_SECRETS), str(first)], check=True, capture_output=True)
    assert read_env(first) == values  # run again: nothing changes


def test_compose_file_publishes_only_on_loopback_and_sets_the_nodes_policy(podman_compose, tmp_path):
    rendered = yaml.safe_load(compose(podman_compose, secrets_file(tmp_path), "--profile", "standin",
                                      "config").stdout)
    services = rendered["services"]
    assert set(services) == {"rabbitmq", "redis", "node", "dashboard", "standin"}
    published = [(name, port) for name, svc in services.items() for port in svc.get("ports", [])]
    assert {name for name, _ in published} == {"rabbitmq", "node", "dashboard", "standin"}
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond 127.0.0.1"
    pattern, definition = bounded_policy(100_000, 7 * 24 * 3600)
    env = services["rabbitmq"]["environment"]
    assert env["WWNODE_QUEUE_POLICY_PATTERN"] == pattern
    assert env["WWNODE_QUEUE_POLICY"] == definition


def test_compose_file_refuses_to_run_without_passwords(podman_compose, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = compose(podman_compose, empty, "config", check=False)
    assert done.returncode != 0
    assert b"make-secrets.sh" in done.stdout + done.stderr


class Output:
    """A child's standard output, read as it comes, on a thread."""

    def __init__(self, proc: subprocess.Popen):
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc):
        # Incrementally: a chunk may end inside a character (the QR
        # code's blocks are three bytes each).
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for chunk in iter(lambda: proc.stdout.read1(4096), b""):
            self.text += decoder.decode(chunk)


def test_compose_comes_up_and_wwnode_create_gets_a_qr_code(node_image, podman_compose, tmp_path):
    panel, dashboard, metrics, standin = free_ports(4)
    env_file = secrets_file(tmp_path, WA_URL="http://standin:8090/", RABBITMQ_PANEL_PORT=str(panel),
                            DASHBOARD_PORT=str(dashboard), NODE_METRICS_PORT=str(metrics),
                            STANDIN_PORT=str(standin))
    secrets = read_env(env_file)
    project = f"wwnode-test-{os.getpid()}"
    idle = (idle_node_override(tmp_path),)
    try:
        compose(podman_compose, env_file, "--profile", "standin", "up", "-d", "--build", project=project, timeout=900,
                overrides=idle)

        wait_for(lambda: http_status(f"http://127.0.0.1:{metrics}/healthz") == 200, timeout=120, interval=0.5,
                 what="the node's /healthz to say 200")

        # The panel answers on 127.0.0.1 for the node's user (no guest),
        # and the event queues the node declared follow the bound.
        panel_url = f"http://127.0.0.1:{panel}/api"
        assert http_status(f"{panel_url}/overview", "wwnode", secrets["RABBITMQ_PASSWORD"]) == 200
        assert http_status(f"{panel_url}/overview", "guest", "guest") == 401
        policy = wait_for(lambda: http_json(f"{panel_url}/queues/%2F/message_instance", "wwnode",
                                            secrets["RABBITMQ_PASSWORD"]).get("policy"),
                          timeout=60, interval=0.5, what="the bounded-queue policy on message_instance")
        assert policy == "wwnode-bounded"

        # Redis wants its password (from inside the compose network: it is
        # published nowhere).
        refused = compose(podman_compose, env_file, "exec", "-T", "redis", "redis-cli", "ping", project=project,
                          overrides=idle)
        assert b"NOAUTH" in refused.stdout + refused.stderr

        # `wwnode create` in the node's container: a QR code in the
        # terminal, which the stand-in's phone scans; then it exits 0.
        phone = new_phone()
        create = subprocess.Popen(
            [podman_compose, *compose_files(idle), "-p", project, "--env-file", str(env_file), "exec", "-T",
             "node", "wwnode", "create", "compose-1", "--timeout", "90"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=containers.podman_env(), cwd=tmp_path)
        try:
            out = Output(create)

            def drawn_qr():
                rows = terminal_qr_matrix(out.text)
                return rows and decode_qr_matrix(rows)

            qr = wait_for(drawn_qr, timeout=90, interval=0.2, what="a QR code drawn by wwnode create")[0]
            Control(f"http://127.0.0.1:{standin}/").scan(qr, phone)
            assert create.wait(60) == 0, out.text[-2000:]
        finally:
            if create.poll() is None:
                create.kill()
                create.wait()

        # The dashboard answers on 127.0.0.1 with its token, and only so.
        base = f"http://127.0.0.1:{dashboard}/"
        wait_for(lambda: http_status(base, token=secrets["DASHBOARD_TOKEN"]) == 200, timeout=60, interval=0.5,
                 what="the dashboard to answer")
        assert http_status(base) == 401
    except BaseException:
        # What the services said, for the failure's report (captured output).
        logs = compose(podman_compose, env_file, "--profile", "standin", "logs", project=project, check=False,
                       overrides=idle)
        print((logs.stdout + logs.stderr).decode(errors="replace")[-20000:])
        raise
    finally:
        compose(podman_compose, env_file, "--profile", "standin", "down", "-v", project=project, timeout=180,
                check=False, overrides=idle)
