// The stand-in page's chat list: archived, pinned and muted chats, in the
// shapes whatsapp-web.js 1.34.7 uses them (Client.archiveChat and
// unarchiveChat: Cmd.archiveChat(chat, bool); pinChat and unpinChat:
// Cmd.pinChat(chat, bool), after counting pinned chats in
// Chat.getModelsArray(), pinned ones first; muteChat and unmuteChat:
// chat.mute.mute({expiration, sendDevice}) and chat.mute.unmute(), then
// chat.mute.expiration: 0 not muted, -1 for ever, else seconds since the
// epoch; Chat.find for a chat the page does not hold).  A chat's `archive`
// and `pin` (seconds since it was pinned, 0: not) are model attributes, so
// a client that listens to Chat's change:archive hears it.  Each change
// goes to the server (the account's phone keeps it, wwnode/fakewa/chatlist.py).
//
// Where nothing tells how the real page behaves: what Cmd.pinChat does past
// the limit of pinned chats (here it pins nothing and resolves, as the
// app only shows a notice), and whether the mute model has fields beyond
// `expiration` that clients read.  The server joins this file with the
// others into one script; page.js calls defineChatListModules() and gives
// each new chat its fields with chatListFields(chat).

const MAX_PINNED = 3;

class MuteModel extends Model {
  constructor(chat) {
    super({ expiration: 0 });
    Object.defineProperty(this, '_chat', { value: chat });
  }
  get isMuted() { return this.expiration !== 0; }
  mute({ expiration }) {
    const until = typeof expiration === 'number' && expiration !== 0 ? Math.floor(expiration) : -1;
    return post('/_wa/chat', { chat: this._chat.id._serialized, mute: until }).then(() => { this.expiration = until; });
  }
  unmute() {
    return post('/_wa/chat', { chat: this._chat.id._serialized, mute: 0 }).then(() => { this.expiration = 0; });
  }
  serialize() { return { expiration: this.expiration, isMuted: this.isMuted }; }
}

function chatListFields(chat) {
  chat.set('pin', 0);
  chat.set('mute', new MuteModel(chat));
}

function pinnedChats() { return Chat.models.filter((c) => c.pin); }

function defineChatListModules() {
  // Pinned chats first (the latest pinned on top), then the others, latest first, as the list shows them.
  Chat.getModelsArray = () => Chat.models.slice().sort((a, b) => (b.pin || 0) - (a.pin || 0) || (b.t || 0) - (a.t || 0));
  Chat.find = (id) => Promise.resolve(chatFor(typeof id === 'string' ? createWid(id) : id));
  Cmd.archiveChat = (chat, archive) => post('/_wa/chat', { chat: chat.id._serialized, archive: !!archive })
    .then(() => { chat.archive = !!archive; });
  Cmd.pinChat = (chat, pin) => {
    if (pin && !chat.pin && pinnedChats().length >= MAX_PINNED) return Promise.resolve();
    const when = pin ? (chat.pin || Math.floor(Date.now() / 1000)) : 0;
    return post('/_wa/chat', { chat: chat.id._serialized, pin: when }).then(() => { chat.pin = when; });
  };
}
