"""Rejecting a call on the page, the way whatsapp-web.js 1.34.7's
``Call.reject`` does it: a ``call`` stanza holding a ``reject`` (built with
``WAWap.wap``, cast with ``WADeprecatedSendIq.deprecatedCastStanza``).

A cast gets no answer from WhatsApp, so a reject of a call that no longer
rings would seem done while changing nothing.  The script therefore looks
the call up in the page's call collection first and refuses, with its own
reason, a call the page does not hold as an incoming one
(``unknown_call``) or one whose state the page counts as over
(``call_ended``, ``WAWebVoipCallStateUtils.isCallTerminal``); nothing is
cast then.  The script takes the call's id as an argument (data, never
source) and uses only members listed in ``pageapi.SURFACE`` (use ``call``).

:func:`perform` carries out one ``call`` command of the pipe protocol and
returns the event that answers it.
"""

from __future__ import annotations

from .actions import MESSAGE_HELPERS_JS, run
from .protocol import CALL_ACTIONS, CALL_ID_RE

REJECT_CALL_JS = MESSAGE_HELPERS_JS + """
const [callId, done] = arguments;
(async () => {
  const req = window.require;
  const call = req('WAWebCallCollection').get(callId);
  if (!call || call.outgoing) {
    throw new ActionError('unknown_call', 'WhatsApp Web holds no incoming call ' + callId);
  }
  const state = call.getState();
  if (req('WAWebVoipCallStateUtils').isCallTerminal(state)) {
    throw new ActionError('call_ended', 'call ' + callId + ' no longer rings (' + state + ')');
  }
  const me = req('WAWebUserPrefsMeUser').getMaybeMePnUser();
  const peer = typeof call.peerJid === 'string' ? call.peerJid : call.peerJid._serialized;
  const Wap = req('WAWap');
  const stanza = Wap.wap('call', {id: Wap.generateId(), from: me._serialized, to: peer},
                         [Wap.wap('reject', {'call-id': String(call.id), 'call-creator': peer, count: '0'})]);
  await req('WADeprecatedSendIq').deprecatedCastStanza(stanza);
  return {call_id: String(call.id), from: peer};
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""


def check(cmd: dict) -> tuple[str, str] | None:
    """What is wrong with a ``call`` command, if anything: (reason,
    detail).  The node checks the same before it sends."""
    if cmd["action"] not in CALL_ACTIONS:
        return "bad_action", f"action must be one of {', '.join(CALL_ACTIONS)}"
    if not CALL_ID_RE.match(cmd["call_id"]):
        return "bad_call_id", "call_id must be a call's id, 1 to 64 letters and digits"
    return None


def perform(driver, cmd: dict, timeout: float) -> dict:
    """Carry out one ``call`` command on the page; the ``action_done`` or
    ``action_failed`` event that answers it."""
    wrong = check(cmd)
    if wrong is not None:
        return {"event": "action_failed", "id": cmd["id"], "reason": wrong[0], "detail": wrong[1]}
    return run(driver, cmd, REJECT_CALL_JS, (cmd["call_id"],), timeout)
