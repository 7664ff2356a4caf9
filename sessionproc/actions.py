"""What the session does on the page besides sending: replies and mentions
inside a send, reactions, marking a chat read, editing and deleting its
own messages, number checks, and asking for a pairing code.  Each script is
the way whatsapp-web.js 1.34.7 does the same thing (``Client.sendReaction``,
``Client.sendSeen``, ``Message.edit``, ``Message.delete``,
``Client.getNumberId``, ``Client.requestPairingCode``,
``WWebJS.sendMessage``'s ``quotedMessageId`` and ``mentionedJidList``),
takes its data as arguments (never pasted into its source) and uses only
modules and members listed in ``pageapi.SURFACE``.

:func:`perform` carries out one ``action`` or ``check_number`` command of
the pipe protocol and returns the event that answers it.
"""

from __future__ import annotations

import logging

from selenium.common.exceptions import JavascriptException, TimeoutException

from .protocol import MAX_EMOJI, MAX_TEXT, MESSAGE_ID_RE, PHONE_RE
# One list of what a chromedriver call fails with: chromedriver's own HTTP
# read timeout (urllib3's) is one, and a copy here without it once let an
# action under a flood end the sender thread.
from .sessionstate import DRIVER_ERRORS

log = logging.getLogger(__name__)

# Finding a message the page holds: in memory first, then in its store,
# as whatsapp-web.js does.  A failure of ours carries a stable reason the
# node passes on: ``unknown_message``, ``cannot_reply``, ``not_own_message``,
# ``cannot_edit``, ``cannot_revoke``.
MESSAGE_HELPERS_JS = """
class ActionError extends Error {
  constructor(reason, message) { super(message); this.reason = reason; }
}
async function findMessage(req, id) {
  const Msg = req('WAWebCollections').Msg;
  let msg = Msg.get(id);
  if (!msg) {
    const found = await Msg.getMessagesById([id]);
    msg = found && found.messages && found.messages[0];
  }
  if (!msg) throw new ActionError('unknown_message', 'WhatsApp Web does not have message ' + id);
  return msg;
}
// The fields a reply carries (whatsapp-web.js: canReplyMsg, then the
// quoted message's msgContextInfo for the chat it goes to).
async function replyFields(req, chat, quotedId) {
  if (!quotedId) return {};
  const quoted = await findMessage(req, quotedId);
  if (!req('WAWebMsgReply').canReplyMsg(quoted.unsafe())) {
    throw new ActionError('cannot_reply', 'message ' + quotedId + ' cannot be replied to');
  }
  return quoted.msgContextInfo(chat);
}
// The chat a message is in, as the page holds it.
async function chatOfMessage(req, msg, messageId) {
  const remote = msg.id.remote;
  const chatId = typeof remote === 'string' ? remote : remote._serialized;
  const wid = req('WAWebWidFactory').createWid(chatId);
  let chat = req('WAWebCollections').Chat.get(wid);
  if (!chat) {
    const found = await req('WAWebFindChatAction').findOrCreateLatestChat(wid);
    chat = found && found.chat;
  }
  if (!chat) throw new ActionError('unknown_message', 'no chat ' + chatId + ' for message ' + messageId);
  return chat;
}
function mentionFields(req, mentions) {
  if (!mentions || !mentions.length) return {};
  const createWid = req('WAWebWidFactory').createWid;
  return {mentionedJidList: mentions.map((id) => createWid(id))};
}
const failure = (e) => ({ok: false, reason: (e && e.reason) || 'page_error', error: String((e && e.message) || e)});
"""

# React to a message (``emoji`` "" takes the reaction back).
REACT_JS = MESSAGE_HELPERS_JS + """
const [messageId, emoji, done] = arguments;
(async () => {
  const req = window.require;
  const msg = await findMessage(req, messageId);
  await req('WAWebSendReactionMsgAction').sendReactionToMsg(msg, emoji);
  return {};
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""

# Mark the chat of a message read (read receipts for what it holds unread).
READ_JS = MESSAGE_HELPERS_JS + """
const [messageId, done] = arguments;
(async () => {
  const req = window.require;
  const msg = await findMessage(req, messageId);
  const chat = await chatOfMessage(req, msg, messageId);
  const Stream = req('WAWebStreamModel').Stream;
  Stream.markAvailable();
  try {
    await req('WAWebUpdateUnreadChatAction').sendSeen({chat, threadId: undefined});
  } finally {
    Stream.markUnavailable();
  }
  return {chat_id: chat.id._serialized};
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""

# Edits and deletions: only the account's own messages, and only while the
# page allows (WhatsApp gives the sender a while; the page knows how long,
# through WAWebMsgActionCapability, as whatsapp-web.js asks it).  A refusal
# names the message's age, the one thing the page's yes or no does not say.
OWN_MESSAGE_JS = """
function ownMessage(msg, messageId, what) {
  if (!msg.id.fromMe) {
    throw new ActionError('not_own_message', 'message ' + messageId + ' was not sent by this account: only its own '
                          + 'messages can be ' + what);
  }
}
function refusal(msg, messageId, what) {
  const age = Math.max(0, Math.round(Date.now() / 1000 - (msg.t || 0)));
  return 'WhatsApp Web does not let message ' + messageId + ' (sent ' + age + ' s ago, ' + msg.type + ') be ' + what
    + ': past the time WhatsApp allows for it, or a kind of message that cannot be';
}
"""

# Change the text of one of the account's messages (a file's caption).
EDIT_JS = MESSAGE_HELPERS_JS + OWN_MESSAGE_JS + """
const [messageId, text, done] = arguments;
(async () => {
  const req = window.require;
  const msg = await findMessage(req, messageId);
  ownMessage(msg, messageId, 'edited');
  const can = req('WAWebMsgActionCapability');
  if (!can.canEditText(msg) && !can.canEditCaption(msg)) {
    throw new ActionError('cannot_edit', refusal(msg, messageId, 'edited'));
  }
  await req('WAWebSendMessageEditAction').sendMessageEdit(msg, text, {});
  return {};
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""

# Delete one of the account's messages for everyone, or (forMe) any message
# for this device only.
REVOKE_JS = MESSAGE_HELPERS_JS + OWN_MESSAGE_JS + """
const [messageId, forMe, done] = arguments;
(async () => {
  const req = window.require;
  const msg = await findMessage(req, messageId);
  const chat = await chatOfMessage(req, msg, messageId);
  const Cmd = req('WAWebCmd').Cmd;
  if (forMe) {
    await Cmd.sendDeleteMsgs(chat, {list: [msg], type: 'message'}, true);
    return {};
  }
  ownMessage(msg, messageId, 'deleted for everyone');
  // Done already (a command carried out twice, after a restart): done.
  if (msg.type === 'revoked') return {};
  if (!req('WAWebMsgActionCapability').canSenderRevokeMsg(msg)) {
    throw new ActionError('cannot_revoke', refusal(msg, messageId, 'deleted for everyone'));
  }
  await Cmd.sendRevokeMsgs(chat, {list: [msg], type: 'message'}, {clearMedia: true});
  return {};
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""

# Whether a number has WhatsApp, and the id to write to (which may differ
# from the number typed).
CHECK_NUMBER_JS = MESSAGE_HELPERS_JS + """
const [phone, done] = arguments;
(async () => {
  const req = window.require;
  const wid = req('WAWebWidFactory').createWid(phone + '@c.us');
  const found = await req('WAWebQueryExistsJob').queryWidExists(wid);
  const id = found && found.wid;
  if (!id) return {registered: false, wid: null};
  return {registered: true, wid: typeof id === 'string' ? id : id._serialized};
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""

# Ask for a pairing code for ``phone`` instead of QR codes, and for a new
# one every ``intervalMs`` while the page is still unpaired, as
# whatsapp-web.js's requestPairingCode does.  Each code goes to the session
# through the page binding, as hook.js reports (``report``: its name).
PAIR_JS = """
const [phone, intervalMs, binding, done] = arguments;
const req = window.require;
const Linking = req('WAWebAltDeviceLinkingApi');
const report = (obj) => window[binding](JSON.stringify(obj));
async function getCode() {
  Linking.setPairingType('ALT_DEVICE_LINKING');
  await Linking.initializeAltDeviceLinking();
  return Linking.startAltLinkingFlow(phone, true);
}
const unpaired = () => ['UNPAIRED', 'UNPAIRED_IDLE'].includes(req('WAWebSocketModel').Socket.state);
if (window.__wwnodePairTimer) clearInterval(window.__wwnodePairTimer);
window.__wwnodePairTimer = setInterval(() => {
  if (!unpaired()) { clearInterval(window.__wwnodePairTimer); return; }
  getCode().then((code) => report({type: 'pairing_code', code: String(code)}),
                 (e) => report({type: 'error', reason: 'pairing_failed', detail: String((e && e.message) || e)}));
}, intervalMs);
getCode().then((code) => { report({type: 'pairing_code', code: String(code)}); done({ok: true}); },
               (e) => done({ok: false, error: String((e && e.message) || e)}));
"""

def check(cmd: dict) -> tuple[str, str] | None:
    """What is wrong with an ``action`` or ``check_number`` command, if
    anything: (reason, detail).  The node checks the same before it sends."""
    if cmd["cmd"] == "check_number":
        if not PHONE_RE.match(cmd["phone"]):
            return "bad_phone", "phone must be 5 to 20 digits"
        return None
    if not MESSAGE_ID_RE.match(cmd["message_id"]):
        return "bad_message_id", "message_id must be a message's _serialized id"
    if cmd["action"] == "react" and len(cmd["emoji"]) > MAX_EMOJI:
        return "bad_emoji", f"emoji longer than {MAX_EMOJI} characters"
    if cmd["action"] == "edit" and not cmd["text"]:
        return "empty_message", "the new text must not be empty"
    if cmd["action"] == "edit" and len(cmd["text"]) > MAX_TEXT:
        return "too_long", f"text longer than {MAX_TEXT} characters"
    return None


def perform(driver, cmd: dict, timeout: float) -> dict:
    """Carry out one ``action`` or ``check_number`` on the page; the
    ``action_done`` or ``action_failed`` event that answers it."""
    failed = {"event": "action_failed", "id": cmd["id"]}
    wrong = check(cmd)
    if wrong is not None:
        return failed | {"reason": wrong[0], "detail": wrong[1]}
    args: tuple  # the script's arguments, one or two
    if cmd["cmd"] == "check_number":
        script, args = CHECK_NUMBER_JS, (cmd["phone"],)
    elif cmd["action"] == "react":
        script, args = REACT_JS, (cmd["message_id"], cmd["emoji"])
    elif cmd["action"] == "edit":
        script, args = EDIT_JS, (cmd["message_id"], cmd["text"])
    elif cmd["action"] == "revoke":
        script, args = REVOKE_JS, (cmd["message_id"], bool(cmd.get("for_me", False)))
    else:
        script, args = READ_JS, (cmd["message_id"],)
    return run(driver, cmd, script, args, timeout)


def run(driver, cmd: dict, script: str, args: tuple, timeout: float) -> dict:
    """Run one command's script (it answers ``done({ok, result})`` or
    ``done({ok: false, reason, error})``); the ``action_done`` or
    ``action_failed`` event that answers the command."""
    failed = {"event": "action_failed", "id": cmd["id"]}
    try:
        result = driver.execute_async_script(script, *args)
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
    return {"event": "action_done", "id": cmd["id"], "result": result.get("result") or {}}
