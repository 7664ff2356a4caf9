// The stand-in page's chats and messages over the session's life, in the
// shapes whatsapp-web.js 1.34.7 reads them (Client.getChats:
// WAWebCollections.Chat.getModelsArray and getChatModel; Chat.fetchMessages:
// chat.msgs.getModelsArray and WAWebChatLoadMessages.loadEarlierMsgs;
// Client.getContacts: WAWebCollections.Contact.getModelsArray;
// Client.getProfilePicUrl:
// WAWebContactProfilePicThumbBridge.requestProfilePicFromServer).
//
// The account's chats come from the server when the page links or comes
// back (`history`: each chat's state and latest messages, the account's
// contacts), as the real page has them from its store and the phone's
// history sync; earlier messages are loaded from the server when asked
// for, a message not in memory is looked up there (Msg.getMessagesById),
// and the phone's archiving, pinning and muting reach the open page
// (`chat_state`).
//
// A chat's archive, pin and mute are one model, whoever changes them: the
// phone (`chat_state`) or the page, in the shapes whatsapp-web.js 1.34.7
// uses (Client.archiveChat and unarchiveChat: Cmd.archiveChat(chat, bool);
// pinChat and unpinChat: Cmd.pinChat(chat, bool), after counting pinned
// chats in Chat.getModelsArray(), pinned ones first; muteChat and
// unmuteChat: chat.mute.mute({expiration, sendDevice}) and
// chat.mute.unmute(), then chat.mute.expiration: 0 not muted, -1 for ever,
// else seconds since the epoch; Chat.find for a chat the page does not
// hold).  `archive` and `pin` (seconds since it was pinned, 0: not) are
// model attributes, so a client that listens to Chat's change:archive hears
// it.  A page's change goes to the server, which keeps it in the chat's
// history (wwnode/fakewa/chats.py), so reading the chats back shows it.
//
// The server joins this file with the others into one script; page.js
// calls defineHistoryModules() among its own modules and uses
// messageModel(), chatTitle(), MuteModel, applyChatState() and
// receiveHistory().
//
// Guesses, where nothing read here tells how the real page behaves: the
// number of messages loaded at a time (the server's), the error a picture
// that cannot be had gives (a ServerStatusCodeError with status 404, as
// whatsapp-web.js expects one), the URL of a picture (the stand-in's),
// what Cmd.pinChat does past the limit of pinned chats (here it pins
// nothing and resolves, as the app only shows a notice), and whether the
// mute model has fields beyond `expiration` that clients read.

const MAX_PINNED = 3;

// A chat, as the real model: its id stays a Wid when serialized (clients
// read id._serialized on what serialize() gives).
class ChatModel extends Model {
  serialize() {
    const out = super.serialize();
    out.id = this.id;
    return out;
  }
}

// The name a chat shows: a person's as their contact gives it, a group's
// subject, else the number (+digits) or the id.
function chatTitle(wid) {
  if (wid.isGroup()) {
    const meta = GroupMetadata.get(wid);  // page_groups.js
    return meta && meta.subject ? meta.subject : wid.user;
  }
  const contact = Contacts.get(wid);
  if (contact) return frontendContactGetters.getDisplayName(contact);
  return wid.server === 'c.us' ? '+' + wid.user : wid.user;
}

// A chat's mute, as the real page's chat.mute (expiration: 0 unmuted, -1
// for ever, else seconds since the epoch); the chat's muteExpiration
// follows it.
class MuteModel extends Model {
  constructor(chat) {
    super({ expiration: 0 });
    Object.defineProperty(this, '_chat', { value: chat });
  }
  get isMuted() { return this.expiration !== 0; }
  _become(expiration) {
    this.expiration = expiration;
    this._chat.muteExpiration = expiration;
  }
  mute({ expiration }) {
    const until = typeof expiration === 'number' && expiration !== 0 ? Math.floor(expiration) : -1;
    return post('/_wa/chat', { chat: this._chat.id._serialized, mute: until }).then(() => this._become(until));
  }
  unmute() {
    return post('/_wa/chat', { chat: this._chat.id._serialized, mute: 0 }).then(() => this._become(0));
  }
  serialize() { return { expiration: this.expiration, isMuted: this.isMuted }; }
}

function applyChatState(chat, state) {
  if (state.t !== undefined && state.t > (chat.t || 0)) chat.t = state.t;
  if (state.unreadCount !== undefined) chat.unreadCount = state.unreadCount;
  if (state.archive !== undefined) chat.archive = !!state.archive;
  if (state.pin !== undefined) chat.pin = state.pin || 0;
  if (state.muteExpiration !== undefined) chat.mute._become(state.muteExpiration);
}

function pinnedChats() { return Chat.models.filter((c) => c.pin); }

// A message model from what the server sends of a message (a phone's, the
// account's own from its phone or its pages): new (`isNewMsg`, reported
// by clients) or one the page is given back (history, not new).
function messageModel(data, isNew) {
  const fromMe = !!data.from_me;
  const from = createWid(data.from);
  const to = createWid(data.to);
  // In a group: from the group, written by its author.
  const author = data.author ? createWid(data.author) : undefined;
  const id = new MsgKey({ from, to, id: data.id, participant: author, selfDir: fromMe ? 'out' : 'in' });
  const msg = new MsgModel({
    id, body: data.body, type: 'chat', t: data.t, from, to, author,
    notifyName: '', ack: data.ack ?? 1, isNewMsg: isNew, star: false, broadcast: false,
    isForwarded: false, forwardingScore: 0, mentionedJidList: [], quotedMsg: undefined,
    local: false, self: fromMe ? 'out' : 'in',
    ...(data.media ? inboundMediaFields(data.media, data.body) : {}),
    ...(data.content ? inboundContentFields(data.content) : {}),  // page_content.js
    ...(data.notification ? notificationFields(data.notification) : {}),  // page_groups.js
  });
  if (data.media) attachMediaMethods(msg);
  return msg;
}

// The chat a message (as the server sends it) belongs to.
function chatIdOf(data) { return createWid(data.from_me ? data.to : data.from); }

// Messages given back: in Msg and their chat's msgs, oldest first.  Ones
// the page holds already stay as they are.
function addGivenBack(list, { atStart = false } = {}) {
  const byChat = new Map();
  for (const data of list) {
    learnLids(data.lids);
    if (Msg.get(new MsgKey({
      from: createWid(data.from), to: createWid(data.to), id: data.id,
      participant: data.author ? createWid(data.author) : undefined, selfDir: data.from_me ? 'out' : 'in',
    }))) continue;
    const msg = messageModel(data, false);
    knowPeople(data);
    Msg.add(msg);
    const key = chatIdOf(data)._serialized;
    if (!byChat.has(key)) byChat.set(key, []);
    byChat.get(key).push(msg);
  }
  for (const [key, msgs] of byChat) {
    const chat = chatFor(createWid(key));
    chat.msgs.add(msgs, atStart ? { at: 0 } : undefined);
  }
  return Array.from(byChat.values()).flat();
}

// A person the server tells the page of (the account saved their number,
// or the page is given its contacts): added, or brought up to date.
function receiveContact(info) {
  if (info.pn && info.wid.endsWith('@lid')) learnLids([[info.wid, info.pn]]);
  const wid = createWid(info.wid);
  const fresh = newContact(wid, info);
  const known = Contacts.get(wid);
  if (!known) { Contacts.add(fresh); return; }
  for (const name of ['name', 'shortName', 'pushname', 'formattedName', 'isMyContact', 'isWAContact', 'phoneNumber']) {
    if (fresh[name] !== undefined) known.set(name, fresh[name]);
  }
}

// A person a message comes from or goes to is one of the page's contacts
// from then on (as the real page keeps everyone it has a chat with).
function knowPeople(data) {
  const people = data.from_me ? [data.to] : [data.author || data.from];
  for (const id of people) {
    if (!id || !/@(c\.us|lid)$/.test(id)) continue;
    const wid = createWid(id);
    if (Contacts.get(wid)) continue;
    const pn = wid.isLid() ? pnByLid.get(id) : id;  // page_lids.js
    Contacts.add(newContact(wid, { pn, registered: true }));
  }
}

// What the page is given of its account when it links or comes back.
function receiveHistory(event) {
  for (const info of event.contacts || []) receiveContact(info);
  for (const meta of event.groups || []) receiveGroupMetadata(meta);  // page_groups.js
  for (const state of event.chats || []) applyChatState(chatFor(createWid(state.id)), state);
  addGivenBack(event.messages || []);
}

// Earlier messages of a chat, from the server: the models added (oldest
// first), [] when there are none.
async function loadEarlierMsgs({ chat }) {
  if (chat.msgs.msgLoadState.noEarlierMsgs) return [];
  const first = chat.msgs.getModelsArray()[0];
  const r = await post('/_wa/history', { chat: chat.id._serialized, before: first ? first.id.id : null, count: 50 });
  const added = addGivenBack(r.messages, { atStart: true });
  if (!r.more) chat.msgs.msgLoadState.noEarlierMsgs = true;
  return added;
}

// An error of the server's, as the real page's (whatsapp-web.js tells
// them apart by name).
class ServerStatusCodeError extends Error {
  constructor(status, text) {
    super(text || ('server answered ' + status));
    this.name = 'ServerStatusCodeError';
    this.statusCode = status;
  }
}

function serverError(err) {
  if (err && err.name === 'ServerStatusCodeError') return err;
  const status = Number((String(err && err.message).match(/HTTP (\d{3})/) || [])[1]) || 500;
  return new ServerStatusCodeError(status, String(err && err.message));
}

// A request whose refusal the server answers as WhatsApp does (a status in
// the answer, `refused`): thrown as the real page's error.
function postRefusable(path, body) {
  return post(path, body).then((r) => {
    if (r && r.refused) throw new ServerStatusCodeError(r.refused, r.error);
    return r;
  });
}

function defineHistoryModules() {
  const collections = modules.WAWebCollections;
  // A message not in memory is looked up on the server, as the real page
  // reads its store.
  Msg.getMessagesById = async (ids) => {
    const messages = ids.map((id) => Msg.get(id)).filter(Boolean);
    const missing = ids.filter((id) => !Msg.get(id)).map((id) => String(id).split('_')[2]).filter(Boolean);
    if (missing.length) {
      const r = await post('/_wa/messages', { ids: missing });
      for (const data of r.messages || []) {
        const msg = messageModel(data, false);
        messages.push(Msg.add(msg)[0]);
      }
    }
    return { messages };
  };
  Chat.find = (wid) => Promise.resolve(Chat.get(wid) || chatFor(typeof wid === 'string' ? createWid(wid) : wid));
  // Pinned chats first (the latest pinned on top), then the others, latest first, as the list shows them.
  Chat.getModelsArray = () => Chat.models.slice().sort((a, b) => (b.pin || 0) - (a.pin || 0) || (b.t || 0) - (a.t || 0));
  Cmd.archiveChat = (chat, archive) => post('/_wa/chat', { chat: chat.id._serialized, archive: !!archive })
    .then(() => { chat.archive = !!archive; });
  Cmd.pinChat = (chat, pin) => {
    if (pin && !chat.pin && pinnedChats().length >= MAX_PINNED) return Promise.resolve();
    const when = pin ? (chat.pin || Math.floor(Date.now() / 1000)) : 0;
    return post('/_wa/chat', { chat: chat.id._serialized, pin: when }).then(() => { chat.pin = when; });
  };
  collections.Chat = Chat;
  define('WAWebChatLoadMessages', { loadEarlierMsgs });
  define('WAWebContactProfilePicThumbBridge', {
    requestProfilePicFromServer: (chat) => postRefusable('/_wa/picture', { wid: chat.id._serialized }).then(
      (r) => ({ eurl: window.location.origin + r.path, tag: r.path.split('=')[1], id: chat.id }),
      (err) => { throw serverError(err); }),
  });
}
