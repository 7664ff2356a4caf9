// What a send carries instead of text -- a location, contact cards, a poll --
// as message fields, built the way whatsapp-web.js 1.34.7 builds them
// (WWebJS.sendMessage: `location`, `poll`, `contactCard` / `contactCardList`,
// a text starting BEGIN:VCARD with `parseVCards`), and, for contact cards,
// as the page's own WAWebSendContactsAction does (one card is a `vcard`,
// several a `multi_vcard`).
//
// Functions only; pagescripts.py puts them in the send script, behind
// MESSAGE_HELPERS_JS (ActionError).  The content arrives as an argument of
// that script (data, in the form sessionproc/contents.py gives it), never
// in its source.

// A location: `loc` is its description (name and address on two lines),
// `clientUrl` the link WALinkify finds in its url.
function locationFields(req, location) {
  const { latitude, longitude, name, address } = location;
  const link = location.url ? req('WALinkify').findLink(location.url) : null;
  const url = link ? link.href : undefined;
  let description = name && address ? name + '\n' + address : (name || address || '');
  if (url && !description) description = url;
  return { type: 'location', loc: description, lat: latitude, lng: longitude, clientUrl: url };
}

// A poll: its options numbered from 0 (their `localId`, which votes name);
// one choice or any number (`pollSelectableOptionsCount` 1 or 0); a fresh
// secret, as whatsapp-web.js makes one when none is given.
function pollFields(poll) {
  return {
    kind: 'pollCreation', type: 'poll_creation', pollName: poll.name,
    pollOptions: poll.options.map((name, localId) => ({ name, localId })),
    pollSelectableOptionsCount: poll.multiple ? 0 : 1,
    messageSecret: window.crypto.getRandomValues(new Uint8Array(32)),
  };
}

// Contact cards: people by id (the page writes their cards from its
// contacts, WAWebFrontendVcardUtils), or one vCard as given, which the page
// must be able to read.
async function contactFields(req, contacts) {
  if (!Array.isArray(contacts)) {
    let parsed = null;
    try {
      parsed = req('WAWebVcardParsingUtils').parseVcard(contacts.vcard);
    } catch (e) {
      throw new ActionError('bad_contacts', 'WhatsApp Web cannot read the vCard: ' + String((e && e.message) || e));
    }
    if (!parsed) throw new ActionError('bad_contacts', 'WhatsApp Web cannot read the vCard');
    return {
      type: 'vcard', body: contacts.vcard,
      vcardFormattedName: req('WAWebVcardGetNameFromParsed').vcardGetNameFromParsed(parsed),
    };
  }
  const Contact = req('WAWebCollections').Contact;
  const createWid = req('WAWebWidFactory').createWid;
  const people = await Promise.all(contacts.map((id) => Contact.find(createWid(id))));
  const cards = people.map((person) => req('WAWebFrontendVcardUtils').vcardFromContactModel(person));
  if (cards.length === 1) {
    return { type: 'vcard', body: cards[0].vcard, vcardFormattedName: String(cards[0].displayName) };
  }
  return { type: 'multi_vcard', vcardList: cards, body: null };
}

// The fields of a send's content: {location} | {contacts} | {poll}.
async function contentFields(req, content) {
  if (!content) return {};
  if (content.location) return locationFields(req, content.location);
  if (content.poll) return pollFields(content.poll);
  if (content.contacts) return contactFields(req, content.contacts);
  throw new ActionError('page_error', 'unknown content ' + Object.keys(content).join(', '));
}
