"""Servers of the high-availability tests' own: a three-member RabbitMQ
cluster and a Redis master with a replica and three sentinels, from
Debian's packages, on free ports and in a folder of the test's, so the
machine's own RabbitMQ and Redis are never touched.  (The machine's epmd,
Erlang's name server, is shared: it serves every Erlang program there.)

Members are killed with SIGKILL (a machine that dies, not a clean stop)
and started again on the same folder, where they rejoin by themselves."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis as redislib
from redis.sentinel import Sentinel

from support import free_port, port_open, wait_for

RABBIT_BIN = "/usr/lib/rabbitmq/bin"
VHOST = "ha"


class RabbitMember:
    """One RabbitMQ node of the cluster, run in the foreground (its own
    process group, so a kill takes its whole Erlang VM)."""

    def __init__(self, folder: Path, name: str, home: Path, seed: str | None):
        self.dir = folder
        self.name = name
        self.home = home  # holds the cluster's shared Erlang cookie
        self.port = free_port()
        self.dist_port = free_port()
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)
        # A first start with an empty database joins the seed member.
        conf = ["loopback_users = none", "log.console.level = warning"]
        if seed:
            conf += ["cluster_formation.peer_discovery_backend = classic_config",
                     f"cluster_formation.classic_config.nodes.1 = {seed}",
                     # No random wait before joining (it guards against members
                     # racing to form two clusters; here only the seed may form one).
                     "cluster_formation.randomized_startup_delay_range.min = 0",
                     "cluster_formation.randomized_startup_delay_range.max = 0",
                     # Started beside the seed: wait for it rather than form a cluster alone.
                     "cluster_formation.discovery_retry_limit = 240",
                     "cluster_formation.discovery_retry_interval = 500"]
        (folder / "rabbitmq.conf").write_text("\n".join(conf) + "\n")

    def env(self) -> dict:
        return {**os.environ, "HOME": str(self.home), "RABBITMQ_NODENAME": self.name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                # Schedulers that sleep when idle: three VMs spinning on a
                # small shared machine would slow everything down.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1} "
                                                       "+sbwt none +sbwtdcpu none +sbwtdio none",
                "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"), "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                "RABBITMQ_LOGS": "-", "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
                # A member that fails to start writes its crash dump here,
                # not into the folder the tests run from.
                "ERL_CRASH_DUMP": str(self.dir / "erl_crash.dump")}

    def start(self) -> None:
        log = open(self.dir / "server.out", "ab")
        self.proc = subprocess.Popen([f"{RABBIT_BIN}/rabbitmq-server"], env=self.env(), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def await_up(self, timeout: float = 120) -> None:
        """Until it takes AMQP connections (its listener opens last)."""
        wait_for(lambda: self.proc.poll() is not None or port_open(self.port), timeout=timeout, interval=0.1,
                 what=f"{self.name} to start")
        assert self.alive, f"{self.name} exited: {(self.dir / 'server.out').read_text()[-2000:]}"

    def await_first_start(self, attempts: int = 3) -> None:
        """Wait until a member started for the first time is up; a port
        taken between its pick and the member's bind (another program on a
        busy machine) means new ports and another start.  (Only the first
        time: a restart keeps its ports, which the nodes' URLs name.)"""
        for attempt in range(attempts):
            try:
                self.await_up()
                return
            except AssertionError as e:
                if ("already_used" not in str(e) and "eaddrinuse" not in str(e)) or attempt == attempts - 1:
                    raise
                self.port, self.dist_port = free_port(), free_port()
                self.start()

    def ctl(self, *args: str, timeout: float = 60, check: bool = True,
            tool: str = "rabbitmqctl") -> subprocess.CompletedProcess:
        done = subprocess.run([f"{RABBIT_BIN}/{tool}", "-q", "-n", self.name, *args], env=self.env(),
                              capture_output=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} on {self.name}: {done.stderr.decode()[-500:]}")
        return done

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to its process group: the member dies as with its machine."""
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class RabbitCluster:
    """Three members; the virtual host ``ha`` has quorum as its default
    queue type, as docs/ha.md tells an operator to set up."""

    def __init__(self, folder: Path, size: int = 3):
        tag = secrets.token_hex(3)
        home = folder / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        names = [f"wwha{i}-{tag}@localhost" for i in range(size)]
        self.members = [RabbitMember(folder / f"m{i}", name, home, names[0] if i else None)
                        for i, name in enumerate(names)]

    def start(self) -> None:
        first = self.members[0]
        # The seed first: a member that joins while the seed is still
        # making its database fails its schema check and exits (seen on a
        # loaded machine); the others, together, once the seed is up.
        first.start()
        first.await_first_start()
        for m in self.members[1:]:
            m.start()
        for m in self.members[1:]:
            m.await_first_start()
        first.ctl("add_vhost", VHOST, "--default-queue-type", "quorum")
        first.ctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
        running = lambda: first.ctl("eval", "length(rabbit_nodes:all_running()).").stdout.decode().strip()  # noqa: E731
        wait_for(lambda: running() == str(len(self.members)), timeout=60, interval=0.5, what="one cluster of all")

    def url(self, member: RabbitMember, vhost: str = VHOST) -> str:
        return f"amqp://guest:guest@127.0.0.1:{member.port}/{vhost}"

    def urls(self, first: int = 0, vhost: str = VHOST) -> str:
        """Every member's URL, comma-separated, starting with member ``first``."""
        order = self.members[first:] + self.members[:first]
        return ",".join(self.url(m, vhost) for m in order)

    def add_vhost(self, vhost: str) -> None:
        """A virtual host of the default kind: classic queues, each on
        the member it was declared on."""
        member = self.any_alive()
        member.ctl("add_vhost", vhost)
        member.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        self.any_alive().ctl("delete_vhost", vhost)

    def any_alive(self) -> RabbitMember:
        return next(m for m in self.members if m.alive)

    def member_named(self, name: str) -> RabbitMember:
        return next(m for m in self.members if m.name == name)

    def leader_of(self, queue: str) -> RabbitMember:
        """The member that leads a quorum queue now."""
        out = self.any_alive().ctl("list_queues", "-p", VHOST, "--no-table-headers", "name", "leader").stdout
        for line in out.decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return self.member_named(parts[1])
        raise AssertionError(f"no leader for {queue}: {out!r}")

    def queues(self) -> str:
        """What each queue holds, and who consumes and leads it (for a
        failure's message)."""
        return self.any_alive().ctl("list_queues", "-p", VHOST, "name", "messages_ready", "messages_unacknowledged",
                                    "consumers", "leader", check=False).stdout.decode()

    def live_consumers(self, queue: str, vhost: str = VHOST) -> int:
        """Consumers of a queue whose channel is on a live member.  A quorum
        queue of RabbitMQ 3.10 keeps listing (and counting) the consumers of
        a member that died, as not active, until that member is back."""
        out = self.any_alive().ctl("list_consumers", "-p", vhost, "--no-table-headers", "queue_name", "channel_pid",
                                   check=False).stdout.decode()
        live = {m.name for m in self.members if m.alive}
        return sum(1 for line in out.splitlines()
                   if line.split("\t")[0] == queue and line.split("\t")[-1].strip("<>").rsplit(".", 3)[0] in live)

    def queue_counts(self, queue: str) -> dict[str, int]:
        fields = ("messages_ready", "messages_unacknowledged", "consumers")
        out = self.any_alive().ctl("list_queues", "-p", VHOST, "--no-table-headers", "name", *fields).stdout.decode()
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == queue:
                return dict(zip(fields, map(int, parts[1:])))
        raise AssertionError(f"no queue {queue}: {out!r}")

    def new_leader(self, queue: str) -> None:
        """Make another member lead a quorum queue, as an operator can
        without a restart: its leader leaves the queue's members, and
        joins them again once another has taken over."""
        leader = self.leader_of(queue)
        other = next(m for m in self.members if m.alive and m is not leader)
        other.ctl("delete_member", "-p", VHOST, queue, leader.name, tool="rabbitmq-queues")
        wait_for(lambda: self.leader_of(queue) is not leader, timeout=30, interval=0.2, what=f"a new leader of {queue}")
        other.ctl("add_member", "-p", VHOST, queue, leader.name, tool="rabbitmq-queues")

    def queue_types(self) -> dict[str, str]:
        out = self.any_alive().ctl("list_queues", "-p", VHOST, "--no-table-headers", "name", "type").stdout
        return dict(line.split()[:2] for line in out.decode().splitlines() if len(line.split()) >= 2)

    def connections_on(self, member: RabbitMember) -> int:
        out = member.ctl("list_connections", "--no-table-headers", "vhost").stdout.decode()
        return sum(1 for line in out.splitlines() if line.strip() == VHOST)

    def restart(self, member: RabbitMember) -> None:
        """Start a killed member again on its folder: it rejoins."""
        member.start()
        member.await_up()

    def stop(self) -> None:
        for m in self.members:
            m.kill()


class RedisHA:
    """A Redis master, one replica, three sentinels watching them (a quorum
    of two): Sentinel promotes the replica about a second after the master
    stops answering."""

    MASTER_NAME = "wwha"

    def __init__(self, folder: Path):
        self.dir = folder
        folder.mkdir(parents=True)
        self.ports = [free_port(), free_port()]  # the first master, its replica
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen] = {}
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"

    def _server(self, port: int, replica_of: int | None) -> None:
        # A replica's full sync starts at once: Redis 7 waits 5 s by default
        # for more replicas to share a diskless transfer, and this one
        # master has one replica (each sync the tests wait for: the first,
        # and every killed server started again).
        args = [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--dbfilename", f"dump-{port}.rdb", "--repl-diskless-sync-delay", "0"]
        if replica_of:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self._spawn(port, args)

    def _spawn(self, port: int, args: list[str]) -> None:
        log = open(self.dir / f"{port}.out", "ab")
        self.procs[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: port_open(port), timeout=10, what=f"redis on {port}")

    def start(self) -> None:
        master, replica = self.ports
        self._server(master, None)
        self._server(replica, master)
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                            f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {master} 2\n"
                            f"sentinel down-after-milliseconds {self.MASTER_NAME} 1000\n"
                            f"sentinel failover-timeout {self.MASTER_NAME} 4000\n"
                            f"sentinel parallel-syncs {self.MASTER_NAME} 1\n")
            self._spawn(port, [self.binary, str(conf), "--sentinel"])
        wait_for(lambda: self.replicas_of(master) == 1, timeout=20, what="the replica in sync")
        wait_for(lambda: all(self._sentinel_sees_replica(p) for p in self.sentinel_ports), timeout=20,
                 what="the sentinels to know the replica")

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def _sentinel_sees_replica(self, port: int) -> bool:
        r = redislib.Redis(port=port, decode_responses=True, socket_timeout=2)
        try:
            return bool(r.sentinel_slaves(self.MASTER_NAME)) and len(r.sentinel_sentinels(self.MASTER_NAME)) >= 2
        except redislib.RedisError:
            return False
        finally:
            r.close()

    def master_port(self) -> int:
        """The master the sentinels name now."""
        for port in self.sentinel_ports:
            r = redislib.Redis(port=port, decode_responses=True, socket_timeout=2)
            try:
                return int(r.sentinel_get_master_addr_by_name(self.MASTER_NAME)[1])
            except (redislib.RedisError, TypeError):
                continue
            finally:
                r.close()
        raise AssertionError("no sentinel answers")

    def replicas_of(self, port: int) -> int:
        r = redislib.Redis(port=port, socket_timeout=2)
        try:
            info = r.info("replication")
            return sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                       and v.get("state") == "online")
        except redislib.RedisError:
            return -1
        finally:
            r.close()

    def client(self, db: int = 0) -> redislib.Redis:
        return redislib.Redis(port=self.master_port(), db=db, decode_responses=True)

    def following_client(self, db: int = 0) -> redislib.Redis:
        """A client of whichever server is master, through the sentinels."""
        sentinel = Sentinel([("127.0.0.1", p) for p in self.sentinel_ports], socket_timeout=2)
        return sentinel.master_for(self.MASTER_NAME, db=db, decode_responses=True, socket_timeout=2)

    def kill_master(self) -> int:
        port = self.master_port()
        self.procs[port].kill()
        self.procs[port].wait()
        return port

    def wait_promoted(self, old: int, timeout: float = 30) -> int:
        wait_for(lambda: self.master_port() != old, timeout=timeout, interval=0.05, what="Sentinel to promote")
        return self.master_port()

    def restart(self, port: int) -> None:
        """Start a killed server again, empty, as a replica of the master
        the sentinels name now, as an operator would bring it back.  (Left
        to find its place, a server that says it is a master waits for a
        sentinel to notice it and send REPLICAOF: seconds more.)"""
        master = self.master_port()
        self._server(port, master)
        wait_for(lambda: self.replicas_of(master) == 1, timeout=30, interval=0.1, what="the old master as replica")

    def heal(self) -> None:
        """Start again the servers killed (as replicas of the master now),
        until the replica acknowledges writes: listed as online, a replica
        just through its full sync can still be slow to, on a loaded
        machine, past what a lease write waits for."""
        for port in self.ports:
            if self.procs[port].poll() is not None:
                self.restart(port)
        wait_for(self.replica_acknowledges, timeout=30, interval=0.1, what="the replica to acknowledge a write")

    def replica_acknowledges(self) -> bool:
        r = redislib.Redis(port=self.master_port(), socket_timeout=2)
        try:
            r.set("ha-test:replication-probe", "1")
            return r.execute_command("WAIT", 1, 500) >= 1
        except redislib.RedisError:
            return False
        finally:
            r.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def wait_cluster_ready(check, timeout: float = 60) -> float:
    """Seconds until ``check()`` holds (the fleet works again)."""
    start = time.monotonic()
    wait_for(check, timeout=timeout, interval=0.05, what="the fleet to work again")
    return time.monotonic() - start
