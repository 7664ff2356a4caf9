"""The ``query`` command: reading back what a session's account has, from
the moment it reaches this node to its ``query_result_instance``.

The rules of a query are ``sessionproc.queries``' (checked when the
command is parsed, and again by the session process); this node adds its
own bound, ``QUERY_MAX_ITEMS``: a ``limit`` above it, or more ``ids``, is
refused (``bad_limit``, ``bad_ids``), and a query without ``limit`` asks
for that many.  Past the check a query is one of the action desk's
commands (``actions.py``): sent to a ready session, held while it comes
back, answered by the session's ``action_done`` as
``query_result_instance`` ``{what, items, more}`` (with the query's
``chat_id`` and ``before``, where it had them), or failed with its reason.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, cast

from sessionproc import queries

if TYPE_CHECKING:  # commands.py imports this module for its table
    from .commands import Command, Reject


def fields(data: dict, reject: Reject) -> dict:
    """``query``'s own fields (the command table's parser)."""
    try:
        return {"query": queries.check(data)}
    except queries.QueryError as e:
        reject(e.reason, e.detail)


def pipe_command(cmd: Command, child_id: str) -> dict:
    """What the session process is told (``sessionproc.protocol``)."""
    return {"cmd": "query", "id": child_id, **_query(cmd)}


def answer(key: str, cmd: Command, result: dict) -> tuple[str, dict]:
    """The event that answers a query done, and its body."""
    query = _query(cmd)
    body = {"key": key, "what": query["what"], "items": result.get("items") or [],
            "more": bool(result.get("more")), "command_id": cmd.command_id}
    body.update({name: query[name] for name in ("chat_id", "before") if name in query})
    return "query_result_instance", body


def _query(cmd: Command) -> dict:
    """A query command's fields: set, checked, by ``fields``."""
    return cast(dict, cmd.query)


class QueryDesk:
    """The handler of the ``query`` queue: this node's bound, then the
    action desk."""

    def __init__(self, max_items: int, bus, actions):
        self.max_items = max_items
        self.bus = bus
        self.actions = actions

    def take(self, cmd: Command, d, now: float) -> None:
        query = dict(_query(cmd))
        try:
            if query["what"] in queries.PAGED:
                query["limit"] = queries.check_limit(query.get("limit", self.max_items), self.max_items)
            if len(query.get("ids", ())) > self.max_items:
                raise queries.QueryError("bad_ids", f"ids must list 1 to {self.max_items} people")
        except queries.QueryError as e:
            self.bus.fail(d, e.reason, e.detail, cmd.key, cmd.command_id)
            return
        self.actions.take(replace(cmd, query=query), d, now)
