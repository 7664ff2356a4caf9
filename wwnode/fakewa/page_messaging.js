// The stand-in page beyond text: message models that can be quoted,
// reactions out and in, number checks and linking with a pairing code, in
// the shapes whatsapp-web.js 1.34.7 uses them (Client.sendReaction,
// Client.getNumberId, Client.requestPairingCode, WWebJS.sendMessage with
// quotedMessageId and mentionedJidList).  The server joins this file with
// page_base.js and page.js into one script; page.js calls
// defineMessagingModules() among its own modules, and these functions use
// its Msg, define, post and me when they run.
//
// Where nothing tells how the real page behaves (the fields of
// msgContextInfo beyond the quoted message's id and author, whether a
// reaction we send is stored in our own reaction table), these are guesses.

// A message of the page: a model that can be quoted.
class MsgModel extends Model {
  unsafe() { return this; }  // the real page's raw access to a model; the same object here
  canReply() { return replyable(this); }
  // The fields a reply carries about the message it quotes.
  msgContextInfo(chat) {
    const remote = this.id.remote;
    return {
      quotedMsg: { type: this.type, body: this.body },
      quotedStanzaID: this.id.id,
      quotedParticipant: this.author || this.from,
      quotedRemoteJid: chat && remote && !remote.equals(chat.id) ? remote : undefined,
    };
  }
}

// Messages that cannot be quoted: gone, or not decrypted yet.
function replyable(msg) {
  return !!msg && !['revoked', 'ciphertext', 'notification', 'e2e_notification'].includes(msg.type);
}

// What the server keeps of a sent message besides its text.
function sentExtras(msg) {
  const extras = {};
  if (msg.quotedStanzaID) extras.quoted_id = msg.quotedStanzaID;
  if (msg.mentionedJidList && msg.mentionedJidList.length) {
    extras.mentions = msg.mentionedJidList.map((w) => w._serialized);
  }
  return extras;
}

let pairingType = null;

function defineMessagingModules() {
  // Messages the page has, by id: in memory here (the real page also reads
  // its IndexedDB store).
  Msg.getMessagesById = (ids) => Promise.resolve({ messages: ids.map((id) => Msg.get(id)).filter(Boolean) });

  const widFactory = modules.WAWebWidFactory;
  widFactory.asUserWidOrThrow = (wid) => {
    if (!wid || typeof wid.isUser !== 'function' || !wid.isUser()) throw new Error('not a user wid: ' + wid);
    return wid;
  };

  define('WAWebMsgReply', { canReplyMsg: (msg) => replyable(msg) });

  define('WAWebSendReactionMsgAction', {
    sendReactionToMsg: (msg, reaction) => post('/_wa/react', {
      id: msg.id.id, chat: msg.id.remote._serialized, reaction: String(reaction),
    }).then(() => ({ messageSendResult: 'OK' })),
  });

  // Every reaction the page learns of is stored here, one record each.
  const reactions = new Map();
  define('WAWebAddonReactionTableMode', {
    reactionTableMode: {
      bulkUpsert: (records) => {
        for (const r of records) reactions.set(r.id._serialized, r);
        return Promise.resolve();
      },
    },
  });

  define('WAWebQueryExistsJob', {
    // The answer also tells the page the person's LID (and number, where
    // the account may know it): clients ask the page for them afterwards.
    queryWidExists: (wid) => post('/_wa/exists', { wid: wid._serialized }).then((r) => {
      if (r.lid && r.pn) learnLids([[r.lid, r.pn]]);
      return r.wid ? { wid: createWid(r.wid) } : null;
    }),
  });

  define('WAWebAltDeviceLinkingApi', {
    setPairingType: (type) => { pairingType = type; },
    initializeAltDeviceLinking: () => Promise.resolve(),
    startAltLinkingFlow: (phone) => {
      if (pairingType !== 'ALT_DEVICE_LINKING') return Promise.reject(new Error('pairing type is not ALT_DEVICE_LINKING'));
      return post('/_wa/pair-code', { phone: String(phone) }).then((r) => r.code);
    },
    initializeQRLinking: () => { pairingType = null; return Promise.resolve(); },
  });
}

// A phone reacted to a message of ours (sent or received): stored through
// the reaction table, looked up at call time as the real page's code does.
function receiveReaction(event) {
  learnLids(event.lids);  // what the account knows of the sender (page_lids.js)
  const parent = Msg.models.find((m) => m.id.id === event.id);
  const from = createWid(event.from);
  const parentKey = parent ? parent.id : new MsgKey({ from, to: me, id: event.id, selfDir: 'in' });
  const record = {
    id: new MsgKey({ from, to: me, id: event.reaction_id, selfDir: 'in' }),
    reactionParentKey: parentKey,
    reactionText: event.reaction,
    reactionTimestamp: event.t,
    from,
    author: undefined,
    orphan: parent ? 0 : 1,
    orphanReason: parent ? null : 'parent_missing',
    read: false,
    ack: undefined,
  };
  window.require('WAWebAddonReactionTableMode').reactionTableMode.bulkUpsert([record]);
  if (parent) parent.hasReaction = !!event.reaction;
}
