"""The session's side of media files: what the node left for a send is
read (only from the session's media folder) and removed; what a message
brought is written there for the node (``protocol.py`` describes both)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .protocol import MEDIA_FOLDER


class MediaFileError(Exception):
    pass


def media_dir(profile_dir: Path) -> Path:
    return profile_dir.parent / MEDIA_FOLDER


def take_outbound(folder: Path, raw_path: str) -> bytes:
    """The bytes of a file the node prepared, which is then removed."""
    path = Path(raw_path)
    if path.parent.resolve() != folder.resolve() or not path.name.startswith("out-") or path.is_symlink():
        raise MediaFileError(f"{raw_path!r} is not a media file of this session")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MediaFileError(f"cannot read the media file: {e.strerror}") from None
    path.unlink(missing_ok=True)
    return data


def new_inbound(folder: Path, message_id: str) -> Path:
    """A new, empty, private file for a message's media, for the node."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = "in-" + (re.sub(r"[^A-Za-z0-9_-]", "", message_id)[:64] or "m") + "-" + os.urandom(4).hex()
    path = folder / name
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path
