"""Every WhatsApp Web module and member the session uses, in one list, and
the script that looks for them on a page.

The session touches WhatsApp Web's own code (``window.require(name)``) in
``hook.js`` and in the scripts of ``session.py``.  WhatsApp changes that
code without notice; a session that used a missing member would fail half
way (a QR that never comes, a send that throws) and be restarted over and
over.  So the session checks the page against :data:`SURFACE` as soon as it
has loaded, and a page that lacks anything ends the session at once with
the reason ``incompatible_page`` and what is missing.  ``wwnode doctor``
checks the same list, with the same script, for an operator.

When the session starts to use a new module or member, it goes here.

:data:`CHECK_FN` is generic: it gets the list as data (an argument, never
pasted into its source) and answers, for every alternative of every need,
whether the page has it.
"""

from __future__ import annotations

from dataclasses import dataclass

FUNCTION = "function"  # the member must be a function
PRESENT = "present"  # the member must exist (a model attribute may be null)

# What a need is for, in the order the session meets them.
USES = ("boot", "qr", "pair", "message", "send", "send_seen", "reply", "react", "read", "check_number", "logout",
        "media", "lid", "edit", "revoke", "location", "contacts", "poll_vote", "typing", "call",
        "chat_state", "chat", "presence", "query", "group")

# When the session checks a need: at load, or once the page has synced.
AT_LOAD = "load"
WHEN_SYNCED = "synced"
# Not checked by a session at all, only by ``wwnode doctor``: a page that
# lacks them fails that one feature (a media send fails ``page_error``, an
# inbound file comes with ``media.error``, a message comes without the
# other id of its sender, an edit fails ``page_error``, a location or
# contact cards fail ``page_error``, poll votes are not reported, calls are
# not reported and a reject fails ``page_error``, so do a chat_action and
# a set_presence, a query or a group action fails ``page_error``),
# not the whole session.
ON_USE = "use"
STAGE_OF_USE = {"boot": AT_LOAD, "qr": AT_LOAD, "pair": AT_LOAD, "logout": AT_LOAD,
                "message": WHEN_SYNCED, "send": WHEN_SYNCED, "send_seen": WHEN_SYNCED, "reply": WHEN_SYNCED,
                "react": WHEN_SYNCED, "read": WHEN_SYNCED, "check_number": WHEN_SYNCED,
                "media": ON_USE, "lid": ON_USE, "edit": ON_USE, "revoke": ON_USE,
                "location": ON_USE, "contacts": ON_USE, "poll_vote": ON_USE, "typing": ON_USE, "call": ON_USE,
                "chat_state": ON_USE, "chat": ON_USE, "presence": ON_USE, "query": ON_USE,
                "group": ON_USE}


@dataclass(frozen=True)
class Member:
    module: str
    path: str = ""  # dotted, inside the module's value; "" is the value itself
    kind: str = FUNCTION

    def __str__(self) -> str:
        return f"{self.module}.{self.path}" if self.path else self.module

    def as_data(self) -> dict:
        return {"module": self.module, "path": self.path, "kind": self.kind}


@dataclass(frozen=True)
class Need:
    """One thing the session uses; any one of its alternatives will do
    (the first the page has is the one used)."""

    use: str
    alternatives: tuple[Member, ...]

    @property
    def stage(self) -> str:
        return STAGE_OF_USE[self.use]

    def __str__(self) -> str:
        return " or ".join(str(m) for m in self.alternatives)


def need(use: str, module: str, path: str = "", kind: str = FUNCTION) -> Need:
    return Need(use, (Member(module, path, kind),))


def either(use: str, *members: Member) -> Need:
    return Need(use, members)


SURFACE: tuple[Need, ...] = (
    # hook.js subscribes to these when the page has loaded.
    need("boot", "WAWebSocketModel", "Socket.state", PRESENT),
    need("boot", "WAWebSocketModel", "Socket.hasSynced", PRESENT),
    need("boot", "WAWebSocketModel", "Socket.on"),
    need("boot", "WAWebSocketModel", "Socket.off"),
    need("boot", "WAWebConnModel", "Conn.ref", PRESENT),
    need("boot", "WAWebConnModel", "Conn.on"),
    need("boot", "WAWebCmd", "Cmd.on"),
    need("boot", "WAWebCollections", "Msg.on"),
    need("boot", "WAWebUserPrefsMeUser", "getMaybeMePnUser"),
    need("boot", "WAWebUserPrefsMeUser", "getMaybeMeLidUser"),
    # The five parts of a QR code.
    need("qr", "WABase64", "encodeB64"),
    need("qr", "WAWebUserPrefsInfoStore", "waNoiseInfo.get"),
    need("qr", "WAWebSignalStoreApi", "waSignalStore.getRegistrationInfo"),
    need("qr", "WAWebCompanionRegClientUtils", "DEVICE_PLATFORM", PRESENT),
    # whatsapp-web.js reads the synchronous one; the other wraps it.
    either(
        "qr",
        Member("WAWebUserPrefsMultiDevice", "getADVSecretKey"),
        Member("WAWebAdvSignatureApi", "getADVSecretKey"),
    ),
    # An inbound message's links.
    need("message", "WALinkify", "findLinks"),
    # Sending a text (pagescripts.SEND_FN).
    need("send", "WAWebWidFactory", "createWid"),
    need("send", "WAWebCollections", "Chat.get"),
    need("send", "WAWebFindChatAction", "findOrCreateLatestChat"),
    need("send", "WAWebMsgKey"),  # the key class itself, used with new
    need("send", "WAWebMsgKey", "newId"),
    need("send", "WAWebGetEphemeralFieldsMsgActionsUtils", "getEphemeralFields"),
    need("send", "WAWebSendMsgChatAction", "addAndSendMsgToChat"),
    need("send", "WAWebWidFactory", "asUserWidOrThrow"),  # our participant id in a group
    # A reply (sessionproc/actions.py): the quoted message, found in memory
    # or in the page's store; whether it can be quoted; its context fields
    # (members of the message model, checked when used).
    need("reply", "WAWebCollections", "Msg.get"),
    need("reply", "WAWebCollections", "Msg.getMessagesById"),
    need("reply", "WAWebMsgReply", "canReplyMsg"),
    # message_action and check_number (sessionproc/actions.py).
    need("react", "WAWebSendReactionMsgAction", "sendReactionToMsg"),
    need("read", "WAWebStreamModel", "Stream.markAvailable"),
    need("read", "WAWebStreamModel", "Stream.markUnavailable"),
    need("read", "WAWebUpdateUnreadChatAction", "sendSeen"),
    need("check_number", "WAWebQueryExistsJob", "queryWidExists"),
    # Marking the chat seen before a send (SEND_SEEN).
    need("send_seen", "WAWebStreamModel", "Stream.markAvailable"),
    need("send_seen", "WAWebStreamModel", "Stream.markUnavailable"),
    need("send_seen", "WAWebUpdateUnreadChatAction", "sendSeen"),
    # Linking with a pairing code instead of QR codes (--pair-with-phone).
    need("pair", "WAWebAltDeviceLinkingApi", "setPairingType"),
    need("pair", "WAWebAltDeviceLinkingApi", "initializeAltDeviceLinking"),
    need("pair", "WAWebAltDeviceLinkingApi", "startAltLinkingFlow"),
    # A stop with logout.
    need("logout", "WAWebSocketModel", "Socket.logout"),
    # Media out and in (media.js), as whatsapp-web.js sends and downloads it.
    need("media", "WAWebMediaOpaqueData", "createFromData"),
    need("media", "WAWebPrepRawMedia", "prepRawMedia"),
    need("media", "WAWebMediaStorage", "getOrCreateMediaObject"),
    need("media", "WAWebMmsMediaTypes", "msgToMediaType"),
    need("media", "WAWebMmsMediaTypes", "castToV4"),
    need("media", "WAWebMediaDataUtils", "shouldUseMediaCache"),
    need("media", "WAWebMediaInMemoryBlobCache", "InMemoryMediaBlobCache.put"),
    need("media", "WAWebMediaMmsV4Upload", "uploadMedia"),
    need("media", "WAWebUploadManager", "encryptAndUpload"),
    need("media", "WAWebStartMediaUploadQpl", "startMediaUploadQpl"),
    need("media", "WAWebDownloadManager", "downloadManager.downloadAndMaybeDecrypt"),
    need("media", "WAWebCollections", "Msg.get"),
    # A person's other id (hook.js, message.js): the number of a LID, the
    # LID of a number, as whatsapp-web.js asks the page for them.
    need("lid", "WAWebApiContact", "getPhoneNumber"),
    need("lid", "WAWebApiContact", "getCurrentLid"),
    # Editing and deleting the account's messages (actions.py), as
    # whatsapp-web.js's Message.edit and Message.delete.
    need("edit", "WAWebMsgActionCapability", "canEditText"),
    need("edit", "WAWebMsgActionCapability", "canEditCaption"),
    need("edit", "WAWebSendMessageEditAction", "sendMessageEdit"),
    need("revoke", "WAWebMsgActionCapability", "canSenderRevokeMsg"),
    need("revoke", "WAWebCmd", "Cmd.sendRevokeMsgs"),
    need("revoke", "WAWebCmd", "Cmd.sendDeleteMsgs"),
    # A location's link, contact cards (content.js), as whatsapp-web.js
    # sends them; a poll needs nothing beyond a send.
    need("location", "WALinkify", "findLink"),
    need("contacts", "WAWebCollections", "Contact.find"),
    need("contacts", "WAWebFrontendVcardUtils", "vcardFromContactModel"),
    need("contacts", "WAWebVcardParsingUtils", "parseVcard"),
    need("contacts", "WAWebVcardGetNameFromParsed", "vcardGetNameFromParsed"),
    # Votes on polls (polls.js): the page stores each through its vote
    # table, which whatsapp-web.js's vote_update wraps too.
    need("poll_vote", "WAWebAddonPollVoteTableMode", "pollVoteTableMode.bulkUpsert"),
    # "typing..." before a text (the ``typing`` setting), as
    # whatsapp-web.js's Chat.sendStateTyping and clearState.
    need("typing", "WAWebChatStateBridge", "sendChatStateComposing"),
    need("typing", "WAWebChatStateBridge", "sendChatStatePaused"),
    # Calls (calls.js, callactions.py): the call collection, whose Map of
    # calls whatsapp-web.js's `call` event watches, whether a call is over,
    # and the stanza its Call.reject casts.
    need("call", "WAWebCallCollection", "on"),
    need("call", "WAWebCallCollection", "get"),
    need("call", "WAWebVoipCallStateUtils", "isCallTerminal"),
    need("call", "WAWap", "wap"),
    need("call", "WAWap", "generateId"),
    need("call", "WADeprecatedSendIq", "deprecatedCastStanza"),
    # Typing and recording in a chat, and the chat list (chatactions.py),
    # as whatsapp-web.js's Chat.sendStateTyping, archive, pin, mute...; a
    # chat's mute is a member of its model, checked when used.
    need("chat_state", "WAWebChatStateBridge", "sendChatStateComposing"),
    need("chat_state", "WAWebChatStateBridge", "sendChatStateRecording"),
    need("chat_state", "WAWebChatStateBridge", "sendChatStatePaused"),
    need("chat", "WAWebCmd", "Cmd.archiveChat"),
    need("chat", "WAWebCmd", "Cmd.pinChat"),
    need("chat", "WAWebCollections", "Chat.getModelsArray"),
    # The account's presence (presence.py), as whatsapp-web.js's
    # sendPresenceAvailable / sendPresenceUnavailable.
    need("presence", "WAWebPresenceChatAction", "sendPresenceAvailable"),
    need("presence", "WAWebPresenceChatAction", "sendPresenceUnavailable"),
    # Reading back what the account has (readback.js), as whatsapp-web.js's
    # getChats, fetchMessages, getContacts, group metadata,
    # getContactLidAndPhone and getProfilePicUrl read it.
    need("query", "WAWebCollections", "Chat.getModelsArray"),
    need("query", "WAWebChatLoadMessages", "loadEarlierMsgs"),
    need("query", "WAWebCollections", "Contact.getModelsArray"),
    need("query", "WAWebContactGetters", "getName"),
    need("query", "WAWebContactGetters", "getPushname"),
    need("query", "WAWebFrontendContactGetters", "getIsMyContact"),
    either("query", Member("WAWebCollections", "GroupMetadata.update"),
           Member("WAWebCollections", "WAWebGroupMetadataCollection.update")),
    need("query", "WAWebApiContact", "getPhoneNumber"),
    need("query", "WAWebApiContact", "getCurrentLid"),
    need("query", "WAWebContactProfilePicThumbBridge", "requestProfilePicFromServer"),
    # Group actions (groups.js), as whatsapp-web.js's createGroup, GroupChat
    # methods and acceptInvite do them.
    need("group", "WAWebQueryExistsJob", "queryWidExists"),
    need("group", "WAWebGroupCreateJob", "createGroup"),
    need("group", "WAWebGroupQueryJob", "queryAndUpdateGroupMetadataById"),
    need("group", "WAWebGroupQueryJob", "resetGroupInviteCode"),
    need("group", "WAWebWidToJid", "widToUserJid"),
    need("group", "WAWebWidToJid", "widToGroupJid"),
    need("group", "WASmaxGroupsAddParticipantsRPC", "sendAddParticipantsRPC"),
    need("group", "WAWebModifyParticipantsGroupAction", "removeParticipants"),
    need("group", "WAWebModifyParticipantsGroupAction", "promoteParticipants"),
    need("group", "WAWebModifyParticipantsGroupAction", "demoteParticipants"),
    need("group", "WAWebGroupModifyInfoJob", "setGroupSubject"),
    need("group", "WAWebGroupModifyInfoJob", "setGroupDescription"),
    need("group", "WAWebSetPropertyGroupAction", "setGroupProperty"),
    need("group", "WAWebMexFetchGroupInviteCodeJob", "fetchMexGroupInviteCode"),
    need("group", "WAWebGroupInviteJob", "joinGroupViaInvite"),
    need("group", "WAWebExitGroupAction", "sendExitGroup"),
    need("group", "WAWebApiContact", "getPhoneNumber"),
    need("group", "WAWebApiContact", "getCurrentLid"),
)


def needs(send_seen: bool = True, stage: str | None = None, pairing: bool = False) -> tuple[Need, ...]:
    """What a session with these options uses (checked at ``stage``; None:
    at either).  The pairing-code modules only with ``pairing``.  Marking a
    chat read on request (``read``) uses what ``send_seen`` uses: a session
    told not to mark chats seen does not need it either (a ``read`` then
    fails with the page's error where the page lacks it)."""
    return tuple(n for n in SURFACE if (send_seen or n.use not in ("send_seen", "read"))
                 and (pairing or n.use != "pair") and stage in (None, n.stage))


def as_data(wanted: tuple[Need, ...]) -> list[list[dict]]:
    """The argument of :data:`CHECK_FN`."""
    return [[m.as_data() for m in n.alternatives] for n in wanted]


def present(wanted: tuple[Need, ...], found) -> list[list[bool]]:
    """For every need, for every alternative: does the page have it, given
    what :data:`CHECK_FN` answered?  An answer of the wrong shape means
    nothing was checked: nothing counts as present."""
    rows = found if isinstance(found, list) and len(found) == len(wanted) else [None] * len(wanted)
    return [
        [isinstance(row, list) and i < len(row) and row[i] is True for i in range(len(n.alternatives))]
        for n, row in zip(wanted, rows)
    ]


def missing(wanted: tuple[Need, ...], found) -> list[str]:
    """The needs none of whose alternatives the page has."""
    return [str(n) for n, alts in zip(wanted, present(wanted, found)) if not any(alts)]


# function (needs) -> [[bool per alternative] per need]; `needs` as as_data().
CHECK_FN = """
function (needs) {
  const req = typeof window.require === 'function' ? window.require : null;
  const has = (alt) => {
    if (!req) return false;
    let value;
    try { value = req(alt.module); } catch (e) { return false; }  // unknown module
    const steps = alt.path ? alt.path.split('.') : [];
    const last = steps.pop();
    for (const step of steps) {
      if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
      value = value[step];
    }
    if (last === undefined) return alt.kind === 'function' ? typeof value === 'function' : value !== undefined;
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
    return alt.kind === 'function' ? typeof value[last] === 'function' : last in value;
  };
  return needs.map((alternatives) => alternatives.map(has));
}
"""
