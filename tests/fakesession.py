"""A stand-in for ``python -m sessionproc`` that starts in milliseconds and
needs no browser: it speaks ``sessionproc/protocol.py`` exactly (commands on
stdin, events on stdout, the same exit codes), and a test scripts it per key.

Run as ``python -m fakesession`` with this folder on ``PYTHONPATH``; a node
runs it instead of the real session when ``SESSION_MODULE=fakesession``.  It
takes the real session's arguments (only ``--key``, ``--profile``,
``--log-file``, ``--send-timeout`` and ``--ping-timeout`` matter) and reads ``FAKESESSION_DIR``,
a folder of the test's own, where for each key:

``{key}.json``    the script, read at every start (absent: the defaults):
                  ``start``: ``run`` (default), ``crash`` (exit 1 at once),
                  ``cannot_start`` (exit 78), ``hang`` (says ``starting``,
                  then nothing, answers nothing); ``qr_after_ms``: delay of
                  the first QR code; ``scan_after_ms``: scan itself after
                  that long, as phone ``me`` (absent: wait for a ``scan``
                  action); ``stop_after_ms``: a stop takes that long (a
                  page closing slowly).
``{key}.fifo``    actions, one JSON object a line, carried out at once:
                  ``{"do": "scan", "me": P}``, ``{"do": "deliver", "from":
                  F, "body": B, "id": I}`` (with ``"media": {"size": N,
                  "mimetype": M, "filename": F}``: a document of N bytes,
                  written to the media folder as the real session does),
                  ``{"do": "logout"}``,
                  ``{"do": "conflict"}``, ``{"do": "ack", "message_id": M,
                  "chat_id": C, "ack": N}``, ``{"do": "reaction", "message_id":
                  M, "reaction": E, "sender": S}``, ``{"do": "call", "call": C}``
                  (someone calls: the ``call`` event), ``{"do": "sends", "mode": "ok" |
                  "fail" | "slow" | "hang", "delay_ms": N}``, ``{"do":
                  "freeze"}`` (pings answered ``ok: false``, sends hang),
                  ``{"do": "crash"}``, ``{"do": "write", "raw": S,
                  "repeat": N}`` (S, N times, written to stdout as is:
                  malformed and over-long lines), ``{"do": "noise", "line":
                  S, "repeat": N}`` (S and a newline, N times, to stderr:
                  the session log, as Chrome's noise).
``{key}.record``  what it did, one JSON object a line (``start``, with
                  ``settings``: what its settings file held; ``sent``,
                  ``action``, ``check_number``, ``call``, ``chat``,
                  ``presence``, ``stop``, ``settings``: a change of settings
                  it was told), for the test to read.

A profile that holds the linked marker starts ready without a QR code, as
the real session does; ``ready`` writes the marker, an unlinking end (and a
stop with logout, which deletes the profile) removes it.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import os
import select
import shutil
import signal
import stat
import sys
import time
from pathlib import Path

import orjson

from sessionproc.mediafiles import media_dir, new_inbound
from sessionproc.protocol import (EXIT_CANNOT_START, EXIT_CRASHED, EXIT_ENDED, EXIT_STOPPED, LINKED_MARKER,
                                  MAX_COMMAND_LINE, BadArguments, BadCommand, SessionArgs, decode_command, encode)

MAX_LINE = MAX_COMMAND_LINE  # as the real session: a longer command line is an error
PR_SET_PDEATHSIG = 1


class Stop(Exception):
    def __init__(self, code: int):
        self.code = code


class FakeSession:
    def __init__(self, key: str, profile: Path, control: Path, log_file: Path | None, send_timeout: float,
                 ping_timeout: float, settings_file: Path | None = None):
        self.key = key
        self.profile = profile
        self.control = control
        self.send_timeout = send_timeout
        self.ping_timeout = ping_timeout
        self.log = open(log_file, "ab", buffering=0) if log_file else None
        self.settings_file = settings_file
        self.script = self._read_script()
        self.me: str | None = None
        self.ready = False
        self.sends_mode, self.sends_delay = "ok", 0.0
        self.frozen = False  # the page hangs: pings fail, sends never end
        self.hung = False  # the boot hangs: nothing is answered, not even stop
        self.sends_free_at = 0.0  # sends are answered in order, one at a time
        self.timers: list = []  # (due, n, callable)
        self._n = itertools.count()
        self._stdin = bytearray()
        self._fifo = bytearray()
        self._skipping: set[int] = set()  # inputs inside an over-long line

    # ------------------------------------------------------------ output
    def emit(self, event: dict) -> None:
        self.write(encode(event | {"t": int(time.time() * 1000)}))
        self.note(f"event {event['event']} {event.get('reason') or event.get('attempt') or ''}")

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(1, view):]
            except BrokenPipeError:
                raise Stop(EXIT_CRASHED) from None

    def note(self, text: str) -> None:
        if self.log is not None:
            try:
                self.log.write(f"{time.strftime('%H:%M:%S')} [{self.key}] {text}\n".encode())
            except OSError:
                pass  # a full disk: as ``logging`` in the real session, the line is lost, not the session

    def record(self, entry: dict) -> None:
        with open(self.control / f"{self.key}.record", "ab") as f:
            f.write(orjson.dumps(entry) + b"\n")

    def later(self, seconds: float, action) -> None:
        heapq.heappush(self.timers, (time.monotonic() + seconds, next(self._n), action))

    # ------------------------------------------------------------- start
    def _read_script(self) -> dict:
        path = self.control / f"{self.key}.json"
        return orjson.loads(path.read_bytes()) if path.exists() else {}

    def start(self) -> None:
        self.emit({"event": "starting", "pid": os.getpid()})
        settings = orjson.loads(self.settings_file.read_bytes()) if self.settings_file else None
        self.record({"start": os.getpid(), "settings": settings})
        how = self.script.get("start", "run")
        if how == "crash":
            self.emit({"event": "disconnected", "reason": "browser_failed", "detail": "scripted crash"})
            raise Stop(EXIT_CRASHED)
        if how == "cannot_start" or (self.profile.exists() and not self.profile.is_dir()):
            self.emit({"event": "disconnected", "reason": "cannot_start", "detail": f"unusable profile {self.profile}"})
            raise Stop(EXIT_CANNOT_START)
        self.profile.mkdir(mode=0o700, parents=True, exist_ok=True)
        if how == "hang":
            self.hung = True
            return
        marker = self.profile / LINKED_MARKER
        if marker.exists():
            self.later(0, lambda: self._linked(marker.read_text().split("@")[0]))
            return
        self.later(self.script.get("qr_after_ms", 0) / 1000, self._show_qr)
        if self.script.get("scan_after_ms") is not None:
            self.later(self.script["scan_after_ms"] / 1000, lambda: self._linked(self.script.get("me", "5500000000000")))

    def _show_qr(self) -> None:
        if not self.ready:
            # Five comma-separated parts, as WhatsApp Web's; the key in the
            # second lets a test's scan find the session.
            self.emit({"event": "qr", "qr": f"2@fake,{self.key},{os.getpid()},{time.time_ns()},1", "attempt": 1})

    def _linked(self, phone: str) -> None:
        if self.ready:
            return
        self.ready, self.me = True, f"{phone}@c.us"
        (self.profile / LINKED_MARKER).write_text(self.me)
        self.emit({"event": "authenticated"})
        self.emit({"event": "ready", "me": self.me})

    def _end(self, event: dict, unlinked: bool) -> None:
        if unlinked:
            (self.profile / LINKED_MARKER).unlink(missing_ok=True)
        self.emit(event)
        raise Stop(EXIT_ENDED)

    # ---------------------------------------------------------- commands
    def on_command(self, line: bytes) -> None:
        if self.hung:
            return
        if len(line) > MAX_LINE:
            self.emit({"event": "error", "reason": "bad_command", "detail": f"line longer than {MAX_LINE} bytes"})
            return
        if not line.strip():
            return
        try:
            cmd = decode_command(line)
        except BadCommand as e:
            self.emit({"event": "error", "reason": "bad_command", "detail": str(e)})
            return
        if cmd["cmd"] == "stop":
            self.record({"stop": {"logout": cmd.get("logout", False)}})
            if cmd.get("logout"):
                shutil.rmtree(self.profile, ignore_errors=True)
            if self.script.get("stop_after_ms"):
                self.later(self.script["stop_after_ms"] / 1000, self._stopped)
                return
            raise Stop(EXIT_STOPPED)
        if cmd["cmd"] == "ping":
            if self.frozen:
                self.later(self.ping_timeout, lambda i=cmd["id"]: self.emit(
                    {"event": "pong", "id": i, "ready": self.ready, "ok": False, "detail": "page did not answer"}))
            else:
                self.emit({"event": "pong", "id": cmd["id"], "ready": self.ready, "ok": True,
                           "state": "CONNECTED" if self.ready else "UNPAIRED"})
            return
        if cmd["cmd"] in ("action", "check_number", "call", "chat", "presence"):
            self._act(cmd)
            return
        if cmd["cmd"] == "settings":
            self.record({"settings": {"ignore": cmd["ignore"]}})
            return
        self._send(cmd)

    def _act(self, cmd: dict) -> None:
        """Actions and number checks: done at once when ready (a number is
        registered under its own id), recorded; no page to fail them."""
        if not self.ready:
            self.emit({"event": "action_failed", "id": cmd["id"], "reason": "not_ready",
                       "detail": "the session is not authenticated"})
            return
        if self.frozen or self.sends_mode == "hang":
            return
        result = {"registered": True, "wid": f"{cmd['phone']}@c.us"} if cmd["cmd"] == "check_number" else \
            {"call_id": cmd["call_id"], "from": None} if cmd["cmd"] == "call" else {}
        self.record({cmd["cmd"]: {k: v for k, v in cmd.items() if k not in ("cmd", "id")}})
        self.emit({"event": "action_done", "id": cmd["id"], "result": result})

    def _stopped(self) -> None:
        raise Stop(EXIT_STOPPED)

    def _send(self, cmd: dict) -> None:
        failed = {"event": "send_failed", "id": cmd["id"]}
        if not self.ready:
            self.emit(failed | {"reason": "not_ready", "detail": "the session is not authenticated"})
            return
        now = time.monotonic()
        if self.frozen or self.sends_mode == "hang":
            self.sends_free_at = float("inf")
            return
        start = max(now, self.sends_free_at)
        took = self.sends_delay if self.sends_mode == "slow" else 0.0
        if took > self.send_timeout:
            answer = failed | {"reason": "timeout", "detail": f"no answer in {self.send_timeout:g} s"}
            took = self.send_timeout
        elif self.sends_mode == "fail":
            answer = failed | {"reason": "rejected", "detail": "scripted failure"}
        else:
            n = time.time_ns()
            answer = {"event": "sent", "id": cmd["id"], "message_id": f"true_{cmd['chat_id']}_FAKE{n}"}
            self.record({"sent": {"me": self.me, "chat_id": cmd["chat_id"], "body": cmd["text"], "id": f"FAKE{n}",
                                  "seen": cmd.get("seen"), "typing_ms": cmd.get("typing_ms", 0),
                                  "at": time.time()}})
        self.sends_free_at = start + took
        if start + took <= now:
            self.emit(answer)
        else:
            self.later(start + took - now, lambda: self.emit(answer))

    # ----------------------------------------------------------- actions
    def on_action(self, line: bytes) -> None:
        action = orjson.loads(line)
        do = action["do"]
        if do == "scan":
            self._linked(action["me"])
        elif do == "deliver":
            event = {"event": "message", "message": _message(action, self.me)}
            if action.get("media"):
                event = self._with_media(event, action["media"])
            self.emit(event)
        elif do == "logout":
            self._end({"event": "disconnected", "reason": "LOGOUT"}, unlinked=True)
        elif do == "conflict":
            self._end({"event": "disconnected", "reason": "CONFLICT"}, unlinked=False)
        elif do in ("ack", "reaction", "call"):
            self.emit({"event": do, **{k: v for k, v in action.items() if k != "do"}})
        elif do == "sends":
            self.sends_mode, self.sends_delay = action["mode"], action.get("delay_ms", 0) / 1000
        elif do == "freeze":
            self.frozen = True
        elif do == "crash":
            raise Stop(EXIT_CRASHED)
        elif do == "write":
            self.write(action["raw"].encode() * action.get("repeat", 1))
        elif do == "noise":  # as Chrome does: lines on the stderr it inherited (the node opened it)
            os.write(2, (action["line"] + "\n").encode() * action.get("repeat", 1))

    def _with_media(self, event: dict, media: dict) -> dict:
        """As the real session: the file in the media folder, named in the
        event for the node to take."""
        message = event["message"]
        path = new_inbound(media_dir(self.profile), message["id"]["id"])
        body = b"%PDF-1.4\n"
        path.write_bytes(body + b"0" * max(0, media["size"] - len(body)))
        message.update(hasMedia=True, type="document")
        return event | {"media": {"path": str(path), "mimetype": media["mimetype"], "filename": media["filename"],
                                  "size": path.stat().st_size}}

    # -------------------------------------------------------------- loop
    def run(self) -> int:
        fifo_path = self.control / f"{self.key}.fifo"
        try:
            os.mkfifo(fifo_path, 0o600)
        except FileExistsError:
            pass
        # Read and write: the FIFO then never reports end of file.
        fifo = os.open(fifo_path, os.O_RDWR | os.O_NONBLOCK)
        inputs = [0, fifo]
        try:
            self.start()
            while True:
                timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None
                readable, _, _ = select.select(inputs, [], [], timeout)
                # Actions first: one a test wrote before a command it then
                # sent is already here, and must come first.
                if fifo in readable:
                    self._take(fifo, self._fifo, self.on_action)
                if 0 in readable and not self._take(0, self._stdin, self.on_command):
                    if self.hung:
                        inputs.remove(0)  # a hung boot does not notice
                        continue
                    self.note("end of input: stopping")
                    return EXIT_STOPPED
                while self.timers and self.timers[0][0] <= time.monotonic():
                    heapq.heappop(self.timers)[2]()
        except Stop as s:
            self.note(f"exiting with code {s.code}")
            return s.code
        finally:
            os.close(fifo)

    def _take(self, fd: int, buf: bytearray, handle) -> bool:
        """Handle the whole lines ``fd`` holds now; False at end of file."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buf += chunk
        *lines, rest = buf.split(b"\n")
        buf[:] = rest
        for line in lines:
            if fd in self._skipping:  # the tail of an over-long line
                self._skipping.discard(fd)
                continue
            handle(bytes(line))
        if len(buf) > MAX_LINE and fd not in self._skipping:
            self._skipping.add(fd)
            handle(bytes(buf))  # reported once, as too long
        if fd in self._skipping:
            buf.clear()
        return True


def _message(action: dict, me: str | None) -> dict:
    """An inbound text message with whatsapp-web.js's field names."""
    sender = f"{action['from']}@c.us"
    mid = action["id"]
    return {
        "id": {"fromMe": False, "remote": sender, "id": mid, "_serialized": f"false_{sender}_{mid}"},
        "body": action["body"], "type": "chat", "timestamp": int(time.time()), "from": sender, "to": me,
        "author": None, "fromMe": False, "hasMedia": False, "ack": 1, "isForwarded": False, "mentionedIds": [],
        "deviceType": "android", "forwardingScore": 0, "isStatus": False, "isStarred": False, "broadcast": False,
        "hasQuotedMsg": False, "links": [],
    }


def main(argv: list[str] | None = None) -> int:
    # The real session's own parser: a node whose command line the real
    # process would refuse fails here too (most flags mean nothing here).
    try:
        args = SessionArgs.parse(argv)
    except BadArguments as e:
        print(f"fakesession: {e}", file=sys.stderr)
        return EXIT_CANNOT_START
    control = os.environ.get("FAKESESSION_DIR")
    if not control or not stat.S_ISDIR(os.stat(control).st_mode):
        print("fakesession: needs FAKESESSION_DIR naming a folder", file=sys.stderr)
        return EXIT_CANNOT_START
    session = FakeSession(args.key, args.profile.resolve(), Path(control), args.log_file, args.send_timeout,
                          args.ping_timeout, args.settings_file)

    def on_term(*_):
        raise Stop(EXIT_STOPPED)  # as the real session: a signal to stop is a stop

    signal.signal(signal.SIGTERM, on_term)
    # Like the real session: it dies with its parent, the node's SIGKILL included.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return session.run()


if __name__ == "__main__":
    sys.exit(main())
