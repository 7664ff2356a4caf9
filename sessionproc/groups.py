"""Group actions on the page (the ``group`` command of the pipe protocol):
``groups.js`` does each as whatsapp-web.js 1.34.7 does it, takes its data
as arguments and uses only modules and members listed in
``pageapi.SURFACE``; the rules of an action are ``grouprules.py``'s.
"""

from __future__ import annotations

from importlib import resources

from .actions import MESSAGE_HELPERS_JS, run
from .grouprules import GroupError, check


def _source(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


GROUP_JS = MESSAGE_HELPERS_JS + _source("message.js") + _source("readback.js") + _source("groups.js") + """
const [p, done] = arguments;
groupAction(window.require, p).then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""


def perform(driver, cmd: dict, timeout: float) -> dict:
    """Carry out one ``group`` command on the page; the ``action_done``
    (``result``: what the action answers, ``group_id`` for create and
    join) or ``action_failed`` that answers it."""
    failed = {"event": "action_failed", "id": cmd["id"]}
    try:
        action = check(cmd)
    except GroupError as e:
        return failed | {"reason": e.reason, "detail": e.detail}
    args = {"action": action["action"], "groupId": action.get("group_id"),
            "participants": action.get("participants", []), "value": action.get("value")}
    answer = run(driver, cmd, GROUP_JS, (args,), timeout)
    if answer["event"] == "action_done" and not isinstance(answer["result"], dict):
        answer["result"] = {}
    return answer
