"""Every Redis key of the contract, in one place, for the node and the tools.

The Redis side of the contract: every key the node writes, in one place,
for the node (``store.py``) and for the tools that read them (``status``,
``drain``, the dashboard, the client commands), as ``amqp/topology.py`` is
for RabbitMQ.

Keys (every one has a TTL or is deleted when its session goes):

=============================  ==============================================
``instances:{key}:qr_code``    the QR string shown now (TTL ``QR_TTL``)
``instances:{key}:pairing_code``  the pairing code shown now, for a create
                               with ``pair_with_phone`` (TTL ``QR_TTL``)
``instances:{key}:owner``      ``{node}:{fence}``, the owner's lease
                               (TTL ``LEASE_TTL``, renewed by the owner)
``instances:{key}:fence``      counter bumped at every claim (TTL one day)
``instances:{key}:state``      hash: state, node, since (ms), me
                               (TTL four leases and a minute: it outlives a
                               dead owner's lease, so the fleet can tell the
                               key was lost)
``instances:{key}:settings``   the session's settings (JSON, the proxy's
                               credentials included: ``sessionsettings.py``),
                               written by its owner at each start and change
                               (TTL as the state's, renewed with the lease;
                               deleted by a destroy; kept by a failure and a
                               drain, for the key's next start)
``instances:{key}:sent``       hash: command id -> ``pending`` or
                               ``done:<message id>``, for sends that carry
                               an id (TTL ``SEND_DEDUP_WINDOW`` after the
                               last such send)
``nodes:{node}``               hash: the node's heartbeat (TTL ``LEASE_TTL``)
``nodes:{node}:drain``         present while the node is asked to drain
                               (``wwnode drain``; TTL a day)
=============================  ==============================================
"""

from __future__ import annotations

QR, OWNER, FENCE, SENT, STATE, SETTINGS = "qr_code", "owner", "fence", "sent", "state", "settings"
PAIRING_CODE = "pairing_code"
DRAIN_TTL_MS = 24 * 3600 * 1000  # a drained node that is gone for a day is forgotten

_INSTANCES, _NODES = "instances:", "nodes:"


def instance_key(key: str, part: str) -> str:
    """``instances:{key}:{part}``: every key of an instance lives under its
    prefix (the table above names the parts)."""
    return f"{_INSTANCES}{key}:{part}"


def instances_with(part: str) -> str:
    """The pattern (for SCAN) of every instance's ``part``."""
    return f"{_INSTANCES}*:{part}"


def key_of(name: str, part: str) -> str:
    """The instance's key in ``instances:{key}:{part}``."""
    return name[len(_INSTANCES):-len(part) - 1]


def node_key(node: str) -> str:
    return f"{_NODES}{node}"


def drain_key(node: str) -> str:
    """Present while the node is asked to drain (``wwnode drain``)."""
    return f"{_NODES}{node}:drain"


NODES_PATTERN = f"{_NODES}*"  # for SCAN: the heartbeats, and the drain marks (``node_of`` tells them apart)


def node_of(name: str) -> str | None:
    """The node of a heartbeat key ``nodes:{node}``; None for any other
    key under ``nodes:`` (a drain mark)."""
    rest = name[len(_NODES):] if name.startswith(_NODES) else ""
    return rest if rest and ":" not in rest else None


def owner_node(token: str | None) -> str | None:
    """The node part of an owner token ``{node}:{fence}``."""
    if not token:
        return None
    node, _, fence = token.rpartition(":")
    return node if fence.isdigit() else token
