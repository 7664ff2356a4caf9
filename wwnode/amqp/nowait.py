"""Channel calls the node's loop does not wait for: a consumer made or cancelled, a prefetch set; the broker's answer handled by a later pump.

``BlockingChannel`` waits for the answer to each of these.  The broker
answers on a connection in order, behind every delivery it has already
sent on it, and prefetch is a count: behind up to ``COMMAND_PREFETCH``
bodies of 128 MiB, read by pika at about 50 MiB/s.  A wait there stalled
the loop for seconds (fifteen sends of 120 MiB: the create consumer's
updates of its priority held the loop 3.6 to 6.1 s), or outlasted
``RPC_TIMEOUT`` and cut the connection, every body then coming again
(docs/decisions.md, "Consumer changes not waited for").

Each call here does what its ``BlockingChannel`` method does but for the
wait: the method goes out with the next pump, in order behind whatever
the channel has pending, and deliveries meanwhile are handled as they
come.  A refusal closes the channel, the broker's way: the caller finds
the channel closed at its next turn (``creates.py``).

With ``link.py``, the only module that reaches into pika; ``link.check_pika``
checks the classes, ``_channel_internals`` each channel used.
"""

from __future__ import annotations

from typing import Callable

from pika.adapters.blocking_connection import BlockingChannel, _ConsumerInfo

from .link import PikaUnsupported, _has_path

OnMessage = Callable[..., None]  # (channel, method, properties, body), as BlockingChannel.basic_consume calls it


def _channel_internals(channel: BlockingChannel) -> None:
    missing = [name for name in ("_impl", "_consumer_infos", "_basic_consume_ok_result", "_impl._consumers")
               if not _has_path(channel, name)]
    if missing:
        raise PikaUnsupported(f"pika's BlockingChannel lacks {', '.join(missing)}, which wwnode's RabbitMQ link "
                              "relies on (checked with pika 1.3 and 1.4)")


def cancel_without_waiting(channel: BlockingChannel, tag: str, on_done: Callable[[], None]) -> None:
    """Cancel a consumer (not auto-ack) as ``BlockingChannel.basic_cancel``
    does, but for its wait: ``on_done`` is called from a later pump, when
    the broker's Cancel-ok comes, after every delivery it had sent the
    consumer.  Meanwhile pika puts back what comes for the consumer, each
    as it arrives, as it does during its own wait."""
    _channel_internals(channel)
    info = channel._consumer_infos.get(tag)
    if info is None:
        on_done()
        return
    info.state = info.TEARING_DOWN
    for message in channel._remove_pending_deliveries(tag):  # delivered, not yet handed to us: back, in order
        channel._impl.basic_reject(message.method.delivery_tag, requeue=True)

    def cancel_ok(_frame) -> None:
        channel._consumer_infos.pop(tag, None)
        on_done()

    channel._impl.basic_cancel(tag, callback=cancel_ok)


def consume_without_waiting(channel: BlockingChannel, queue: str, on_message: OnMessage,
                            arguments: dict | None = None) -> str:
    """Consume ``queue`` (not auto-ack) as ``BlockingChannel.basic_consume``
    does, but for its wait; its consumer tag.  Deliveries reach
    ``on_message`` from later pumps, as any consumer's do."""
    _channel_internals(channel)
    tag = channel._impl._generate_consumer_tag()
    info = _ConsumerInfo(tag, auto_ack=False, on_message_callback=on_message)
    info.state = _ConsumerInfo.ACTIVE  # nothing comes for it before its Consume-ok, which nobody waits for
    channel._consumer_infos[tag] = info
    waited = channel._basic_consume_ok_result

    def consume_ok(_frame) -> None:
        # BlockingChannel hears every Consume-ok on the channel, before this
        # callback, and marks its own wait answered; none waits, so that
        # mark is cleared: left set, the next Consume-ok would find it set
        # and fail pika's "answered twice" assertion.
        waited.reset()

    channel._impl.basic_consume(queue, channel._on_consumer_message_delivery, consumer_tag=tag,
                                arguments=arguments, callback=consume_ok)
    return tag


def qos_without_waiting(channel: BlockingChannel, prefetch: int) -> None:
    """``BlockingChannel.basic_qos(prefetch_count=prefetch)``, not waited
    for: the consumers made on the channel after it take it (the broker
    handles a channel's methods in order)."""
    _channel_internals(channel)
    channel._impl.basic_qos(prefetch_count=prefetch, callback=lambda _frame: None)


def before_close(channel: BlockingChannel) -> None:
    """Ready for pika's close, which cancels every consumer left and
    asserts that each is active: a consumer whose cancel is still
    unanswered is marked active again, so that close waits for that answer
    (pika sends no second cancel) instead of failing its assertion."""
    _channel_internals(channel)
    for info in list(channel._consumer_infos.values()):
        if info.tearing_down and info.consumer_tag in channel._impl._consumers:
            info.state = info.ACTIVE
