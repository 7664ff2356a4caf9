// The stand-in page's locations, contact cards and polls, in the shapes
// whatsapp-web.js 1.34.7 uses them: its sendMessage of a Location, a Poll,
// a Contact (got with Client.getContactById: WAWebCollections.Contact.find,
// WAWebContactGetters, WAWebFrontendContactGetters) or a text starting
// BEGIN:VCARD (WAWebVcardParsingUtils, WAWebVcardGetNameFromParsed); its
// Message fields of such messages (lat, lng, loc, clientUrl; body or
// vcardList; pollName, pollOptions, pollSelectableOptionsCount); and its
// vote_update, which wraps the poll vote table
// (WAWebAddonPollVoteTableMode.pollVoteTableMode.bulkUpsert).  The cards the
// page writes follow the real WAWebFrontendVcardUtils as an archived bundle
// shows it.  The server joins this file with the others into one script;
// page.js calls defineContentModules() among its own modules and uses
// sentContent(), inboundContentFields() and receiveVote().
//
// Where nothing tells how the real page behaves, these are guesses: the
// contact model's attribute names beyond those whatsapp-web.js reads, how a
// phone number is written in a card (here +<digits>, the real page spaces
// it by country), the parsed form of a vCard, the unit of a vote record's
// `t` (seconds here, as a message's), and that a contact, once found, is
// kept as it was for the page's life.

// ------------------------------------------------------------ contacts
class ContactModel extends Model {
  // As the real model: its id stays a Wid (clients read id._serialized
  // on what serialize() gives).
  serialize() {
    const out = super.serialize();
    out.id = this.id;
    if (this.phoneNumber) out.phoneNumber = this.phoneNumber;
    return out;
  }
}

const Contacts = new Collection((c) => c.id._serialized);
const Blocklist = new Collection((c) => c.id._serialized);  // nobody is blocked here

function widFromWidLike(w) {
  if (w instanceof Wid) return w;
  if (typeof w === 'string') return createWid(w);
  if (w && typeof w._serialized === 'string') return createWid(w._serialized);
  throw new Error('not a wid: ' + w);
}

function formattedNumber(wid) { return wid && wid.server === 'c.us' ? '+' + wid.user : ''; }

function newContact(wid, info) {
  const pn = info.pn ? createWid(info.pn) : (wid.server === 'c.us' ? wid : undefined);
  const name = info.name || undefined;
  const display = name || info.pushname || formattedNumber(pn) || wid.user;
  return new ContactModel({
    id: wid, name, shortName: name ? name.split(/\s+/)[0] : undefined, pushname: info.pushname || undefined,
    formattedName: display, isMyContact: !!name, isWAContact: !!info.registered,
    phoneNumber: wid.isLid() ? pn : undefined, isBusiness: false, isEnterprise: false, isContactBlocked: false,
    verifiedName: undefined, verifiedLevel: undefined, statusMute: false, type: 'in', labels: [],
  });
}

// The page's contact for an id: from memory, else asked of the server (the
// real page's find fetches what it does not hold).
async function findContact(widLike) {
  const wid = widFromWidLike(widLike);
  const known = Contacts.get(wid);
  if (known) return known;
  const info = await post('/_wa/contact', { wid: wid._serialized });
  return Contacts.get(wid) || Contacts.add(newContact(wid, info))[0];
}

const isMe = (wid) => !!wid && ((me && wid._serialized === me._serialized)
  || (meLid && wid._serialized === meLid._serialized));

const contactGetters = {
  getId: (c) => c.id,
  getIsMe: (c) => isMe(c.id),
  getIsUser: (c) => c.id.isUser(),
  getIsGroup: (c) => c.id.isGroup(),
  getIsWAContact: (c) => !!c.isWAContact,
  getUserid: (c) => c.id.user,
  getVerifiedName: (c) => c.verifiedName,
  getVerifiedLevel: (c) => c.verifiedLevel,
  getStatusMute: (c) => !!c.statusMute,
  getName: (c) => c.name,
  getShortName: (c) => c.shortName,
  getPushname: (c) => c.pushname,
  getIsEnterprise: (c) => !!c.isEnterprise,
};
const frontendContactGetters = {
  getIsMyContact: (c) => !!c.isMyContact,
  getDisplayName: (c) => c.name || c.pushname || formattedNumber(c.phoneNumber || c.id) || c.id.user,
  getFormattedName: (c) => c.formattedName,
  getFormattedShortName: (c) => c.shortName || c.formattedName,
  getUsername: () => undefined,  // no usernames on the stand-in
};

// ------------------------------------------------------------- vCards
function escapeVcard(s) {
  return s ? String(s).replace(/\\/g, '\\\\').replace(/;/g, '\\;').replace(/,/g, '\\,') : '';
}

// A person's card, as the real vcardFromContactModel writes it: N (family
// name; given name), FN, and the number with its WhatsApp id, where the
// page knows the number.
function vcardFromContactModel(contact) {
  const display = isMe(contact.id) ? (contact.name || frontendContactGetters.getDisplayName(contact))
    : frontendContactGetters.getDisplayName(contact);
  const words = String(display).trim().split(/\s+/);
  const given = words.length > 1 ? words[0] : display;
  const family = words.length > 1 ? words.slice(1).join(' ') : '';
  const pn = contact.id.isLid()
    ? (window.require('WAWebApiContact').getPhoneNumber(contact.id) || contact.phoneNumber) : contact.id;
  const lines = ['BEGIN:VCARD', 'VERSION:3.0', 'N:' + escapeVcard(family) + ';' + escapeVcard(given) + ';;;',
    'FN:' + escapeVcard(display)];
  if (pn) lines.push('TEL;type=CELL;waid=' + pn.user + ':+' + pn.user);
  lines.push('END:VCARD');
  return { displayName: escapeVcard(display), vcard: lines.join('\n'), isMultiVcard: false };
}

// A vCard's properties by name ({FN: [{params, value}], ...}), or null for
// a text that is no vCard.  Folded lines are joined first.
function parseVcard(text) {
  if (typeof text !== 'string') return null;
  const lines = text.replace(/\r\n/g, '\n').replace(/\n[ \t]/g, '').split('\n').filter((l) => l.length);
  if (lines[0] !== 'BEGIN:VCARD' || lines[lines.length - 1] !== 'END:VCARD') return null;
  const props = {};
  for (const line of lines.slice(1, -1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const [name, ...params] = line.slice(0, colon).split(';');
    (props[name.toUpperCase()] || (props[name.toUpperCase()] = [])).push({ params, value: line.slice(colon + 1) });
  }
  return props;
}

function unescapeVcard(s) { return String(s).replace(/\\([\\;,])/g, '$1').replace(/\\n/gi, '\n'); }

function vcardGetNameFromParsed(parsed) {
  if (parsed.FN && parsed.FN[0].value) return unescapeVcard(parsed.FN[0].value);
  if (parsed.N && parsed.N[0].value) {
    const [family, given] = parsed.N[0].value.split(';');
    return unescapeVcard([given, family].filter(Boolean).join(' '));
  }
  return '';
}

// --------------------------------------------------------------- polls
// Every vote the page learns of, one record each, by the vote's key.
const pollVotes = new Map();

// A phone voted on a poll the page holds (or held): stored through the
// vote table, looked up at call time as the real page's code does.
function receiveVote(event) {
  learnLids(event.lids);
  const chat = createWid(event.chat);
  const voter = createWid(event.voter);
  const group = chat.isGroup();
  const parent = Msg.models.find((m) => m.id.id === event.parent_id);
  const fromMe = !!event.parent_from_me;
  const parentKey = parent ? parent.id : new MsgKey({
    from: fromMe ? me : chat, to: fromMe ? chat : me, id: event.parent_id, selfDir: fromMe ? 'out' : 'in',
  });
  const own = voter.isLid() && meLid ? meLid : me;
  const from = group ? chat : voter;
  const record = {
    id: new MsgKey({ from, to: own, id: event.id, participant: group ? voter : undefined, selfDir: 'in' }),
    from, to: own, author: group ? voter : undefined, type: 'poll_update',
    pollUpdateParentKey: parentKey, selectedOptionLocalIds: event.selected_ids.slice(),
    senderTimestampMs: event.sender_ts, t: event.t, read: false,
  };
  window.require('WAWebAddonPollVoteTableMode').pollVoteTableMode.bulkUpsert([record]);
}

// ---------------------------------------------------- messages in and out
// What the server is told of a sent message's content, besides its body.
function sentContent(msg) {
  switch (msg.type) {
    case 'location':
      return { type: 'location', location: { latitude: msg.lat, longitude: msg.lng, description: msg.loc || '',
                                             url: msg.clientUrl || null } };
    case 'poll_creation': {
      const options = (msg.pollOptions || []).slice().sort((a, b) => a.localId - b.localId);
      return { type: 'poll_creation', poll: { name: msg.pollName, options: options.map((o) => o.name),
                                              option_ids: options.map((o) => o.localId),
                                              multiple: !msg.pollSelectableOptionsCount } };
    }
    case 'vcard':
      return { type: 'vcard', vcards: [msg.body], names: [String(msg.vcardFormattedName || '')] };
    case 'multi_vcard':
      return { type: 'multi_vcard', vcards: (msg.vcardList || []).map((c) => c.vcard),
               names: (msg.vcardList || []).map((c) => String(c.displayName || '')) };
    default:
      return {};
  }
}

// The model fields of a received location, card or poll (`data.content`
// from the server, in the page's own field names).
const INBOUND_CONTENT_FIELDS = ['type', 'lat', 'lng', 'loc', 'clientUrl', 'vcardFormattedName', 'vcardList',
  'pollName', 'pollOptions', 'pollSelectableOptionsCount'];
function inboundContentFields(content) {
  const fields = {};
  for (const name of INBOUND_CONTENT_FIELDS) if (content[name] !== undefined) fields[name] = content[name];
  if (fields.type === 'poll_creation') {
    fields.kind = 'pollCreation';
    fields.messageSecret = crypto.getRandomValues(new Uint8Array(32));
  }
  return fields;
}

function defineContentModules() {
  const collections = modules.WAWebCollections;
  collections.Contact = Contacts;
  collections.Blocklist = Blocklist;
  Contacts.find = findContact;
  const widFactory = modules.WAWebWidFactory;
  widFactory.createWidFromWidLike = widFromWidLike;
  widFactory.asUserLidOrThrow = (wid) => {
    if (!wid || typeof wid.isLid !== 'function' || !wid.isLid()) throw new Error('not a LID: ' + wid);
    return wid;
  };
  define('WAWebContactGetters', contactGetters);
  define('WAWebFrontendContactGetters', frontendContactGetters);
  define('WAWebFrontendVcardUtils', { vcardFromContactModel });
  define('WAWebVcardParsingUtils', { parseVcard });
  define('WAWebVcardGetNameFromParsed', { vcardGetNameFromParsed });
  define('WAWebAddonPollVoteTableMode', {
    pollVoteTableMode: {
      bulkUpsert: (records) => {
        for (const r of records) pollVotes.set(r.id._serialized, r);
        return Promise.resolve();
      },
    },
  });
}
