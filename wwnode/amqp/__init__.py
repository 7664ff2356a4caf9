"""RabbitMQ, as the node uses it: command queues in, events out.

- ``topology``: names, declarations and the ``Delivery``/``Outgoing`` records; no pika.
- ``link``: one connection kept alive (connecting, backoff, silence, bounded waits); pika's internals.
- ``liveness``: the link's timing rules (backoff, silence), pure.
- ``declare``: the shared topology declared queue by queue, a queue no member serves set aside.
- ``consumer``: commands in: which queues a node consumes, the bytes held, the acks.
- ``router``: router election: the node holding ``wa.router`` consumes the routed queues.
- ``creates``: the create consumer, as admission and placement say, and its creates settled.
- ``holding``: the bytes of command bodies held at once (``COMMAND_BYTES_LIMIT``).
- ``publisher``: events out, confirmed, and the ``Outbox`` with its spool.
- ``spool``: events not yet confirmed, kept on disk for a node restarted meanwhile.

Import from the modules themselves: this file imports nothing, so that
``wwnode.amqp.topology`` does not bring pika in.
"""
