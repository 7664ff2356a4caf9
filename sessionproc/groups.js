// Group actions on WhatsApp Web's page, as whatsapp-web.js 1.34.7 does
// each: Client.createGroup (WAWebQueryExistsJob for each person, then
// WAWebGroupCreateJob.createGroup in LID addressing mode), GroupChat's
// addParticipants (fresh metadata, iAmAdmin, WAWebQueryExistsJob, then
// WASmaxGroupsAddParticipantsRPC one person at a time),
// removeParticipants, promoteParticipants and demoteParticipants (the
// group's participant models, WAWebModifyParticipantsGroupAction),
// setSubject and setDescription (WAWebGroupModifyInfoJob),
// setMessagesAdminsOnly and setInfoAdminsOnly
// (WAWebSetPropertyGroupAction), getInviteCode
// (WAWebMexFetchGroupInviteCodeJob), revokeInvite
// (WAWebGroupQueryJob.resetGroupInviteCode), leave (WAWebExitGroupAction)
// and Client.acceptInvite (WAWebGroupInviteJob).
//
// The page's own rules come first, as clear refusals (ActionError with a
// reason): a group the page does not hold (unknown_group), one the account
// is not in (not_in_group), a change only admins may make (not_admin).  A
// person who cannot be added (or removed, promoted, demoted) is answered
// per person; the action fails only when nobody could be.  What the
// server refuses comes back as a ServerStatusCodeError, its statusCode
// turned into a reason.  Loaded after readback.js (idsOf) and the message
// helpers of actions.py (ActionError) into one script (groups.py); data
// comes as arguments.

const INVITE_LINK = 'https://chat.whatsapp.com/';

// What a code WhatsApp answers for one person means.
const PERSON_CODES = { 403: 'invite_only', 404: 'not_registered', 408: 'recently_left', 409: 'already_member',
  417: 'community_only', 419: 'group_full' };

// A refusal of the server as the reason the session reports.
function serverRefusal(e, onForbidden, onNotFound) {
  if (!e || e.name !== 'ServerStatusCodeError') return e;
  const status = Number(e.statusCode || e.status || 0);
  const reason = status === 403 ? onForbidden : status === 404 ? onNotFound : status === 419 ? 'group_full' : 'refused';
  return new ActionError(reason, 'WhatsApp refused (' + (status || 'no status') + '): ' + String(e.message || e));
}

async function groupChat(req, groupId) {
  const wid = req('WAWebWidFactory').createWid(groupId);
  const chat = req('WAWebCollections').Chat.get(wid);
  if (!chat || !chat.groupMetadata) throw new ActionError('unknown_group', 'WhatsApp Web has no group ' + groupId);
  try {
    await req('WAWebGroupQueryJob').queryAndUpdateGroupMetadataById({ id: groupId });
  } catch (e) {
    throw serverRefusal(e, 'not_in_group', 'unknown_group');
  }
  return chat;
}

// The account's participant model in the group (by number or LID), or null.
function myParticipant(req, chat) {
  const Me = req('WAWebUserPrefsMeUser');
  const mine = [Me.getMaybeMePnUser(), Me.getMaybeMeLidUser()].filter(Boolean);
  for (const w of mine) {
    const p = chat.groupMetadata.participants.get(w);
    if (p) return p;
  }
  return null;
}

function mustBeIn(req, chat, groupId) {
  if (!myParticipant(req, chat)) {
    throw new ActionError('not_in_group', 'this account is not in group ' + groupId);
  }
}

function mustBeAdmin(req, chat, groupId, what) {
  mustBeIn(req, chat, groupId);
  if (!chat.iAmAdmin()) {
    throw new ActionError('not_admin', 'only admins of group ' + groupId + ' may ' + what + '; this account is not one');
  }
}

// A person as the group shows them: their participant model, by LID or number.
function participantOf(req, chat, wid) {
  const ids = idsOf(req, wid);
  const people = chat.groupMetadata.participants;
  return (ids.lid && people.get(ids.lid)) || (ids.pn && people.get(ids.pn)) || null;
}

// Per-person outcomes: the answer when anyone is done, else a refusal
// (their one reason, or participants_refused with each).
function outcome(people, extra = {}) {
  if (people.some((p) => p.ok)) return { participants: people, ...extra };
  const reasons = Array.from(new Set(people.map((p) => p.reason)));
  throw new ActionError(reasons.length === 1 ? reasons[0] : 'participants_refused',
    people.map((p) => p.id + ': ' + p.reason).join(', '));
}

async function registered(req, wid) {
  const found = await req('WAWebQueryExistsJob').queryWidExists(wid);
  return !!(found && found.wid);
}

// ---------------------------------------------------------------- create
async function createGroup(req, p) {
  const createWid = req('WAWebWidFactory').createWid;
  const people = [];
  const wanted = [];
  for (const id of p.participants) {
    const wid = createWid(id);
    if (await registered(req, wid)) {
      wanted.push({ id, wid });
    } else {
      people.push({ id, ok: false, reason: 'not_registered' });
    }
  }
  let made;
  try {
    made = await req('WAWebGroupCreateJob').createGroup({
      addressingModeOverride: 'lid', memberAddMode: false, membershipApprovalMode: false, announce: false,
      restrict: false, ephemeralDuration: 0, parentGroupId: undefined, title: p.value,
    }, wanted.map(({ wid }) => ({ phoneNumber: wid })));
  } catch (e) {
    throw serverRefusal(e, 'refused', 'refused');
  }
  const results = made.participants || [];
  for (const { id, wid } of wanted) {
    const ids = idsOf(req, wid);
    const r = results.find((x) => [ids.pn, ids.lid, id].includes(widString(x.wid)));
    const code = r ? Number(r.error || 200) : 404;
    people.push(code === 200 ? { id, ok: true }
      : { id, ok: false, reason: PERSON_CODES[code] || 'refused', ...(r && r.invite_code ? { invite_code: r.invite_code } : {}) });
  }
  return { group_id: widString(made.wid), participants: people };
}

// ------------------------------------------------------------------- add
async function addParticipants(req, chat, p) {
  mustBeAdmin(req, chat, p.groupId, 'add people');
  const createWid = req('WAWebWidFactory').createWid;
  const toJid = req('WAWebWidToJid');
  const people = [];
  for (const id of p.participants) {
    const wid = createWid(id);
    if (participantOf(req, chat, wid)) { people.push({ id, ok: false, reason: 'already_member' }); continue; }
    const ids = idsOf(req, wid);
    const target = ids.pn ? createWid(ids.pn) : wid;
    if (!(await registered(req, target))) { people.push({ id, ok: false, reason: 'not_registered' }); continue; }
    const rpc = await req('WASmaxGroupsAddParticipantsRPC').sendAddParticipantsRPC({
      participantArgs: [{ participantJid: toJid.widToUserJid(target) }], iqTo: toJid.widToGroupJid(chat.id) });
    let code = 400;
    let invite;
    if (rpc && rpc.name === 'AddParticipantsResponseSuccess') {
      const mixin = rpc.value.addParticipant[0]
        .addParticipantsParticipantAddedOrNonRegisteredWaUserParticipantErrorLidResponseMixinGroup
        .value.addParticipantsParticipantMixins;
      code = Number((mixin && mixin.value && mixin.value.error) || 200);
      invite = mixin && mixin.value ? mixin.value.addRequestCode : undefined;
    } else if (rpc && rpc.name === 'AddParticipantsResponseClientError') {
      code = Number(rpc.value.errorAddParticipantsClientErrors.value.code);
    } else if (rpc && rpc.name === 'AddParticipantsResponseServerError') {
      code = Number(rpc.value.errorServerErrors.value.code);
    }
    if (code === 403 && !invite) {
      throw new ActionError('not_admin', 'WhatsApp refused: only admins of group ' + p.groupId + ' may add people');
    }
    people.push(code === 200 ? { id, ok: true }
      : { id, ok: false, reason: PERSON_CODES[code] || 'refused', ...(invite ? { invite_code: invite } : {}) });
  }
  return outcome(people);
}

// ------------------------------------------- remove, promote, demote
async function changeParticipants(req, chat, p) {
  mustBeAdmin(req, chat, p.groupId, p.action + ' people');
  const createWid = req('WAWebWidFactory').createWid;
  const people = [];
  const models = [];
  for (const id of p.participants) {
    const model = participantOf(req, chat, createWid(id));
    if (!model) { people.push({ id, ok: false, reason: 'not_member' }); continue; }
    if (model.isSuperAdmin && p.action !== 'promote') {
      people.push({ id, ok: false, reason: 'is_owner' });  // the group's creator stays
      continue;
    }
    people.push({ id, ok: true });
    models.push(model);
  }
  if (models.length) {
    const act = req('WAWebModifyParticipantsGroupAction');
    const call = { remove: act.removeParticipants, promote: act.promoteParticipants, demote: act.demoteParticipants };
    try {
      await call[p.action](chat, models);
    } catch (e) {
      throw serverRefusal(e, 'not_admin', 'unknown_group');
    }
  }
  return outcome(people);
}

// ------------------------------------------------------- the group's info
async function setSubject(req, chat, p) {
  mustBeIn(req, chat, p.groupId);
  if (chat.groupMetadata.restrict && !chat.iAmAdmin()) {
    throw new ActionError('not_admin', 'only admins of group ' + p.groupId + ' may change its subject');
  }
  try {
    await req('WAWebGroupModifyInfoJob').setGroupSubject(chat.id, p.value);
  } catch (e) {
    throw serverRefusal(e, 'not_admin', 'unknown_group');
  }
  return {};
}

async function setDescription(req, chat, p) {
  mustBeIn(req, chat, p.groupId);
  if (chat.groupMetadata.restrict && !chat.iAmAdmin()) {
    throw new ActionError('not_admin', 'only admins of group ' + p.groupId + ' may change its description');
  }
  const newId = await req('WAWebMsgKey').newId();
  try {
    await req('WAWebGroupModifyInfoJob').setGroupDescription(chat.id, p.value, newId, chat.groupMetadata.descId);
  } catch (e) {
    throw serverRefusal(e, 'not_admin', 'unknown_group');
  }
  return {};
}

async function setSettings(req, chat, p) {
  mustBeAdmin(req, chat, p.groupId, 'change its settings');
  const set = req('WAWebSetPropertyGroupAction').setGroupProperty;
  try {
    if (p.value.announce !== undefined) await set(chat, 'announcement', p.value.announce ? 1 : 0);
    if (p.value.restrict !== undefined) await set(chat, 'restrict', p.value.restrict ? 1 : 0);
  } catch (e) {
    throw serverRefusal(e, 'not_admin', 'unknown_group');
  }
  return {};
}

// --------------------------------------------------------- invite links
const linkOf = (code) => ({ code: String(code), link: INVITE_LINK + String(code) });

async function inviteLink(req, chat, p) {
  mustBeAdmin(req, chat, p.groupId, 'read its invite link');
  let r;
  try {
    r = await req('WAWebMexFetchGroupInviteCodeJob').fetchMexGroupInviteCode(p.groupId);
  } catch (e) {
    throw serverRefusal(e, 'not_admin', 'unknown_group');
  }
  return linkOf(r && r.code ? r.code : r);
}

async function revokeInvite(req, chat, p) {
  mustBeAdmin(req, chat, p.groupId, 'reset its invite link');
  let r;
  try {
    r = await req('WAWebGroupQueryJob').resetGroupInviteCode(chat.id);
  } catch (e) {
    throw serverRefusal(e, 'not_admin', 'unknown_group');
  }
  return linkOf(r.code);
}

async function joinGroup(req, p) {
  let r;
  try {
    r = await req('WAWebGroupInviteJob').joinGroupViaInvite(p.value);
  } catch (e) {
    throw serverRefusal(e, 'group_full', 'invite_not_found');
  }
  return { group_id: widString(r.gid) };
}

async function leaveGroup(req, chat, p) {
  mustBeIn(req, chat, p.groupId);
  try {
    await req('WAWebExitGroupAction').sendExitGroup(chat);
  } catch (e) {
    throw serverRefusal(e, 'not_in_group', 'unknown_group');
  }
  return {};
}

async function groupAction(req, p) {
  if (p.action === 'create') return createGroup(req, p);
  if (p.action === 'join') return joinGroup(req, p);
  const chat = await groupChat(req, p.groupId);
  const act = { add: addParticipants, remove: changeParticipants, promote: changeParticipants,
    demote: changeParticipants, subject: setSubject, description: setDescription, settings: setSettings,
    invite_link: inviteLink, revoke_invite: revokeInvite, leave: leaveGroup }[p.action];
  return act(req, chat, p);
}
