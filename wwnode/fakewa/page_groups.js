// The stand-in page's groups, in the shapes whatsapp-web.js 1.34.7 uses
// them: group metadata (WAWebCollections.GroupMetadata with update and
// find; a chat's groupMetadata with participants, a collection of
// {id, isAdmin, isSuperAdmin}; chat.iAmAdmin()), Client.createGroup
// (WAWebGroupCreateJob.createGroup), GroupChat.addParticipants
// (WAWebGroupQueryJob.queryAndUpdateGroupMetadataById, WAWebWidToJid,
// WASmaxGroupsAddParticipantsRPC.sendAddParticipantsRPC), remove, promote
// and demote (WAWebModifyParticipantsGroupAction), setSubject and
// setDescription (WAWebGroupModifyInfoJob), setMessagesAdminsOnly and
// setInfoAdminsOnly (WAWebSetPropertyGroupAction.setGroupProperty),
// getInviteCode (WAWebMexFetchGroupInviteCodeJob), revokeInvite
// (WAWebGroupQueryJob.resetGroupInviteCode), Client.acceptInvite
// (WAWebGroupInviteJob.joinGroupViaInvite), leave
// (WAWebExitGroupAction.sendExitGroup); and the notifications of a
// group's changes (messages of type gp2 with a subtype, an author and
// recipients), which whatsapp-web.js turns into group_join, group_leave,
// group_admin_changed and group_update.
//
// The server keeps the groups and their rules (wwnode/fakewa/groups.py):
// a change the server refuses fails here with a ServerStatusCodeError
// (its statusCode the server's), as whatsapp-web.js expects.  The server
// joins this file with the others into one script; page.js calls
// defineGroupModules() among its own modules and uses groupChatMethods().
//
// Guesses, where nothing read here tells how the real page behaves: the
// shape of what the create job answers beyond what whatsapp-web.js reads,
// that GroupMetadata.update keeps what the page has when the server has
// nothing to say,
// what the remove, promote and demote actions answer (nothing here), and
// that the page learns of a change first by its new metadata, then by the
// notification.

class ParticipantModel extends Model {
  // As the real model: its id stays a Wid.
  serialize() { return { id: this.id, isAdmin: !!this.isAdmin, isSuperAdmin: !!this.isSuperAdmin }; }
}

class GroupMetadataModel extends Model {
  serialize() {
    const out = super.serialize();
    out.id = this.id;
    out.owner = this.owner;
    out.participants = this.participants.getModelsArray().map((p) => p.serialize());
    return out;
  }
}

const GroupMetadata = new Collection((m) => m.id._serialized);

// The page's metadata of a group, made empty the first time it is named.
function groupMetadataOf(wid) {
  let meta = GroupMetadata.get(wid);
  if (!meta) {
    meta = new GroupMetadataModel({
      id: wid, subject: undefined, subjectTime: undefined, desc: undefined, descId: undefined, owner: undefined,
      creation: undefined, announce: false, restrict: false, memberAddMode: 'admin_add', size: 0,
      isLidAddressingMode: lidGroups.has(wid._serialized),  // page_lids.js
    });
    Object.defineProperty(meta, 'participants', { value: new Collection((p) => p.id._serialized) });
    GroupMetadata.add(meta);
  }
  return meta;
}

// The group's metadata as the server sends it (with the people whose ids
// the account can map).
function receiveGroupMetadata(data) {
  learnLids(data.lids);
  const wid = createWid(data.id);
  const meta = groupMetadataOf(wid);
  for (const name of ['subject', 'subjectTime', 'desc', 'descId', 'creation', 'announce', 'restrict',
    'memberAddMode', 'size']) {
    if (data[name] !== undefined) meta.set(name, data[name]);
  }
  meta.owner = data.owner ? createWid(data.owner) : undefined;
  setGroupAddressing(data.id, data.isLidAddressingMode ? 'lid' : 'pn');
  const present = new Set(data.participants.map((p) => p.id));
  for (const p of meta.participants.getModelsArray()) {
    if (!present.has(p.id._serialized)) meta.participants.remove(p.id);
  }
  for (const p of data.participants) {
    const known = meta.participants.get(p.id);
    if (known) {
      known.isAdmin = p.isAdmin;
      known.isSuperAdmin = p.isSuperAdmin;
    } else {
      meta.participants.add(new ParticipantModel({ id: createWid(p.id), isAdmin: p.isAdmin,
                                                   isSuperAdmin: p.isSuperAdmin }));
    }
  }
  const chat = chatFor(wid);
  if (meta.subject) { chat.name = meta.subject; chat.formattedTitle = meta.subject; }
  return meta;
}

// Whether the account is an admin of the group (by its number or its LID).
function iAmAdminOf(chat) {
  const meta = chat.groupMetadata;
  if (!meta || !meta.participants) return false;
  return [me, meLid].some((w) => {
    const p = w && meta.participants.get(w);
    return !!(p && (p.isAdmin || p.isSuperAdmin));
  });
}

// Methods the real page's group chats have.
function groupChatMethods(chat) {
  Object.defineProperty(chat, 'iAmAdmin', { value: () => iAmAdminOf(chat) });
}

// A notification's fields on its message model (`data.notification`).
function notificationFields(n) {
  return { type: 'gp2', subtype: n.subtype, recipients: (n.recipients || []).map(createWid), isNotification: true };
}

// A change the server refused: thrown as the real page's error.
const refused = (err) => { throw serverError(err); };  // page_history.js
const groupPost = (path, body) => postRefusable('/_wa/group/' + path, body).catch(refused);  // page_history.js

function updateGroupMetadata(wid) {
  return groupPost('meta', { group: wid._serialized }).then(receiveGroupMetadata);
}

function jidToWid(jid) {
  return createWid(String(jid).replace(/@s\.whatsapp\.net$/, '@c.us'));
}

// One participant added, in the response shape whatsapp-web.js reads.
async function sendAddParticipantsRPC({ participantArgs, iqTo }) {
  const participant = jidToWid(participantArgs[0].participantJid);
  let r;
  try {
    r = await postRefusable('/_wa/group/add', { group: jidToWid(iqTo)._serialized, participant: participant._serialized });
  } catch (err) {
    const e = serverError(err);
    return { name: 'AddParticipantsResponseClientError',
             value: { errorAddParticipantsClientErrors: { value: { code: String(e.statusCode) } } } };
  }
  const mixin = {
    name: r.code === 403 ? 'ParticipantRequestCodeCanBeSent' : r.code === 200 ? 'ParticipantAdded' : 'ParticipantError',
    value: { error: r.code === 200 ? undefined : String(r.code), addRequestCode: r.invite_code || undefined,
             addRequestExpiration: r.invite_code ? Math.floor(Date.now() / 1000) + 3 * 86400 : undefined },
  };
  return { name: 'AddParticipantsResponseSuccess', value: { addParticipant: [{
    addParticipantsParticipantAddedOrNonRegisteredWaUserParticipantErrorLidResponseMixinGroup: {
      name: 'AddParticipantsParticipantMixins', value: { addParticipantsParticipantMixins: mixin } } }] } };
}

async function createGroup(options, participants) {
  const ids = (participants || []).map((p) => (p.phoneNumber || p.lid || p)._serialized);
  const r = await groupPost('create', { subject: options.title, participants: ids,
                                        addressing: options.addressingModeOverride === 'lid' ? 'lid' : 'pn' });
  return {
    wid: createWid(r.id), subject: r.subject, creation: r.creation,
    participants: r.participants.map((p) => ({
      wid: createWid(p.id), error: p.code === 200 ? undefined : p.code, invite_code: p.invite_code || undefined,
      invite_code_exp: p.invite_code ? String(Math.floor(Date.now() / 1000) + 3 * 86400) : undefined,
      type: p.type || 'member',
    })),
  };
}

const modifyParticipants = (op) => (chat, participants) => groupPost(op, {
  group: chat.id._serialized, participants: (participants || []).map((p) => (p.id || p)._serialized),
}).then(() => undefined);

function defineGroupModules() {
  const collections = modules.WAWebCollections;
  // A refresh: where the server has nothing to say (a group it does not
  // keep), the page keeps what it has.
  GroupMetadata.update = (wid) => updateGroupMetadata(typeof wid === 'string' ? createWid(wid) : wid)
    .catch((e) => { if (!e || e.name !== 'ServerStatusCodeError') throw e; });
  GroupMetadata.find = (wid) => {
    const w = typeof wid === 'string' ? createWid(wid) : wid;
    return GroupMetadata.get(w) ? Promise.resolve(GroupMetadata.get(w)) : updateGroupMetadata(w);
  };
  collections.GroupMetadata = GroupMetadata;
  define('WAWebGroupCreateJob', { createGroup });
  define('WAWebWidToJid', {
    widToUserJid: (wid) => (wid.server === 'c.us' ? wid.user + '@s.whatsapp.net' : wid._serialized),
    widToGroupJid: (wid) => wid._serialized,
  });
  define('WASmaxGroupsAddParticipantsRPC', { sendAddParticipantsRPC });
  define('WAWebGroupQueryJob', {
    queryAndUpdateGroupMetadataById: ({ id }) => updateGroupMetadata(typeof id === 'string' ? createWid(id) : id),
    resetGroupInviteCode: (wid) => groupPost('reset_invite', { group: wid._serialized }).then((r) => ({ code: r.code })),
  });
  define('WAWebModifyParticipantsGroupAction', {
    removeParticipants: modifyParticipants('remove'),
    promoteParticipants: modifyParticipants('promote'),
    demoteParticipants: modifyParticipants('demote'),
  });
  define('WAWebGroupModifyInfoJob', {
    setGroupSubject: (wid, subject) => groupPost('subject', { group: wid._serialized, subject }).then(() => undefined),
    setGroupDescription: (wid, description) => groupPost('description', { group: wid._serialized, description })
      .then(() => undefined),
  });
  define('WAWebSetPropertyGroupAction', {
    setGroupProperty: (chat, property, value) => groupPost('property', {
      group: chat.id._serialized, property, value }).then(() => undefined),
  });
  define('WAWebMexFetchGroupInviteCodeJob', {
    fetchMexGroupInviteCode: (groupId) => groupPost('invite', { group: String(groupId) }).then((r) => ({ code: r.code })),
  });
  define('WAWebGroupInviteJob', {
    joinGroupViaInvite: (code) => groupPost('join', { code }).then((r) => ({ gid: createWid(r.id) })),
  });
  define('WAWebExitGroupAction', {
    sendExitGroup: (chat) => groupPost('leave', { group: chat.id._serialized }).then(() => undefined),
  });
}
