"""The node's RabbitMQ parts against the real local broker, no browser: a
TCP proxy between them that the test freezes (a link gone silent) or
restores, and the pika self-check."""

from __future__ import annotations

import select
import time
import uuid

import orjson
import pika
import pika.connection
import pytest

from conftest import TEST_VHOST
from support import TcpProxy, amqp_url_via, turn_until, wait_for
from wwnode.amqp import link, nowait
from wwnode.amqp.consumer import Consumer
from wwnode.amqp.holding import HeldBodies
from wwnode.amqp.router import ROUTER_RETRY
from wwnode.amqp.link import RPC_TIMEOUT, Link, PikaUnsupported, check_pika
from wwnode.amqp.publisher import Publisher
from wwnode.amqp.topology import EVENTS_EXCHANGE, Outgoing
from wwnode.amqp.spool import Spool

HEARTBEAT = 1  # seconds; the broker agrees to what the client asks below its own


@pytest.fixture
def proxy():
    p = TcpProxy(5672)
    yield p
    p.close()


@pytest.fixture
def parts(rabbit):
    """Consumers and publishers made by the test, closed at the end, with
    their node queues deleted.  (Ask for it before ``proxy``: the proxy is
    then cut first, and a close cannot wait on a frozen link.)"""
    made = []

    def add(part):
        made.append(part)
        return part

    yield add
    for part in made:
        part.close()
        if isinstance(part, Consumer):
            rabbit.ch.queue_delete(part.node_queue)


def consumer(url: str, got: list, heartbeat: int = HEARTBEAT) -> Consumer:
    return Consumer(url, heartbeat, prefetch=10, node_id=f"amqp-{uuid.uuid4().hex[:8]}", on_command=got.append)


def probe(name: str = "probe") -> tuple[str, Outgoing, list]:
    """An event that records its confirms."""
    event_id = uuid.uuid4().hex
    confirms: list = []
    item = Outgoing(EVENTS_EXCHANGE, name, orjson.dumps({"event": name, "id": event_id}),
                    on_confirmed=lambda: confirms.append(event_id))
    return event_id, item, confirms


def test_a_stalled_confirm_is_bounded_and_the_event_goes_out_once_the_link_is_back(rabbit, parts, proxy, tmp_path):
    publisher = parts(Publisher(amqp_url_via(proxy, TEST_VHOST), HEARTBEAT, Spool(tmp_path / "events.log")))
    turn_until([publisher], lambda: publisher.up, what="the publisher to connect")

    proxy.freeze()
    event_id, item, confirms = probe()
    started = time.monotonic()
    publisher.publish(item)  # waits for a confirm that cannot come
    waited = time.monotonic() - started

    assert waited < publisher.confirm_timeout + 2  # the wait was cut, not left to pika's heartbeat
    assert not publisher.up
    assert [i.routing_key for i in publisher.outbox] == ["probe"] and confirms == []
    assert b"probe" in (tmp_path / "events.log").read_bytes()  # and on disk meanwhile

    proxy.restore()
    turn_until([publisher], lambda: confirms, what="the event to be confirmed on a new connection")
    assert confirms == [event_id] and len(publisher.outbox) == 0
    assert rabbit.expect("probe", timeout=5)["id"] == event_id
    assert (tmp_path / "events.log").stat().st_size == 0  # nothing waits: journal emptied


def test_a_silent_link_is_detected_within_two_heartbeats(rabbit, parts, proxy):
    got: list = []
    c = parts(consumer(amqp_url_via(proxy, TEST_VHOST), got))
    turn_until([c], lambda: c.up, what="the consumer to connect")

    proxy.freeze()
    started = time.monotonic()
    turn_until([c], lambda: not c.up, timeout=10, what="the silent link to be dropped")
    # pika's own check would take 2 x (heartbeat + 5 s); the link's takes two
    # heartbeats after the last byte (and a byte may have just come).
    assert time.monotonic() - started < 3 * HEARTBEAT + 1

    proxy.restore()
    turn_until([c], lambda: c.up, what="a new connection")


def test_the_create_consumer_is_changed_without_waiting_for_the_broker(rabbit, parts, proxy):
    """F7: the broker answers behind whatever it already sent on the
    connection, big command bodies included; the create consumer's updates
    (admission's cancel, placement's new priority) wait for nothing.  A
    broker that answers nothing for now does not cut the link."""
    got: list = []
    c = parts(consumer(amqp_url_via(proxy, TEST_VHOST), got, heartbeat=30))  # so the silence check does not come first
    turn_until([c], lambda: c.is_router, what="the consumer to connect")
    turn_until([c], lambda: rabbit.depth("create_instance")[1] == 1, what="the create consumer")

    proxy.freeze()
    c.set_accepting_creates(False)  # a cancel
    c.set_accepting_creates(True, priority=7, prefetch=2)  # a consumer anew, under a new priority and prefetch
    c.set_accepting_creates(True, priority=3)  # and again
    assert c.up  # nothing waited for: a wait would have ended in a cut link
    proxy.restore()

    # Once the broker had them: one create consumer, which takes creates.
    turn_until([c], lambda: rabbit.depth("create_instance")[1] == 1, what="one create consumer again")
    rabbit.publish("create_instance", {"key": "after-the-updates"})
    turn_until([c], lambda: any(d.queue == "create_instance" for d in got), what="the create delivered")
    assert c.up and c.link.losses == 0
    c.set_accepting_creates(False)
    turn_until([c], lambda: rabbit.depth("create_instance")[1] == 0, what="the create consumer cancelled")


def test_a_create_consumer_the_broker_refuses_later_is_consumed_again_once_it_can_be(rabbit, parts, rabbit_url):
    """A consume not waited for that the broker refuses closes its channel
    (here: another connection holds the queue with an exclusive consumer,
    as a careless operator's tool might); the node sees the channel closed
    at its next update and consumes the queue again until it can."""
    got: list = []
    c = parts(consumer(rabbit_url, got, heartbeat=30))
    turn_until([c], lambda: c.is_router, what="the consumer to connect")
    c.set_accepting_creates(False)
    turn_until([c], lambda: rabbit.depth("create_instance")[1] == 0, what="the create consumer cancelled")
    other = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        other.channel().basic_consume("create_instance", lambda *_: None, exclusive=True)
        c.set_accepting_creates(True, priority=2)  # refused, which nobody waits to hear

        def refused_and_noticed() -> bool:
            c.set_accepting_creates(True, priority=2)  # the gate's update of every turn
            return "create_instance" not in c.consumer_tags
        turn_until([c], refused_and_noticed, what="the refusal noticed")
    finally:
        other.close()
    turn_until([c], lambda: "create_instance" in c.consumer_tags and c.up, what="the create queue consumed again")
    rabbit.publish("create_instance", {"key": "after-the-refusal"})
    turn_until([c], lambda: any(d.queue == "create_instance" for d in got), what="the create delivered")


def test_a_consumer_closes_cleanly_with_a_cancel_still_unanswered(rabbit, parts, rabbit_url):
    """pika's close cancels every consumer and asserts each is active; one
    cancelled without waiting, its answer not yet read (a node stopped
    during a flood of big bodies), failed that assertion."""
    got: list = []
    c = consumer(rabbit_url, got, heartbeat=30)
    turn_until([c], lambda: c.is_router, what="the consumer to connect")
    c.set_accepting_creates(True, priority=4)  # the old consumer's cancel: not waited for
    c.set_accepting_creates(False)  # nor this one's
    c.close()  # no pump between: both answers still to come
    assert not c.up
    wait_for(lambda: rabbit.depth("create_instance")[1] == 0, what="no create consumer left")


def test_a_declare_wait_is_bounded(rabbit, parts, proxy):
    got: list = []
    c = parts(consumer(amqp_url_via(proxy, TEST_VHOST), got, heartbeat=30))
    turn_until([c], lambda: c.is_router, what="the consumer to connect")
    rabbit.ch.queue_delete(c.node_queue)  # the broker cancels its consumer...
    turn_until([c], lambda: c.node_queue not in c.consumer_tags, what="the cancel to arrive")

    proxy.freeze()
    started = time.monotonic()
    assert c.connect(time.monotonic()) is False  # ...and the node declares it again, with no answer
    assert time.monotonic() - started < RPC_TIMEOUT + 2
    assert not c.up

    proxy.restore()
    turn_until([c], lambda: c.node_queue in c.consumer_tags, what="the queue declared and consumed again")


def test_one_consumer_routes_for_the_fleet_and_another_takes_over_when_it_goes(rabbit, parts, rabbit_url):
    got_a: list = []
    got_b: list = []
    a = parts(consumer(rabbit_url, got_a, heartbeat=30))
    b = parts(consumer(rabbit_url, got_b, heartbeat=30))
    turn_until([a, b], lambda: a.is_router or b.is_router, what="a router")
    turn_until([a, b], lambda: a.up and b.up, what="both consumers up")
    router, other, got_router = (a, b, got_a) if a.is_router else (b, a, got_b)
    assert not other.is_router

    rabbit.publish("send_message", {"key": "k1"})
    turn_until([a, b], lambda: got_router, what="the router to get the command")
    assert [d.queue for d in got_a + got_b] == ["send_message"]
    router.ack(got_router[0])

    router.close()
    turn_until([other], lambda: other.is_router, timeout=ROUTER_RETRY + 5, what="the other to take over")


def test_an_ack_from_an_earlier_connection_is_ignored(rabbit, parts, proxy):
    got: list = []
    c = parts(consumer(amqp_url_via(proxy, TEST_VHOST), got, heartbeat=30))
    turn_until([c], lambda: c.node_queue in c.consumer_tags, what="the consumer to connect")
    rabbit.publish(c.node_queue, {"key": "k1"})  # as the router hands a command over
    turn_until([c], lambda: got, what="the command")

    proxy.cut()
    turn_until([c], lambda: not c.up, what="the cut to be noticed")
    proxy.restore()
    turn_until([c], lambda: len(got) == 2, what="the command delivered again")
    old, new = got
    assert new.redelivered and new.generation == old.generation + 1
    assert (old.queue, old.tag) == (new.queue, new.tag)  # the same tag, on a new channel
    c.ack(old)  # void: it must not ack the new delivery
    c.close()
    turn_until([], lambda: rabbit.depth(c.node_queue)[0] == 1, what="the command back in its queue")


def test_a_command_read_while_an_ack_was_written_is_known_to_wait(rabbit, parts, rabbit_url):
    """pika reads whenever it writes: an ack written while the next command
    is already in the socket takes that command in, and the socket then
    shows ``poll()`` nothing.  The consumer says a command waits
    (``pending``), so the node's loop pumps at once instead of sleeping a
    whole turn (a send took a quarter second more, one in twelve, when the
    acks came later in the turn than the pump)."""
    got: list = []
    c = parts(consumer(rabbit_url, got, heartbeat=30))
    turn_until([c], lambda: c.node_queue in c.consumer_tags, what="the consumer to connect")
    rabbit.publish(c.node_queue, {"key": "k1"})
    turn_until([c], lambda: got, what="the first command")
    rabbit.publish(c.node_queue, {"key": "k2"})
    sock = c.socket()
    wait_for(lambda: select.select([sock], [], [], 0)[0], what="the second command in the socket")
    assert not c.pending()

    c.ack(got[0])  # its write reads the second command
    assert c.pending() and not select.select([sock], [], [], 0)[0] and len(got) == 1
    c.pump(time.monotonic())  # a pump that waits for nothing hands it over
    assert [orjson.loads(d.body)["key"] for d in got] == ["k1", "k2"] and not c.pending()


def test_a_create_is_acknowledged_only_at_the_next_update_of_the_create_consumer(rabbit, parts, rabbit_url):
    """Placement (``creategate.py``): the broker must see the node's new
    priority, the session a create started counted, before the create's ack
    frees its place in the prefetch.  An ack asked before the update is not
    sent: on a close the create goes back to its queue."""
    got: list = []
    c = parts(consumer(rabbit_url, got, heartbeat=30))
    turn_until([c], lambda: "create_instance" in c.consumer_tags, what="the create consumer")
    rabbit.publish("create_instance", {"key": "k1"})
    turn_until([c], lambda: got, what="the create")
    c.ack(got[0])
    c.close()  # the broker handles what the connection sent before it closes
    wait_for(lambda: rabbit.depth("create_instance")[0] == 1, what="the create back in its queue, never acked")

    again: list = []
    c2 = parts(consumer(rabbit_url, again, heartbeat=30))
    turn_until([c2], lambda: again, what="the create delivered again")
    c2.ack(again[0])
    c2.set_accepting_creates(True, priority=5)  # the update: a new priority, then the ack
    c2.close()
    assert rabbit.depth("create_instance")[0] == 0


def test_a_pika_without_an_internal_fails_loudly(rabbit_url, monkeypatch):
    check_pika()  # this pika has them all
    monkeypatch.delattr(pika.connection.Connection, "add_on_connection_blocked_callback")
    with pytest.raises(PikaUnsupported, match="Connection.add_on_connection_blocked_callback"):
        check_pika()
    monkeypatch.undo()
    assert not issubclass(PikaUnsupported, link.BROKER_ERRORS)  # so nothing retries it away


def test_a_connection_without_an_internal_is_refused_at_start(rabbit_url, monkeypatch):
    # As if a later pika had renamed one of the attributes the link uses.
    monkeypatch.setattr(link, "INTERNALS", link.INTERNALS + ("renamed_in_a_later_pika",))
    lnk = Link(rabbit_url, HEARTBEAT, "event", on_open=lambda: None)
    with pytest.raises(PikaUnsupported, match="renamed_in_a_later_pika"):
        turn_until([lnk], lambda: False, what="the check to fail")
    assert not lnk.up


def test_a_list_of_brokers_connects_to_one_that_answers_and_moves_on_when_it_goes(rabbit, parts, rabbit_url):
    """Two ways to the broker (proxies, standing in for two cluster
    members) after an address where nothing listens: the link takes the
    first that answers, and when that one dies it goes to the other."""
    nowhere = TcpProxy(5672)
    nowhere.close()  # its port: nothing listens there now
    first, second = TcpProxy(5672), TcpProxy(5672)
    try:
        urls = ",".join(amqp_url_via(p, TEST_VHOST) for p in (nowhere, first, second))
        publisher = parts(Publisher(urls, HEARTBEAT))
        turn_until([publisher], lambda: publisher.up, what="the publisher to connect")
        assert publisher.link.url == amqp_url_via(first, TEST_VHOST)

        first.cut()
        first.close()  # that broker is gone for good
        turn_until([publisher], lambda: publisher.link.url == amqp_url_via(second, TEST_VHOST) and publisher.up,
                   timeout=20, what="the publisher on the second broker")
        event_id, item, confirms = probe()
        publisher.publish(item)
        turn_until([publisher], lambda: confirms == [event_id], what="the event confirmed")
        assert publisher.link.losses == 1
    finally:
        first.close()
        second.close()


def test_an_event_refused_again_and_again_gets_a_new_connection(rabbit, parts, rabbit_url, tmp_path):
    """A queue that refuses every message (full, reject-publish) bound to
    the event: the publisher asks again, and after five refusals in a row
    makes a new connection; once the queue takes messages, the event goes
    out, once."""
    refusing = rabbit.ch.queue_declare("", exclusive=True, arguments={"x-max-length": 0,
                                                                      "x-overflow": "reject-publish"}).method.queue
    rabbit.ch.queue_bind(refusing, EVENTS_EXCHANGE, routing_key="refused_probe")
    publisher = parts(Publisher(rabbit_url, HEARTBEAT, Spool(tmp_path / "events.log")))
    turn_until([publisher], lambda: publisher.up, what="the publisher to connect")
    event_id, item, confirms = probe("refused_probe")
    publisher.publish(item)
    turn_until([publisher], lambda: publisher.link.losses == 1, what="a new connection after the refusals")
    assert confirms == []
    rabbit.ch.queue_unbind(refusing, EVENTS_EXCHANGE, routing_key="refused_probe")
    turn_until([publisher], lambda: confirms == [event_id], what="the event out once the queue is gone")


def test_a_paced_publisher_waits_for_confirms_no_longer_than_told_and_keeps_the_rest_in_order(rabbit, parts,
                                                                                              rabbit_url):
    """The node paces each turn: past its time, what waits stays in the
    outbox, in order, for the next turn's drain (a clock the test turns:
    each look at it is 0.2 s later)."""
    ticks = iter(range(10_000))
    publisher = parts(Publisher(rabbit_url, HEARTBEAT, clock=lambda: next(ticks) * 0.2))
    turn_until([publisher], lambda: publisher.up, what="the publisher to connect")
    probes = [probe(f"paced_{i}") for i in range(5)]
    publisher.pace(0.5)  # looked at: 0.0
    for _, item, _ in probes:
        publisher.publish(item)  # each publish looks again before it waits: 0.2, 0.4, then past 0.5
    assert [c for _, _, c in probes] == [[probes[0][0]], [probes[1][0]], [], [], []]
    assert [i.routing_key for i in publisher.outbox] == ["paced_2", "paced_3", "paced_4"]
    assert publisher.behind()

    publisher.pace(None)
    publisher.drain()
    assert [c for _, _, c in probes] == [[event_id] for event_id, _, _ in probes]
    assert not publisher.behind()


def test_an_item_gone_stale_in_the_outbox_leaves_it_unsent(rabbit, parts, rabbit_url):
    """A command handed on whose delivery died meanwhile (``stale``) is
    dropped; what follows goes out."""
    publisher = parts(Publisher(rabbit_url, HEARTBEAT))
    turn_until([publisher], lambda: publisher.up, what="the publisher to connect")
    publisher.pace(0.0)  # a turn with no time left: both wait
    _, gone, gone_confirms = probe("stale_probe")
    gone.stale = lambda: True
    event_id, item, confirms = probe("fresh_probe")
    publisher.publish(gone)
    publisher.publish(item)
    publisher.pace(None)
    publisher.drain()
    assert gone_confirms == [] and confirms == [event_id] and len(publisher.outbox) == 0
    assert rabbit.expect("fresh_probe", timeout=5)["id"] == event_id and not rabbit.find("stale_probe")


MIB = 1024 * 1024


def test_command_bodies_held_at_once_stay_under_the_limit_and_keep_their_order(rabbit, parts, rabbit_url):
    """RabbitMQ's prefetch counts messages: ten large sends were all the
    node's at once.  Past COMMAND_BYTES_LIMIT a send is put back and its
    queue waits (the router stays the router), and the sends come, each
    once, in their order, as room is made."""
    got: list = []
    held: list[int] = []

    def on_command(d):
        got.append(d)
        held.append(c.bodies.held)

    c = parts(Consumer(rabbit_url, 30, prefetch=10, node_id=f"amqp-{uuid.uuid4().hex[:8]}", on_command=on_command,
                       bytes_limit=3 * MIB))
    turn_until([c], lambda: c.is_router, what="the router")
    for n in range(5):
        rabbit.publish("send_message", {"key": "k", "n": n, "pad": "x" * (MIB + MIB // 2 - 64)})  # 1.5 MiB each
    turn_until([c], lambda: len(got) == 2 and "send_message" in c._waiting_room, what="two held, the queue waiting")
    for _ in range(20):
        turn_until([c], lambda: True)
    assert len(got) == 2 and c.is_router  # nothing more while there is no room
    taken = []
    while len(taken) < 5:
        d = got[len(taken)]
        taken.append(orjson.loads(d.body)["n"])
        c.ack(d)  # done: room for the next
        if len(taken) < 4:
            turn_until([c], lambda: len(got) == len(taken) + 2, what=f"send {len(taken) + 1}")
    assert taken == [0, 1, 2, 3, 4] and len(got) == 5  # in order, each taken once
    assert max(held) <= 3 * MIB and c.bodies.held == 0

    rabbit.publish("send_message", {"key": "k", "pad": "x" * (4 * MIB)})  # larger than the limit
    turn_until([c], lambda: len(got) == 6, what="a body larger than the limit, taken alone")
    assert c.bodies.held > 3 * MIB
    c.ack(got[-1])
    turn_until([c], lambda: rabbit.depth("send_message")[0] == 0, what="the queue emptied")


def test_a_consumer_is_cancelled_without_waiting_for_what_it_was_sent(rabbit_url):
    """F7: the broker answers a cancel only after every delivery it had
    sent the consumer already, up to the prefetch of 120 MiB bodies; the
    wait for it outlasted RPC_TIMEOUT, cut the connection, and every body
    came again.  ``cancel_without_waiting`` returns at once; what arrives
    meanwhile goes back to the queue, and the answer comes with a later
    pump.  Consumed again, the queue gives its messages in their order."""
    conn = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        ch = conn.channel()
        queue = ch.queue_declare(f"cancel-{uuid.uuid4().hex[:8]}", exclusive=True).method.queue
        for n in range(8):
            ch.basic_publish("", queue, orjson.dumps({"n": n, "pad": "x" * MIB}))
        ch.basic_qos(prefetch_count=8)
        got: list = []
        tag = ch.basic_consume(queue, lambda _ch, method, _props, body: got.append((method.delivery_tag, body)))
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.05)
        answered: list[bool] = []
        started = time.monotonic()
        nowait.cancel_without_waiting(ch, tag, lambda: answered.append(True))
        assert not answered and time.monotonic() - started < 0.1  # nothing read, nothing waited for
        while not answered and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.05)
        assert answered and conn.is_open
        taken = len(got)
        for delivery_tag, _ in got:
            ch.basic_nack(delivery_tag, requeue=True)
        assert len(got) == taken  # none handed to the cancelled consumer after the cancel
        again: list[int] = []
        ch.basic_consume(queue, lambda _ch, method, _props, body: (again.append(orjson.loads(body)["n"]),
                                                                   _ch.basic_ack(method.delivery_tag)))
        while len(again) < 8 and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.05)
        assert again == list(range(8))
    finally:
        conn.close()


def test_a_bodys_parsed_copy_is_counted_with_it_until_either_goes():
    """A send's base64 text is as large as its body and lives beside it
    until decoded (F7): the limit counts both, and forgets the copy of a
    delivery it does not hold (a create, one of an earlier connection)."""
    bodies = HeldBodies(3 * MIB)
    assert bodies.take("send_message", "a", MIB)
    bodies.copy("a", MIB)
    assert bodies.held == 2 * MIB and bodies.take("send_message", "b", MIB)
    assert not bodies.take("send_message", "c", MIB)  # 3 MiB held: the queue waits
    bodies.copy("a", 0)  # decoded: the text is gone
    assert bodies.held == 2 * MIB and bodies.ready() == ["send_message"]
    bodies.copy("b", MIB)
    bodies.release("b")  # body and copy at once
    bodies.copy("never-held", MIB)
    bodies.release("a")
    assert bodies.held == 0
