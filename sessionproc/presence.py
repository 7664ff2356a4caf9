"""The account's presence, as whatsapp-web.js 1.34.7's
``sendPresenceAvailable`` and ``sendPresenceUnavailable`` set it:
``WAWebPresenceChatAction``'s functions of those names.  Other phones see
the account online (``available``) or not, with its last seen time.  The
script takes the state as an argument and uses only members listed in
``pageapi.SURFACE`` (use ``presence``).

:func:`perform` carries out one ``presence`` command of the pipe protocol
and returns the event that answers it.
"""

from __future__ import annotations

from .actions import MESSAGE_HELPERS_JS, run
from .protocol import PRESENCES

PRESENCE_JS = MESSAGE_HELPERS_JS + """
const [state, done] = arguments;
(async () => {
  const action = window.require('WAWebPresenceChatAction');
  if (state === 'available') await action.sendPresenceAvailable();
  else await action.sendPresenceUnavailable();
  return {state};
})().then((r) => done({ok: true, result: r}), (e) => done(failure(e)));
"""


def perform(driver, cmd: dict, timeout: float) -> dict:
    """Carry out one ``presence`` command on the page; the ``action_done``
    or ``action_failed`` event that answers it."""
    if cmd["state"] not in PRESENCES:
        return {"event": "action_failed", "id": cmd["id"], "reason": "bad_state",
                "detail": f"state must be one of {', '.join(PRESENCES)}"}
    return run(driver, cmd, PRESENCE_JS, (cmd["state"],), timeout)
