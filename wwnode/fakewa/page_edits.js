// The stand-in page's edits and deletions, in the shapes whatsapp-web.js
// 1.34.7 uses them (Message.edit: WAWebMsgActionCapability.canEditText /
// canEditCaption, then WAWebSendMessageEditAction.sendMessageEdit;
// Message.delete: canSenderRevokeMsg / canAdminRevokeMsg, then
// Cmd.sendRevokeMsgs or Cmd.sendDeleteMsgs; its message_edit and
// message_revoke_everyone listen to Msg 'change:body change:caption' and
// 'change:type').  An edit changes the message's text on its model; a
// deletion for everyone turns the model's type to 'revoked' (first, so that
// listeners of the text see a revoked message and know it is no edit).
// The time the page allows is the server's setting (CONFIG.editWindow,
// CONFIG.revokeWindow, seconds after the message's `t`).  The server joins
// this file with the others into one script; page.js calls
// defineEditModules() among its own modules.

const FILE_TYPES = ['image', 'video', 'document'];

function ageSeconds(msg) { return Date.now() / 1000 - (msg.t || 0); }

function ownAndRecent(msg, windowSeconds) {
  return !!msg && !!msg.id && msg.id.fromMe && msg.type !== 'revoked' && ageSeconds(msg) <= windowSeconds;
}

// A new text for a message: its caption for a file, else its body.
function applyEdit(msg, text, editedAtMs) {
  msg.set('latestEditSenderTimestampMs', editedAtMs);
  if (FILE_TYPES.includes(msg.type)) msg.caption = text; else msg.body = text;
}

function applyRevoke(msg) {
  msg.type = 'revoked';
  msg.body = '';
  if (msg.caption) msg.caption = '';
}

function findByBareId(id) { return Msg.models.find((m) => m.id.id === id); }

function defineEditModules() {
  define('WAWebMsgActionCapability', {
    canEditText: (msg) => ownAndRecent(msg, CONFIG.editWindow) && msg.type === 'chat',
    canEditCaption: (msg) => ownAndRecent(msg, CONFIG.editWindow) && FILE_TYPES.includes(msg.type) && !!msg.caption,
    canSenderRevokeMsg: (msg) => ownAndRecent(msg, CONFIG.revokeWindow),
    canAdminRevokeMsg: () => false,  // admins deleting others' messages is not modelled
  });
  define('WAWebSendMessageEditAction', {
    sendMessageEdit: (msg, text) => post('/_wa/edit', { id: msg.id.id, chat: msg.id.remote._serialized, body: text })
      .then(() => { applyEdit(msg, text, Date.now()); }),
  });
  Cmd.sendRevokeMsgs = (chat, { list }) => Promise.all((list || []).map((msg) =>
    post('/_wa/revoke', { id: msg.id.id, chat: msg.id.remote._serialized }).then(() => applyRevoke(msg))));
  // Deleted for this device only: gone from the page and from what the
  // account keeps (its store), nobody else told.
  Cmd.sendDeleteMsgs = (chat, { list }) => {
    for (const msg of list || []) {
      Msg.remove(msg.id);
      if (chat && chat.msgs) chat.msgs.remove(msg.id);
    }
    return post('/_wa/forget', { ids: (list || []).map((msg) => msg.id.id) }).then(() => undefined);
  };
}

// The sender of a message the page holds edited or deleted it (another
// person, or the account on its phone).
function receiveEdit(event) {
  const msg = findByBareId(event.id);
  if (msg && msg.type !== 'revoked') applyEdit(msg, event.body, event.t);
}

function receiveRevoke(event) {
  const msg = findByBareId(event.id);
  if (msg && msg.type !== 'revoked') applyRevoke(msg);
}
