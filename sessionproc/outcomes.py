"""How a session ends and what the node makes of it: exit codes, reasons, the link marker."""

from __future__ import annotations

EXIT_STOPPED = 0
EXIT_CRASHED = 1
EXIT_ENDED = 3
EXIT_CANNOT_START = 78

REASON_BOOT_TIMEOUT = "boot_timeout"
REASON_INCOMPATIBLE_PAGE = "incompatible_page"

# Reasons (``disconnected`` / ``auth_failure``) after which the profile no
# longer holds a working link: the phone forgot it, so the profile goes.
UNLINKED_REASONS = frozenset({"LOGOUT", "UNPAIRED", "UNPAIRED_IDLE", "credentials_rejected"})

# ``send_failed`` reasons after which the message may still have gone out:
# the page did not answer in time, or the browser broke mid-send.  The node
# keeps such a send's record, so a retry with the same id is refused
# (``outcome_unknown``) rather than sent a second time.
SEND_OUTCOME_UNKNOWN = frozenset({"timeout", "browser_error"})

# The ``send_failed`` reason of a send the session had queued but not begun
# when it was told to stop: it surely did not go out.
SEND_REFUSED_STOPPING = "stopping"

# A file the session writes in its profile once the device is linked, so a
# later start knows a QR code means the phone rejected the stored link.
LINKED_MARKER = "wwnode-linked"

# Socket states after which the session cannot go on by itself.
ENDING_STATES = frozenset(
    {"CONFLICT", "UNLAUNCHED", "PROXYBLOCK", "TOS_BLOCK", "SMB_TOS_BLOCK", "DEPRECATED_VERSION"}
)
UNPAIRED_STATES = frozenset({"UNPAIRED", "UNPAIRED_IDLE"})
