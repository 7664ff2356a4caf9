"""RabbitMQ, as the node uses it: command queues in, events out.

- ``topology``: names, declarations and the ``Delivery``/``Outgoing``
  records; no pika, so the node's rules need no broker library.
- ``link``: one connection kept alive (connecting, backoff, silence, bounded
  waits); the only module that touches pika's internals.
- ``liveness``: the link's timing rules (backoff, silence), pure.
- ``consumer``: commands in, router election, acks.
- ``publisher``: events out, confirmed, and the ``Outbox`` with its spool.

Import from the modules themselves: this file imports nothing, so that
``wwnode.amqp.topology`` does not bring pika in.
"""
