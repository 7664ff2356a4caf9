"""The scripts the session runs in WhatsApp Web's page (besides hook.js,
which runs by itself in every document).  Each takes its data as arguments,
never pasted into its source, and uses only modules and members listed in
``pageapi.SURFACE``."""

from __future__ import annotations

from importlib import resources

from . import pageapi
from .actions import MESSAGE_HELPERS_JS


def hook_source() -> str:
    """message.js, receipts.js, polls.js, calls.js, groupevents.js and
    hook.js, wrapped in one function so that none of their names becomes a
    global of the page."""
    files = resources.files(__package__)
    parts = (files.joinpath(name).read_text()
             for name in ("message.js", "receipts.js", "polls.js", "calls.js", "groupevents.js", "hook.js"))
    return "(function () {\n'use strict';\n" + "\n".join(parts) + "\n})();\n"

# Functions of SEND_FN, apart so that the tests can call them.
SEND_HELPERS_JS = """
// Marks the chat read, as a person answering would (whatsapp-web.js does it
// before every send).  A failure here does not stop the message: it is
// returned, and reported with the result.
async function markSeen(req, chat) {
  const Stream = req('WAWebStreamModel').Stream;
  Stream.markAvailable();
  try {
    await req('WAWebUpdateUnreadChatAction').sendSeen({chat, threadId: undefined});
    return null;
  } catch (e) {
    return String((e && e.message) || e);
  } finally {
    Stream.markUnavailable();
  }
}
// Tells the page's hook (hook.js) that the message with this key is one of
// this session's sends, not the account's own from another device.
function markOwnSend(key) {
  if (typeof window.__wwnodeSending === 'function') window.__wwnodeSending(key._serialized);
}
// Who we write as, as whatsapp-web.js decides: in a chat addressed by LID
// (a LID chat id, or a group in LID addressing mode) our own LID user, else
// our phone number's user -- whichever exists when the other does not.
function ownUser(chat, pnUser, lidUser) {
  const isGroup = typeof chat.id.isGroup === 'function' && chat.id.isGroup();
  const byLid = isGroup ? !!(chat.groupMetadata && chat.groupMetadata.isLidAddressingMode)
                        : typeof chat.id.isLid === 'function' && chat.id.isLid();
  return (byLid ? lidUser : pnUser) || pnUser || lidUser;
}
"""

def _content_js() -> str:
    return resources.files(__package__).joinpath("content.js").read_text()


# Sends one text as whatsapp-web.js 1.34.7 does; the chat id, the text and
# the options (``quotedMessageId``, ``mentions``, and ``content``: a
# location, contact cards or a poll instead of the text, content.js) arrive
# as arguments (data), never as source.  Resolves once WhatsApp Web accepted
# the message.  A function declaration for DevTools' Runtime.callFunctionOn
# on the session's own connection (DevTools.call_function), not chromedriver's
# execute_async_script: that is one more process to wake on every send (HTTP
# to chromedriver, which then calls the page), and under a node each send
# finds its chromedriver idle on a busy machine (docs/decisions.md, "Text
# sends over DevTools, not chromedriver").
SEND_FN = "async function (chatId, text, sendSeen, options) {\n" + SEND_HELPERS_JS + MESSAGE_HELPERS_JS + \
    _content_js() + """
const req = window.require;
try {
  const wid = req('WAWebWidFactory').createWid(chatId);
  const Chat = req('WAWebCollections').Chat;
  let chat = Chat.get(wid);
  if (!chat) {
    const found = await req('WAWebFindChatAction').findOrCreateLatestChat(wid);
    chat = found && found.chat;
  }
  if (!chat) throw new Error('chat not found: ' + chatId);
  const reply = await replyFields(req, chat, options.quotedMessageId);
  const content = await contentFields(req, options.content);
  const seenError = sendSeen ? await markSeen(req, chat) : null;
  const Me = req('WAWebUserPrefsMeUser');
  const me = ownUser(chat, Me.getMaybeMePnUser(), Me.getMaybeMeLidUser());
  const isGroup = typeof chat.id.isGroup === 'function' && chat.id.isGroup();
  const MsgKey = req('WAWebMsgKey');
  const id = new MsgKey({from: me, to: chat.id, id: await MsgKey.newId(),
                         participant: isGroup ? req('WAWebWidFactory').asUserWidOrThrow(me) : undefined,
                         selfDir: 'out'});
  // Disappearing-message settings of the chat, as the page's own sends carry them.
  const ephemeral = req('WAWebGetEphemeralFieldsMsgActionsUtils').getEphemeralFields(chat);
  const msg = {id, ack: 0, body: text, from: me, to: chat.id, local: true, self: 'out',
               t: Math.floor(Date.now() / 1000), isNewMsg: true, type: 'chat', ...ephemeral,
               ...mentionFields(req, options.mentions), ...reply, ...content};
  markOwnSend(id);
  const [added, result] = req('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, msg);
  await added;
  const outcome = await result;
  const status = outcome && outcome.messageSendResult;
  if (status && status !== 'OK') throw new Error('WhatsApp Web refused the message: ' + status);
  return {ok: true, id: id._serialized, seenError};
} catch (e) {
  return failure(e);
}
}"""

# Checks the page against the session's list (pageapi.CHECK_FN, the list
# as data) and, when nothing is missing, lets hook.js subscribe -- in one
# call, on one document, so a navigation in between cannot attach an
# unchecked page.
CHECK_AND_ATTACH_JS = f"""
function (needs) {{
  const found = ({pageapi.CHECK_FN})(needs);
  if (found.every((alternatives) => alternatives.some(Boolean)) && this.__wwnodeAttach) this.__wwnodeAttach();
  return found;
}}
"""

# The same check alone, for what the page needs once it has synced.
CHECK_JS = f"function (needs) {{ return ({pageapi.CHECK_FN})(needs); }}"

# function (chatId, state): "typing..." (``typing``) or nothing
# (``paused``) in the chat, as whatsapp-web.js's Chat.sendStateTyping and
# clearState (WAWebChatStateBridge).
CHAT_STATE_FN = """
async function (chatId, state) {
  const ChatState = window.require('WAWebChatStateBridge');
  const wid = window.require('WAWebWidFactory').createWid(chatId);
  if (state === 'typing') await ChatState.sendChatStateComposing(wid);
  else await ChatState.sendChatStatePaused(wid);
  return true;
}
"""

LOGOUT_JS = """
const done = arguments[0];
Promise.resolve(window.require('WAWebSocketModel').Socket.logout())
  .then(() => done(true), (e) => done(String(e)));
"""

PING_EXPR = (
    "(window.Debug && window.Debug.VERSION && typeof window.require === 'function')"
    " ? window.require('WAWebSocketModel').Socket.state : 'LOADING'"
)


def _media_js() -> str:
    return resources.files(__package__).joinpath("media.js").read_text()


# Sends one file as whatsapp-web.js 1.34.7 sends a MessageMedia with a
# caption: the same steps as SEND_FN, the media fields from media.js.  A
# function declaration for DevTools' Runtime.callFunctionOn
# (mediasend.call_with_file): the file arrives as an argument, its bytes
# in pieces (data, never source; chromedriver would paste its arguments
# into the source it has the page parse, which holds the page's thread for
# seconds on a large file).
SEND_MEDIA_FN = "async function (chatId, caption, sendSeen, media, file) {\n" + SEND_HELPERS_JS + _media_js() + """
const req = window.require;
try {
  const wid = req('WAWebWidFactory').createWid(chatId);
  const Chat = req('WAWebCollections').Chat;
  let chat = Chat.get(wid);
  if (!chat) {
    const found = await req('WAWebFindChatAction').findOrCreateLatestChat(wid);
    chat = found && found.chat;
  }
  if (!chat) throw new Error('chat not found: ' + chatId);
  const seenError = sendSeen ? await markSeen(req, chat) : null;
  const fields = await mediaMessageFields(req, media, file, caption);
  const Me = req('WAWebUserPrefsMeUser');
  const me = ownUser(chat, Me.getMaybeMePnUser(), Me.getMaybeMeLidUser());
  const isGroup = typeof chat.id.isGroup === 'function' && chat.id.isGroup();
  const MsgKey = req('WAWebMsgKey');
  const id = new MsgKey({from: me, to: chat.id, id: await MsgKey.newId(),
                         participant: isGroup ? me : undefined, selfDir: 'out'});
  const ephemeral = req('WAWebGetEphemeralFieldsMsgActionsUtils').getEphemeralFields(chat);
  const msg = {id, ack: 0, from: me, to: chat.id, local: true, self: 'out',
               t: Math.floor(Date.now() / 1000), isNewMsg: true, type: 'chat', ...ephemeral, ...fields};
  markOwnSend(id);
  const [added, result] = req('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, msg);
  await added;
  const outcome = await result;
  const status = outcome && outcome.messageSendResult;
  if (status && status !== 'OK') {
    throw new Error('WhatsApp Web refused the message: ' + status + (outcome.error ? ' (' + outcome.error + ')' : ''));
  }
  return {ok: true, id: id._serialized, seenError};
} catch (e) {
  return {ok: false, error: String((e && e.message) || e)};
}
}"""

# function (msgId) -> {bytes, mimetype, filename, size} or {error}: the
# file of an inbound message (media.js downloadMedia), read out in pieces
# by mediasend.call_for_file.
DOWNLOAD_MEDIA_FN = "function (msgId) {\n" + _media_js() + "\nreturn downloadMedia(window.require, msgId);\n}"
