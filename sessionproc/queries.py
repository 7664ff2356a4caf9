"""What a ``query`` may ask (reading back what the account has: its chats,
a chat's messages, its contacts, a group, people's ids, a profile
picture), and the rules it must keep.

One set of rules, used twice, as ``contents.py``'s: the node refuses a
query that breaks them (``command_failed`` with the reason, nothing
asked), and the session process checks the pipe command again before it
touches the page.  :func:`check` answers the query in the one form both
sides pass on (absent fields left out).

Paging: an answer holds at most ``limit`` items (the node's
``QUERY_MAX_ITEMS`` by default, and at most that), and no more than
:data:`MAX_ANSWER_BYTES` of JSON, whichever comes first; ``more`` is true
when there are further items, which a query with ``before`` set to the
last item's id asks for (a chat's id, a message's ``_serialized`` id, a
contact's id).  ``group``, ``ids`` and ``profile_picture`` answer whole
(a group's members come in its one item: WhatsApp bounds a group's size).
"""

from __future__ import annotations

from .protocol import CHAT_ID_RE, MESSAGE_ID_RE, USER_ID_RE, id_refusal

WHATS = ("chats", "messages", "contacts", "group", "ids", "profile_picture")
PAGED = frozenset({"chats", "messages", "contacts"})
NEEDS_CHAT = frozenset({"messages", "group", "profile_picture"})
# The largest QUERY_MAX_ITEMS a node may be given; a query's limit is
# checked against the node's own setting as well (wwnode/queries.py).
MAX_ITEMS = 1000
# JSON of one answer's items: well under a session's event line (4 MiB),
# so a page of long messages is cut short (``more`` true) rather than fail.
MAX_ANSWER_BYTES = 1024 * 1024
GROUP_SERVER = "@g.us"


class QueryError(ValueError):
    """The query breaks a rule; ``reason`` is a stable word."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check(data: dict, max_items: int = MAX_ITEMS) -> dict:
    """The query in ``data`` (a command's body, or a pipe command) checked
    and in its one form; QueryError with the reason otherwise."""
    if "what" not in data:
        raise QueryError("missing_field", "what is required")
    what = data["what"]
    if not isinstance(what, str):
        raise QueryError("wrong_type", "what must be a string")
    if what not in WHATS:
        raise QueryError("unknown_query", f"what must be one of {', '.join(WHATS)}, not {what[:40]!r}")
    query: dict = {"what": what}
    if what in NEEDS_CHAT:
        query["chat_id"] = _chat_id(data, group=what == "group")
    elif "chat_id" in data:
        raise QueryError("bad_query", f"{what} takes no chat_id")
    if what == "ids":
        query["ids"] = _ids(data, max_items)
    elif "ids" in data:
        raise QueryError("bad_query", f"{what} takes no ids")
    if what in PAGED:
        if "limit" in data:
            query["limit"] = check_limit(data["limit"], max_items)
        if data.get("before") is not None:
            query["before"] = _before(what, data["before"])
    elif "limit" in data or data.get("before") is not None:
        raise QueryError("bad_query", f"{what} answers whole: it takes no limit or before")
    return query


def check_limit(limit, max_items: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise QueryError("wrong_type", "limit must be a whole number")
    if not 1 <= limit <= max_items:
        raise QueryError("bad_limit", f"limit must be 1 to {max_items} (items in one answer); page on with before")
    return limit


def _chat_id(data: dict, group: bool) -> str:
    if "chat_id" not in data:
        raise QueryError("missing_field", "chat_id is required")
    chat_id = data["chat_id"]
    if not isinstance(chat_id, str):
        raise QueryError("wrong_type", "chat_id must be a string")
    refusal = id_refusal(chat_id, CHAT_ID_RE, "bad_chat_id")
    if refusal is not None:
        raise QueryError(refusal, "chat_id must look like 5511999999999@c.us, a LID 123456789012345@lid, "
                                  "or a group's 120363000000000000@g.us")
    if group and not chat_id.endswith(GROUP_SERVER):
        raise QueryError("bad_group_id", "chat_id must be a group's id, 120363000000000000@g.us")
    return chat_id


def _ids(data: dict, max_items: int) -> list[str]:
    if "ids" not in data:
        raise QueryError("missing_field", "ids is required")
    ids = data["ids"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise QueryError("wrong_type", "ids must be a list of strings")
    if not 1 <= len(ids) <= max_items:
        raise QueryError("bad_ids", f"ids must list 1 to {max_items} people")
    for i in ids:
        refusal = id_refusal(i, USER_ID_RE, "bad_ids")
        if refusal is not None:
            raise QueryError(refusal, "ids must be people: 5511999999999@c.us or a LID 123456789012345@lid")
    return list(dict.fromkeys(ids))


def _before(what: str, before) -> str:
    if not isinstance(before, str):
        raise QueryError("wrong_type", "before must be a string")
    if what == "messages":
        if not MESSAGE_ID_RE.match(before):
            raise QueryError("bad_message_id", "before must be a message's _serialized id, like "
                                               "false_5511999999999@c.us_3EB0...")
    elif not (USER_ID_RE if what == "contacts" else CHAT_ID_RE).match(before):
        raise QueryError("bad_before", f"before must be the id of the last {what[:-1]} of the previous answer")
    return before
