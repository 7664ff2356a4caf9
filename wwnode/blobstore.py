"""The blob store: files that should not travel inside AMQP messages
(inbound media above ``MEDIA_INLINE_LIMIT``, outbound media given as a
``blob``) live here, under an opaque id.

``BLOB_STORE_URL`` says where: ``file:///path`` (the default is a folder
under ``DATA_DIR``; a folder every node mounts makes it shared).  This
module holds the ``file://`` kind only.

A blob id is 1 to 200 characters of ``A-Z a-z 0-9 _ - . /``, no part of it
``.`` or ``..`` or empty: ids become paths below the store's folder, so
nothing else is accepted.  A blob is written to a temporary name and
renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

BLOB_ID_RE = re.compile(r"\A[A-Za-z0-9_.\-/]{1,200}\Z")


class BlobNotFound(KeyError):
    """No blob of that id."""


class BadBlobId(ValueError):
    """Not a blob id this store accepts."""


def check_blob_id(blob_id: str) -> str:
    if not isinstance(blob_id, str) or not BLOB_ID_RE.match(blob_id):
        raise BadBlobId("a blob id is 1 to 200 characters of A-Z a-z 0-9 _ - . /")
    if any(part in ("", ".", "..") for part in blob_id.split("/")):
        raise BadBlobId("a blob id has no empty, '.' or '..' part")
    return blob_id


class FileBlobStore:
    """Blobs as files below one folder (0700 folders, 0600 files)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, blob_id: str) -> Path:
        return self.root / check_blob_id(blob_id)

    def _write(self, blob_id: str, fill) -> None:
        path = self._path(blob_id)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, blob_id: str, path: Path) -> None:
        def fill(f):
            with open(path, "rb") as src:
                shutil.copyfileobj(src, f, 1024 * 1024)
        self._write(blob_id, fill)

    def put_bytes(self, blob_id: str, data: bytes) -> None:
        self._write(blob_id, lambda f: f.write(data))

    def get_file(self, blob_id: str, path: Path) -> None:
        try:
            src = open(self._path(blob_id), "rb")
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None
        with src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)

    def get_bytes(self, blob_id: str) -> bytes:
        try:
            return self._path(blob_id).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None

    def size(self, blob_id: str) -> int:
        try:
            return self._path(blob_id).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None

    def delete(self, blob_id: str) -> None:
        self._path(blob_id).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        """Every blob whose id starts with ``prefix/`` (and the blob ``prefix``)."""
        folder = self._path(prefix.rstrip("/"))
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)

    def exists(self, blob_id: str) -> bool:
        return self._path(blob_id).is_file()


BlobStore = FileBlobStore


def default_url(data_dir: Path) -> str:
    return (Path(data_dir).resolve() / "blobs").as_uri()


def open_blob_store(url: str, data_dir: Path) -> BlobStore:
    """The store ``url`` names (empty: the default folder under ``data_dir``)."""
    parts = urlsplit(url or default_url(data_dir))
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise ValueError("BLOB_STORE_URL must be a file:///path URL")
    return FileBlobStore(Path(unquote(parts.path)))
