// Reading back what the account has, on WhatsApp Web's page, as
// whatsapp-web.js 1.34.7 reads it: Client.getChats (the Chat collection,
// its models' unreadCount, t, archive, pin, mute), Chat.fetchMessages (the
// chat's msgs, then WAWebChatLoadMessages.loadEarlierMsgs for earlier ones,
// notifications left out), Client.getContacts (the Contact collection and
// WAWebContactGetters), group metadata (WAWebCollections.GroupMetadata
// .update, then chat.groupMetadata.serialize()), Client.getContactLidAndPhone
// (WAWebApiContact, asking WAWebQueryExistsJob for what the page does not
// know) and Client.getProfilePicUrl
// (WAWebContactProfilePicThumbBridge.requestProfilePicFromServer).
//
// Loaded after message.js (toClientMessage, widString) and the message
// helpers of actions.py (ActionError) into one script (readback.py); data
// comes as arguments.  Each answer is one page: at most `limit` items and
// about `maxBytes` of JSON (at least one item), `more` true when there are
// further items past the last one given.

const utf8 = new TextEncoder();

// Items from `models` (already in order), mapped with `toItem`, until
// `limit` items or `maxBytes` of JSON; `more` when some were left.
function pageOf(models, limit, maxBytes, toItem) {
  const items = [];
  let bytes = 0;
  for (const model of models) {
    if (items.length >= limit) return { items, more: true };
    const item = toItem(model);
    const size = utf8.encode(JSON.stringify(item)).length;
    if (items.length && bytes + size > maxBytes) return { items, more: true };
    items.push(item);
    bytes += size;
  }
  return { items, more: false };
}

// The models after the one whose id is `before` (the last of the previous
// answer); all of them without `before`.
function after(models, before, idOf, what) {
  if (!before) return models;
  const at = models.findIndex((m) => idOf(m) === before);
  if (at < 0) throw new ActionError('unknown_before', 'the page holds no ' + what + ' ' + before);
  return models.slice(at + 1);
}

// A person's ids, as far as the page knows them: {pn, lid}, null where not.
function idsOf(req, wid) {
  const contacts = req('WAWebApiContact');
  if (wid.server === 'lid') return { pn: widString(contacts.getPhoneNumber(wid)) || null, lid: wid._serialized };
  if (wid.server === 'c.us') return { pn: wid._serialized, lid: widString(contacts.getCurrentLid(wid)) || null };
  return { pn: null, lid: null };
}

// ---------------------------------------------------------------- chats
function chatItem(chat) {
  const mute = chat.mute && chat.mute.expiration ? chat.mute.expiration : 0;
  return {
    id: widString(chat.id),
    name: chat.formattedTitle || chat.name || chat.id.user,
    isGroup: !!chat.groupMetadata || chat.id.server === 'g.us',
    unreadCount: chat.unreadCount || 0,
    timestamp: chat.t || 0,
    archived: !!chat.archive,
    pinned: !!chat.pin,
    isMuted: !!mute,
    muteExpiration: chat.muteExpiration ?? mute,
  };
}

// Newest activity first (a chat with no time last), then by id.
function queryChats(req, p) {
  const chats = req('WAWebCollections').Chat.getModelsArray()
    .filter((c) => ['c.us', 'lid', 'g.us'].includes(c.id.server))
    .sort((a, b) => (b.t || 0) - (a.t || 0) || (widString(a.id) < widString(b.id) ? -1 : 1));
  return pageOf(after(chats, p.before, (c) => widString(c.id), 'chat'), p.limit, p.maxBytes, chatItem);
}

// ------------------------------------------------------------- messages
// Notifications (a group's changes, security codes) are no messages, as
// whatsapp-web.js's fetchMessages leaves them out.
const NOTIFICATION_TYPES = ['gp2', 'notification', 'notification_template', 'e2e_notification', 'call_log',
  'protocol'];
const shown = (m) => !m.isNotification && !NOTIFICATION_TYPES.includes(m.type);

// A chat's messages in the order they were written (by time; the page's
// own order where two have the same second).
function inOrder(chat) {
  return chat.msgs.getModelsArray().slice().sort((a, b) => (a.t || 0) - (b.t || 0));
}

async function queryMessages(req, p, findLinks, report, otherIdOf) {
  const chat = req('WAWebCollections').Chat.get(req('WAWebWidFactory').createWid(p.chatId));
  if (!chat) throw new ActionError('unknown_chat', 'WhatsApp Web has no chat ' + p.chatId);
  const load = req('WAWebChatLoadMessages');
  let msgs = inOrder(chat);
  const end = () => (p.before ? msgs.findIndex((m) => widString(m.id) === p.before) : msgs.length);
  // The page holds the latest messages; earlier ones are loaded until
  // `before` is among them and one more than a page lies before it.
  while (end() < 0 || msgs.slice(0, end()).filter(shown).length <= p.limit) {
    const loaded = await load.loadEarlierMsgs({ chat });
    if (!loaded || !loaded.length) break;
    msgs = inOrder(chat);
  }
  if (end() < 0) throw new ActionError('unknown_before', 'chat ' + p.chatId + ' has no message ' + p.before);
  const older = msgs.slice(0, end()).filter(shown).reverse();  // newest first
  return pageOf(older, p.limit, p.maxBytes, (m) => toClientMessage(m, findLinks, report, otherIdOf));
}

// ------------------------------------------------------------- contacts
function queryContacts(req, p) {
  const get = req('WAWebContactGetters');
  const frontend = req('WAWebFrontendContactGetters');
  const contacts = req('WAWebCollections').Contact.getModelsArray()
    .filter((c) => c.id && ['c.us', 'lid'].includes(c.id.server))
    .sort((a, b) => (widString(a.id) < widString(b.id) ? -1 : 1));
  const toItem = (c) => ({
    id: widString(c.id),
    ...idsOf(req, c.id),
    name: get.getName(c) ?? null,
    shortName: get.getShortName(c) ?? null,
    pushname: get.getPushname(c) ?? null,
    isMe: !!get.getIsMe(c),
    isMyContact: !!frontend.getIsMyContact(c),
    isWAContact: !!get.getIsWAContact(c),
    isBusiness: !!c.isBusiness,
  });
  return pageOf(after(contacts, p.before, (c) => widString(c.id), 'contact'), p.limit, p.maxBytes, toItem);
}

// ---------------------------------------------------------------- group
async function queryGroup(req, p) {
  const wid = req('WAWebWidFactory').createWid(p.chatId);
  const collections = req('WAWebCollections');
  const chat = collections.Chat.get(wid);
  if (!chat || !chat.groupMetadata) throw new ActionError('unknown_group', 'WhatsApp Web has no group ' + p.chatId);
  // Fresh from the server, as whatsapp-web.js's getChatModel asks for it.
  await (collections.GroupMetadata || collections.WAWebGroupMetadataCollection).update(wid);
  const meta = chat.groupMetadata.serialize();
  const participants = (meta.participants || []).map((m) => {
    const id = typeof m.id === 'string' ? req('WAWebWidFactory').createWid(m.id) : m.id;
    return {
      id: widString(id), ...idsOf(req, id),
      role: m.isSuperAdmin ? 'superadmin' : m.isAdmin ? 'admin' : 'member',
      isAdmin: !!m.isAdmin || !!m.isSuperAdmin, isSuperAdmin: !!m.isSuperAdmin,
    };
  });
  const item = {
    id: widString(chat.id), subject: meta.subject ?? chat.formattedTitle ?? null, description: meta.desc || null,
    owner: widString(meta.owner) || null, creation: meta.creation || null,
    announce: !!meta.announce, restrict: !!meta.restrict, size: participants.length, participants,
  };
  return { items: [item], more: false };
}

// ------------------------------------------------------------------ ids
async function queryIds(req, p) {
  const createWid = req('WAWebWidFactory').createWid;
  const items = [];
  for (const id of p.ids) {
    const wid = createWid(id);
    let ids = idsOf(req, wid);
    if (!ids.pn || !ids.lid) {
      // Asked of WhatsApp, as whatsapp-web.js does for what the page does not know.
      const found = await req('WAWebQueryExistsJob').queryWidExists(wid);
      if (found && found.wid) ids = idsOf(req, wid);
    }
    items.push({ id, ...ids });
  }
  return { items, more: false };
}

// ------------------------------------------------------ profile_picture
async function queryPicture(req, p) {
  const wid = req('WAWebWidFactory').createWid(p.chatId);
  let chat = req('WAWebCollections').Chat.get(wid);
  if (!chat) {
    const found = await req('WAWebFindChatAction').findOrCreateLatestChat(wid);
    chat = found && found.chat;
  }
  if (!chat) throw new ActionError('unknown_chat', 'WhatsApp Web has no chat ' + p.chatId);
  let url = null;
  try {
    const picture = await req('WAWebContactProfilePicThumbBridge').requestProfilePicFromServer(chat);
    url = (picture && picture.eurl) || null;
  } catch (e) {
    // None, or hidden from this account: the server says so.
    if (!e || e.name !== 'ServerStatusCodeError') throw e;
  }
  return { items: [{ id: p.chatId, url }], more: false };
}

const QUERIES = { chats: queryChats, messages: queryMessages, contacts: queryContacts, group: queryGroup,
  ids: queryIds, profile_picture: queryPicture };
