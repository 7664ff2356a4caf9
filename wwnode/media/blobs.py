"""Which blobs are a key's media, and which of them a send may name.

The blob store holds blobs of more than one kind and owner side by side:
each key's saved logins (``snapshots/{key}/``, ``snapshots.py``) and each
key's media (``media/{key}/``).  A key's media are the files it received
(``inbound.py``) and the files a client put there for it to send
(``wwnode blob put``, or a client writing to the store itself).

A send's ``media.blob`` is the word of whoever may publish for that key,
so it reaches that key's media only: a snapshot is a login (whoever holds
it is that WhatsApp account), and another key's media are another
customer's files.  What a send may not have is refused in one way
(``prepare.py``) whether it is missing, a folder, a snapshot or another
key's, and an id outside the key's media is refused before the store is
asked: an answer or a delay that told them apart would let a client map
the store.

The ids the node makes end in 128 random bits, so nobody guesses one from
what they know (a message id, the moment a file came).
"""

from __future__ import annotations

import secrets

from sessionproc.protocol import KEY_RE

from ..blobstore import BlobError, check_id

PREFIX = "media"


def key_prefix(key: str) -> str:
    """Where ``key``'s media live: ``media/{key}/``."""
    if not KEY_RE.match(key):
        raise BlobError(f"not a valid key: {key!r}")
    return f"{PREFIX}/{key}/"


def sendable(key: str, blob_id: str) -> bool:
    """Whether a send of ``key`` may name ``blob_id``: one of the key's
    media (whether it exists is the store's to say)."""
    try:
        check_id(blob_id)
        return blob_id.startswith(key_prefix(key))
    except BlobError:
        return False


def inbound_id(key: str, message_id: str) -> str:
    """A new id for a file ``key`` received in message ``message_id``."""
    safe = "".join(c for c in message_id if c.isalnum() or c in "_-")[:64] or "m"
    return f"{key_prefix(key)}{safe}-{_random()}"


def upload_id(key: str) -> str:
    """A new id for a file a client puts in the store for ``key`` to send."""
    return f"{key_prefix(key)}up-{_random()}"


def _random() -> str:
    return secrets.token_hex(16)
