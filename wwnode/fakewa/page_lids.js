// The stand-in page's hidden ids (LIDs): which person's LID it can map to
// the phone number and back, and which groups address their members by
// LID, in the shapes whatsapp-web.js 1.34.7 reads them
// (WWebJS.enforceLidAndPnRetrieval, Client.getContactLidAndPhone,
// GroupChat: WAWebApiContact.getCurrentLid / getPhoneNumber,
// WAWebLidMigrationUtils.toPn, chat.groupMetadata.isLidAddressingMode).
// The server tells the page what the account knows (wwnode/fakewa/lids.py):
// with the pairing, with a message, or when the account learns more.  The
// server joins this file with the others into one script; page.js calls
// defineLidModules() among its own modules.

// LID <-> phone number, as id strings, for the people the account knows by both.
const pnByLid = new Map();
const lidByPn = new Map();
// Groups in LID addressing mode, by id string.
const lidGroups = new Set();

function learnLids(pairs) {
  for (const [lid, pn] of pairs || []) {
    pnByLid.set(lid, pn);
    lidByPn.set(pn, lid);
  }
}

function forgetLids() {
  pnByLid.clear();
  lidByPn.clear();
  lidGroups.clear();
}

// A group's metadata (page_groups.js), which says among the rest whether
// its members (and our own sends into it) are addressed by LID.
function groupMetadataFor(wid) {
  return groupMetadataOf(wid);
}

function setGroupAddressing(id, addressing) {
  if (addressing === 'lid') lidGroups.add(id); else lidGroups.delete(id);
  const meta = GroupMetadata.get(id);  // page_groups.js
  if (meta) meta.isLidAddressingMode = addressing === 'lid';
}

function widOrNull(id) { return id ? createWid(id) : null; }

function defineLidModules() {
  define('WAWebApiContact', {
    // The LID of a phone number's user; null where the page does not know it.
    getCurrentLid: (wid) => widOrNull(wid && wid.server === 'c.us' ? lidByPn.get(wid._serialized) : null),
    // The phone number of a LID; null where WhatsApp hides it from this account.
    getPhoneNumber: (wid) => widOrNull(wid && wid.server === 'lid' ? pnByLid.get(wid._serialized) : null),
    getAlternateUserWid: (wid) => widOrNull(wid && (wid.server === 'lid'
      ? pnByLid.get(wid._serialized) : lidByPn.get(wid._serialized))),
  });
  define('WAWebLidMigrationUtils', {
    // A person's phone-number id: itself for a phone number, the mapped one for a LID.
    toPn: (wid) => (wid && wid.server === 'lid' ? widOrNull(pnByLid.get(wid._serialized)) : wid || null),
  });
}
