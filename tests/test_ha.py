"""No single point of failure: nodes on a three-member RabbitMQ cluster
(quorum queues by the virtual host's default) and on Redis with Sentinel,
with members killed (SIGKILL) while commands, inbound messages and a
create storm flow.  Each time: no command lost or done twice, no inbound
message lost, no key run by two nodes at once, the sessions keep running;
the time until the fleet works again is printed (pytest -s).

The servers are the test's own (tests/hacluster.py), started once for the
module (about 30 s), on ports of their own; the sessions are fake session
processes."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import Counter

import pika
import psutil
import pytest

from hacluster import VHOST, RabbitCluster, RedisHA, wait_cluster_ready
from wwnode.amqp.topology import (COMMAND_QUEUES, DEAD_LETTER_QUEUE, LEGACY_EVENT_QUEUES, REROUTE_QUEUE,
                                  declare_topology)
from wwnode.ownership import Leases
from wwnode.procs import command_line
from wwnode.redis_side.store import Store
from support import (Client, FakeSessions, NodeProcess, all_gone, idle_cgroup, new_phone, processes_using,
                     purge_queues, wait_for)

pytestmark = pytest.mark.services

FAST = {"lease_ttl": 6, "heartbeat_interval": 0.5, "node_queue_ttl": 8, "amqp_heartbeat": 2, "max_sessions": 20}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ha")
    cluster, redis_ha = RabbitCluster(folder / "rabbitmq"), RedisHA(folder / "redis")
    try:
        redis_ha.start()
        cluster.start()
        yield cluster, redis_ha
    finally:
        cluster.stop()
        redis_ha.stop()


@pytest.fixture
def ha(servers):
    """The servers, Redis whole again and emptied, the queues emptied.  A
    RabbitMQ member an earlier test killed stays down (two of three still
    serve) unless the test asks for ``whole_cluster``."""
    cluster, redis_ha = servers
    redis_ha.heal()
    r = redis_ha.client()
    r.flushdb()
    r.close()
    # What an earlier test left in the queues (a failed one's commands) is not this test's.
    client = Client(cluster.url(cluster.any_alive()))
    purge_queues(client.conn, COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE, REROUTE_QUEUE, "wa.node.ha-a",
                                                                      "wa.node.ha-b"))
    client.close()
    return cluster, redis_ha


@pytest.fixture
def whole_cluster(ha):
    """All three members up: a member killed by an earlier test is started
    again (it rejoins), so this test may kill one."""
    cluster, _ = ha
    for member in cluster.members:
        if not member.alive:
            cluster.restart(member)
    return ha


@pytest.fixture
def fleet(tmp_path, ha):
    """Start fake-session nodes on the cluster and Sentinel; each is
    stopped at the end, and none of its processes may be left."""
    cluster, redis_ha = ha
    fake = FakeSessions(tmp_path / "fake")
    started: list[NodeProcess] = []
    base = {"LOAD_CGROUP_ROOT": str(idle_cgroup(tmp_path / "idle-cgroup")), "FAKESESSION_DIR": str(fake.dir),
            "REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_SENTINELS": redis_ha.sentinels,
            "REDIS_MASTER_NAME": redis_ha.MASTER_NAME}

    def start(node_id: str, first_member: int, vhost: str = VHOST) -> NodeProcess:
        settings = {**base, "RABBIT_MQ_URL": cluster.urls(first_member, vhost),
                    **{k.upper(): str(v) for k, v in FAST.items()}}
        node = NodeProcess(node_id, tmp_path / node_id, settings, session_module="fakesession")
        started.append(node)
        return node

    start.fake = fake
    yield start
    for node in started:
        node.terminate()
    for node in started:
        wait_for(lambda: all_gone(processes_using(node.data_dir)), timeout=15, what="no session process left")


def client_on(cluster, member, vhost: str = VHOST) -> Client:
    """A client of the service on one member, publishing with confirms (a
    client that does not may lose a message in any broker failure)."""
    client = Client(cluster.url(member, vhost))
    client.ch.confirm_delivery()
    return client


def await_consuming(cluster, nodes, vhost: str = VHOST, timeout: float = 30) -> None:
    """Until every node consumes creates through a live member (a member an
    earlier test killed still lists the consumers it had: the queue's own
    consumer count is not the nodes'); a timeout says what the queues hold,
    who consumes them and what the nodes' logs said last."""
    try:
        wait_for(lambda: cluster.live_consumers("create_instance", vhost) == len(nodes), timeout=timeout,
                 what=f"{len(nodes)} nodes consuming create_instance")
    except AssertionError as e:
        tails = [f"  {n.node_id}| {line}" for n in nodes for line in n.output().splitlines()[-30:]]
        listed = cluster.any_alive().ctl("list_consumers", "-p", vhost, check=False).stdout.decode()
        raise AssertionError("\n".join([str(e), cluster.queues(), listed, *tails])) from None


def running_keys(node) -> Counter:
    """Keys whose session process runs under this node now (a key twice:
    two processes)."""
    keys = Counter()
    try:
        for child in psutil.Process(node.proc.pid).children():
            cmd = command_line(child.cmdline())  # a warm start's title too
            if "--key" in cmd and child.status() != psutil.STATUS_ZOMBIE:
                keys[cmd[cmd.index("--key") + 1]] += 1
    except psutil.Error:
        pass
    return keys


class Watch:
    """Samples, on a thread, which node runs which key: a key running on two
    nodes at once (or twice on one) is an overlap."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.overlaps: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = Counter()
            for node in self.nodes:
                total.update(running_keys(node))
            self.overlaps += [k for k, n in total.items() if n > 1]
            self._stop.wait(0.05)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        return self.overlaps


class Traffic:
    """Sends with ids and inbound messages for running keys, and the checks
    that none was lost or done twice."""

    def __init__(self, client: Client, fake: FakeSessions, phones: dict[str, str]):
        self.client, self.fake, self.phones = client, fake, phones
        self.friend = new_phone()
        self.sends: dict[str, str] = {}  # command id -> text
        self.inbound: set[str] = set()
        self.n = itertools.count(1)

    def send(self, key: str) -> str:
        n = next(self.n)
        cid = f"ha-send-{n}"
        self.sends[cid] = f"ha text {n} for {key}"
        self.client.publish("send_message", {"key": key, "chat_id": f"{self.friend}@c.us", "message": self.sends[cid],
                                             "id": cid})
        return cid

    def deliver(self, key: str) -> str:
        msg = self.fake.deliver(self.phones[key], self.friend, f"ha inbound {next(self.n)}")
        self.inbound.add(msg)
        return msg

    def round(self) -> None:
        for key in self.phones:
            self.send(key)
            self.deliver(key)

    def answered(self, cid: str) -> bool:
        return bool(self.client.find("message_sent_instance", command_id=cid))

    def arrived(self, msg: str) -> bool:
        return any(e["message"]["id"]["id"] == msg for e in self.client.find("message_instance"))

    def check(self) -> None:
        """Every send answered once and sent once; every inbound message
        published (once per event id)."""
        wait_for(lambda: all(self.answered(c) for c in self.sends), timeout=60, interval=0.2,
                 what="every send answered")
        wait_for(lambda: all(self.arrived(m) for m in self.inbound), timeout=30, interval=0.2, what="every inbound")
        assert not self.client.find("command_failed", command="send_message")
        sent = Counter(m["body"] for phone in self.phones.values() for m in self.fake.sent_by(phone))
        assert [t for t in self.sends.values() if sent[t] != 1] == []  # sent exactly once each
        events = {e["id"]: e for e in self.client.find("message_instance")}  # a replayed event keeps its id
        per_message = Counter(e["message"]["id"]["id"] for e in events.values())
        assert [m for m in self.inbound if per_message[m] != 1] == []


def what_became_of(keys: list[str], client: Client, redis_ha: RedisHA, nodes) -> str:
    """For a failed wait: each key's lease, state and events, and what the
    nodes' logs say of it."""
    r = redis_ha.client()
    lines = []
    for key in keys:
        events = [(e["event"], e.get("state") or e.get("reason") or "") for e in client.events if e.get("key") == key]
        lines.append(f"{key}: owner {r.get(f'instances:{key}:owner')!r} state {r.hgetall(f'instances:{key}:state')!r} "
                     f"running {[n.node_id for n in nodes if running_keys(n)[key]]} events {events}")
        for node in nodes:
            text = node.out_path.read_text(errors="replace") if node.out_path.exists() else ""
            lines += [f"  {node.node_id}| {line}" for line in text.splitlines() if f"{key} " in line or
                      f"{key}:" in line or line.endswith(key)][-15:]
    r.close()
    return "\n".join(lines)


def make_ready(client: Client, fake: FakeSessions, keys: list[str]) -> dict[str, str]:
    """Create these keys (each scans itself) and wait until all are ready."""
    phones = {key: new_phone() for key in keys}
    for key in keys:
        fake.script(key, scan_after_ms=30, me=phones[key])
        client.publish("create_instance", {"key": key})
    for key in keys:
        client.expect("ready_instance", key=key, timeout=60)
    return phones


def works_again(traffic: Traffic, key: str):
    """A probe: a send answered and an inbound message published, after the
    fault."""
    cid, msg = traffic.send(key), traffic.deliver(key)
    return lambda: traffic.answered(cid) and traffic.arrived(msg)


def test_the_broker_member_of_a_node_and_the_queue_leader_die_while_commands_flow(whole_cluster, fleet, ha):
    cluster, redis_ha = ha
    client = client_on(cluster, cluster.members[1])
    declare_topology(client.ch)  # as a node would: the queues' leaders are where they were declared
    client.close()
    leader = cluster.leader_of("send_message")
    others = [m for m in cluster.members if m is not leader]
    # Node a, the router, is on the leader's member, node b on another; the
    # client on the third.
    client = client_on(cluster, others[1])
    a = fleet("ha-a", cluster.members.index(leader))
    r = redis_ha.client()
    wait_for(lambda: r.hget("nodes:ha-a", "router") == "1", timeout=30, what="node a routing")
    r.close()
    b = fleet("ha-b", cluster.members.index(others[0]))
    await_consuming(cluster, (a, b))
    phones = make_ready(client, fleet.fake, [f"mq-{i}" for i in range(4)])
    traffic = Traffic(client, fleet.fake, phones)
    watch = Watch([a, b])
    for _ in range(3):
        traffic.round()
    assert cluster.connections_on(leader) >= 2  # node a's two connections, at least
    types = cluster.queue_types()
    assert {types[q] for q in ("create_instance", "send_message", "message_instance", "wa.node.ha-a")} == {"quorum"}
    assert types[client.queue] == "classic"  # a client's exclusive tap

    started = time.monotonic()
    leader.kill()
    wait_cluster_ready(works_again(traffic, "mq-0"))
    took = time.monotonic() - started
    for _ in range(3):
        traffic.round()
    traffic.check()
    assert watch.stop() == []
    assert cluster.leader_of("send_message") is not leader
    assert all(fleet.fake.starts(key) == 1 for key in phones)  # the sessions ran on
    assert a.alive() and b.alive()
    r = redis_ha.client()
    routers = [n for n in ("ha-a", "ha-b") if r.hget(f"nodes:{n}", "router") == "1"]
    r.close()
    assert len(routers) == 1
    print(f"\nRabbitMQ member killed (the router's broker, leader of send_message): the fleet works again "
          f"after {took:.1f} s; {len(traffic.sends)} sends, {len(traffic.inbound)} inbound, "
          f"0 lost, 0 duplicated, 0 overlaps")


def test_the_redis_master_dies_and_sentinel_promotes_the_replica(fleet, ha):
    cluster, redis_ha = ha
    a, b = fleet("ha-a", 0), fleet("ha-b", 1)  # each moves to the next member if its first is down
    client = client_on(cluster, cluster.any_alive())
    await_consuming(cluster, (a, b))
    phones = make_ready(client, fleet.fake, [f"rd-{i}" for i in range(4)])
    traffic = Traffic(client, fleet.fake, phones)
    watch = Watch([a, b])
    traffic.round()
    r = redis_ha.client()
    owners = {key: r.get(f"instances:{key}:owner") for key in phones}
    r.close()

    old = redis_ha.kill_master()
    traffic.round()
    started = time.monotonic()
    new = redis_ha.wait_promoted(old)
    promoted = time.monotonic() - started
    # Works again: a new key created and ready (a claim in Redis), a send
    # answered, an inbound message published.
    fresh = f"rd-new-{new}"
    fleet.fake.script(fresh, scan_after_ms=30, me=new_phone())
    client.publish("create_instance", {"key": fresh})
    probe = works_again(traffic, "rd-1")
    wait_cluster_ready(lambda: probe() and bool(client.find("ready_instance", key=fresh)))
    took = time.monotonic() - started
    traffic.round()
    traffic.check()
    assert watch.stop() == []
    r = redis_ha.client()
    assert {key: r.get(f"instances:{key}:owner") for key in phones} == owners  # the same leases, same fences
    r.close()
    assert all(fleet.fake.starts(key) == 1 for key in phones)
    print(f"\nRedis master killed: Sentinel promoted the replica after {promoted:.1f} s; the fleet works again "
          f"(a create, a send, an inbound) after {took:.1f} s; 0 lost, 0 duplicated, 0 overlaps")


def test_a_broker_member_and_the_redis_master_die_during_a_create_storm(whole_cluster, fleet, ha):
    cluster, redis_ha = ha
    a, b = fleet("ha-a", 0), fleet("ha-b", 1)
    client = client_on(cluster, cluster.members[2])
    await_consuming(cluster, (a, b))
    watch = Watch([a, b])
    keys = [f"storm-{i}" for i in range(16)]
    phones = {key: new_phone() for key in keys}
    for key in keys:
        fleet.fake.script(key, scan_after_ms=30, me=phones[key])
    for key in keys[:8]:
        client.publish("create_instance", {"key": key})
    client.expect("state_instance", key="storm-0", timeout=30)  # the storm has begun

    started = time.monotonic()
    cluster.members[0].kill()  # node a's broker
    old = redis_ha.kill_master()
    for key in keys[8:]:
        client.publish("create_instance", {"key": key})
    redis_ha.wait_promoted(old)

    def not_ready() -> list[str]:
        return [k for k in keys if not client.find("ready_instance", key=k)]

    def explain(e: AssertionError) -> AssertionError:
        return AssertionError(f"{e}\n{what_became_of(not_ready(), client, redis_ha, (a, b))}\n{cluster.queues()}")

    held_back = []
    try:
        wait_cluster_ready(lambda: not not_ready(), timeout=60)
    except AssertionError as e:
        # RabbitMQ 3.10 keeps a create it had handed through the dead
        # member to a consumer the node had just cancelled (placement
        # consumes again under a new priority) checked out to that dead
        # consumer: counted unacked, the consumer still listed, and not
        # given back when the member returns.  A new leader of the queue
        # looks at every consumer again and gives them back: the
        # operator's remedy (docs/ha.md).  Anything else missing is a failure.
        held_back = not_ready()
        if cluster.queue_counts("create_instance")["messages_unacknowledged"] < len(held_back):
            raise explain(e) from None
        cluster.restart(cluster.members[0])
        cluster.new_leader("create_instance")
        try:
            wait_cluster_ready(lambda: not not_ready(), timeout=60)
        except AssertionError as e2:
            raise explain(e2) from None
    took = time.monotonic() - started
    traffic = Traffic(client, fleet.fake, phones)
    traffic.round()
    traffic.check()
    assert watch.stop() == []
    assert not client.find("command_failed", command="create_instance")
    running = running_keys(a) + running_keys(b)
    assert running == Counter({key: 1 for key in keys})  # each key once in the fleet
    r = redis_ha.client()
    for node in (a, b):
        for key in running_keys(node):
            assert r.get(f"instances:{key}:owner").rsplit(":", 1)[0] == node.node_id
    r.close()
    print(f"\ncreate storm ({len(keys)} keys) with node a's RabbitMQ member and the Redis master killed: every key "
          f"ready, once, {took:.1f} s after the kills; {len(traffic.sends)} sends, 0 lost, 0 duplicated, 0 overlaps"
          + (f"; {held_back} held by RabbitMQ for node a's consumer on the dead member until it was back"
             if held_back else ""))


def test_a_lease_write_no_replica_acknowledged_does_not_count(ha):
    """A replica that stops answering (SIGSTOP: still connected, so the
    master counts it) acknowledges nothing: a claim is given back and says
    "cannot say now", a renewal counts as not made.  Once it answers, both
    go through."""
    cluster, redis_ha = ha
    leases = Leases(6.0)
    store = Store("redis://127.0.0.1:1/0", "ha-unit", qr_ttl=60, lease_ttl=6.0, token_of=leases.token_of,
                  sentinels=redis_ha.sentinels, master_name=redis_ha.MASTER_NAME, replica_wait=0.3)
    master = redis_ha.master_port()
    replica = next(p for p in redis_ha.ports if p != master)
    r = redis_ha.client()
    try:
        token = store.claim("held")
        assert isinstance(token, str) and r.get("instances:held:owner") == token
        redis_ha.procs[replica].send_signal(signal.SIGSTOP)
        try:
            assert store.claim("k") is None  # not replicated: not taken
            assert r.get("instances:k:owner") is None  # and given back
            assert store.renew({"held": token}, True, {"sessions": 1}) is None
        finally:
            redis_ha.procs[replica].send_signal(signal.SIGCONT)
        wait_for(lambda: isinstance(store.claim("k"), str), timeout=10, what="the claim once the replica answers")
        assert store.renew({"held": token}, True, {"sessions": 1}) == {"held": 1}
    finally:
        r.close()
        store.close()


def test_a_queue_no_live_member_serves_leaves_the_others_working(whole_cluster, fleet, ha):
    """On a virtual host of classic queues (each lives on the member that
    declared it), ``message_action`` declared on member 0 and member 0
    killed: the cluster knows the queue and cannot serve it (404 to a
    declaration, "home node ... down").  The nodes carry on with every
    other queue (creates, sends, events), and consume it again once its
    member is back."""
    cluster, redis_ha = ha
    holder = cluster.members[0]
    cluster.add_vhost("ha-classic")
    try:
        first = Client(cluster.url(holder, "ha-classic"))
        first.ch.queue_declare("message_action", durable=True)
        first.close()
        client = client_on(cluster, cluster.members[2], "ha-classic")
        holder.kill()
        a, b = fleet("ha-a", 1, "ha-classic"), fleet("ha-b", 2, "ha-classic")
        await_consuming(cluster, (a, b), "ha-classic")
        phones = make_ready(client, fleet.fake, ["unserved-0", "unserved-1"])
        traffic = Traffic(client, fleet.fake, phones)
        traffic.round()
        traffic.check()
        assert any("cannot serve message_action" in node.out_path.read_text() for node in (a, b))

        cluster.restart(holder)
        wait_for(lambda: client.depth("message_action")[1] == 1, timeout=30, what="message_action consumed again")
        traffic.round()
        traffic.check()
        client.close()
    finally:
        if not holder.alive:
            cluster.restart(holder)
        cluster.delete_vhost("ha-classic")  # its nodes, still running, are stopped by the fixture


def test_creates_a_cancelled_consumer_held_on_a_dead_member_come_back_with_a_new_leader(whole_cluster, ha):
    """What docs/ha.md says of RabbitMQ 3.10, and its remedy:
    messages a consumer held when it was cancelled (as placement does),
    its member then killed, stay unacknowledged, also once the member is
    back; a new leader of the queue gives them back."""
    cluster, _ = ha
    queue = "held-by-a-cancelled-consumer"
    publisher = pika.BlockingConnection(pika.URLParameters(cluster.url(cluster.members[2])))
    ch = publisher.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue, durable=True)
    for i in range(3):
        ch.basic_publish("", queue, b"held %d" % i)
    publisher.close()  # gone before the queue's members change under it
    holder = cluster.members[0]
    conn = pika.BlockingConnection(pika.URLParameters(cluster.url(holder)))
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=2)
        got = []
        tag = ch.basic_consume(queue, lambda ch_, method, props, body: got.append(method.delivery_tag))
        while len(got) < 2:
            conn.process_data_events(0.1)
        ch.basic_cancel(tag)  # the two stay unacknowledged on this channel
        holder.kill()
        wait_for(lambda: cluster.queue_counts(queue) == {"messages_ready": 1, "messages_unacknowledged": 2,
                                                         "consumers": 1}, timeout=30, interval=0.5,
                 what="the two held for the dead consumer")
        cluster.restart(holder)
        wait_for(lambda: holder.ctl("eval", "length(rabbit_nodes:all_running()).").stdout.decode().strip() == "3",
                 timeout=60, interval=0.5, what="the member back in the cluster")
        assert cluster.queue_counts(queue)["messages_unacknowledged"] == 2  # still held
        cluster.new_leader(queue)
        wait_for(lambda: cluster.queue_counts(queue) == {"messages_ready": 3, "messages_unacknowledged": 0,
                                                         "consumers": 0}, timeout=30, interval=0.5,
                 what="the held messages given back")
    finally:
        if not holder.alive:
            cluster.restart(holder)
        cluster.any_alive().ctl("delete_queue", "-p", VHOST, queue, check=False)
