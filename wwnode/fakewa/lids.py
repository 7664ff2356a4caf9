"""The hidden ids (LIDs) of the stand-in's phones, whose number each account
knows, and how each group addresses its members.

As on the real service, every account has a LID beside its phone number
(``<digits>@lid``, digits that say nothing of the number).  A page shows a
person by LID where WhatsApp hides the number: a one-to-one chat with
someone the account knows only so, and the members of a group in LID
addressing mode.  The page maps a LID to the number and back only for
people whose number the account knows (whatsapp-web.js asks the page's
``WAWebApiContact``: ``getPhoneNumber``, ``getCurrentLid``).

The stand-in's rules (docs/standin.md, "LIDs and the account's own messages on the stand-in"):

- a phone's LID is made when first needed (15 digits), or chosen by the
  control API before that; it never changes;
- an account knows the number of a person when the control API put it in
  the account's contacts (``POST /_sim/contacts``), when that person wrote
  to it by number, or when it asked whether that number has WhatsApp; and
  always its own;
- a group addresses its members by phone number until the control API puts
  it in LID addressing mode (``POST /_sim/groups``).

Whether the real service reveals a number to the account in each of these
cases is the stand-in's guess; nothing public tells.

No lock of its own: :class:`~wwnode.fakewa.world.World` calls it under its
lock.
"""

from __future__ import annotations

import re
import secrets

from .errors import BadRequest

LID_DIGITS = 15
LID_RE = re.compile(r"^[1-9][0-9]{4,19}$")
ADDRESSING = ("pn", "lid")


def lid_wid(lid: str) -> str:
    return f"{lid}@lid"


def pn_wid(phone: str) -> str:
    return f"{phone}@c.us"


class Lids:
    def __init__(self):
        self._lid_of: dict[str, str] = {}  # phone -> LID digits
        self._phone_of: dict[str, str] = {}  # LID digits -> phone
        self._known: dict[str, set[str]] = {}  # account phone -> phones whose number it knows
        self._groups: dict[str, str] = {}  # group id -> "lid" (absent: "pn")

    # ------------------------------------------------------------ ids
    def of(self, phone: str) -> str:
        """The phone's LID (digits), made on first use."""
        lid = self._lid_of.get(phone)
        if lid is None:
            while lid is None or lid in self._phone_of:
                lid = str(secrets.randbelow(9 * 10 ** (LID_DIGITS - 1)) + 10 ** (LID_DIGITS - 1))
            self._set(phone, lid)
        return lid

    def choose(self, phone: str, lid) -> str:
        """Give ``phone`` the LID ``lid`` (digits), before it has one."""
        if not isinstance(lid, str) or not LID_RE.match(lid):
            raise BadRequest("lid must be 5 to 20 digits, not starting with 0")
        if self._phone_of.get(lid, phone) != phone:
            raise BadRequest(f"lid {lid} is another phone's")
        if self._lid_of.get(phone, lid) != lid:
            raise BadRequest(f"phone {phone} has lid {self._lid_of[phone]} already; a LID never changes")
        self._set(phone, lid)
        return lid

    def _set(self, phone: str, lid: str) -> None:
        self._lid_of[phone] = lid
        self._phone_of[lid] = phone

    def phone_of(self, lid: str) -> str | None:
        return self._phone_of.get(lid)

    def resolve(self, wid: str) -> str | None:
        """The phone behind a person's id (``...@c.us`` or ``...@lid``)."""
        user, _, server = wid.partition("@")
        if server == "c.us":
            return user
        if server == "lid":
            return self._phone_of.get(user)
        return None

    # ------------------------------------------------- who knows whom
    def learn(self, account: str, phone: str) -> bool:
        """``account`` knows ``phone``'s number from now on; True if it did not before."""
        known = self._known.setdefault(account, set())
        if phone in known or phone == account:
            return False
        known.add(phone)
        return True

    def knows(self, account: str, phone: str) -> bool:
        return phone == account or phone in self._known.get(account, ())

    def known_by(self, account: str) -> set[str]:
        """The phones whose number ``account`` knows (itself left out)."""
        return set(self._known.get(account, ()))

    def pair(self, phone: str) -> list[str]:
        """``[lid wid, phone wid]``: what a page learns of a person whose number it knows."""
        return [lid_wid(self.of(phone)), pn_wid(phone)]

    def pairs_known_to(self, account: str) -> list[list[str]]:
        """Every person whose LID ``account``'s pages can map to a number, itself first."""
        return [self.pair(p) for p in (account, *sorted(self._known.get(account, ())))]

    # --------------------------------------------------------- groups
    def set_addressing(self, group: str, addressing) -> None:
        if addressing not in ADDRESSING:
            raise BadRequest("addressing must be pn or lid")
        if addressing == "lid":
            self._groups[group] = "lid"
        else:
            self._groups.pop(group, None)

    def addressing(self, group: str) -> str:
        return self._groups.get(group, "pn")

    def lid_groups(self) -> list[str]:
        return sorted(self._groups)
