"""Whether a string is one emoji: what ``message_action`` ``react`` takes.

A reaction is shown to the contact as it is, so what passes here must be
one emoji and nothing that hides or turns text around it: no zero-width
characters, no right-to-left marks or overrides, no lone tag or joiner,
no letters, no two emoji side by side.  One emoji is one of (Unicode's
emoji sequences, UTS #51, read without its data files, which the standard
library does not carry):

- a symbol, with a skin tone or a presentation selector (U+FE0E/FE0F)
  after it; a waving black flag (U+1F3F4) may carry a subdivision's tags
  (England's, Scotland's, Wales's flags);
- a keycap: ``0``-``9``, ``#`` or ``*``, U+FE0F, U+20E3;
- a flag: two regional indicators;
- several of these joined by U+200D (a zero-width joiner, as in family,
  profession and rainbow-flag emoji), never at either end.

A symbol is a character of the categories ``So`` or ``Sm`` (from U+2000:
``×`` and ``÷`` are letters' company, not emoji), the few emoji filed
elsewhere (``‼``, ``⁉``, ``ℹ``, ``〰``, ``〽``), or a character of the emoji
blocks unassigned in this Python's Unicode tables (an emoji newer than
them).  That is looser than the emoji list itself (``∑`` passes), and
strict where it matters: nothing invisible, nothing that reorders text.
"""

from __future__ import annotations

import unicodedata

ZWJ = "\u200d"
PRESENTATION = ("\ufe0e", "\ufe0f")  # text and emoji presentation selectors
KEYCAP = "\u20e3"
KEYCAP_BASES = frozenset("0123456789#*")
SKIN_TONES = range(0x1F3FB, 0x1F400)
REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
TAG_FLAG = "\U0001F3F4"  # the flag a subdivision's tags follow
TAGS = range(0xE0020, 0xE007F)  # tag letters and digits
CANCEL_TAG = "\U000E007F"  # ends a tag sequence
OTHER_EMOJI = frozenset("\u203c\u2049\u2139\u3030\u303d")  # emoji whose category is not a symbol's
EMOJI_PLANE = range(0x1F000, 0x1FB00)  # the blocks new emoji come in


def is_one_emoji(text: str) -> bool:
    """Whether ``text`` is exactly one emoji (see the module docstring)."""
    i = _element(text, 0)
    while i is not None and i < len(text) and text[i] == ZWJ:
        i = _element(text, i + 1)
    return i == len(text)


def _element(text: str, i: int) -> int | None:
    """Where the emoji element starting at ``i`` ends; None if none does."""
    if i >= len(text):
        return None
    c = text[i]
    if ord(c) in REGIONAL_INDICATORS:
        return i + 2 if i + 1 < len(text) and ord(text[i + 1]) in REGIONAL_INDICATORS else None
    if c in KEYCAP_BASES:
        j = i + 1 + (text[i + 1:i + 2] == "\ufe0f")
        return j + 1 if text[j:j + 1] == KEYCAP else None
    if not _symbol(c):
        return None
    i += 1
    if c == TAG_FLAG and i < len(text) and ord(text[i]) in TAGS:
        while i < len(text) and ord(text[i]) in TAGS:
            i += 1
        return i + 1 if text[i:i + 1] == CANCEL_TAG else None
    if i < len(text) and (ord(text[i]) in SKIN_TONES or text[i] in PRESENTATION):
        i += 1
    return i


def _symbol(c: str) -> bool:
    if ord(c) in REGIONAL_INDICATORS or ord(c) in SKIN_TONES:
        return False  # only in pairs, only after a symbol
    category = unicodedata.category(c)
    return (category == "So" or (category == "Sm" and ord(c) >= 0x2000) or c in OTHER_EMOJI
            or (category == "Cn" and ord(c) in EMOJI_PLANE))
