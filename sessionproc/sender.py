"""The ``sender`` thread: the page's commands (sends, actions, pairing) one at a time.

Sends, actions, number checks and pairing, through Selenium and DevTools in
the order they came, on a thread of their own, so a slow send never delays
a page event or a ping.
"""

from __future__ import annotations

import logging
from typing import Any

from selenium.common.exceptions import JavascriptException, TimeoutException

from . import actions, callactions, chatactions, contents, groups, presence, readback
from .devtools import DevToolsClosed, DevToolsError
from .mediafiles import MediaFileError, media_dir, take_outbound
from .mediasend import call_with_file
from .pagescripts import CHAT_STATE_FN, SEND_FN, SEND_MEDIA_FN
from .protocol import CHAT_ID_RE, MAX_TEXT, MESSAGE_ID_RE, SEND_REFUSED_STOPPING, USER_ID_RE, id_refusal
from .sessionstate import BINDING, DRIVER_ERRORS, SessionState

log = logging.getLogger(__name__)

# Why a send may be refused before anything went out (the page's own words).
SEND_REFUSALS = frozenset({"unknown_message", "cannot_reply", "bad_contacts"})

# Who carries out each page command besides sends, on the ``sender`` thread.
PERFORMERS = {"action": actions.perform, "check_number": actions.perform, "call": callactions.perform,
              "chat": chatactions.perform, "presence": presence.perform, "query": readback.perform,
              "group": groups.perform}


class Sender:
    """Takes the ``sends`` queue's commands until a None; answers each on
    stdout."""

    def __init__(self, state: SessionState):
        self.state = state  # its driver and devtools, which the main thread sets
        self.opts, self.out, self.inbox, self.sends = state.opts, state.out, state.inbox, state.sends
        self.ready, self.stopping = state.ready, state.stopping

    def run(self) -> None:
        while True:
            cmd = self.sends.get()
            if cmd is None:
                return
            if cmd["cmd"] == "send":
                self.out.emit(self._send(cmd))
            elif cmd["cmd"] == "pair":
                self._ask_pairing_code()
            else:
                self.out.emit(self._act(cmd))

    def _act(self, cmd: dict) -> dict:
        failed = {"event": "action_failed", "id": cmd["id"]}
        if self.stopping.is_set():
            return failed | {"reason": SEND_REFUSED_STOPPING, "detail": "the session is stopping"}
        if not self.ready.is_set():
            return failed | {"reason": "not_ready", "detail": "the session is not authenticated"}
        try:
            driver = self.state.live_driver()
        except DRIVER_ERRORS as e:  # the browser quit between the check above and here
            return failed | {"reason": "browser_error", "detail": str(e)[:500]}
        event = PERFORMERS[cmd["cmd"]](driver, cmd, self.opts.send_timeout)
        log.info("%s %s: %s", cmd["cmd"], cmd["id"], event.get("reason") or "done")
        return event

    def _ask_pairing_code(self) -> None:
        """Codes come back through the page binding (``pairing_code``
        reports); a page that refuses is a failure to link."""
        try:
            result = self.state.live_driver().execute_async_script(actions.PAIR_JS, self.opts.pair_with_phone,
                                                                   int(self.opts.pair_interval * 1000), BINDING)
        except DRIVER_ERRORS as e:
            result = {"ok": False, "error": str(e)[:500]}
        if not isinstance(result, dict) or not result.get("ok"):
            detail = result.get("error") if isinstance(result, dict) else repr(result)
            log.error("the page gave no pairing code: %s", detail)
            self.inbox.put(("page", {"type": "pairing_refused", "detail": str(detail)}))

    def _send(self, cmd: dict) -> dict:
        cid, chat_id, text = cmd["id"], cmd["chat_id"], cmd["text"]
        failed = {"event": "send_failed", "id": cid}
        refusal = id_refusal(chat_id, CHAT_ID_RE, "bad_chat_id")
        if refusal is not None:
            return failed | {"reason": refusal, "detail": "chat_id must look like 5511999999999@c.us or 1234...@lid"}
        if len(text) > MAX_TEXT:
            return failed | {"reason": "too_long", "detail": f"text longer than {MAX_TEXT} characters"}
        options: dict[str, Any]  # the page's send options: an id, a list, a content
        options = {"quotedMessageId": cmd.get("quoted_message_id") or None, "mentions": cmd.get("mentions") or []}
        if options["quotedMessageId"] and not MESSAGE_ID_RE.match(options["quotedMessageId"]):
            return failed | {"reason": "bad_message_id", "detail": "quoted_message_id is not a message id"}
        refusals = [r for r in (id_refusal(m, USER_ID_RE, "bad_mentions") for m in options["mentions"]) if r]
        if refusals:
            return failed | {"reason": refusals[0], "detail": "mentions must be ids like 5511...@c.us or 1234...@lid"}
        kinds = contents.kinds_in(cmd)
        if kinds:
            # A location, contact cards or a poll instead of the text.
            try:
                options["content"] = {kinds[0]: contents.check(kinds[0], cmd[kinds[0]])}
            except contents.ContentError as e:
                return failed | {"reason": e.reason, "detail": e.detail}
        if self.stopping.is_set():
            return failed | {"reason": SEND_REFUSED_STOPPING, "detail": "the session is stopping"}
        if not self.ready.is_set():
            return failed | {"reason": "not_ready", "detail": "the session is not authenticated"}
        media = cmd.get("media")
        seen = cmd.get("seen", self.opts.send_seen)
        if cmd.get("typing_ms") and media is None:
            self._show_typing(chat_id, cmd["typing_ms"])
            if self.stopping.is_set():
                return failed | {"reason": SEND_REFUSED_STOPPING, "detail": "the session stopped while it typed"}
        try:
            if media is None:
                result = self.state.live_devtools().call_function(SEND_FN, [chat_id, text, seen, options],
                                                                  timeout=self.opts.send_timeout)
            else:
                # The file as a base64 argument (data), as whatsapp-web.js
                # hands a MessageMedia to the page.
                data = take_outbound(media_dir(self.opts.profile_dir), media["path"])
                meta = {"mimetype": media["mimetype"], "filename": media["filename"], "as": media["as"]}
                result = call_with_file(self.state.live_devtools(), SEND_MEDIA_FN, [chat_id, text, seen, meta],
                                        data, self.opts.send_timeout)
                del data
        except MediaFileError as e:
            return failed | {"reason": "media_unreadable", "detail": str(e)}
        except DevToolsClosed as e:
            return failed | {"reason": "browser_error", "detail": str(e)[:500]}
        except DevToolsError as e:
            return failed | {"reason": "page_error", "detail": str(e)[:500]}
        except TimeoutError:
            return failed | {"reason": "timeout", "detail": f"no answer in {self.opts.send_timeout:g} s"}
        except TimeoutException:
            return failed | {"reason": "timeout", "detail": f"no answer in {self.opts.send_timeout:g} s"}
        except JavascriptException as e:
            return failed | {"reason": "page_error", "detail": e.msg}
        except DRIVER_ERRORS as e:
            return failed | {"reason": "browser_error", "detail": str(e)[:500]}
        if not isinstance(result, dict) or not result.get("ok"):
            detail = result.get("error") if isinstance(result, dict) else repr(result)
            # Ours (unknown_message, cannot_reply, bad_contacts): nothing went out; else
            # WhatsApp Web refused it.
            reason = result.get("reason") if isinstance(result, dict) else None
            return failed | {"reason": reason if reason in SEND_REFUSALS else "rejected", "detail": detail}
        if result.get("seenError"):
            log.warning("send %s: could not mark the chat seen: %s", cid, result["seenError"])
        log.info("sent %s as %s%s", cid, result["id"], f": {text!r}" if self.opts.log_bodies else "")
        return {"event": "sent", "id": cid, "message_id": result["id"]}

    def _show_typing(self, chat_id: str, typing_ms: int) -> None:
        """"typing..." in the chat for ``typing_ms`` (the ``typing``
        setting), as whatsapp-web.js's Chat.sendStateTyping; cut short by a
        stop.  The page failing to show it does not stop the message."""
        try:
            self.state.live_devtools().call_function(CHAT_STATE_FN, [chat_id, "typing"], timeout=self.opts.ping_timeout)
        except (DevToolsError, TimeoutError) as e:
            log.warning("could not show typing in the chat: %s", e)
            return
        if self.stopping.wait(typing_ms / 1000):
            try:  # not sent after all: the other side stops seeing "typing..."
                self.state.live_devtools().call_function(CHAT_STATE_FN, [chat_id, "paused"],
                                                         timeout=self.opts.ping_timeout)
            except (DevToolsError, TimeoutError) as e:
                log.warning("could not clear typing in the chat: %s", e)
