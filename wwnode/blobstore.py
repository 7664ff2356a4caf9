"""The blob store: files that do not travel inside AMQP messages (media
above the inline limit, media given by ``blob`` id) and the sessions'
profile snapshots (``snapshots.py``), in one place every node reaches.

``BLOB_STORE_URL`` names it:

- ``file:///path``: a folder (by default ``DATA_DIR/blobs``).  A folder
  every node mounts (NFS, a shared volume) makes it shared; a node's own
  folder serves that node only.
- ``s3://bucket/prefix``: any S3-compatible service, through boto3.  Written
  for AWS S3, MinIO, Ceph RGW and Cloudflare R2: it uses only the calls they
  all have (put, get, head, delete, list objects v2, delete objects).  The
  endpoint comes from ``BLOB_STORE_ENDPOINT`` (empty: AWS), credentials and
  region from the usual AWS variables (``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` /
  ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``), as boto3 reads them.

A blob id is an opaque string of path-like segments (``a/b/c``): letters,
digits, ``_ - . =`` in each, no empty segment, no ``.`` or ``..`` segment,
no leading ``/``, at most 512 characters, so an id never leaves the
store's folder or prefix.  Writes are whole: a reader sees the old blob or
the new one, never a part (a file is written beside and renamed; an S3 put
is atomic).  A missing blob raises :class:`BlobNotFound`; so does a
folder's id (a folder is no blob, as an S3 prefix is none).

Every call blocks (disk or network): the node calls them from a worker
thread, never from its loop.  Whatever goes wrong with the S3 service
(refused, an HTTP error, a timeout, retries given up) is a
:class:`BlobError`, whose text never holds the endpoint's password; the
disk of this machine still fails with ``OSError`` (a file to read or to
write).  An S3 call gives up after a bounded time (``CONNECT_TIMEOUT``,
``READ_TIMEOUT``, ``ATTEMPTS``): a service that accepts connections and
never answers holds a worker for about half a minute, not for the minutes
boto3's defaults would wait.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from .redact import MASK, url_secrets

MAX_ID = 512
_SEGMENT = re.compile(r"\A[A-Za-z0-9_=.-]+\Z")


class BlobError(Exception):
    """The store cannot do what was asked (a bad id, a bad URL, the service
    refused or could not be reached)."""


class BlobNotFound(BlobError, KeyError):
    """No blob of that id."""

    def __str__(self) -> str:  # KeyError quotes its argument
        return f"no blob {self.args[0]!r}" if self.args else "no such blob"


def check_id(blob_id: str, prefix: bool = False) -> str:
    """The id itself, or BlobError.  A ``prefix`` may be empty or end in
    ``/`` (every blob under a folder)."""
    if not isinstance(blob_id, str) or len(blob_id) > MAX_ID:
        raise BlobError("a blob id is a string of at most 512 characters")
    if prefix and blob_id == "":
        return blob_id
    body = blob_id[:-1] if prefix and blob_id.endswith("/") else blob_id
    parts = body.split("/")
    for part in parts:
        if not _SEGMENT.match(part) or part in (".", ".."):
            raise BlobError(f"not a valid blob id: {blob_id!r} (segments of A-Z a-z 0-9 _ = . -, no . or ..)")
    return blob_id


class BlobStore(Protocol):
    url: str

    def put_file(self, blob_id: str, path: Path) -> None: ...
    def put_bytes(self, blob_id: str, data: bytes) -> None: ...
    def get_file(self, blob_id: str, path: Path) -> None: ...
    def get_bytes(self, blob_id: str) -> bytes: ...
    def delete(self, blob_id: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def exists(self, blob_id: str) -> bool: ...
    def list_prefix(self, prefix: str) -> list[str]: ...


def open_blob_store(url: str, data_dir: Path, endpoint: str | None = None) -> BlobStore:
    """The store ``url`` names (``""``: the folder ``DATA_DIR/blobs``);
    ``endpoint``: an S3 endpoint (default: ``BLOB_STORE_ENDPOINT``)."""
    if not url:
        return FileBlobStore(Path(data_dir) / "blobs")
    check_url(url)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return FileBlobStore(Path(unquote(parts.path)))
    if endpoint is None:
        endpoint = os.environ.get("BLOB_STORE_ENDPOINT", "")
    return S3BlobStore(parts.netloc, parts.path.strip("/"), endpoint)


def identity(url: str, endpoint: str = "") -> str:
    """What tells two nodes they share a store, without its credentials:
    ``""`` for the default (a folder of this node's own, ``DATA_DIR/blobs``,
    shared with nobody), the URL for ``file://`` (shared with the nodes that
    see the same folder: this machine's, or a network file system's), the
    bucket and prefix with the endpoint's host for ``s3://``."""
    if not url:
        return ""
    if urlsplit(url).scheme != "s3" or not endpoint:
        return url
    host = urlsplit(endpoint).hostname or ""
    port = urlsplit(endpoint).port
    return f"{url}@{host}" + (f":{port}" if port else "")


def check_url(url: str) -> None:
    """BlobError unless ``url`` is ``file:///path`` or ``s3://bucket/prefix``
    (checked without reaching the store: a node checks it at start)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise BlobError("BLOB_STORE_URL: a file:// URL names a folder of this machine (file:///path)")
        if not unquote(parts.path).startswith("/"):
            raise BlobError("BLOB_STORE_URL: file:// needs an absolute path (file:///path)")
        return
    if parts.scheme == "s3":
        if not parts.netloc:
            raise BlobError("BLOB_STORE_URL: s3:// needs a bucket (s3://bucket/prefix)")
        prefix = parts.path.strip("/")
        if prefix:
            check_id(prefix)
        return
    raise BlobError("BLOB_STORE_URL must be file:///path or s3://bucket/prefix")


# ---------------------------------------------------------------- folder
# What opening an id that names no file raises: nothing there, a folder
# there, or a file where the id has a folder (a/b when a is a file).
_NOT_A_FILE = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class FileBlobStore:
    """Blobs as files under a folder (0700 folders, 0600 files)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.url = self.root.resolve().as_uri() if self.root.is_absolute() else str(self.root)

    def _path(self, blob_id: str) -> Path:
        return self.root / check_id(blob_id)

    def _ready_folder(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def put_file(self, blob_id: str, path: Path) -> None:
        target = self._path(blob_id)
        self._ready_folder(target)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)  # whole or not at all
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, blob_id: str, data: bytes) -> None:
        target = self._path(blob_id)
        self._ready_folder(target)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_file(self, blob_id: str, path: Path) -> None:
        try:
            src = open(self._path(blob_id), "rb")
        except _NOT_A_FILE:
            raise BlobNotFound(blob_id) from None
        with src, open(path, "wb") as out:  # an error of ``path`` is not a missing blob
            shutil.copyfileobj(src, out, 1024 * 1024)

    def get_bytes(self, blob_id: str) -> bytes:
        try:
            return self._path(blob_id).read_bytes()
        except _NOT_A_FILE:
            raise BlobNotFound(blob_id) from None

    def delete(self, blob_id: str) -> None:
        self._path(blob_id).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        for blob_id in self.list_prefix(prefix):
            self.delete(blob_id)

    def exists(self, blob_id: str) -> bool:
        return self._path(blob_id).is_file()

    def list_prefix(self, prefix: str) -> list[str]:
        """Ids that start with ``prefix``, sorted."""
        check_id(prefix, prefix=True)
        folder = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not folder.is_dir():
            return []
        found = []
        for dirpath, _, files in os.walk(folder):
            for name in files:
                if name.startswith(".put-"):
                    continue  # a write under way
                blob_id = Path(dirpath, name).relative_to(self.root).as_posix()
                if blob_id.startswith(prefix):
                    found.append(blob_id)
        return sorted(found)


# -------------------------------------------------------------------- S3
# How long one call may take when the service does not answer.  A read
# waits READ_TIMEOUT for each piece of the answer (not for the whole
# answer: a large file that keeps coming is not cut); a request is made
# ATTEMPTS times in all (boto3's "standard" retries: refused, timed out,
# throttled, a 5xx), with a random backoff of at most 1 s, then 2 s, between.
# So a service that accepts and stays silent fails a call within
# ATTEMPTS * READ_TIMEOUT + 3 s (33 s), one that drops connections within
# ATTEMPTS * CONNECT_TIMEOUT + 3 s, and one that refuses at once.  boto3's
# own defaults (60 s reads, four attempts, and downloads tried five times
# around those) held a worker, and a loop that waited on it, for minutes.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
ATTEMPTS = 3


class S3BlobStore:
    """Blobs as objects under ``prefix/`` in a bucket."""

    def __init__(self, bucket: str, prefix: str, endpoint: str = "", connect_timeout: float = CONNECT_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT, attempts: int = ATTEMPTS):
        import boto3  # only a node that uses S3 needs it loaded
        from boto3.exceptions import Boto3Error, RetriesExceededError
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config as BotoConfig
        from botocore.exceptions import BotoCoreError, ClientError

        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.url = f"s3://{bucket}/{prefix}"
        # Path-style addressing: what MinIO and Ceph RGW serve without DNS
        # set up per bucket; AWS S3 and R2 accept it too.
        config = BotoConfig(s3={"addressing_style": "path"},
                            retries={"total_max_attempts": attempts, "mode": "standard"},
                            connect_timeout=connect_timeout, read_timeout=read_timeout)
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint or None, config=config)
        # A download is tried once by the transfer manager: the client's
        # retries above already cover the request, and the manager's own
        # (five by default) multiplied them.
        self._transfer = TransferConfig(num_download_attempts=1)
        # An endpoint may carry a password (http://user:pass@minio:9000),
        # and boto3 quotes the URL it could not reach.
        self._secrets = sorted(url_secrets(endpoint), key=len, reverse=True)
        # BotoCoreError: refused, timed out, no credentials...; ClientError:
        # the service answered with an error; Boto3Error: what the transfer
        # manager wraps those in (S3UploadFailedError, RetriesExceededError).
        self._errors = (BotoCoreError, ClientError, Boto3Error)
        self._gave_up = RetriesExceededError  # says only "Max Retries Exceeded"; its last_exception says why

    def _key(self, blob_id: str) -> str:
        return self.prefix + check_id(blob_id)

    @staticmethod
    def _missing(e: Exception) -> bool:
        # Only a ClientError has the service's answer; a timeout carries a
        # ``response`` of None (requests' exception, which botocore's extends).
        response = getattr(e, "response", None)
        if not isinstance(response, dict):
            return False
        return response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound")

    def _masked(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _call(self, what: str, blob_id: str, op):
        try:
            return op()
        except self._errors as e:
            if self._missing(e):
                raise BlobNotFound(blob_id) from None
            why = e.last_exception if isinstance(e, self._gave_up) and e.last_exception is not None else e
            # ``from None``: the chained exception would print the password
            # in a traceback.
            raise BlobError(self._masked(f"{what} {blob_id!r} at {self.url}: {type(why).__name__}: {why}")) from None

    def put_file(self, blob_id: str, path: Path) -> None:
        key = self._key(blob_id)
        self._call("put", blob_id, lambda: self.client.upload_file(str(path), self.bucket, key,
                                                                   Config=self._transfer))

    def put_bytes(self, blob_id: str, data: bytes) -> None:
        key = self._key(blob_id)
        self._call("put", blob_id, lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=data))

    def get_file(self, blob_id: str, path: Path) -> None:
        key = self._key(blob_id)
        # download_file writes beside and renames: no half file on a failure.
        try:
            self._call("get", blob_id, lambda: self.client.download_file(self.bucket, key, str(path),
                                                                         Config=self._transfer))
        except BlobNotFound:
            Path(path).unlink(missing_ok=True)
            raise

    def get_bytes(self, blob_id: str) -> bytes:
        key = self._key(blob_id)
        return self._call("get", blob_id,
                          lambda: self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def delete(self, blob_id: str) -> None:
        key = self._key(blob_id)
        self._call("delete", blob_id, lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def delete_prefix(self, prefix: str) -> None:
        ids = self.list_prefix(prefix)
        for start in range(0, len(ids), 1000):  # the most one DeleteObjects takes
            batch = [{"Key": self.prefix + i} for i in ids[start:start + 1000]]
            self._call("delete", prefix, lambda: self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}))

    def exists(self, blob_id: str) -> bool:
        key = self._key(blob_id)
        try:
            self._call("head", blob_id, lambda: self.client.head_object(Bucket=self.bucket, Key=key))
        except BlobNotFound:
            return False
        return True

    def list_prefix(self, prefix: str) -> list[str]:
        check_id(prefix, prefix=True)
        ids: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")

        def collect():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                ids.extend(obj["Key"][len(self.prefix):] for obj in page.get("Contents", ()))

        self._call("list", prefix, collect)
        return sorted(ids)
