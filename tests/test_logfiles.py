"""Logs rotated by size: node.log by its handler, session logs in place
(their writers, Chrome among them, keep the file open)."""

from __future__ import annotations

import contextlib
import logging
import os

from wwnode.logfiles import PrivateRotatingFileHandler, SessionLogs, rotate_in_place


def mode(path) -> str:
    return oct(path.stat().st_mode & 0o777)


@contextlib.contextmanager
def logging_to(handler: logging.Handler):
    """A logger of its own that writes only to ``handler``."""
    logger = logging.getLogger(f"test-logfiles-{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        try:
            handler.close()
        except OSError:
            pass  # a full disk: what it held is lost


def test_the_node_log_handler_keeps_its_backups_bounded_and_private(tmp_path):
    path = tmp_path / "node.log"
    with logging_to(PrivateRotatingFileHandler(path, maxBytes=1000, backupCount=2)) as logger:
        for i in range(200):
            logger.warning("line %03d %s", i, "x" * 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.log", "node.log.1", "node.log.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 1000 and mode(p) == "0o600"
    assert "line 199" in path.read_text()


def test_an_old_node_log_made_with_the_umask_becomes_private(tmp_path):
    path = tmp_path / "node.log"
    path.write_text("from an older run\n")
    os.chmod(path, 0o644)
    PrivateRotatingFileHandler(path, maxBytes=1000, backupCount=1).close()
    assert mode(path) == "0o600"


def test_rotating_in_place_keeps_a_writer_that_holds_the_file_writing_into_it(tmp_path):
    path = tmp_path / "k1.log"
    # A writer as Chrome is one: the file opened once, with O_APPEND, by someone else.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"first\n" * 100)
        rotate_in_place(path, backups=2)
        os.write(fd, b"second\n")
        assert path.read_bytes() == b"second\n"  # at the new end, not at its old offset
        assert (tmp_path / "k1.log.1").read_bytes() == b"first\n" * 100
        rotate_in_place(path, backups=2)
        os.write(fd, b"third\n")
        rotate_in_place(path, backups=2)
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1.log", "k1.log.1", "k1.log.2"]
    assert (tmp_path / "k1.log.1").read_bytes() == b"third\n"
    assert (tmp_path / "k1.log.2").read_bytes() == b"second\n"
    assert mode(tmp_path / "k1.log.1") == "0o600"


def test_session_logs_are_checked_on_their_interval_and_only_past_the_limit(tmp_path):
    errors = []
    logs = SessionLogs(tmp_path, max_bytes=100, backups=1, check_every=5, on_error=lambda *a: errors.append(a))
    big, small = tmp_path / "big.log", tmp_path / "small.log"
    big.write_bytes(b"x" * 100)
    small.write_bytes(b"x" * 99)
    (tmp_path / "big.log.1").write_bytes(b"older")
    logs.tick(0)
    assert big.read_bytes() == b"" and (tmp_path / "big.log.1").read_bytes() == b"x" * 100
    assert small.stat().st_size == 99 and not (tmp_path / "small.log.1").exists()
    big.write_bytes(b"y" * 200)
    logs.tick(4)
    assert big.stat().st_size == 200  # not checked before its interval
    logs.tick(5)
    assert big.read_bytes() == b"" and (tmp_path / "big.log.1").read_bytes() == b"y" * 200
    assert not (tmp_path / "big.log.2").exists() and errors == []


def test_a_zero_limit_turns_session_log_rotation_off(tmp_path):
    (tmp_path / "k.log").write_bytes(b"x" * 10_000)
    SessionLogs(tmp_path, max_bytes=0, backups=1, check_every=5, on_error=print).tick(0)
    assert (tmp_path / "k.log").stat().st_size == 10_000


def test_a_node_log_on_a_full_disk_says_so_once_and_carries_on(tmp_path, capsys):
    path = tmp_path / "node.log"
    path.symlink_to("/dev/full")  # every write: ENOSPC
    with logging_to(PrivateRotatingFileHandler(path, maxBytes=0, backupCount=1)) as logger:
        for i in range(5):
            logger.warning("line %d", i)
    err = capsys.readouterr().err
    assert err.count("cannot write") == 1 and "Traceback" not in err


def test_log_settings_are_checked():
    import pytest

    from wwnode.config import ConfigError, load

    assert (load(environ={}, dotenv=None).log_max_bytes, load(environ={}, dotenv=None).log_backups) == (10_000_000, 5)
    for env in ({"LOG_BACKUPS": "0"}, {"LOG_MAX_BYTES": "-5"}):
        with pytest.raises(ConfigError):
            load(environ=env, dotenv=None)
