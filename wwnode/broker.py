"""The RabbitMQ code moved to the package ``wwnode.amqp``; this module only
re-exports it until the node imports from there."""

from .amqp.consumer import ROUTER_RETRY, Consumer  # noqa: F401
from .amqp.link import BROKER_ERRORS, RPC_TIMEOUT  # noqa: F401
from .amqp.publisher import Outbox, Publisher  # noqa: F401
from .amqp.topology import (COMMAND_QUEUES, DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, LEGACY_EVENT_QUEUES,  # noqa: F401
                            REROUTE_QUEUE, ROUTED_QUEUES, Delivery, Outgoing, declare_node_queue, declare_topology,
                            node_queue_name)
