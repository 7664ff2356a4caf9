// The stand-in's page: the part of WhatsApp Web that clients use.
//
// It exposes `window.Debug.VERSION` and `window.require(name)` with the
// modules, members, events and data shapes of the current ("comet") page
// that our session and whatsapp-web.js 1.34.7 rely on, keeps its device
// identity and pairing in IndexedDB (so in the browser profile, as the real
// page does), and keeps a live link to its server (Server-Sent Events in,
// fetch out).  The building blocks (Model, Collection, Wid, ...) are in
// page_base.js; the server serves both as one script.

const VERSION = '2.3000.1017054665';
const DB_NAME = 'fakewa';
// What the server put in the page (data, never script): modules to leave out.
const CONFIG = JSON.parse((document.getElementById('fakewa-config') || {}).textContent || '{}');

// ------------------------------------------------- profile (IndexedDB)
function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore('kv');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
function dbOp(db, mode, fn) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction('kv', mode);
    const req = fn(tx.objectStore('kv'));
    tx.oncomplete = () => resolve(req && req.result);
    tx.onerror = () => reject(tx.error);
  });
}
const profile = {
  db: null,
  get(k) { return dbOp(this.db, 'readonly', s => s.get(k)); },
  put(k, v) { return dbOp(this.db, 'readwrite', s => s.put(v, k)); },
  del(k) { return dbOp(this.db, 'readwrite', s => s.delete(k)); },
};

function newIdentity() {
  return {
    device: encodeB64(randomBytes(16)).replace(/[^A-Za-z0-9]/g, ''),
    noisePub: randomBytes(32), noisePriv: randomBytes(32),
    identityPub: randomBytes(32), identityPriv: randomBytes(32),
    advSecret: encodeB64(randomBytes(32)),
  };
}

// ------------------------------------------------------------ state
const Socket = new Model({ state: 'OPENING', hasSynced: false, stream: 'DISCONNECTED' });
// platform and pushname are the primary device's (the phone's), as on the real page.
const Conn = new Model({ ref: null, wid: undefined, platform: undefined, pushname: undefined, connected: false });
const Stream = new Model({ available: false, mode: 'MAIN', displayInfo: 'OPENING' });
const Cmd = new Events();
const Msg = new Collection(m => m.id._serialized);
const Chat = new Collection(c => c.id._serialized);
const OfflineMessageHandler = { progress: 0, getOfflineDeliveryProgress() { return this.progress; } };
let identity = null;
let me = undefined;
let meLid = undefined;  // the account's LID (page_lids.js)

Socket.takeover = () => post('/_wa/takeover', {}).then(() => undefined);
Socket.logout = () => post('/_wa/logout', {}).then(() => undefined);
Stream.markAvailable = () => { Stream.available = true; };
Stream.markUnavailable = () => { Stream.available = false; };

function chatFor(wid) {
  let chat = Chat.get(wid);
  if (!chat) {
    const title = chatTitle(wid);  // page_history.js
    const attrs = { id: wid, name: title, formattedTitle: title, unreadCount: 0, t: 0, archive: false, pin: 0,
                    muteExpiration: 0 };
    if (wid.isGroup()) attrs.groupMetadata = groupMetadataFor(wid);  // page_lids.js
    chat = new ChatModel(attrs);  // page_history.js
    chat.set('mute', new MuteModel(chat));  // page_history.js: archived, pinned and muted, as the history keeps them
    // The chat's own messages, oldest first: a second collection holding
    // the same models; whether earlier ones are still to load.
    const msgs = new Collection(m => m.id._serialized);
    Object.defineProperty(msgs, 'msgLoadState', { value: { noEarlierMsgs: false } });
    Object.defineProperty(chat, 'msgs', { value: msgs });
    if (wid.isGroup()) groupChatMethods(chat);  // page_groups.js
    Chat.add(chat);
  }
  return chat;
}

function addToChat(chat, msg) {
  Msg.add(msg);
  chat.msgs.add(msg);
}

// As the real action: the message is added at once (first promise), the
// server's answer settles the second; the server taking it is ack 1.
function addAndSendMsgToChat(chat, msgData) {
  const msg = new MsgModel(Object.assign({}, msgData));
  addToChat(chat, msg);
  const media = outboundMedia(msg);  // page_media.js
  const resultPromise = post('/_wa/send', {
    id: msg.id.id, to: msg.to._serialized, from: msg.from ? msg.from._serialized : undefined,
    body: (media ? (msg.caption || '') : msg.body) ?? '', t: msg.t, media, ...sentExtras(msg),
    ...sentContent(msg),  // page_content.js: a location, contact cards, a poll
  }).then(() => {
    if (msg.ack < 1) msg.ack = 1;
    return { messageSendResult: 'OK' };
  }, (err) => {
    msg.ack = -1;
    return { messageSendResult: 'ERROR', error: String(err) };
  });
  chat.t = msg.t;
  return [Promise.resolve(msg), resultPromise];
}

// Marks a chat read; the real page then sends read receipts to the senders
// (the stand-in's phones do not look at them).
function sendSeen({ chat }) {
  if (!chat || !chat.unreadCount) return Promise.resolve();
  chat.unreadCount = 0;
  return post('/_wa/seen', { chat: chat.id._serialized }).then(() => undefined);
}

// ---------------------------------------------------------- modules
// Defined the way the real bundle defines them (by name); the server reads
// the names from here for `fakewa --drop-module`.
const modules = {};
function define(name, value) { modules[name] = value; }

define('WAWebSocketModel', { Socket });
define('WAWebConnModel', { Conn });
define('WAWebStreamModel', { Stream });
define('WAWebCmd', { Cmd });
define('WAWebCollections', { Msg, Chat });
define('WAWebOfflineHandler', { OfflineMessageHandler });
define('WAWebSyncGatingUtils', { isPlaceholderMessageResendEnabled: () => false });
define('WAWebWidFactory', { createWid, createUserWid: (user) => createWid(user + '@c.us') });
define('WAWebFindChatAction', {
  findOrCreateLatestChat: (wid) => Promise.resolve({ chat: chatFor(wid), created: false }),
});
define('WAWebSendMsgChatAction', { addAndSendMsgToChat });
define('WAWebUpdateUnreadChatAction', { sendSeen });
define('WAWebChatGetters', {
  getIsNewsletter: (chat) => chat.id.isNewsletter(),
  getIsBroadcast: (chat) => chat.id.isBroadcast(),
  getIsGroup: (chat) => chat.id.isGroup(),
});
define('WAWebGetEphemeralFieldsMsgActionsUtils', {
  // No chat of the stand-in has disappearing messages on.
  getEphemeralFields: (chat) => (chat && chat.ephemeralDuration
    ? { ephemeralDuration: chat.ephemeralDuration, ephemeralSettingTimestamp: chat.ephemeralSettingTimestamp }
    : {}),
});
define('WALinkify', { findLink, findLinks });
define('WAWebMsgKey', MsgKey);
define('WAWebUserPrefsMeUser', {
  getMaybeMePnUser: () => me,
  getMaybeMeLidUser: () => meLid,
  getMeUser: () => { if (!me) throw new Error('no me user'); return me; },
});
define('WABase64', { encodeB64 });
define('WAWebCompanionRegClientUtils', { DEVICE_PLATFORM: 'WEB' });
define('WAWebUserPrefsMultiDevice', { getADVSecretKey: () => identity.advSecret });
define('WAWebAdvSignatureApi', {
  getADVSecretKey: () => (identity.advSecret
    ? Promise.resolve(identity.advSecret) : Promise.reject(new Error('no ADV secret'))),
});
define('WAWebUserPrefsInfoStore', {
  waNoiseInfo: { get: () => Promise.resolve({ staticKeyPair: { pubKey: identity.noisePub, privKey: identity.noisePriv } }) },
});
define('WAWebSignalStoreApi', {
  waSignalStore: {
    getRegistrationInfo: () => Promise.resolve({ identityKeyPair: { pubKey: identity.identityPub, privKey: identity.identityPriv } }),
  },
});
defineMessagingModules();  // page_messaging.js: replies, reactions, number checks, pairing codes
defineLidModules();  // page_lids.js: LIDs and phone numbers, groups addressed by LID
defineEditModules();  // page_edits.js: editing and deleting messages
defineContentModules();  // page_content.js: locations, contact cards, polls and their votes
defineCallModules();  // page_calls.js: calls ringing, and rejecting them
definePresenceModules();  // page_presence.js: typing and recording in a chat
defineHistoryModules();  // page_history.js: chats and messages over the session's life, archive/pin/mute, pictures
defineGroupModules();  // page_groups.js: group metadata, group changes and their notifications

defineMediaModules();  // page_media.js

for (const name of CONFIG.dropModules || []) delete modules[name];

window.require = function (name) {
  if (!Object.prototype.hasOwnProperty.call(modules, name)) {
    throw new Error('Requiring unknown module "' + name + '"');
  }
  return modules[name];
};

// ---------------------------------------------------------- the link
function post(path, body) {
  const payload = Object.assign({ device: identity.device }, body);
  return fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(payload),
  }).then(async (r) => {
    if (!r.ok) throw new Error(path + ': HTTP ' + r.status + ' ' + (await r.text()));
    return r.json();
  });
}

let source = null;
let chain = Promise.resolve();

function qrTail() {
  return [encodeB64(identity.noisePub), encodeB64(identity.identityPub), identity.advSecret, 'WEB'].join(',');
}

async function connect() {
  const paired = await profile.get('paired');
  const params = new URLSearchParams({ device: identity.device, tail: qrTail(), paired: paired ? '1' : '0',
                                       run: CONFIG.run || '' });
  source = new EventSource('/_wa/link?' + params.toString());
  source.onopen = () => { Conn.connected = true; };
  source.onerror = () => { Conn.connected = false; };  // EventSource retries by itself
  source.onmessage = (e) => {
    const event = JSON.parse(e.data);
    chain = chain.then(() => handle(event)).catch((err) => console.error(err));
  };
}

async function startOver() {
  // The phone unlinked this device: forget it and register anew.
  if (source) source.close();
  await profile.del('paired');
  identity = newIdentity();
  await profile.put('identity', identity);
  me = undefined;
  meLid = undefined;
  forgetLids();
  Calls.reset();
  Conn.wid = undefined;
  Socket.hasSynced = false;
  Socket.state = 'OPENING';
  await connect();
}

function show(text, ref) {
  const el = document.getElementById('status');
  if (el) el.textContent = text;
  const qr = document.getElementById('qr');
  if (qr) { if (ref) qr.setAttribute('data-ref', ref); else qr.removeAttribute('data-ref'); }
}

async function handle(event) {
  switch (event.type) {
    case 'ref':
      Conn.ref = event.ref;  // the ref first: readers of state UNPAIRED read it
      Socket.state = 'UNPAIRED';
      show('Scan the QR code', event.ref);
      break;
    case 'idle':
      Conn.ref = null;
      Socket.state = 'UNPAIRED_IDLE';
      show('Click to reload QR code');
      break;
    case 'paired': {
      if (!event.restored) Socket.state = 'PAIRING';
      await profile.put('paired', event.wid);
      me = createWid(event.wid);
      meLid = event.lid ? createWid(event.lid) : undefined;
      learnLids(event.lids);
      for (const group of event.lid_groups || []) setGroupAddressing(group, 'lid');
      Conn.wid = me;
      Conn.pushname = event.pushname;
      Conn.platform = event.platform;
      // Conn.ref keeps the scanned code: clients that report every change
      // of it (whatsapp-web.js) report no code after a scan, as users of
      // the real page see.
      Socket.state = 'CONNECTED';
      show('Loading your chats');  // hasSynced follows when the server says the sync is over
      break;
    }
    case 'offline':
      OfflineMessageHandler.progress = event.progress;
      Cmd.trigger('offline_progress_update_from_bridge');
      break;
    case 'synced':
      Stream.displayInfo = 'NORMAL';
      Socket.hasSynced = true;
      show('Connected as ' + (me ? me._serialized : ''));
      break;
    case 'msg':
      receive(event.msg);
      break;
    case 'receipt': {
      // The recipient's phone got (2) or read (3) a message sent from here.
      const msg = Msg.models.find((m) => m.id.fromMe && m.id.id === event.id);
      if (msg && msg.ack < event.ack) msg.ack = event.ack;
      break;
    }
    case 'reaction':
      receiveReaction(event);  // page_messaging.js
      break;
    case 'edit':
      receiveEdit(event);  // page_edits.js
      break;
    case 'revoke':
      receiveRevoke(event);
      break;
    case 'vote':
      receiveVote(event);  // page_content.js
      break;
    case 'call_offer':
      receiveCallOffer(event);  // page_calls.js
      break;
    case 'call_end':
      receiveCallEnd(event);
      break;
    case 'history':
      receiveHistory(event);  // page_history.js: the account's chats, messages, contacts
      break;
    case 'group_meta':
      receiveGroupMetadata(event.meta);  // page_groups.js: a group changed
      break;
    case 'contact':
      receiveContact(event.contact);  // page_history.js: the account saved a number
      break;
    case 'chat_state': {
      const chat = chatFor(createWid(event.id));
      applyChatState(chat, event);
      break;
    }
    case 'lids':
      learnLids(event.pairs);  // the account learned a person's number and LID
      break;
    case 'group':
      setGroupAddressing(event.id, event.addressing);
      break;
    case 'unpaired':
      await startOver();
      break;
    case 'logout':
      // As the real page: the device was logged out, the page forgets its
      // pairing and navigates to the post-logout address.  A logout the
      // phone made reaches the page through its worker ("bridge").
      source.close();
      await profile.del('paired');
      await profile.put('identity', newIdentity());
      Cmd.trigger(event.by === 'phone' ? 'logout_from_bridge' : 'logout');
      window.location.assign('/?post_logout=1&logout_reason=0');
      break;
    case 'conflict':
      Socket.state = 'CONFLICT';
      show('WhatsApp is open on another computer or browser');
      break;
    case 'connected':
      Socket.state = 'CONNECTED';
      show('Connected as ' + (me ? me._serialized : ''));
      break;
    case 'freeze': {
      // A hung page: the renderer stops running any script.  It says so
      // first, synchronously (the request is out before the spin), so the
      // control call that froze it can answer once it is hung.
      const said = new XMLHttpRequest();
      said.open('POST', '/_wa/frozen', false);
      said.setRequestHeader('Content-Type', 'application/json');
      try { said.send(JSON.stringify({ device: identity.device })); } catch (e) { /* answered at its deadline */ }
      for (;;) { /* spin */ }
    }
    case 'replaced':
      source.close();
      Socket.state = 'CONFLICT';
      break;
    default:
      console.warn('fakewa: unknown event', event);
  }
}

// A message from the server: someone else's, or (from_me) one the account
// wrote on another device (the phone), which the page shows as its own.
function receive(data) {
  learnLids(data.lids);  // what the account knows of the sender (page_lids.js)
  const fromMe = !!data.from_me;
  const chatId = chatIdOf(data);  // page_history.js
  if (data.addressing) setGroupAddressing(chatId._serialized, data.addressing);
  const msg = messageModel(data, true);
  if (!Msg.get(msg.id)) {
    knowPeople(data);  // page_history.js
    const chat = chatFor(chatId);
    if (!fromMe && msg.type !== 'gp2') chat.unreadCount += 1;
    if (data.t > (chat.t || 0)) chat.t = data.t;
    addToChat(chat, msg);
  }
  post('/_wa/ack', { ids: [data.id] }).catch((err) => console.error(err));
}

// ---------------------------------------------------------- start
async function boot() {
  profile.db = await openDb();
  identity = await profile.get('identity');
  if (!identity) {
    identity = newIdentity();
    await profile.put('identity', identity);
  }
  window.Debug = { VERSION };
  show('Loading');
  await connect();
  // The weight (off by default) builds while the page runs, in slices, as
  // the real page loads its chats: the QR code and the link do not wait.
  loadWeight(CONFIG.weight).catch((err) => console.error('fakewa: weight', err));
}

boot().catch((err) => { console.error(err); show('Failed to start: ' + err); });
