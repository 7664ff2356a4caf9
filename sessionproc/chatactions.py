"""What the session does to a chat besides writing into it, the way
whatsapp-web.js 1.34.7 does each:

- ``typing``, ``recording``, ``paused``: the chat state the other side
  sees (``Chat.sendStateTyping``, ``sendStateRecording``, ``clearState``:
  ``WAWebChatStateBridge``'s ``sendChatStateComposing``,
  ``sendChatStateRecording``, ``sendChatStatePaused``, given the chat's
  Wid);
- ``archive``, ``unarchive`` (``Cmd.archiveChat(chat, bool)``), ``pin``,
  ``unpin`` (``Cmd.pinChat(chat, bool)``), ``mute`` (optional ``until``, in
  ms; without it, for ever) and ``unmute`` (the chat's
  ``mute.mute({expiration, sendDevice})`` / ``mute.unmute({sendDevice})``),
  on the chat found as a send finds it.

WhatsApp pins at most three chats: a pin past that is refused
(``too_many_pinned``) before the page is asked, as whatsapp-web.js counts
the pinned chats first; a page that pins nothing all the same fails
``page_error``.  A mute until a time already past is ``bad_until``.
Pinning a pinned chat, unpinning an unpinned one, archiving an archived
one change nothing and are done.  The scripts take their data as
arguments (never pasted into source) and use only members listed in
``pageapi.SURFACE`` (uses ``chat_state`` and ``chat``).

:func:`perform` carries out one ``chat`` command of the pipe protocol and
returns the event that answers it.
"""

from __future__ import annotations

from .actions import MESSAGE_HELPERS_JS, run
from .protocol import CHAT_ACTIONS, CHAT_ID_RE, CHAT_STATES, MAX_PINNED, id_refusal

CHAT_STATE_JS = MESSAGE_HELPERS_JS + """
const [chatId, action, done] = arguments;
(async () => {
  const req = window.require;
  const wid = req('WAWebWidFactory').createWid(chatId);
  const bridge = req('WAWebChatStateBridge');
  if (action === 'typing') await bridge.sendChatStateComposing(wid);
  else if (action === 'recording') await bridge.sendChatStateRecording(wid);
  else await bridge.sendChatStatePaused(wid);
  return {};
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""

CHAT_JS = MESSAGE_HELPERS_JS + """
const [chatId, action, untilMs, maxPinned, done] = arguments;
(async () => {
  const req = window.require;
  const wid = req('WAWebWidFactory').createWid(chatId);
  const Chat = req('WAWebCollections').Chat;
  let chat = Chat.get(wid);
  if (!chat) {
    const found = await req('WAWebFindChatAction').findOrCreateLatestChat(wid);
    chat = found && found.chat;
  }
  if (!chat) throw new ActionError('page_error', 'WhatsApp Web has no chat ' + chatId);
  const Cmd = req('WAWebCmd').Cmd;
  if (action === 'archive' || action === 'unarchive') {
    await Cmd.archiveChat(chat, action === 'archive');
  } else if (action === 'pin' && !chat.pin) {
    const pinned = Chat.getModelsArray().filter((c) => c.pin).length;
    if (pinned >= maxPinned) {
      throw new ActionError('too_many_pinned', pinned + ' chats are pinned already: WhatsApp pins at most '
                            + maxPinned + '; unpin one first');
    }
    await Cmd.pinChat(chat, true);
    if (!chat.pin) throw new ActionError('page_error', 'WhatsApp Web did not pin chat ' + chatId);
  } else if (action === 'unpin' && chat.pin) {
    await Cmd.pinChat(chat, false);
  } else if (action === 'mute') {
    if (untilMs !== null && untilMs <= Date.now()) {
      throw new ActionError('bad_until', 'until ' + untilMs + ' is past (the page\\'s clock says ' + Date.now() + ')');
    }
    await chat.mute.mute({expiration: untilMs === null ? -1 : Math.floor(untilMs / 1000), sendDevice: true});
  } else if (action === 'unmute') {
    await chat.mute.unmute({sendDevice: true});
  }
  return {archived: !!chat.archive, pinned: !!chat.pin, mute_expiration: chat.mute ? chat.mute.expiration : null};
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""


def check(cmd: dict) -> tuple[str, str] | None:
    """What is wrong with a ``chat`` command, if anything: (reason,
    detail).  The node checks the same before it sends."""
    if cmd["action"] not in CHAT_ACTIONS:
        return "bad_action", f"action must be one of {', '.join(CHAT_ACTIONS)}"
    refusal = id_refusal(cmd["chat_id"], CHAT_ID_RE, "bad_chat_id")
    if refusal is not None:
        return refusal, "chat_id must look like 5511999999999@c.us, 1234...@lid or a group's ...@g.us"
    until = cmd.get("until")
    if until is not None and (cmd["action"] != "mute" or isinstance(until, bool) or not isinstance(until, int)
                              or until <= 0):
        return "bad_until", "until is a time in ms since the epoch, and goes with mute only"
    return None


def perform(driver, cmd: dict, timeout: float) -> dict:
    """Carry out one ``chat`` command on the page; the ``action_done`` or
    ``action_failed`` event that answers it."""
    wrong = check(cmd)
    if wrong is not None:
        return {"event": "action_failed", "id": cmd["id"], "reason": wrong[0], "detail": wrong[1]}
    if cmd["action"] in CHAT_STATES:
        return run(driver, cmd, CHAT_STATE_JS, (cmd["chat_id"], cmd["action"]), timeout)
    return run(driver, cmd, CHAT_JS, (cmd["chat_id"], cmd["action"], cmd.get("until"), MAX_PINNED), timeout)
