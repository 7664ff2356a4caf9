"""The media desk: a send's media prepared on a worker thread, a key's sends kept in order.

The media desk: a ``send_message`` with ``media`` is fetched, or decoded
from its base64, and checked (``prepare.py``) on a worker thread before it
reaches the send desk, so neither a slow URL nor a large file holds up the
node's loop.  The base64 text of a waiting send is held by its worker's
task alone, and goes once it is written out.

- The file goes to ``DATA_DIR/sessions/{key}/media/`` (0600): the session
  process is told its path, never its bytes (``sessionproc/protocol.py``).
  The session removes the file once it has read it; files left behind (a
  session that died first) are swept after ``SEND_HOLD`` + ``SEND_TIMEOUT``
  + 60 s.
- Commands of one key keep their order: while a key has a send being
  prepared, its later sends (with media or not) wait behind it here.
- A refusal is the command's end (``command_failed`` with the reason,
  dead-lettered), like any bad command; nothing is sent.
- Sends waiting here when their key stops without being destroyed (the
  node going down) or is lost go back to their queue without a word.

Completions are handed to the node's loop (``tick``, a chore), which is
woken by ``wake`` as soon as one is ready.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import states as S
from ..commands import Command
from .prepare import prepare
from .request import MediaLimits, MediaRefused
from ..paths import Paths

log = logging.getLogger(__name__)

PREFIX = "out-"


@dataclass
class _Waiting:
    command: Command
    delivery: object
    future: Future | None = None  # None: nothing to prepare (a text behind a media send)


class MediaDesk:
    def __init__(self, paths: Paths, limits: MediaLimits, send: Callable, bus, blobs, workers: int = 2,
                 keep_files: float = 180.0, clock: Callable[[], float] = time.monotonic,
                 runs_here: Callable[[str], bool] = lambda key: True, wake: Callable[[], None] = lambda: None,
                 copies: Callable[[object, int], None] = lambda d, size: None):
        self.paths = paths
        self.runs_here = runs_here  # a session of the key is here (else no folder is made for it)
        self.limits = limits
        self.send_on = send  # the send desk's ``send(cmd, d, now)``
        self.bus = bus
        self.blobs = blobs
        self.keep_files = keep_files
        self.clock = clock
        self.wake = wake  # wakes the node's loop: a fetched file is handed on at once (``waker.py``)
        # Tells COMMAND_BYTES_LIMIT of a delivery's base64 text, a copy as
        # large as its body (``Consumer.hold_copy``; 0: gone).
        self.copies = copies
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media")
        self._waiting: dict[str, deque[_Waiting]] = {}
        self._ids = itertools.count(1)
        self._next_sweep = 0.0

    # ------------------------------------------------------------ in
    def send(self, cmd: Command, d, now: float) -> None:
        """``send_message``'s handler: straight to the send desk, unless it
        has media to fetch or waits behind one of its key that has."""
        queue = self._waiting.get(cmd.key)
        if (cmd.media is None or not self.runs_here(cmd.key)) and not queue:  # the send desk answers it
            self.send_on(cmd, d, now)
            return
        # Kept without its media: the worker's task holds that (a base64
        # text as large as the command), and lets it go once it is written.
        entry = _Waiting(dataclasses.replace(cmd, media=None), d)
        if cmd.media is not None:
            try:
                folder = self._folder(cmd.key)
            except OSError as e:
                self.bus.fail(d, "storage_error", f"cannot write the media file: {e.strerror}", cmd.key,
                              cmd.command_id)
                return
            dest = folder / f"{PREFIX}{os.getpid()}-{next(self._ids)}"
            entry.future = self._pool.submit(prepare, cmd.media, dest, self.limits, self.blobs, cmd.key)
            entry.future.add_done_callback(lambda _f: self.wake())
            self.copies(d, len(cmd.media.base64))  # until its turn here: gone by then (``_finish``)
        self._waiting.setdefault(cmd.key, deque()).append(entry)

    def _folder(self, key: str) -> Path:
        folder = self.paths.session_dir(key) / "media"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder

    # ------------------------------------------------------------ out
    def tick(self, now: float) -> None:
        for key in list(self._waiting):
            queue = self._waiting[key]
            while queue and (queue[0].future is None or queue[0].future.done()):
                self._finish(queue.popleft(), now)
            if not queue:
                self._waiting.pop(key, None)
        if now >= self._next_sweep:
            self._next_sweep = now + 30
            self._sweep()

    def _finish(self, entry: _Waiting, now: float) -> None:
        cmd = entry.command
        if entry.future is None:
            self.send_on(cmd, entry.delivery, now)
            return
        # Decoded, the base64 text went with the worker's task; refused, it
        # goes with this entry (in the refusal's traceback), now.
        self.copies(entry.delivery, 0)
        # The worker's refusal is looked at, never raised here: raised, its
        # traceback takes in this frame, whose ``entry`` holds the future
        # that holds the refusal, a cycle only the garbage collector breaks,
        # minutes later at times.  Until then the delivery's body and the
        # base64 text (in the worker's frame, in the traceback too) stay:
        # twice 120 MiB for each large send refused (F7: fifteen made 3 GB,
        # none of it counted by COMMAND_BYTES_LIMIT, as their deliveries
        # were acknowledged).
        e = entry.future.exception()
        if isinstance(e, MediaRefused):
            if e.__cause__ is not None:  # the blob store's own words, for the operator only
                log.warning("send %s of %s: %s: %s", cmd.command_id, cmd.key, e.detail, e.__cause__)
            self.bus.fail(entry.delivery, e.reason, e.detail, cmd.key, cmd.command_id)
            return
        if isinstance(e, OSError):
            log.warning("send %s of %s: cannot write its media: %s", cmd.command_id, cmd.key, e)
            self.bus.fail(entry.delivery, "storage_error", f"cannot write the media file: {e.strerror}", cmd.key,
                          cmd.command_id)
            return
        prepared = entry.future.result()  # (anything else is a bug: raised, the node stops)
        log.info("media for %s: %s %s, %d bytes", cmd.key, prepared.kind, prepared.mimetype, prepared.size)
        self.send_on(dataclasses.replace(cmd, media=None, media_file=prepared.as_pipe()), entry.delivery, now)

    # -------------------------------------------- following sessions
    def on_change(self, change: S.Change) -> None:
        """A key this node will not run next (going down, lost): what waits
        here for it is for whoever runs it next."""
        if change.new == S.DROPPED or (change.new in (S.STOPPING, S.STOPPED) and not change.for_good):
            for entry in self._waiting.pop(change.key, ()):
                if entry.future is not None:
                    entry.future.add_done_callback(_remove_result)
                self.bus.requeue(entry.delivery)

    def _sweep(self) -> None:
        """Files the sessions never took (a session that died first), and
        inbound files a node that died never took."""
        cutoff = time.time() - self.keep_files
        try:
            folders = list(self.paths.sessions.glob("*/media"))
        except OSError:
            return
        for folder in folders:
            try:
                for f in folder.iterdir():
                    if f.name.startswith((PREFIX, "in-")) and f.stat().st_mtime < cutoff:
                        f.unlink(missing_ok=True)
            except OSError as e:
                log.debug("media sweep of %s: %s", folder, e)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _remove_result(future: Future) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().path.unlink(missing_ok=True)
