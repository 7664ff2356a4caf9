"""Podman for the container tests: whether it can run here (and why not),
the node's image built on a base made locally, and containers and volumes
that are removed at the end whatever happened.

Podman is run with deploy/container/containers.conf (runc, cgroupfs, fixed
limits): the settings a host needs whose cgroups are in hybrid mode, and
harmless on any other."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = REPO / "deploy" / "container" / "containers.conf"
MAKE_BASE = REPO / "deploy" / "container" / "make-base-image.sh"
IMAGE = "localhost/wwnode:test"
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
PODMAN = shutil.which("podman")


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([PODMAN, *args], capture_output=True, timeout=timeout, env=podman_env())
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} exited {done.returncode}: "
                             f"{done.stderr.decode(errors='replace')[-2000:]}")
    return done


def why_not_here() -> str | None:
    """Why the container tests cannot run on this machine, or None."""
    if PODMAN is None:
        return "podman is not installed (deploy/setup-debian.sh installs it)"
    done = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    if done.returncode != 0:
        return f"podman cannot run here: {done.stderr.decode(errors='replace').strip()[-300:]}"
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        if os.geteuid() != 0 or shutil.which("debootstrap") is None:
            return f"{BASE_IMAGE} is missing and making it needs root and debootstrap"
    return None


def build_image() -> dict:
    """Make the base when missing (once per machine), then build the
    node's image (Podman's layer cache makes a rebuild take seconds).
    Returns the seconds each took and the image's size.  Parallel workers
    take turns: the second finds the base made and every layer cached."""
    with open(Path(tempfile.gettempdir()) / "wwnode-test-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_image()


def _build_image() -> dict:
    started = time.monotonic()
    done = subprocess.run([str(MAKE_BASE)], capture_output=True, timeout=600, env=podman_env())
    if done.returncode != 0:
        raise AssertionError(f"making the base image failed: {done.stderr.decode(errors='replace')[-2000:]}")
    base_took = time.monotonic() - started
    started = time.monotonic()
    podman("build", "--format", "docker", "-t", IMAGE, str(REPO), timeout=1200)
    build_took = time.monotonic() - started
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    return {"base_seconds": base_took, "build_seconds": build_took, "size_bytes": size}


class Containers:
    """Containers and volumes of one test, each named with a random
    suffix; ``remove_all`` removes them (containers first)."""

    def __init__(self):
        self.suffix = secrets.token_hex(4)
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def volume(self, name: str) -> str:
        full = f"wwnode-test-{name}-{self.suffix}"
        podman("volume", "create", full)
        self.volumes.append(full)
        return full

    def volume_path(self, volume: str) -> Path:
        return Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.decode().strip())

    def run(self, name: str, *args: str, env: dict[str, str] | None = None) -> str:
        """Start a container (detached) of the image; its full name."""
        full = f"wwnode-test-{name}-{self.suffix}"
        env_args = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
        podman("run", "-d", "--name", full, *env_args, *args)
        self.containers.append(full)
        return full

    def state(self, container: str) -> dict:
        return json.loads(podman("inspect", "--format", "{{json .State}}", container).stdout)

    def logs(self, container: str) -> str:
        done = podman("logs", container, check=False)
        return (done.stdout + done.stderr).decode(errors="replace")

    def remove_all(self) -> None:
        for name in reversed(self.containers):
            podman("rm", "-f", "-t", "0", name, check=False)
        for name in self.volumes:
            podman("volume", "rm", "-f", name, check=False)
