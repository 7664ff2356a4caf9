"""Group actions on the page (the ``group`` command of the pipe protocol):
``groups.js`` does each as whatsapp-web.js 1.34.7 does it, takes its data
as arguments and uses only modules and members listed in
``pageapi.SURFACE``; the rules of an action are ``grouprules.py``'s.
"""

from __future__ import annotations

from importlib import resources

from selenium.common.exceptions import JavascriptException, TimeoutException, WebDriverException

from .actions import MESSAGE_HELPERS_JS
from .grouprules import GroupError, check


def _source(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


GROUP_JS = MESSAGE_HELPERS_JS + _source("message.js") + _source("readback.js") + _source("groups.js") + """
const [p, done] = arguments;
groupAction(window.require, p).then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""

DRIVER_ERRORS = (WebDriverException, OSError)


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
    try:
        result = driver.execute_async_script(GROUP_JS, args)
    except TimeoutException:
        return failed | {"reason": "timeout", "detail": f"no answer in {timeout:g} s"}
    except JavascriptException as e:
        return failed | {"reason": "page_error", "detail": e.msg}
    except DRIVER_ERRORS as e:
        return failed | {"reason": "browser_error", "detail": str(e)[:500]}
    if not isinstance(result, dict) or not result.get("ok"):
        detail = result.get("error") if isinstance(result, dict) else repr(result)
        reason = result.get("reason") if isinstance(result, dict) else "page_error"
        return failed | {"reason": reason or "page_error", "detail": str(detail)}
    answer = result.get("result") if isinstance(result.get("result"), dict) else {}
    return {"event": "action_done", "id": cmd["id"], "result": answer}
