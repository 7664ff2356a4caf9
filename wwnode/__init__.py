"""wwnode: many WhatsApp Web sessions on one or many machines, driven by
RabbitMQ and Redis.  The node supervises one ``sessionproc`` per session."""

__version__ = "0.1.0"
