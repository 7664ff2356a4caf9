"""``python -m sessionproc.forkserver``: warm starts.  One per node, it
imports the session's program once and forks a session for each start,
so a session does not pay Python's start and Selenium's imports again
(about a quarter of a boot's CPU), and the pages those imports fill are
shared between the sessions until one writes them.

How a start goes (the node's side is ``wwnode/warmstarts.py``):

1. The node sends, on the socket that is this process's stdin (a
   ``SOCK_SEQPACKET`` pair: one message a start, never split), the
   session's arguments as JSON with three descriptors: the session's stdin
   and stdout pipes and its log file.
2. This process forks a go-between, which forks the session and exits at
   once.  The node is a subreaper (``wwnode/procs.py``), so the session is
   adopted by the node: the node waits for it, reads its exit status and
   kills it as it would a process it started itself.  The session writes
   its pid on a pipe once it leads a process group of its own; this
   process answers the node with it (``{"pid": P}``) or with why it could
   not (``{"error": E}``).
3. The session makes itself a process group of its own (``setsid``, as
   the node's cold start does; then it tells its pid), puts the three
   descriptors at 0, 1 and 2, waits until the node has adopted it (its
   parent-death signal must name the node, not the go-between about to
   exit), and runs the program's ``main`` with its arguments.  It never
   returns into this loop.

Once its imports are done it says ``{"ready": true}``; the node sends
nothing before that.  It ends when the node closes its end of the socket,
or dies (its parent-death signal, as a session's).

No thread is ever started here, and logging is not set up: a fork of a
process with threads can inherit a lock held by a thread that does not
exist in the child.  What goes wrong is written to stderr (the node's).
"""

from __future__ import annotations

import argparse
import array
import ctypes
import gc
import importlib
import os
import signal
import socket
import sys
import time
import traceback

import orjson
import setproctitle

PR_SET_PDEATHSIG = 1
MAX_REQUEST = 256 * 1024  # the arguments of one session; the node's are a few hundred bytes
ADOPTION_WAIT = 5.0  # seconds a session waits to be the node's; then it gives up


def program_main(module: str):
    """The ``main(argv)`` that ``python -m module`` would run."""
    try:
        program = importlib.import_module(f"{module}.__main__")
    except ModuleNotFoundError as e:
        if e.name != f"{module}.__main__":
            raise
        program = importlib.import_module(module)  # a single-file module (a test's stand-in)
    return program.main


def receive(sock: socket.socket) -> tuple[dict, list[int]] | None:
    """One start asked for, or None once the node has closed its end."""
    fds = array.array("i")
    data, ancdata, flags, _ = sock.recvmsg(MAX_REQUEST, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    if not data and not fds:
        return None
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return {"bad": "a start needs its arguments and exactly three descriptors"}, []
    try:
        request = orjson.loads(data)
    except orjson.JSONDecodeError:
        request = None
    if not isinstance(request, dict):
        for fd in fds:
            os.close(fd)
        return {"bad": "a start's arguments must be a JSON object"}, []
    return request, list(fds)


def name_itself(module: str, argv: list[str]) -> None:
    """The command line ps and the node's search for leftovers
    (``wwnode/procs.py``) read: a cold start's, as far as ``--profile``
    (the server's own would name no key and no profile).  It is written
    over the server's, which keeps room for it (``--room``), and not over
    the environment's: ``/proc/PID/environ`` stays the session's real one."""
    title = [sys.executable, "-m", module]
    for flag in ("--key", "--profile"):
        if flag in argv[:-1]:
            title += [flag, argv[argv.index(flag) + 1]]
    os.environ["SPT_NOENV"] = "1"  # read once, at the first title set
    setproctitle.setproctitle(" ".join(title))
    del os.environ["SPT_NOENV"]


def become_session(main, module: str, argv: list[str], fds: list[int], tell: int, node: int) -> int:
    """In the forked session: its own group, its pid told, its pipes at 0,
    1 and 2, its command line as a cold start's, the node its parent; then
    the program.  Returns its exit code."""
    os.setsid()
    # Told only now: a kill of its group (the node's kill) must find the group.
    os.write(tell, str(os.getpid()).encode())
    os.close(tell)
    name_itself(module, argv)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter has it
    # What the server froze stays out of the collector's sight (gc.freeze's
    # own advice): a collection would write to every page it walks.
    gc.enable()
    deadline = time.monotonic() + ADOPTION_WAIT
    while os.getppid() != node:  # the go-between exits right after the fork
        if time.monotonic() > deadline:
            print(f"forkserver: session {os.getpid()} was not adopted by the node {node}", file=sys.stderr)
            return 78
        time.sleep(0.0005)
    sys.argv = [sys.argv[0], *argv]
    return main(argv)


def start(main, module: str, request: dict, fds: list[int], node: int) -> dict:
    """Fork a session for one request; its pid, or why not."""
    argv = request.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return {"error": "argv must be a list of strings"}
    told, tell = os.pipe()
    try:
        go_between = os.fork()
    except OSError:
        for fd in (told, tell, *fds):
            os.close(fd)
        raise
    if go_between == 0:
        code = 1
        try:
            os.close(told)
            if os.fork() == 0:
                code = 1
                try:
                    code = become_session(main, module, argv, fds, tell, node)
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                except BaseException:  # the session's last words, in its log; then its exit
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            code = 0  # the session tells its pid itself, once it leads its group
        finally:
            os._exit(code)
    os.close(tell)
    for fd in fds:
        os.close(fd)
    with os.fdopen(told, "rb") as pipe:
        said = pipe.read()
    _, status = os.waitpid(go_between, 0)
    if not said or os.waitstatus_to_exitcode(status) != 0:
        return {"error": f"the fork failed (status {os.waitstatus_to_exitcode(status)})"}
    return {"pid": int(said)}


def serve(sock: socket.socket, main, module: str, node: int) -> int:
    sock.sendall(orjson.dumps({"ready": True}))
    while True:
        try:
            got = receive(sock)
        except ConnectionResetError:
            return 0
        if got is None:
            return 0
        request, fds = got
        if "bad" in request:
            answer = {"error": request["bad"]}
        else:
            try:
                answer = start(main, module, request, fds, node)
            except OSError as e:  # no memory or no processes left for a fork: this start fails, not the server
                answer = {"error": f"fork: {e.strerror}"}
        sock.sendall(orjson.dumps(answer))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sessionproc.forkserver",
                                     description="Fork sessions for a node from one process that has imported them.")
    parser.add_argument("--module", default="sessionproc", help="the program a session runs")
    parser.add_argument("--sessions-dir", required=True,
                        help="the node's sessions folder (it names this server as the node's)")
    parser.add_argument("--room", default="",
                        help="blanks: room in this command line for a session's own (ps shows it)")
    args = parser.parse_args(argv)
    node = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != node:
        return 1
    sock = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    # No collection while importing (it would leave freed holes among the
    # pages the sessions are to share), and what the imports made frozen
    # out of the collector's sight: gc.freeze's own advice for a fork server.
    gc.disable()
    session_main = program_main(args.module)
    gc.freeze()
    return serve(sock, session_main, args.module, node)


if __name__ == "__main__":
    sys.exit(main())
