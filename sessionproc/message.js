// A message as the session reports it (one from someone else, or one the
// account sent from another device): the shape whatsapp-web.js 1.34.7 gives
// a serialized Message (its page-side getMessageModel, then
// Message._patch), keeping every field the wire contract lists.
//
// Pure functions of a message model; hook.js calls them.  Loaded in front
// of hook.js inside one function (see session.py), and on their own by the
// tests.

// A Wid as its id string ('5511...@c.us'); strings pass through.
function widString(x) {
  return x && typeof x === 'object' ? x._serialized : x;
}

// whatsapp-web.js: ids longer than 25 characters come from Android, ids
// starting with 3A from iOS, the rest from a web or desktop client.
function deviceTypeOf(messageId) {
  const id = typeof messageId === 'string' ? messageId : '';
  return id.length > 25 ? 'android' : id.startsWith('3A') ? 'ios' : 'web';
}

// `model` is the page's message model; `findLinks` is WALinkify.findLinks;
// `report(obj)` tells the session about a problem that did not stop us;
// `otherIdOf(wid)` is a person's other id (LID or phone number) where the
// page knows it, else null.
function toClientMessage(model, findLinks, report, otherIdOf = () => null) {
  const m = typeof model.serialize === 'function' ? model.serialize() : model;
  const rawId = m.id || {};
  const id = {
    fromMe: !!rawId.fromMe,
    remote: widString(rawId.remote),
    id: rawId.id,
    _serialized: rawId._serialized,
  };
  // A file the phone can fetch has a directPath; a mediaKey alone is not enough.
  const hasMedia = Boolean(m.directPath);
  const out = {
    id,
    ack: m.ack ?? 0,
    hasMedia,
    body: hasMedia ? (m.caption || '') : (m.body || m.pollName || m.eventName || ''),
    type: m.type,
    timestamp: m.t,
    from: widString(m.from),
    to: widString(m.to),
    author: widString(m.author) ?? null,  // kept when absent: clients read the field
    deviceType: deviceTypeOf(id.id),
    isForwarded: !!m.isForwarded,
    forwardingScore: m.forwardingScore || 0,
    isStatus: !!m.isStatusV3 || id.remote === 'status@broadcast',
    isStarred: !!m.star,
    broadcast: !!m.broadcast,
    fromMe: id.fromMe,
    hasQuotedMsg: !!m.quotedMsg,
    mentionedIds: (m.mentionedJidList || []).map(widString),
    links: linksOf(model, findLinks, report),
    notifyName: m.notifyName ?? '',
  };
  addContentFields(out, m);
  addOtherIds(out, model, otherIdOf, report);
  return out;
}

// A location, contact cards or a poll: its content in the fields
// whatsapp-web.js's Message gives it.  A location's `loc` holds its name
// and address on two lines; a card's vCard is the body, several come in
// `vcardList`; a poll's options keep their `localId` (their place, from 0),
// which votes name; one choice when `pollSelectableOptionsCount` is 1.
function addContentFields(out, m) {
  if (m.type === 'location') {
    const [name, address] = typeof m.loc === 'string' && m.loc ? m.loc.split('\n') : [];
    out.location = {
      latitude: m.lat, longitude: m.lng, name, address, url: m.clientUrl || undefined,
      description: name && address ? name + '\n' + address : (name || address || ''),
    };
  } else if (m.type === 'vcard') {
    out.vCards = typeof m.body === 'string' ? [m.body] : [];
  } else if (m.type === 'multi_vcard') {
    out.vCards = (m.vcardList || []).map((card) => card.vcard);
  } else if (m.type === 'poll_creation') {
    out.pollName = m.pollName;
    out.pollOptions = (m.pollOptions || []).map((o) => ({ name: o.name, localId: o.localId }));
    out.allowMultipleAnswers = !m.pollSelectableOptionsCount;
  }
}

// Ids are given as the page gives them; where the page knows a person by
// both ids, the other one is added beside it: `from_pn` for a message from
// a LID, `from_lid` for one from a phone number, the same for `author`
// (groups) and `to`.  A client can then answer `from` as it is, and still
// know the number where WhatsApp shows it.
function addOtherIds(out, model, otherIdOf, report) {
  for (const name of ['from', 'author', 'to']) {
    const id = out[name];
    if (typeof id !== 'string') continue;
    const server = id.slice(id.lastIndexOf('@') + 1);
    if (server !== 'lid' && server !== 'c.us') continue;  // a group, a broadcast: no person
    let other;
    try {
      other = otherIdOf((model && typeof model[name] === 'object' && model[name]) || id);
    } catch (e) {
      report({ type: 'error', reason: 'lid_mapping_unreadable', detail: String(e) });
      return;  // the message still goes out, as the page gave it
    }
    if (typeof other === 'string' && other && other !== id) out[`${name}_${server === 'lid' ? 'pn' : 'lid'}`] = other;
  }
}

// WhatsApp Web's own link finder, on the caption of media, else the body
// (read on the live model, as whatsapp-web.js does).
function linksOf(model, findLinks, report) {
  try {
    return (findLinks(model.mediaObject ? model.caption : model.body) || []).map((link) => ({
      link: link.href,
      isSuspicious: Boolean(link.suspiciousCharacters && link.suspiciousCharacters.size),
    }));
  } catch (e) {
    // The message still goes out, without links; the session logs why.
    report({ type: 'error', reason: 'links_unreadable', detail: String(e) });
    return [];
  }
}
