"""Portable logins, the node's side: when a session's login is saved to the
blob store, and when a session is started from a saved one.

Saved (``snapshots.capture`` then ``Snapshots.put``, under the fence of the
key's lease, which is checked in Redis first):

- when the session is ready after a start (a new login just scanned, or a
  start on a profile);
- when it stops cleanly (its browser is gone, so nothing writes the
  profile): a node going down, a destroy without ``logout``;
- every ``PROFILE_SNAPSHOT_INTERVAL`` seconds while it is ready.

Deleted when the link is gone: a destroy with ``logout``, or the phone
unlinked the device (``LOGOUT``, ``credentials_rejected``...).

Restored on a fresh start of a key here (a create, not a restart after a
crash: this node has held the profile since): the key's newest snapshot,
unless this node's profile is linked and at least as new (the profile
records the snapshot it was last saved as or restored from).  Meanwhile
the start waits (``Starts.gate``) and sends wait as for a linked session.
A restored snapshot of a fence at least ours makes our fence grow past it
(the fence counter may have been deleted since: a destroy), so our own
snapshots sort after it.

All blob store and disk work runs on a small pool of worker threads, one
job at a time per key (in order: a deletion after a logout is never
overtaken by a save queued before it); the node's loop only collects the
results (``tick``), woken as each job ends.  A node going down waits for its saves
(``busy``), within its stop deadline.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Protocol

from sessionproc.protocol import LINKED_MARKER

from . import states as S
from .counters import Counters
from .paths import Paths, UnsafePath
from .snapshots import SnapshotError, SnapshotName, Snapshots, Tampered, capture, extract, fence_of

log = logging.getLogger(__name__)

# In the profile: the snapshot it was last saved as or restored from.
SNAPSHOT_MARK = "wwnode-snapshot"
WORKERS = 2


class Store(Protocol):
    def holds(self, key: str, token: str) -> bool: ...
    def raise_fence(self, key: str, token: str, floor: int) -> str | None: ...


class Leases(Protocol):
    def token_of(self, key: str) -> str | None: ...
    def hold(self, key: str, token: str) -> None: ...


class Sessions(Protocol):
    def get(self, key: str) -> S.SessionRecord | None: ...
    def children(self) -> list: ...


class Restoring:
    """The keys whose saved login is being fetched: their start waits for
    it (``Starts.gate``).  Made before the starts and handed to both, so
    neither is built around the other."""

    def __init__(self):
        self.keys: set[str] = set()

    def ready_to_start(self, key: str) -> bool:
        return key not in self.keys


class NotOwner(SnapshotError):
    """The lease is not this writer's any more."""


class Portable:
    def __init__(self, snapshots: Snapshots, paths: Paths, sessions: Sessions, leases: Leases, store: Store,
                 counters: Counters, interval: float, clock: Callable[[], float] = time.monotonic, *,
                 restoring: Restoring | None = None, wake: Callable[[], None] = lambda: None):
        self.snapshots = snapshots
        self.paths = paths
        self.sessions = sessions
        self.leases = leases
        self.store = store
        self.counters = counters
        self.interval = interval
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="snapshots")
        self._queued: dict[str, deque[tuple[Callable[[], object], Callable[[object, Exception | None], None]]]] = {}
        self._running: dict[str, Future] = {}
        self._done: list[tuple[str, Future, Callable]] = []
        self._restoring = restoring or Restoring()  # starts that wait for their restore
        self._saved_at: dict[str, float] = {}  # key -> when its last save was asked (monotonic)
        # Wakes the node's loop (``waker.py``).  A finished job is
        # collected at once, not at the loop's next turn: a create waits
        # for its restore check, which takes milliseconds, and waited up to
        # a turn (a quarter second) more for the loop to look.
        self.wake = wake

    def busy(self) -> bool:
        return bool(self._running or self._queued)

    # ------------------------------------------------- a listener of Sessions
    def on_change(self, change: S.Change) -> None:
        """Subscribed before the Redis writer: the lease's token is still
        ours when a session stops for good."""
        key = change.key
        if change.new == S.STARTING and change.old in (S.NEW, S.FAILED):
            self._begin_restore(key)
        elif change.new == S.READY and change.old in (S.STARTING, S.QR):
            self.save(key, "ready")
        elif change.new == S.STOPPED and change.logout:
            self._saved_at.pop(key, None)
            self._submit(key, lambda: self.snapshots.delete_all(key), self._deleted(key))
        elif change.new == S.STOPPED and not change.moving:  # a move saves it itself (drain.py)
            self.save(key, "stopped")
            self._saved_at.pop(key, None)
        elif change.new == S.DROPPED:
            self._restoring.keys.discard(key)
            self._saved_at.pop(key, None)

    # ------------------------------------------------------------ saving
    def save(self, key: str, why: str, then: Callable[[str, bool], None] | None = None) -> None:
        """Save the key's login now (on a worker), if its lease is ours;
        ``then(key, saved)`` once done."""
        token = self.leases.token_of(key)
        try:
            profile = self.paths.profile(key)
        except UnsafePath:
            token = None
        if token is None:
            if then is not None:
                then(key, False)
            return
        self._saved_at[key] = self.clock()
        self._submit(key, lambda: self._save_job(key, token, profile), self._saved(key, why, then))

    def _save_job(self, key: str, token: str, profile: Path) -> tuple[SnapshotName, int, float]:
        started = time.monotonic()
        if not self.store.holds(key, token):
            raise NotOwner(f"{key}: the lease is not ours any more; not saving")
        tmp = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=self.paths.root))
        try:
            archive = tmp / "s.tgz"
            size = capture(profile, archive)
            name = self.snapshots.put(key, fence_of(token), archive)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        (profile / SNAPSHOT_MARK).write_text(f"{name.fence} {name.ms}\n")
        return name, size, time.monotonic() - started

    def _saved(self, key: str, why: str, then: Callable[[str, bool], None] | None):
        def done(result, error):
            self._report_save(key, why, result, error)
            if then is not None:
                then(key, error is None)
        return done

    def _report_save(self, key: str, why: str, result, error) -> None:
        if error is None:
            name, size, took = result
            self.counters.bump("snapshots_saved")
            log.info("session %s: login saved (%s), fence %d, %.0f kB in %.2f s", key, why, name.fence,
                     size / 1024, took)
            return
        self.counters.bump("snapshot_failures")
        if isinstance(error, NotOwner):
            log.info("session %s: login not saved (%s): %s", key, why, error)
        else:  # StaleFence, the store or the disk refused: the next occasion tries again
            log.warning("session %s: login not saved (%s): %s", key, why, error)

    def _deleted(self, key: str):
        def done(result, error):
            if error is None:
                log.info("session %s: its saved logins deleted (unlinked)", key)
            else:
                log.error("session %s: could not delete its saved logins: %s", key, error)
        return done

    # --------------------------------------------------------- restoring
    def _begin_restore(self, key: str) -> None:
        try:
            profile = self.paths.profile(key)
        except UnsafePath:
            return
        self._restoring.keys.add(key)
        rec = self.sessions.get(key)
        if rec is not None:
            rec.linked = True  # until the store says otherwise: sends wait for it
        self._submit(key, lambda: self._restore_job(key, profile), self._restored(key, profile))

    def _restore_job(self, key: str, profile: Path) -> tuple[SnapshotName | None, list[tuple[str, str]]]:
        """The snapshot restored (None: none, or ours is as new), and those
        that failed their check on the way, set aside (id, why): the newest
        that holds is used, else the profile as it is (a QR code when it
        holds no login)."""
        rejected: list[tuple[str, str]] = []
        for name in reversed(self.snapshots.names(key)):
            if (profile / LINKED_MARKER).is_file():
                mark = _read_mark(profile)
                if mark is None or mark >= (name.fence, name.ms):
                    return None, rejected  # ours is the newest (or from before snapshots): keep it
            with tempfile.TemporaryDirectory(prefix=".restore-", dir=self.paths.root) as tmp:
                archive = Path(tmp) / "s.tgz"
                try:
                    self.snapshots.fetch(key, name, archive)
                except Tampered as e:
                    rejected.append((self.snapshots.set_aside(key, name), str(e)))
                    continue
                extract(archive, profile)
            (profile / SNAPSHOT_MARK).write_text(f"{name.fence} {name.ms}\n")
            return name, rejected
        return None, rejected

    def _restored(self, key: str, profile: Path):
        def done(outcome, error):
            self._restoring.keys.discard(key)
            rec = self.sessions.get(key)
            result, rejected = outcome if error is None else (None, [])
            for aside, why in rejected:
                # Reported where an operator looks: the log, and the counter
                # in the heartbeat and /metrics.
                log.error("session %s: a saved login failed its check and was set aside as %s: %s", key, aside, why)
                self.counters.bump("snapshots_rejected")
            if error is not None:
                log.error("session %s: could not restore its saved login: %s", key, error)
                self.counters.bump("snapshot_failures")
            elif result is not None:
                self.counters.bump("snapshots_restored")
                log.info("session %s: login restored from its snapshot (fence %d)", key, result.fence)
                self._fence_past(key, result.fence)
            if rec is not None:
                rec.linked = (profile / LINKED_MARKER).is_file()
        return done

    def _fence_past(self, key: str, floor: int) -> None:
        token = self.leases.token_of(key)
        if token is None or fence_of(token) > floor:
            return
        new = self.store.raise_fence(key, token, floor)
        if new is not None:
            self.leases.hold(key, new)
            log.info("session %s: fence raised past its snapshot's: %s", key, new)

    # --------------------------------------------------------------- jobs
    def _submit(self, key: str, job: Callable[[], object], done: Callable[[object, Exception | None], None]) -> None:
        self._queued.setdefault(key, deque()).append((job, done))
        self._next(key)

    def _next(self, key: str) -> None:
        if key in self._running:
            return
        queued = self._queued.get(key)
        if not queued:
            self._queued.pop(key, None)
            return
        job, done = queued.popleft()
        if not queued:
            self._queued.pop(key, None)
        future = self._pool.submit(job)
        future.add_done_callback(lambda _f: self.wake())
        self._running[key] = future
        self._done.append((key, future, done))

    def tick(self, now: float) -> None:
        """Collect finished jobs (on the loop), start the next of each key,
        and save ready sessions whose interval is over (one a turn)."""
        pending, self._done = self._done, []
        for key, future, done in pending:
            if not future.done():
                self._done.append((key, future, done))
                continue
            self._running.pop(key, None)
            error = future.exception()
            done(None if error else future.result(), error)
            self._next(key)
        if self.interval > 0:
            for rec, _ in self.sessions.children():
                if rec.state == S.READY and now - self._saved_at.get(rec.key, now) >= self.interval \
                        and rec.key not in self._running:
                    self.save(rec.key, "interval")
                    break

    def close(self) -> None:
        """The node has stopped: jobs not started are dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _read_mark(profile: Path) -> tuple[int, int] | None:
    try:
        fence, ms = (profile / SNAPSHOT_MARK).read_text().split()
        return int(fence), int(ms)
    except (OSError, ValueError):
        return None
