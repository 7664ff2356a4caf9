// Runs one whatsapp-web.js client, unmodified, for tests/test_wwebjs.py.
//
//   node driver.js '{"port": P, "dataPath": DIR, "clientId": ID, "chrome": PATH, "pairWithPhone": DIGITS}'
//
// (pairWithPhone, optional: link with a pairing code, event "code", instead of a QR code)
//
// Like the project's own session process it speaks JSON lines: the
// client's events on stdout ({"event": ..., "t": ms since start}; errors
// in the page as "page_error"),
// commands on stdin:
//   {"cmd": "send", "ref": R, "chat_id": C, "text": T} -> "sent" {ref, id, type} or "send_failed" {ref, error}
//   {"cmd": "reply", "ref": R, "message_id": M, "text": T} -> "sent" or "send_failed" (Message.reply)
//   {"cmd": "react", "ref": R, "message_id": M, "emoji": E} -> "reacted" {ref} or "react_failed" (Message.react)
//   {"cmd": "number", "ref": R, "phone": P}          -> "number" {ref, wid or null} (Client.getNumberId)
//   {"cmd": "send_media", "ref": R, "chat_id": C, "caption": T, "media": {mimetype, data, filename},
//    "options": {...}}                               -> "sent" {ref, id} or "send_failed" {ref, error}
//   {"cmd": "download", "ref": R, "id": MESSAGE_ID}  -> "downloaded" {ref, mimetype, data, filename, filesize}
//   {"cmd": "lid_and_phone", "ref": R, "ids": [ID]}  -> "lid_and_phone" {ref, result} (Client.getContactLidAndPhone)
//   {"cmd": "edit", "ref": R, "id": S, "text": T}    -> "edited" {ref, body} or "edit_failed" (Message.edit)
//   {"cmd": "delete", "ref": R, "id": S, "everyone": B} -> "deleted" {ref} or "delete_failed" (Message.delete)
//   {"cmd": "send_location", "ref": R, "chat_id": C, "latitude": LA, "longitude": LO, "options": {name, address, url}}
//                                                    -> "sent" or "send_failed" (sendMessage of a Location)
//   {"cmd": "send_poll", "ref": R, "chat_id": C, "name": N, "options": [O], "multiple": B}
//                                                    -> "sent" or "send_failed" (sendMessage of a Poll)
//   {"cmd": "send_contacts", "ref": R, "chat_id": C, "ids": [ID]} -> "sent" or "send_failed"
//                                                    (Client.getContactById, then sendMessage of the Contact,
//                                                    or of the list of them for several)
//   {"cmd": "reject_call", "ref": R, "id": I}         -> "call_rejected" {ref} or "reject_failed" (Call.reject)
//   {"cmd": "chat", "ref": R, "chat_id": C, "op": O, "until": MS} -> "chat_done" {ref, result} or "chat_failed"
//                                                    (Client.getChatById, then Chat's O: sendStateTyping,
//                                                    sendStateRecording, clearState, archive, unarchive,
//                                                    pin, unpin, mute (until a Date, if given), unmute)
//   {"cmd": "presence", "ref": R, "available": B}   -> "presence_sent" {ref, result} or "presence_failed"
//                                                    (Client.sendPresenceAvailable / sendPresenceUnavailable)
//   {"cmd": "get_chats", "ref": R}                   -> "chats" {ref, chats} (Client.getChats)
//   {"cmd": "fetch_messages", "ref": R, "chat_id": C, "limit": N} -> "messages" {ref, messages}
//                                                    (Client.getChatById, then Chat.fetchMessages)
//   {"cmd": "get_contacts", "ref": R}                -> "contacts" {ref, contacts} (Client.getContacts)
//   {"cmd": "profile_pic", "ref": R, "id": ID}       -> "profile_pic" {ref, url} (Client.getProfilePicUrl)
//   {"cmd": "create_group", "ref": R, "title": T, "participants": [ID]} -> "group_created" {ref, gid, participants}
//   {"cmd": "group", "ref": R, "chat_id": G, "op": M, "args": [...]} -> "group_done" {ref, result} or
//                                                    "group_failed" (GroupChat method M of Client.getChatById)
//   {"cmd": "get_group", "ref": R, "chat_id": G}     -> "group" {ref, name, owner, description, participants}
//   {"cmd": "accept_invite", "ref": R, "code": CODE} -> "joined" {ref, id} (Client.acceptInvite)
//   {"cmd": "destroy"}                               -> "destroyed", then exit
// (M: a message this client received, by its id; S: one it sent, by its id.)
// Besides "message", every "message_create" (own messages included), "message_edit",
// "message_revoke_everyone", "vote_update" ({voter, selected: [names], localIds, poll}) and "call"
// ({id, from, isVideo, isGroup, fromMe}; I: its id) is an event, and so are "group_join",
// "group_leave", "group_admin_changed" and "group_update" ({chatId, type, author, recipientIds, body}).
// Messages carry their location, vCards and poll fields where they have them.
// The browser opens https://web.whatsapp.com/ as the library always does;
// --host-resolver-rules sends that name to the stand-in on 127.0.0.1:P,
// which serves TLS with a self-signed certificate.
'use strict';

const readline = require('readline');
const { Client, LocalAuth, Location, MessageMedia, Poll } = require('whatsapp-web.js');

const started = Date.now();
const config = JSON.parse(process.argv[2] || '{}');
const emit = (event, fields = {}) => {
  process.stdout.write(JSON.stringify({ event, t: Date.now() - started, ...fields }) + '\n');
};

const args = [
  `--host-resolver-rules=MAP web.whatsapp.com 127.0.0.1:${config.port}`,
  '--ignore-certificate-errors',
];
if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');  // Chromium refuses root otherwise

const client = new Client({
  authStrategy: new LocalAuth({ dataPath: config.dataPath, clientId: config.clientId }),
  webVersionCache: { type: 'none' },
  // A launch may take longer than puppeteer's 30 s on a machine busy with
  // the rest of the suite; the test's own wait for the QR code bounds it.
  puppeteer: { executablePath: config.chrome || '/usr/bin/chromium', headless: true, args, timeout: 90000 },
  ...(config.pairWithPhone ? { pairWithPhoneNumber: { phoneNumber: config.pairWithPhone } } : {}),
});

const messageFields = (m) => ({
  id: m.id._serialized, from: m.from, to: m.to, author: m.author, body: m.body, type: m.type,
  fromMe: m.fromMe, ack: m.ack, deviceType: m.deviceType, hasMedia: m.hasMedia, links: m.links,
  location: m.location, vCards: m.vCards, pollName: m.pollName, pollOptions: m.pollOptions,
  allowMultipleAnswers: m.allowMultipleAnswers,
});

client.on('qr', (qr) => emit('qr', { qr }));
client.on('code', (code) => emit('code', { code }));
client.on('loading_screen', (percent) => emit('loading_screen', { percent }));
client.on('authenticated', () => emit('authenticated'));
client.on('auth_failure', (reason) => emit('auth_failure', { reason: String(reason) }));
client.on('ready', () => emit('ready', {
  wid: client.info.wid._serialized, pushname: client.info.pushname, platform: client.info.platform,
}));
client.on('change_state', (state) => emit('change_state', { state }));
client.on('disconnected', (reason) => emit('disconnected', { reason }));
const received = new Map();  // id -> Message, for reply, react and download
const sent = new Map();  // id -> Message this client sent, for edit and delete
client.on('message', (m) => { received.set(m.id._serialized, m); emit('message', { message: messageFields(m) }); });
client.on('message_create', (m) => emit('message_create', { message: messageFields(m) }));
client.on('message_edit', (m, newBody, prevBody) => emit('message_edit', { id: m.id._serialized, newBody, prevBody }));
client.on('message_revoke_everyone', (m) => emit('message_revoke_everyone', { id: m.id._serialized, type: m.type }));
client.on('message_reaction', (r) => emit('message_reaction', {
  msgId: typeof r.msgId === 'string' ? r.msgId : r.msgId && r.msgId._serialized,
  reaction: r.reaction, senderId: r.senderId,
}));
client.on('message_ack', (m, ack) => emit('message_ack', { id: m.id._serialized, ack }));
client.on('vote_update', (v) => emit('vote_update', {
  voter: v.voter, selected: v.selectedOptions.map((o) => o.name), localIds: v.selectedOptions.map((o) => o.localId),
  poll: v.parentMessage && v.parentMessage.id ? v.parentMessage.id._serialized : null,
}));

const calls = new Map();  // id -> Call, for reject
client.on('call', (call) => {
  calls.set(call.id, call);
  emit('call', { id: call.id, from: call.from, isVideo: call.isVideo, isGroup: call.isGroup, fromMe: call.fromMe });
});

for (const name of ['group_join', 'group_leave', 'group_admin_changed', 'group_update']) {
  client.on(name, (n) => emit(name, { chatId: n.chatId, type: n.type, author: n.author,
                                      recipientIds: n.recipientIds, body: n.body }));
}

const idOf = (id) => (id && typeof id === 'object' ? id._serialized : id);
const chatFields = (c) => ({ id: idOf(c.id), name: c.name, isGroup: c.isGroup, unreadCount: c.unreadCount,
                             timestamp: c.timestamp, archived: c.archived, pinned: c.pinned, isMuted: c.isMuted });
const participantFields = (p) => ({ id: idOf(p.id), isAdmin: p.isAdmin, isSuperAdmin: p.isSuperAdmin });

// The answers of the reading-back and group commands; a throw is "<cmd>_failed".
const readers = {
  get_chats: async () => ['chats', { chats: (await client.getChats()).map(chatFields) }],
  fetch_messages: async (cmd) => {
    const chat = await client.getChatById(cmd.chat_id);
    return ['messages', { messages: (await chat.fetchMessages({ limit: cmd.limit })).map(messageFields) }];
  },
  get_contacts: async () => ['contacts', { contacts: (await client.getContacts()).map((c) => ({
    id: idOf(c.id), name: c.name, pushname: c.pushname, isMyContact: c.isMyContact, number: c.number })) }],
  profile_pic: async (cmd) => ['profile_pic', { url: (await client.getProfilePicUrl(cmd.id)) ?? null }],
  create_group: async (cmd) => {
    const r = await client.createGroup(cmd.title, cmd.participants);
    if (typeof r === 'string') throw new Error(r);
    return ['group_created', { gid: idOf(r.gid), participants: r.participants }];
  },
  group: async (cmd) => {
    const chat = await client.getChatById(cmd.chat_id);
    return ['group_done', { result: (await chat[cmd.op](...(cmd.args || []))) ?? null }];
  },
  get_group: async (cmd) => {
    const chat = await client.getChatById(cmd.chat_id);
    return ['group', { name: chat.name, owner: idOf(chat.owner), description: chat.description,
                       participants: chat.participants.map(participantFields) }];
  },
  accept_invite: async (cmd) => ['joined', { id: await client.acceptInvite(cmd.code) }],
};

async function handle(cmd) {
  if (readers[cmd.cmd]) {
    try {
      const [event, fields] = await readers[cmd.cmd](cmd);
      emit(event, { ref: cmd.ref, ...fields });
    } catch (e) {
      emit(cmd.cmd + '_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
    return;
  }
  if (cmd.cmd === 'send') {
    try {
      const msg = await client.sendMessage(cmd.chat_id, cmd.text);
      sent.set(msg.id._serialized, msg);
      emit('sent', { ref: cmd.ref, id: msg.id._serialized, ack: msg.ack, type: msg.type });
    } catch (e) {
      emit('send_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'reply') {
    try {
      const msg = await received.get(cmd.message_id).reply(cmd.text);
      sent.set(msg.id._serialized, msg);
      emit('sent', { ref: cmd.ref, id: msg.id._serialized, ack: msg.ack, hasQuotedMsg: msg.hasQuotedMsg });
    } catch (e) {
      emit('send_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'react') {
    try {
      await received.get(cmd.message_id).react(cmd.emoji);
      emit('reacted', { ref: cmd.ref });
    } catch (e) {
      emit('react_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'number') {
    try {
      const wid = await client.getNumberId(cmd.phone);
      emit('number', { ref: cmd.ref, wid: wid ? wid._serialized : null });
    } catch (e) {
      emit('number_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'send_media') {
    try {
      const { mimetype, data, filename } = cmd.media;
      const media = new MessageMedia(mimetype, data, filename);
      const msg = await client.sendMessage(cmd.chat_id, cmd.caption || '', { media, ...(cmd.options || {}) });
      emit('sent', { ref: cmd.ref, id: msg.id._serialized, ack: msg.ack });
    } catch (e) {
      emit('send_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'download') {
    try {
      const media = await received.get(cmd.id).downloadMedia();
      emit('downloaded', { ref: cmd.ref, ...(media || {}) });
    } catch (e) {
      emit('download_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'lid_and_phone') {
    try {
      emit('lid_and_phone', { ref: cmd.ref, result: await client.getContactLidAndPhone(cmd.ids) });
    } catch (e) {
      emit('lid_and_phone_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'edit') {
    try {
      const edited = await sent.get(cmd.id).edit(cmd.text);
      emit('edited', { ref: cmd.ref, body: edited ? edited.body : null });
    } catch (e) {
      emit('edit_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'delete') {
    try {
      await sent.get(cmd.id).delete(cmd.everyone);
      emit('deleted', { ref: cmd.ref });
    } catch (e) {
      emit('delete_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (['send_location', 'send_poll', 'send_contacts'].includes(cmd.cmd)) {
    try {
      let content;
      if (cmd.cmd === 'send_location') content = new Location(cmd.latitude, cmd.longitude, cmd.options || {});
      else if (cmd.cmd === 'send_poll') content = new Poll(cmd.name, cmd.options, { allowMultipleAnswers: !!cmd.multiple });
      else {
        const contacts = await Promise.all(cmd.ids.map((id) => client.getContactById(id)));
        content = contacts.length === 1 ? contacts[0] : contacts;
      }
      const msg = await client.sendMessage(cmd.chat_id, content);
      sent.set(msg.id._serialized, msg);
      emit('sent', { ref: cmd.ref, id: msg.id._serialized, type: msg.type });
    } catch (e) {
      emit('send_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'reject_call') {
    try {
      await calls.get(cmd.id).reject();
      emit('call_rejected', { ref: cmd.ref });
    } catch (e) {
      emit('reject_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'chat') {
    try {
      const chat = await client.getChatById(cmd.chat_id);
      const ops = ['sendStateTyping', 'sendStateRecording', 'clearState', 'archive', 'unarchive', 'pin', 'unpin',
                   'mute', 'unmute'];
      if (!ops.includes(cmd.op)) throw new Error('unknown chat op ' + cmd.op);
      const result = cmd.op === 'mute' && cmd.until ? await chat.mute(new Date(cmd.until)) : await chat[cmd.op]();
      emit('chat_done', { ref: cmd.ref, result: result === undefined ? null : result });
    } catch (e) {
      emit('chat_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'presence') {
    try {
      const result = cmd.available ? await client.sendPresenceAvailable() : await client.sendPresenceUnavailable();
      emit('presence_sent', { ref: cmd.ref, result: result === undefined ? null : result });
    } catch (e) {
      emit('presence_failed', { ref: cmd.ref, error: String(e && e.stack || e) });
    }
  } else if (cmd.cmd === 'destroy') {
    await destroy();
  } else {
    emit('error', { error: 'unknown command ' + JSON.stringify(cmd.cmd) });
  }
}

let destroying = null;
function destroy() {
  destroying = destroying || client.destroy().catch((e) => emit('error', { error: String(e) })).then(() => {
    emit('destroyed');
    process.exit(0);
  });
  return destroying;
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { emit('error', { error: 'not JSON: ' + line }); return; }
  handle(cmd);
});
lines.on('close', destroy);  // the test went away: take the browser along

// Errors inside the page (an uncaught exception, console.error) are events
// too: a missing module or a wrong shape shows up there first.  The page
// exists once initialize() has launched the browser (each browser's own).
let watched = null;
function watchPage() {
  const timer = setInterval(() => {
    if (!client.pupPage || client.pupPage === watched) return;
    clearInterval(timer);
    watched = client.pupPage;
    watched.on('pageerror', (e) => emit('page_error', { error: String(e && e.message || e) }));
    watched.on('console', (m) => {
      if (m.type() !== 'error') return;
      const text = m.text();
      // A load Chromium aborted because the machine's addresses changed
      // (see initialize below): the machine's doing, not the page's; told
      // apart, so that a walk that then fails says why.
      if (text.includes('net::ERR_NETWORK_CHANGED')) emit('network_changed', { error: text });
      else emit('page_error', { error: text });
    });
  }, 20);
}

// Chromium aborts a page load with net::ERR_NETWORK_CHANGED when the
// machine's addresses change under it (here: the container tests' networks
// made and removed beside this one), and whatsapp-web.js does not retry its
// first navigation.  The driver does, a second later with a new browser, up
// to five times (a container coming up changes addresses more than once);
// each try is an event.
function initialize(retries) {
  watchPage();
  client.initialize().catch(async (e) => {
    const error = String(e && e.stack || e);
    if (retries > 0 && error.includes('ERR_NETWORK_CHANGED') && !destroying) {
      emit('init_retry', { error });
      if (client.pupBrowser) await client.pupBrowser.close().catch(() => {});
      setTimeout(() => initialize(retries - 1), 1000);
      return;
    }
    emit('init_error', { error });
  });
}

emit('starting', { pid: process.pid });
initialize(5);
