"""The pipe protocol between a node and a session process: its description, and its names.

This docstring is its one description; docs/architecture.md links here.

Framing: one JSON object per line (UTF-8, ``\\n``-terminated), both ways.
The process writes nothing else to stdout; its own log goes to its log file.

Commands (node -> session, on stdin)
====================================
``{"cmd": "send", "id": C, "chat_id": "5511...@c.us", "text": T}``
    Send text ``T`` (``chat_id`` may also be a person's LID, ``...@lid``,
    or a group).  Answered by ``sent`` or ``send_failed`` with the same
    ``id``.  Commands are handled in order, one at a time.
    With ``"media": {"path": P, "mimetype": M, "filename": F, "as": A}``
    it sends the file at ``P`` (a file in the session's media folder,
    ``<profile>/../media/``, checked by the node; the session removes it
    once read) as ``A`` (image, video, audio, voice, document, sticker)
    with ``T`` as its caption (may be empty).  Files cross the pipe as
    paths, never inside a line.
``{"cmd": "send", ..., "quoted_message_id": Q, "mentions": [W, ...]}``
    Optional: a reply to message ``Q`` (its ``_serialized`` id; the page
    must hold it, else ``send_failed`` ``unknown_message``), and the ids
    ``...@c.us`` or ``...@lid`` the text mentions.
``{"cmd": "send", ..., "text": "", "location": L}`` (or ``"contacts": C``, or ``"poll": P``)
    Instead of text or media, exactly one of: a location ``{"latitude",
    "longitude", "name"?, "address"?, "url"?}``, contact cards (a list of
    ``...@c.us`` / ``...@lid`` ids, or ``{"vcard": V}``) or a poll
    ``{"name", "options": [...], "multiple": B}``, in the form
    ``sessionproc/contents.py`` gives them (checked there again).  A vCard
    the page cannot read fails ``bad_contacts``.
``{"cmd": "action", "id": C, "action": "react", "message_id": M, "emoji": E}``
``{"cmd": "action", "id": C, "action": "read", "message_id": M}``
``{"cmd": "action", "id": C, "action": "edit", "message_id": M, "text": T}``
``{"cmd": "action", "id": C, "action": "revoke", "message_id": M, "for_me": B}``
    React to message ``M`` (``E`` ``""`` takes the reaction back), mark
    its chat read, change its text to ``T``, or delete it for everyone
    (``for_me`` true: for this device only).  Edits and deletions for
    everyone take only the account's own messages, while the page allows
    (``action_failed`` ``not_own_message``, ``cannot_edit``,
    ``cannot_revoke``).  Answered by ``action_done`` or ``action_failed`` with
    the same ``id``; carried out in order with the sends.
``{"cmd": "check_number", "id": C, "phone": "5511..."}``
    Whether the number has WhatsApp: ``action_done`` with ``result``
    ``{"registered": B, "wid": W or null}`` (the id to write to).
``{"cmd": "send", ..., "seen": B, "typing_ms": N}``
    Optional, the session's settings as the node applies them to this
    send: mark the chat read first (``seen``; absent: ``--no-send-seen``
    decides), and show "typing..." in the chat for ``N`` milliseconds
    before a text (absent or 0: not).  A stop while it types ends the
    send unsent (``send_failed`` ``stopping``).
``{"cmd": "settings", "ignore": [K, ...]}``
    The session's settings changed while it runs: from now on, messages
    of these kinds (``IGNORABLE``: ``groups``, ``status``, ``broadcast``,
    ``channels``) are not reported.  Not answered.
``{"cmd": "call", "id": C, "action": "reject", "call_id": I}``
    Reject call ``I``, one the session reported ringing (``call`` event):
    ``action_done`` with ``result`` ``{"call_id": I, "from": W}`` (the
    caller), or ``action_failed`` ``unknown_call`` (the page holds no
    incoming call ``I``) or ``call_ended`` (it no longer rings: rejected,
    answered elsewhere or missed).  Carried out in order with the sends.
``{"cmd": "chat", "id": C, "action": A, "chat_id": CH}`` (``"until": T`` with ``mute``)
    Do ``A`` to chat ``CH``: ``typing``, ``recording``, ``paused`` (the
    chat state the other side sees), ``archive``, ``unarchive``, ``pin``,
    ``unpin``, ``mute`` (until ``T``, ms since the epoch; without it, for
    ever), ``unmute``.  ``action_done`` with ``result`` ``{}`` for a chat
    state, else ``{"archived": B, "pinned": B, "mute_expiration": S}`` (the
    chat as the page has it then; ``S`` 0 not muted, -1 for ever, else
    seconds since the epoch); or ``action_failed`` ``too_many_pinned``
    (WhatsApp pins at most ``MAX_PINNED`` chats) or ``bad_until`` (a time
    already past).  Carried out in order with the sends.
``{"cmd": "presence", "id": C, "state": "available" | "unavailable"}``
    Whether other phones see the account online: ``action_done`` with
    ``result`` ``{"state": S}``.  Carried out in order with the sends.
``{"cmd": "query", "id": C, "what": W, "chat_id"?: CH, "ids"?: [...], "limit"?: N, "before"?: B}``
    Read back what the account has (``queries.py`` gives the rules,
    ``readback.py`` does it): ``W`` is ``chats``, ``messages`` (of chat
    ``CH``, newest first), ``contacts``, ``group`` (``CH``), ``ids`` (of
    the people listed) or ``profile_picture`` (of ``CH``).  Answered by
    ``action_done`` with ``result`` ``{"items": [...], "more": B}``: one
    page, at most ``N`` items and ``queries.MAX_ANSWER_BYTES`` of JSON;
    ``before``, the last item's id, asks for the next.  Or
    ``action_failed`` (``unknown_chat``, ``unknown_group``,
    ``unknown_before``, ...).  Carried out in order with the sends.
``{"cmd": "group", "id": C, "action": A, "group_id"?: G, "participants"?: [...], "value"?: V}``
    A group action (``grouprules.py`` gives the rules, ``groups.py`` does it): ``A`` is
    ``create``, ``add``, ``remove``, ``promote``, ``demote``, ``subject``,
    ``description``, ``invite_link``, ``revoke_invite``, ``join``,
    ``leave`` or ``settings``.  Answered by ``action_done`` with
    ``result`` (``group_id`` for create and join; ``participants``, one
    outcome per person, for create, add, remove, promote, demote;
    ``code`` and ``link`` for invite_link and revoke_invite), or
    ``action_failed`` (``unknown_group``, ``not_in_group``,
    ``not_admin``, ``invite_not_found``, ``group_full``, a person's reason
    when nobody could be added, ...).  Carried out in order with the sends.
``{"cmd": "ping", "id": C}``
    Health check, answered by ``pong``.  Answered on a path of its own, so a
    long send does not delay it; ``ok`` is false when the page did not
    run a line of JavaScript within the ping timeout.
``{"cmd": "stop"}`` / ``{"cmd": "stop", "logout": true}``
    Close the browser (after unlinking the device, with ``logout``) and
    exit with ``EXIT_STOPPED``.  End of input, SIGTERM and SIGINT mean the
    same as ``stop``.  A stop lasts at most ``--stop-timeout`` seconds (10
    once the node that started the process is gone): then the process
    leaves at once, its browser killed with it.

Events (session -> node, on stdout)
===================================
``{"event": "starting", "pid": P}``               the process is up
``{"event": "browser", "pids": [...]}``           chromedriver's pid (Chrome is below it)
``{"event": "loaded", "version": V, "user_agent": UA, "webdriver": B}``
                                                  WhatsApp Web ``V`` loaded (again after
                                                  each navigation) and has everything the
                                                  session uses; ``UA`` and ``B`` are what the
                                                  page sees of the browser
``{"event": "qr", "qr": Q, "attempt": N}``        QR code N is shown (five-part string)
``{"event": "authenticated"}``                    the page synced its session
``{"event": "ready", "me": "5511...@c.us"}``      ready to send and receive; ``me_lid``: the
                                                  account's LID, where the page has one
``{"event": "state", "state": S}``                WhatsApp Web's socket state changed
``{"event": "message", "message": M}``            inbound message, whatsapp-web.js field names
                                                  (``fromMe`` true: the account wrote it on
                                                  another device; never one of this session's
                                                  sends); a person's other id where the page
                                                  knows it (``from_pn``/``from_lid``, ...);
                                                  with media, also ``"media": {"path", "mimetype",
                                                  "filename", "size"}`` (a file ``in-*`` in the
                                                  media folder, the node's to take and remove) or
                                                  ``{"error", ...}`` when it could not be fetched
``{"event": "sent", "id": C, "message_id": MID}`` WhatsApp Web accepted send ``C``
``{"event": "send_failed", "id": C, "reason": R, "detail": D}``
``{"event": "pong", "id": C, "ok": B, "state": S, "detail": D}``
``{"event": "action_done", "id": C, "result": R}`` an ``action`` or ``check_number`` done
``{"event": "action_failed", "id": C, "reason": R, "detail": D}``
``{"event": "ack", "message_id": M, "chat_id": CH, "ack": N}``
                                                  a message sent from this account moved to
                                                  ack ``N`` (-1 error ... 4 played)
``{"event": "reaction", "message_id": M, "reaction": E, "sender": W}``
                                                  someone reacted to message ``M`` (``E``
                                                  ``""``: took the reaction back); ``sender_pn``
                                                  or ``sender_lid`` where the page knows the
                                                  other id
``{"event": "message_edit", "message": M, "previous_body": B}``
                                                  message ``M`` (its new text in ``body``) was
                                                  edited by its sender, this session included
``{"event": "message_revoke", "message_id": M, "chat_id": CH, "from_me": B}``
                                                  message ``M`` was deleted for everyone by its
                                                  sender (``from_me``: the account)
``{"event": "poll_vote", "message_id": M, "voter": W, "selected": [N, ...], "selected_ids": [I, ...]}``
                                                  ``W`` voted on poll ``M``: the names of the
                                                  options now chosen (``[]``: none any more),
                                                  or ``selected`` null where the page no longer
                                                  holds the poll; ``selected_ids`` the options'
                                                  places in the poll (0 first); ``voter_pn`` or
                                                  ``voter_lid`` where the page knows the other id
``{"event": "call", "call": {"id": I, "from": W, "is_video": B, "is_group": B, "ts": T}}``
                                                  someone calls the account (``ts``: when the
                                                  call was offered, ms since the epoch; ``from``
                                                  as the page gives it, ``from_pn`` or
                                                  ``from_lid`` beside it where the page knows
                                                  the other id); once per call
``{"event": "group_update", "group_id": G, "type": T, "participants": [...], "by": W}``
                                                  group ``G`` changed (``T``: join, leave, add,
                                                  remove, promote, demote, subject,
                                                  description, settings; ``participants`` whom
                                                  it concerns, ``by`` who did it, ``by_pn`` or
                                                  ``by_lid`` where the page knows the other id);
                                                  ``value``: the new subject or description, or
                                                  the settings ``{announce, restrict}``
``{"event": "pairing_code", "code": P, "attempt": N}``
                                                  with ``--pair-with-phone``: code ``N`` to
                                                  type on the phone (instead of QR codes)
``{"event": "disconnected", "reason": R}``        the session ended or broke (see reasons);
                                                  may carry a ``detail``
``{"event": "auth_failure", "reason": R}``        ``credentials_rejected``, ``qr_attempts_exhausted``
                                                  or ``pairing_refused`` (no pairing code given)
``{"event": "error", "reason": R, "detail": D}``  a command line could not be understood

Disconnection reasons: ``LOGOUT`` (the phone or a ``stop`` with logout
unlinked the device), the socket states ``CONFLICT``, ``UNPAIRED``,
``UNPAIRED_IDLE``, ``UNLAUNCHED``, ``PROXYBLOCK``, ``TOS_BLOCK``,
``SMB_TOS_BLOCK``, ``DEPRECATED_VERSION``, and ``page_crashed``,
``browser_closed``, ``navigated_away``, ``page_unreachable``,
``browser_failed``, ``cannot_start``, and:

- ``boot_timeout``: the page did not load (no ``window.Debug.VERSION``)
  within ``--boot-timeout`` seconds of the start, or of a navigation;
  exit ``EXIT_CRASHED``, worth a restart with backoff;
- ``proxy_error``: the session's proxy (its settings file) cannot be
  reached, or refuses the credentials, or will not connect to the page's
  host; ``detail`` says which, naming the proxy by host and port only; exit
  ``EXIT_CANNOT_START``, before any browser is started;
- ``incompatible_page``: the page loaded but lacks modules or members the
  session uses (``sessionproc/pageapi.py``); ``detail`` names them; exit
  ``EXIT_CANNOT_START``: the same page would fail the same way.

``disconnected`` may carry a ``detail`` (text for people, not for code).

Exit codes
==========
``EXIT_STOPPED`` (0)        stopped on request (``stop`` or end of input)
``EXIT_CRASHED`` (1)        broke; worth restarting (the profile is kept)
``EXIT_ENDED`` (3)          the session ended for a reason it reported
                            (``disconnected`` or ``auth_failure``); restarting
                            would not bring it back without a new QR scan
``EXIT_CANNOT_START`` (78)  bad arguments, no Chromium, unusable profile,
                            a page without what the session uses
                            (``incompatible_page``): restarting is pointless
Death by a signal counts as crashed.  Before ``EXIT_CANNOT_START`` the
process says why in a ``disconnected`` event when it can (``cannot_start``
or a more precise reason, with a ``detail``); the node passes that on.

The node checks every line against :data:`EVENTS` (:func:`decode_event`):
a line that is not one of them, or lacks a field, ends that session as a
crash.  A new event is one entry there, and its handler in the node
(``Node.handlers``, wired in ``wwnode/wiring.py``).

Command line
============
:class:`SessionArgs` is the one list of the process's flags: the node
builds its argv from it and the process parses it back with it.

Its parts
=========
Both sides import every name above from here; each lives in the module of
its job: ``framing.py`` (a JSON object a line, the line limits),
``wireids.py`` (the key, chat, message, person, phone and call ids, the
text limits), ``wirecommands.py`` (the commands, what their fields may
hold, :func:`decode_command`), ``wireevents.py`` (:data:`EVENTS`,
:func:`decode_event`), ``outcomes.py`` (exit codes, the reasons and socket
states the node acts on, the link marker) and ``sessionargs.py``
(:class:`SessionArgs`).
"""

from __future__ import annotations

from .framing import MAX_COMMAND_LINE, MAX_EVENT_LINE, encode
from .outcomes import (ENDING_STATES, EXIT_CANNOT_START, EXIT_CRASHED, EXIT_ENDED, EXIT_STOPPED, LINKED_MARKER,
                       REASON_BOOT_TIMEOUT, REASON_INCOMPATIBLE_PAGE, SEND_OUTCOME_UNKNOWN, SEND_REFUSED_STOPPING,
                       UNLINKED_REASONS, UNPAIRED_STATES)
from .sessionargs import DEFAULT_BOOT_TIMEOUT, BadArguments, SessionArgs
from .wirecommands import (ACTIONS, CALL_ACTIONS, CHAT_ACTIONS, CHAT_STATES, COMMANDS, IGNORABLE, MAX_PINNED,
                           MAX_TYPING_MS, MEDIA_FOLDER, MEDIA_KINDS, PAGE_COMMANDS, PRESENCES, SEND_CONTENTS,
                           SETTINGS_FILE, BadCommand, chat_kind, decode_command)
from .wireevents import EVENTS, BadEvent, decode_event
from .wireids import (CALL_ID_RE, CHAT_ID_RE, KEY_RE, MAX_EMOJI, MAX_MENTIONS, MAX_TEXT, MESSAGE_ID_RE, PHONE_RE,
                      USER_AGENT_RE, USER_ID_RE, id_refusal)

__all__ = ["MAX_COMMAND_LINE", "MAX_EVENT_LINE", "encode", "ENDING_STATES", "EXIT_CANNOT_START", "EXIT_CRASHED",
           "EXIT_ENDED", "EXIT_STOPPED", "LINKED_MARKER", "REASON_BOOT_TIMEOUT", "REASON_INCOMPATIBLE_PAGE",
           "SEND_OUTCOME_UNKNOWN", "SEND_REFUSED_STOPPING", "UNLINKED_REASONS", "UNPAIRED_STATES",
           "DEFAULT_BOOT_TIMEOUT", "BadArguments", "SessionArgs", "ACTIONS", "CALL_ACTIONS", "CHAT_ACTIONS",
           "CHAT_STATES", "COMMANDS", "IGNORABLE", "MAX_PINNED", "MAX_TYPING_MS", "MEDIA_FOLDER", "MEDIA_KINDS",
           "PAGE_COMMANDS", "PRESENCES", "SEND_CONTENTS", "SETTINGS_FILE", "BadCommand", "chat_kind",
           "decode_command", "EVENTS", "BadEvent", "decode_event", "CALL_ID_RE", "CHAT_ID_RE", "KEY_RE", "MAX_EMOJI",
           "MAX_MENTIONS", "MAX_TEXT", "MESSAGE_ID_RE", "PHONE_RE", "USER_AGENT_RE", "USER_ID_RE", "id_refusal"]
