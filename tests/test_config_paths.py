"""Settings and the data folder's safety rules."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest

from wwnode.config import Config, ConfigError, load, read_dotenv, redact_url
from wwnode.paths import Paths, UnsafePath

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_lists_every_setting_and_loads():
    text = (ROOT / ".env.example").read_text()
    missing = [f.name.upper() for f in fields(Config) if f"\n{f.name.upper()}=" not in text]
    assert missing == []
    cfg = load(environ={}, dotenv=ROOT / ".env.example")
    assert cfg == Config(node_id=cfg.node_id)  # the example shows the defaults


def test_environment_wins_over_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('# comment\nNODE_ID=from-file\nQR_TTL="30"\nexport MAX_SESSIONS=3\n')
    cfg = load(environ={"NODE_ID": "from-env"}, dotenv=env_file)
    assert (cfg.node_id, cfg.qr_ttl, cfg.max_sessions) == ("from-env", 30, 3)


@pytest.mark.parametrize("env, words", [
    ({"QR_TTL": "soon"}, "QR_TTL"),
    ({"LOG_MESSAGE_BODIES": "maybe"}, "LOG_MESSAGE_BODIES"),
    ({"ADMIT_LOW": "95"}, "ADMIT_LOW"),
    ({"NODE_ID": "a/b"}, "NODE_ID"),
    ({"RABBIT_MQ_URL": "http://x"}, "RABBIT_MQ_URL"),
    ({"WA_URL": "file:///etc/passwd"}, "WA_URL"),
    ({"PING_TIMEOUT": "0"}, "PING_TIMEOUT"),
    ({"USER_AGENT": "Mozilla/5.0\nX-Injected: 1"}, "USER_AGENT"),
    ({"BOOT_TIMEOUT": "0"}, "BOOT_TIMEOUT"),
    ({"SEND_SEEN": "sometimes"}, "SEND_SEEN"),
    ({"BLOB_STORE_URL": "s3:///no-bucket"}, "BLOB_STORE_URL"),
    ({"BLOB_STORE_URL": "file://elsewhere/x"}, "BLOB_STORE_URL"),
    ({"FAILOVER": "sometimes"}, "FAILOVER"),
    ({"PROFILE_SNAPSHOT_INTERVAL": "-1"}, "PROFILE_SNAPSHOT_INTERVAL"),
    ({"COMMAND_BYTES_LIMIT": "65536"}, "COMMAND_BYTES_LIMIT"),
])
def test_bad_settings_are_named(env, words):
    with pytest.raises(ConfigError, match=words):
        load(environ=env, dotenv=None)


def test_dotenv_without_equals_is_an_error(tmp_path):
    bad = tmp_path / ".env"
    bad.write_text("JUSTAWORD\n")
    with pytest.raises(ConfigError, match=":1:"):
        read_dotenv(bad)


def test_passwords_are_redacted():
    assert redact_url("amqp://user:s3cret@host:5672/%2F") == "amqp://user:***@host:5672/%2F"
    assert redact_url("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_keys_cannot_leave_the_data_folder(tmp_path):
    paths = Paths(tmp_path)
    paths.ensure()
    for key in ("../x", "a/b", "", "a" * 65, ".."):
        with pytest.raises(UnsafePath):
            paths.session_dir(key)
    assert paths.session_dir("ok_key-1") == tmp_path.resolve() / "sessions" / "ok_key-1"


def test_a_planted_symlink_is_refused(tmp_path):
    paths = Paths(tmp_path / "data")
    paths.ensure()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, paths.sessions / "victim")
    with pytest.raises(UnsafePath):
        paths.profile("victim")
    with pytest.raises(UnsafePath):
        paths.mark_wanted("victim")
    assert list(outside.iterdir()) == []
    assert paths.wanted_keys() == []


def test_folders_are_private(tmp_path):
    paths = Paths(tmp_path / "data")
    paths.ensure()
    paths.mark_wanted("k")
    assert oct(paths.sessions.stat().st_mode & 0o777) == "0o700"
    assert oct(paths.session_dir("k").stat().st_mode & 0o777) == "0o700"


def test_the_session_settings_reach_the_session_process_as_flags(tmp_path):
    from sessionproc.protocol import SessionArgs
    from sessionproc.useragent import desktop_user_agent
    from wwnode.starts import Starts

    def flags_for(environ: dict) -> SessionArgs:
        cfg = load(environ={"DATA_DIR": str(tmp_path / "data"), **environ}, dotenv=None)
        starts = Starts(cfg, Paths(cfg.data_dir), spawner=None, health=None)
        argv = starts.args_for("k1").argv()
        assert argv[1:3] == ["-m", "sessionproc"]
        return SessionArgs.parse(argv[3:])  # what the session process reads back

    defaults = flags_for({})
    # The node asks Chromium its version once and hands every session the
    # desktop user agent, so no session start asks it again.
    assert (defaults.user_agent, defaults.boot_timeout, defaults.send_seen) == (
        desktop_user_agent("/usr/bin/chromium"), 60.0, True)
    assert flags_for({"CHROME_PATH": "/nonexistent/chromium"}).user_agent == ""  # the session says why
    parsed = flags_for({"USER_AGENT": "Mozilla/5.0 (X11) Chrome/1.0.0.0", "BOOT_TIMEOUT": "7.5", "SEND_SEEN": "no"})
    assert (parsed.user_agent, parsed.boot_timeout, parsed.send_seen) == ("Mozilla/5.0 (X11) Chrome/1.0.0.0", 7.5, False)
