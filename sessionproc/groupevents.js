// A group's changes, reported to the session as whatsapp-web.js 1.34.7
// finds them for its group_join, group_leave, group_admin_changed and
// group_update: the page adds a notification message (type `gp2`) to the
// group's chat, its `subtype` saying what changed (add, invite, remove,
// leave, promote, demote, subject, description, announce, restrict, ...),
// its `author` who did it and its `recipients` whom it concerns.  Such a
// message is no message of the conversation: hook.js reports it here
// instead.  Loaded between polls.js and hook.js inside one function (see
// pagescripts.hook_source).

// `otherIdOf(wid)` is a person's other id where the page knows it.
function groupUpdateReport(msg, otherIdOf) {
  const m = typeof msg.serialize === 'function' ? msg.serialize() : msg;
  const by = widString(m.author) ?? null;
  const report = {
    type: 'group_update', group_id: widString(msg.id.remote), subtype: String(m.subtype || ''),
    participants: (m.recipients || []).map(widString), by, body: typeof m.body === 'string' ? m.body : '',
  };
  // The settings as the group has them now (the page changed its metadata
  // with the notification); a subject or description is the body.
  const meta = msg.id.remote && typeof msg.id.remote === 'object' ? groupMetaOf(msg.id.remote) : null;
  if (meta) report.settings = { announce: !!meta.announce, restrict: !!meta.restrict };
  const server = typeof by === 'string' ? by.slice(by.lastIndexOf('@') + 1) : '';
  if (server === 'lid' || server === 'c.us') {
    let other = null;
    try { other = otherIdOf(m.author); } catch (e) { /* reported as the page gave it */ }
    if (typeof other === 'string' && other && other !== by) report[server === 'lid' ? 'by_pn' : 'by_lid'] = other;
  }
  return report;
}

// The group's metadata the page holds, if any.
function groupMetaOf(wid) {
  try {
    const chat = window.require('WAWebCollections').Chat.get(wid);
    return chat && chat.groupMetadata ? chat.groupMetadata : null;
  } catch (e) {
    return null;
  }
}
