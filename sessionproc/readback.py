"""Reading back what the account has (the ``query`` command of the pipe
protocol): one page of chats, of a chat's messages, of contacts; a group;
people's ids; a profile picture.  The page script (``readback.js``) reads
them as whatsapp-web.js 1.34.7 does, takes its data as arguments and uses
only modules and members listed in ``pageapi.SURFACE``; the rules of a
query are ``queries.py``'s.

:func:`perform` carries out one ``query`` and returns the event that
answers it: ``action_done`` with ``result`` ``{"items": [...], "more": B}``,
or ``action_failed`` (``unknown_chat``, ``unknown_group``,
``unknown_before``, ``page_error``, ...).
"""

from __future__ import annotations

from importlib import resources

from . import queries
from .actions import MESSAGE_HELPERS_JS, run


def _source(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


QUERY_JS = MESSAGE_HELPERS_JS + _source("message.js") + _source("readback.js") + """
const [what, p, done] = arguments;
(async () => {
  const req = window.require;
  const findLinks = (text) => req('WALinkify').findLinks(text);
  // A message's sender's other id, as hook.js finds it.
  const otherIdOf = (wid) => {
    const w = typeof wid === 'string' ? req('WAWebWidFactory').createWid(wid) : wid;
    const ids = idsOf(req, w);
    return (w.server === 'lid' ? ids.pn : ids.lid) || null;
  };
  return QUERIES[what](req, p, findLinks, () => {}, otherIdOf);
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""

def page_arguments(query: dict) -> dict:
    """What the page script is given of a checked query."""
    return {"chatId": query.get("chat_id"), "ids": query.get("ids"), "limit": query.get("limit", queries.MAX_ITEMS),
            "before": query.get("before"), "maxBytes": queries.MAX_ANSWER_BYTES}


def perform(driver, cmd: dict, timeout: float) -> dict:
    failed = {"event": "action_failed", "id": cmd["id"]}
    try:
        query = queries.check(cmd)
    except queries.QueryError as e:
        return failed | {"reason": e.reason, "detail": e.detail}
    answer = run(driver, cmd, QUERY_JS, (query["what"], page_arguments(query)), timeout)
    if answer["event"] == "action_done":
        found = answer["result"] if isinstance(answer["result"], dict) else {}
        items = found.get("items") if isinstance(found.get("items"), list) else []
        answer["result"] = {"items": items, "more": bool(found.get("more"))}
    return answer
