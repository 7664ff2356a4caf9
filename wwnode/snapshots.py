"""Snapshots of a session's login: the parts of its Chromium profile that
WhatsApp Web keeps its device identity and pairing in, compressed, in the
blob store, so another node can start the session without a QR code.

What a login needs (``LOGIN_PARTS``): the page keeps its keys and pairing
in IndexedDB and some state in Local Storage (``Default/IndexedDB``,
``Default/Local Storage``; whatsapp-web.js's RemoteAuth saves the same two),
Chromium the storage buckets those live in (``Default/WebStorage``), the
cookies (``Default/Cookies``), the key those are sealed with (``Local
State``), the node's own marker of a linked profile
(``sessionproc.protocol.LINKED_MARKER``), and the session's settings
(``SETTINGS_FILE``, its proxy's credentials included: they travel with
the login, to whichever node starts it next).  Everything else is left out:
caches (``Cache``, ``Code Cache``, ``GPUCache``, ``Service Worker``'s
``CacheStorage`` and ``ScriptCache``, the Dawn caches), history, sessions
and the browser's own databases, and in every folder LevelDB's ``LOCK`` and
``LOG`` files.  A snapshot is a few hundred kilobytes, not the profile's
megabytes.

**A copy while the page writes.** IndexedDB and Local Storage are LevelDB
databases, the cookies SQLite; the browser may write them while a running
session is snapshotted.  The files are copied to a staging folder and the
profile looked at again afterwards: if a file appeared or went (LevelDB
switched its log or compacted), or a file other than LevelDB's
append-only ones (``*.log``, ``MANIFEST-*``) changed while it was copied,
the copy is thrown away and made again (``COPY_TRIES`` times, then the
snapshot fails and is tried at the next occasion).  What is kept is then
what a browser killed at that moment would have left, which LevelDB and
SQLite are made to recover from: a log cut short ends at its last whole
record.

**Names and fences.** A key's snapshots are the blobs
``snapshots/{key}/{fence:020d}-{ms:013d}.tgz``: the fencing number of the
lease its writer held (``redis_side/store.py``), then the wall clock.  The newest is
the greatest name.  A writer refuses to write when a snapshot of a greater
fence exists (:class:`StaleFence`): a node that lost its lease never
overwrites what the key's next owner wrote, and even a write that slipped
through would sort below it.  After a write, the key's older snapshots are
deleted.  The node checks the lease in Redis before each write too
(``portable.py``).

**Sealed.** What is stored is the archive behind one line that binds it:
``WWSNAP1 {"key", "fence", "ms", "size", "sha256", "mac"}``.  A restore
checks the line against the blob's own name and key, the archive against
its size and digest, and, when the fleet shares a secret
(``SNAPSHOT_SECRET``), the line's HMAC-SHA256 under it, before a byte is
extracted.  So a snapshot cut short, one of another key copied under this
key's prefix, or one renamed to sort first is refused (:class:`Tampered`)
instead of running as whatever account it holds; with the secret, so is
one made by anyone who can write the store but does not hold the secret.
Without the secret the line still catches accidents and copies, not a
forger, and archives written before snapshots were sealed are taken as
they are; with it, only sealed ones.

Every function here blocks (disk, network): ``portable.py`` runs them on a
worker thread.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from sessionproc.protocol import KEY_RE, LINKED_MARKER, SETTINGS_FILE

from .blobstore import BlobStore

log = logging.getLogger(__name__)

LOGIN_PARTS = (
    LINKED_MARKER,
    SETTINGS_FILE,
    "Local State",
    "Default/IndexedDB",
    "Default/Local Storage",
    "Default/WebStorage",
    "Default/Cookies",
    "Default/Cookies-journal",
)
SKIPPED_NAMES = frozenset({"LOCK", "LOG", "LOG.old"})
COPY_TRIES = 5
PREFIX = "snapshots"
NAME_RE = re.compile(r"\A(\d{20})-(\d{13})\.tgz\Z")


class SnapshotError(Exception):
    """A snapshot could not be made or restored."""


class StaleFence(SnapshotError):
    """A snapshot of a newer fence exists: this writer's lease is old."""


class Tampered(SnapshotError):
    """A stored snapshot is not whole, not this key's, not the one its name
    says, or not sealed under the fleet's secret: it is never restored."""


SEAL_MAGIC = b"WWSNAP1 "
GZIP_MAGIC = b"\x1f\x8b"
MAX_SEAL_LINE = 4096


@dataclass(frozen=True, order=True)
class SnapshotName:
    fence: int
    ms: int

    def blob_id(self, key: str) -> str:
        return f"{key_prefix(key)}{self.fence:020d}-{self.ms:013d}.tgz"


def key_prefix(key: str) -> str:
    if not KEY_RE.match(key):
        raise SnapshotError(f"not a valid key: {key!r}")
    return f"{PREFIX}/{key}/"


def fence_of(token: str) -> int:
    """The fencing number of an owner token ``{node}:{fence}``."""
    return int(token.rpartition(":")[2])


# ----------------------------------------------------------------- capture
def _login_files(profile: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime ns) of every file a login needs."""
    found = {}
    for part in LOGIN_PARTS:
        top = profile / part
        if top.is_file() and not top.is_symlink():
            st = top.stat()
            found[part] = (st.st_size, st.st_mtime_ns)
        elif top.is_dir() and not top.is_symlink():
            for dirpath, dirnames, files in os.walk(top):
                dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
                for name in files:
                    path = Path(dirpath, name)
                    if name in SKIPPED_NAMES or path.is_symlink():
                        continue
                    try:
                        st = path.stat()
                    except FileNotFoundError:
                        continue  # went while we looked: the recheck sees it
                    found[path.relative_to(profile).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


def _append_only(rel: str) -> bool:
    """LevelDB's write-ahead log and manifest only grow: a copy cut short
    is a state LevelDB recovers from."""
    name = rel.rpartition("/")[2]
    return name.endswith(".log") or name.startswith("MANIFEST-")


def _stable_copy(profile: Path, staging: Path) -> int:
    """Copy the login's files to ``staging``, again until no file came,
    went, or changed under the copy; the number of files."""
    for attempt in range(1, COPY_TRIES + 1):
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(mode=0o700)
        before = _login_files(profile)
        vanished = False
        for rel in before:
            target = staging / rel
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                shutil.copyfile(profile / rel, target)
            except FileNotFoundError:
                vanished = True
                break
        after = _login_files(profile)
        changed = [rel for rel, stat in before.items()
                   if rel in after and after[rel] != stat and not _append_only(rel)]
        if not vanished and before.keys() == after.keys() and not changed:
            return len(before)
        log.info("profile %s changed while it was copied (try %d of %d); copying again", profile.name, attempt,
                 COPY_TRIES)
    raise SnapshotError(f"the profile kept changing while it was copied ({COPY_TRIES} tries)")


def capture(profile: Path, out: Path) -> int:
    """Write the login's parts of ``profile`` to ``out`` (gzip'd tar);
    its size in bytes.  SnapshotError if there is no login to save."""
    if not (profile / LINKED_MARKER).is_file():
        raise SnapshotError(f"{profile} holds no linked login")
    staging = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=out.parent))
    try:
        _stable_copy(profile, staging / "p")
        with tarfile.open(out, "w:gz", compresslevel=6) as tar:
            tar.add(staging / "p", arcname=".", filter=_plain)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out.stat().st_size


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# ----------------------------------------------------------------- restore
def extract(archive: Path, profile: Path) -> None:
    """Make ``profile`` the snapshot's login (what was there is replaced):
    extracted beside it, then renamed into place.  Only plain files and
    folders inside the profile are taken from the archive."""
    parent = profile.parent
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if not (member.isfile() or member.isdir()):
                    raise SnapshotError(f"snapshot holds {member.name!r}, neither file nor folder")
            # The "data" filter refuses absolute names, .. and links out.
            tar.extractall(staging, filter="data")
        for dirpath, _dirnames, files in os.walk(staging):
            os.chmod(dirpath, 0o700)
            for name in files:
                os.chmod(os.path.join(dirpath, name), 0o600)
        old = None
        if profile.exists():
            old = parent / f".old-{profile.name}-{os.getpid()}"
            os.rename(profile, old)
        os.rename(staging, profile)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except (tarfile.TarError, OSError) as e:
        raise SnapshotError(f"cannot restore the snapshot: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ------------------------------------------------------------- the seal
def _mac(secret: bytes, key: str, name: "SnapshotName", size: int, digest: str) -> str:
    message = f"{key}\n{name.fence}\n{name.ms}\n{size}\n{digest}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def seal(archive: Path, out: Path, key: str, name: "SnapshotName", secret: bytes | None) -> None:
    """Write ``out``: the line that binds ``archive`` to its key, name and
    writer, then the archive."""
    size, digest = _digest(archive)
    line = {"key": key, "fence": name.fence, "ms": name.ms, "size": size, "sha256": digest,
            "mac": _mac(secret, key, name, size, digest) if secret else ""}
    with open(out, "wb") as f, open(archive, "rb") as src:
        f.write(SEAL_MAGIC + orjson.dumps(line) + b"\n")
        shutil.copyfileobj(src, f, 1 << 20)


def unseal(sealed: Path, archive: Path, key: str, name: "SnapshotName", secret: bytes | None) -> None:
    """Check ``sealed`` whole and bound to ``key`` and ``name`` (and to the
    secret, when there is one) and write its archive to ``archive``;
    :class:`Tampered` if anything does not hold."""
    with open(sealed, "rb") as f:
        head = f.read(len(SEAL_MAGIC))
        if head != SEAL_MAGIC:
            if head[:2] == GZIP_MAGIC and not secret:
                f.seek(0)  # written before snapshots were sealed: taken as it is
                with open(archive, "wb") as out:
                    shutil.copyfileobj(f, out, 1 << 20)
                return
            raise Tampered("not a sealed snapshot" + (" (the fleet's secret requires one)" if secret else ""))
        raw = f.readline(MAX_SEAL_LINE)
        try:
            line = orjson.loads(raw)
            claimed = (line["key"], int(line["fence"]), int(line["ms"]))
            size, digest, mac = int(line["size"]), str(line["sha256"]), str(line["mac"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise Tampered(f"unreadable seal: {e}") from None
        if claimed != (key, name.fence, name.ms):
            raise Tampered(f"sealed as {claimed[0]!r} fence {claimed[1]} at {claimed[2]}, "
                           f"stored as {key!r} fence {name.fence} at {name.ms}")
        if secret and not hmac.compare_digest(mac, _mac(secret, key, name, size, digest)):
            raise Tampered("its seal was not made under the fleet's secret")
        h = hashlib.sha256()
        got = 0
        with open(archive, "wb") as out:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                got += len(chunk)
                out.write(chunk)
    if (got, h.hexdigest()) != (size, digest):
        archive.unlink(missing_ok=True)
        raise Tampered(f"not whole: {got} bytes of {size}" if got != size else "its bytes differ from its seal")


# ----------------------------------------------------------- in the store
REJECTED_PREFIX = "snapshots-rejected"


class Snapshots:
    """A key's snapshots in the blob store, sealed (``secret``: the fleet's
    ``SNAPSHOT_SECRET``, or None)."""

    def __init__(self, blobs: BlobStore, clock=time.time, secret: bytes | None = None):
        self.blobs = blobs
        self.clock = clock
        self.secret = secret or None

    def names(self, key: str) -> list[SnapshotName]:
        prefix = key_prefix(key)
        found = []
        for blob_id in self.blobs.list_prefix(prefix):
            m = NAME_RE.match(blob_id[len(prefix):])
            if m:
                found.append(SnapshotName(int(m.group(1)), int(m.group(2))))
        return sorted(found)

    def newest(self, key: str) -> SnapshotName | None:
        names = self.names(key)
        return names[-1] if names else None

    def put(self, key: str, fence: int, archive: Path) -> SnapshotName:
        """Store ``archive`` as the key's newest snapshot, written under
        ``fence``; StaleFence if a newer fence wrote one already."""
        newest = self.newest(key)
        if newest is not None and newest.fence > fence:
            raise StaleFence(f"{key}: a snapshot of fence {newest.fence} exists; refusing one of fence {fence}")
        ms = int(self.clock() * 1000)
        if newest is not None and newest.fence == fence:
            ms = max(ms, newest.ms + 1)  # one writer per fence: its own later write sorts after
        name = SnapshotName(fence, ms)
        sealed = archive.with_name(archive.name + ".sealed")
        try:
            seal(archive, sealed, key, name, self.secret)
            self.blobs.put_file(name.blob_id(key), sealed)
        finally:
            sealed.unlink(missing_ok=True)
        for older in self.names(key):
            if older < name:
                self.blobs.delete(older.blob_id(key))
        return name

    def fetch(self, key: str, name: SnapshotName, archive: Path) -> None:
        """The snapshot's archive, checked (:class:`Tampered` if it does not
        hold: see "Sealed")."""
        sealed = archive.with_name(archive.name + ".sealed")
        try:
            self.blobs.get_file(name.blob_id(key), sealed)
            unseal(sealed, archive, key, name, self.secret)
        finally:
            sealed.unlink(missing_ok=True)

    def set_aside(self, key: str, name: SnapshotName) -> str:
        """Move a snapshot that failed its check out of the key's snapshots
        (kept for an operator to look at, never restored); its new id."""
        aside = f"{REJECTED_PREFIX}/{key}/{name.fence:020d}-{name.ms:013d}.tgz"
        with tempfile.TemporaryDirectory(prefix=".aside-") as tmp:
            copy = Path(tmp) / "s"
            self.blobs.get_file(name.blob_id(key), copy)
            self.blobs.put_file(aside, copy)
        self.blobs.delete(name.blob_id(key))
        return aside

    def delete_all(self, key: str) -> None:
        self.blobs.delete_prefix(key_prefix(key))
