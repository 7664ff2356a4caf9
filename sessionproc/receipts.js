// What happens to messages after they are sent or received: acks of our own
// messages, reactions to any message, edits and deletions for everyone,
// reported to the session as whatsapp-web.js 1.34.7 finds them on the page.
// Loaded between message.js and hook.js inside one function (see
// pagescripts.hook_source); hook.js calls these once it has attached.

// Acks: the page's messages change `ack` as receipts come (the collection
// re-triggers each model's change); -1 error, 0 pending, 1 server,
// 2 device, 3 read, 4 played.  Only messages sent from this account.
function listenForAcks(Msg, emit) {
  Msg.on('change:ack', (msg, ack) => {
    if (!msg || !msg.id || !msg.id.fromMe) return;
    emit({ type: 'ack', message_id: msg.id._serialized, chat_id: widString(msg.id.remote) ?? null, ack });
  });
}

// Edits and deletions for everyone: the page changes the message's model.
// An edit changes its text (`body`, a file's `caption`); a deletion turns
// its type to 'revoked' (and empties its text: that is no edit).  A file's
// `body` is the page's own (its preview), so only its caption counts.
// `toMessage(model)` is the message as the session reports it.
function listenForChanges(Msg, emit, toMessage) {
  const edited = (field) => (msg, text, previous) => {
    if (!msg || !msg.id || msg.type === 'revoked' || typeof previous !== 'string' || text === previous) return;
    if (field === 'body' && (msg.directPath || msg.mediaObject)) return;
    emit({ type: 'edit', message: toMessage(msg), previous_body: previous });
  };
  Msg.on('change:body', edited('body'));
  Msg.on('change:caption', edited('caption'));
  Msg.on('change:type', (msg, type) => {
    if (type !== 'revoked' || !msg || !msg.id) return;
    emit({ type: 'revoke', message_id: widString(msg.id), chat_id: widString(msg.id.remote) ?? null,
           from_me: !!msg.id.fromMe });
  });
}

// Reactions: the page stores every reaction it learns of (sent, received,
// changed, taken back) through its reaction table's bulkUpsert; whatsapp-web.js
// wraps that function, and so do we.  A page without it sends and receives
// messages all the same: reactions are then not reported, and the session
// logs why.  The sender is as the page gives it (the author in a group, a
// LID where the chat is one); `otherIdOf(wid)` adds its other id where the
// page knows it, as for a message.
function listenForReactions(req, emit, otherIdOf) {
  let table = null;
  try { table = req('WAWebAddonReactionTableMode').reactionTableMode; } catch (e) { /* not on this page */ }
  if (!table || typeof table.bulkUpsert !== 'function') {
    emit({ type: 'error', reason: 'reactions_unavailable',
           detail: 'WAWebAddonReactionTableMode.reactionTableMode.bulkUpsert is missing' });
    return;
  }
  const original = table.bulkUpsert;
  table.bulkUpsert = function (...args) {
    try {
      for (const r of args[0] || []) {
        const sender = widString(r.author || r.from) ?? null;
        const report = { type: 'reaction', message_id: widString(r.reactionParentKey),
                         reaction: r.reactionText || '', sender };
        const server = typeof sender === 'string' ? sender.slice(sender.lastIndexOf('@') + 1) : '';
        if (server === 'lid' || server === 'c.us') {
          let other = null;
          try { other = otherIdOf(r.author || r.from); } catch (e) { /* reported as the page gave it */ }
          if (typeof other === 'string' && other && other !== sender) {
            report[server === 'lid' ? 'sender_pn' : 'sender_lid'] = other;
          }
        }
        emit(report);
      }
    } catch (e) {
      emit({ type: 'error', reason: 'reaction_unreadable', detail: String(e) });
    }
    return original.apply(this, args);
  };
}
