"""``wwnode blob get`` and ``blob put``: a blob fetched from the store, or a file put in it as a key's media."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .clientcmds import check_key
from .outcomes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, Outcome


def blob_get(cfg, blob_id: str, out: Path | None) -> Outcome:
    """Fetch a blob from the store ``BLOB_STORE_URL`` names: to ``out``, or
    to standard output."""
    from ..blobstore import BlobError, BlobNotFound, check_id, open_blob_store

    try:
        check_id(blob_id)
        store = open_blob_store(cfg.blob_store_url, cfg.data_dir, cfg.blob_store_endpoint)
    except BlobError as e:
        return Outcome(EXIT_BAD_INPUT, str(e))
    if out is not None:
        problem = _unwritable(out)
        if problem:
            return Outcome(EXIT_BAD_INPUT, f"cannot write {out}: {problem}; nothing was fetched")
    try:
        if out is None:
            data = store.get_bytes(blob_id)
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return Outcome(EXIT_OK, "")
        store.get_file(blob_id, out)
    except BlobNotFound as e:
        return Outcome(EXIT_FAILED, str(e))
    except BlobError as e:
        return Outcome(EXIT_UNREACHABLE, str(e))
    except OSError as e:  # the copy itself: a disk that filled, a file the store's folder does not let us read
        return Outcome(EXIT_FAILED, f"{blob_id}: {e.filename or out}: {e.strerror or e}")
    return Outcome(EXIT_OK, f"{blob_id} written to {out}")


def _unwritable(out: Path) -> str | None:
    """Why the file ``out`` cannot be written, asked before the store is
    (so a bad ``-o`` is not mistaken for a missing blob, and leaves
    nothing behind); None when it can."""
    if out.is_dir():
        return "it is a folder (name a file in it)"
    folder = out.parent
    if not folder.is_dir():
        return f"there is no folder {folder}"
    if not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        return "permission denied"
    return None


def blob_put(cfg, key: str, source: Path) -> Outcome:
    """Put the file ``source`` in the store as one of ``key``'s media, under
    a new id nobody can guess (``media/blobs.py``); the id is the outcome:
    what a ``send_message`` of that key names as ``media.blob``."""
    from ..blobstore import BlobError, open_blob_store
    from ..media.blobs import upload_id

    check_key(key)
    try:
        with open(source, "rb"):
            pass
    except OSError as e:
        return Outcome(EXIT_BAD_INPUT, f"cannot read {source}: {e.strerror}")
    try:
        store = open_blob_store(cfg.blob_store_url, cfg.data_dir, cfg.blob_store_endpoint)
    except BlobError as e:
        return Outcome(EXIT_BAD_INPUT, str(e))
    blob_id = upload_id(key)
    try:
        store.put_file(blob_id, source)
    except BlobError as e:
        return Outcome(EXIT_UNREACHABLE, str(e))
    except OSError as e:  # a folder store that takes no write (full, read-only, not ours)
        return Outcome(EXIT_UNREACHABLE, f"cannot write to the blob store: {e.strerror or e}")
    return Outcome(EXIT_OK, blob_id)
