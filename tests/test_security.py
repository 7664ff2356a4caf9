"""Secrets: no password of the node's URLs, in any form redis-py and pika
accept, reaches a log line, an event or ``wwnode status``; session
processes and their browsers run without the node's URLs and secrets in
their environment.  The single-machine deploy's own passwords are checked
in test_deploy.py."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from urllib.parse import quote

import orjson
import psutil
import pytest

from support import RedisServer, chrome_processes_under, descendants, wait_for
from wwnode.config import ConfigError, load, setting_names
from wwnode.redact import RedactingFormatter, redact_url, session_environment, url_secrets

SECRET = "Zq7vK2pW"  # the password in every form below


def pieces(secret: str) -> set[str]:
    """The secret as written and decoded, and each part of it between the
    characters a parser may stop at, long enough to mean something."""
    found = {secret, quote(secret, safe="")}
    found.update(p for p in re.split(r"[/?#@:%]", secret) if len(p) >= 4)
    return found


URL_FORMS = [
    # user information, as pika and redis-py read it
    ("amqp://wwnode:{s}@127.0.0.1:5672/%2F", SECRET),
    ("amqps://wwnode:{s}@rabbit.example:5671/prod", SECRET),
    ("redis://:{s}@127.0.0.1:6379/0", SECRET),  # a password alone
    ("redis://default:{s}@127.0.0.1:6379/0", SECRET),
    ("rediss://:{s}@cache.example:6380/1", SECRET),
    ("unix://:{s}@/run/redis.sock?db=0", SECRET),
    # percent-encoded / # ? @ : in the password
    ("redis://:{s}@127.0.0.1:6379/0", quote("Zq7v/K2p#W?x@y:z", safe="")),
    ("amqp://u:{s}@127.0.0.1:5672/%2F", quote("Zq7v/K2p#W?x@y", safe="")),
    # an @ left unencoded: the last one ends the password, as urllib reads it
    ("redis://:{s}@127.0.0.1:6379/0", "Zq7v@K2pW"),
    # the query, as redis-py reads it
    ("redis://127.0.0.1:6379/0?password={s}", SECRET),
    ("redis://127.0.0.1:6379/0?db=2&password={s}&socket_timeout=5", SECRET),
    ("rediss://cache.example:6380/0?password={s}", quote("Zq7v/K2p#W?x", safe="")),
    ("unix:///run/redis.sock?db=0&password={s}", SECRET),
    ("redis://127.0.0.1:6379/0?password={s}", "Zq7v@K2pW"),
    # pika's ssl_options may carry a key's password
    ("amqps://u:{s}@h:5671/%2F?ssl_options=" + quote("{'password': 'KeyPa55word'}", safe=""), SECRET),
]
# Unencoded / # ? in a password: no parser finds the password, so the URL
# means something else than meant.  Refused by the settings, and still
# masked wherever it is shown.
AMBIGUOUS = [
    ("redis://:{s}@127.0.0.1:6379/0", "Zq7v/K2pW"),
    ("redis://:{s}@127.0.0.1:6379/0", "Zq7v#K2pW"),
    ("redis://:{s}@127.0.0.1:6379/0", "Zq7v?K2pW"),
    ("rediss://user:{s}@cache.example:6380/0", "Zq7v/K2p#W?xyz"),
    ("amqp://wwnode:{s}@127.0.0.1:5672/%2F", "Zq7v/K2pW"),
    ("amqps://wwnode:{s}@127.0.0.1:5671/%2F", "Zq7v#K2pW"),
    ("amqp://wwnode:{s}@127.0.0.1:5672/%2F", "Zq7v?K2pW"),
    ("amqp://wwnode:{s}@127.0.0.1:5672/%2F", "1234/Zq7vK2pW"),  # digits first: a "port"
    ("redis://:{s}@127.0.0.1:6379/0", "1234#Zq7vK2pW"),
]


def assert_hidden(text: str, secret: str) -> None:
    for piece in pieces(secret):
        assert piece not in text, f"{piece!r} shows in {text!r}"


@pytest.mark.parametrize("form, secret", URL_FORMS + AMBIGUOUS)
def test_every_url_form_is_masked_in_logs(form, secret):
    url = form.format(s=secret)
    assert_hidden(redact_url(url), secret)
    # A line that quotes the URL whole (an exception's text, say) is masked
    # by the node's log formatter all the same.
    formatter = RedactingFormatter("%(message)s", url_secrets(url))
    record = logging.LogRecord("wwnode", logging.ERROR, __file__, 1, "cannot use %s", (url,), None)
    assert_hidden(formatter.format(record), secret)
    if "ssl_options" in form:
        assert "KeyPa55word" not in redact_url(url)


def test_a_masked_url_keeps_what_helps_find_the_server():
    assert redact_url(f"amqp://wwnode:{SECRET}@127.0.0.1:5672/%2F") == "amqp://wwnode:***@127.0.0.1:5672/%2F"
    assert redact_url(f"redis://:{SECRET}@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact_url(f"redis://h:6379/0?db=2&password={SECRET}") == "redis://h:6379/0?db=2&password=***"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("redis://:Zq7v/K2pW@127.0.0.1:6379/0") == "redis://***"  # cannot tell: all hidden


@pytest.mark.parametrize("form, secret", AMBIGUOUS)
def test_a_url_whose_password_cannot_be_told_apart_is_refused_without_showing_it(form, secret):
    name = "REDIS_URL" if form.startswith("redis") else "RABBIT_MQ_URL"
    with pytest.raises(ConfigError, match=f"{name}: cannot tell where its password ends") as caught:
        load({name: form.format(s=secret)}, dotenv=None)
    assert_hidden(str(caught.value), secret)


@pytest.mark.parametrize("form, secret", URL_FORMS)
def test_the_forms_the_libraries_read_are_accepted(form, secret):
    name = "REDIS_URL" if form.split(":")[0] in ("redis", "rediss", "unix") else "RABBIT_MQ_URL"
    assert getattr(load({name: form.format(s=secret)}, dotenv=None), name.lower()) == form.format(s=secret)


def test_a_bad_setting_on_the_command_line_says_which_without_the_password(tmp_path):
    env = {**os.environ, "REDIS_URL": "redis://:Zq7v#K2pW@127.0.0.1:6379/0"}
    done = subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "status"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "REDIS_URL" in done.stderr
    assert_hidden(done.stdout + done.stderr, "Zq7v#K2pW")


def test_a_session_gets_no_setting_of_the_node_and_nothing_secret():
    environ = {
        "PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "PYTHONPATH": "/srv/tests",
        "FAKESESSION_DIR": "/tmp/fake", "DISPLAY": ":0",
        "RABBIT_MQ_URL": f"amqp://wwnode:{SECRET}@127.0.0.1:5672/%2F", "REDIS_URL": "redis://127.0.0.1:6379/0",
        "WA_URL": "https://web.whatsapp.com/", "NODE_ID": "n1", "DEAD_LETTER_MAX_BODY": "4096",
        "AWS_SECRET_ACCESS_KEY": "x", "AWS_ACCESS_KEY_ID": "y", "GITHUB_TOKEN": "t", "DB_PASSWORD": "p",
        "WWNODE_RABBITMQ_PASSWORD": "p", "SOME_API_KEY": "k", "CLIENT_SECRET": "s",
        "CACHE": f"redis://:{SECRET}@cache:6379/0", "QUEUE": f"redis://cache/0?password={SECRET}",
        "HTTPS_PROXY": f"http://user:{SECRET}@proxy:3128",
    }
    kept = session_environment(environ, setting_names())
    assert kept == {name: environ[name] for name in ("PATH", "HOME", "LANG", "PYTHONPATH", "FAKESESSION_DIR",
                                                      "DISPLAY")}


# ------------------------------------------------------- a real node start

def environ_of(pid: int) -> dict[str, str]:
    """/proc/<pid>/environ, as the kernel holds it."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read()
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw.split(b"\0") if item)


def assert_environment_clean(pid: int, secret: str) -> dict[str, str]:
    env = environ_of(pid)
    assert not {"RABBIT_MQ_URL", "REDIS_URL", "SOME_API_TOKEN"} & set(env), f"process {pid}: {sorted(env)}"
    assert_hidden("\0".join(f"{k}={v}" for k, v in env.items()), secret)
    return env


@pytest.mark.services
def test_a_node_with_a_query_password_shows_it_nowhere(fake_nodes, rabbit, tmp_path):
    secret = "Zq7v/K2p#W?x"  # / # ? in the password, percent-encoded in the query as they must be
    (tmp_path / "redis-pw").mkdir()
    server = RedisServer(tmp_path / "redis-pw", password=secret)
    url = f"redis://127.0.0.1:{server.port}/0?password={quote(secret, safe='')}"
    try:
        node = fake_nodes("node-sec", redis_url=url, some_api_token=f"tok-{secret}")
        rabbit.publish("create_instance", {"key": "k-sec"})
        rabbit.expect("qr_instance", key="k-sec")
        rabbit.publish("create_instance", b"not json")  # a command_failed and a dead letter
        rabbit.expect("command_failed", reason="not_json")
        pid = wait_for(lambda: node.session_pids() and node.session_pids()[0], what="the session process")
        env = assert_environment_clean(pid, secret)
        assert env["FAKESESSION_DIR"] and env["PATH"]  # what a session needs stays

        status = subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "status", "--json"], cwd=tmp_path,
                                env={**node.env, "REDIS_URL": url}, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and "node-sec" in status.stdout
        assert node.terminate() == 0
        said = [node.log_text(), node.output(), status.stdout, status.stderr,
                (node.data_dir / "logs" / "sessions" / "k-sec.log").read_text(errors="replace"),
                *(orjson.dumps(e).decode() for e in rabbit.events)]
        assert "starting: RabbitMQ amqp://" in node.log_text()  # the start line was written, masked
        for text in said:
            assert_hidden(text, secret)
    finally:
        server.stop()


@pytest.mark.browser
def test_a_session_and_its_chrome_hold_no_url_or_secret_of_the_node(nodes, rabbit):
    node = nodes("node-env", some_api_token="tok-Zq7vK2pW")
    rabbit.publish("create_instance", {"key": "k-env"})
    rabbit.expect("qr_instance", key="k-env", timeout=90)
    session = wait_for(lambda: node.session_pids() and node.session_pids()[0], what="the session process")
    browsers = [p for p in descendants(session) if p.pid in {c.pid for c in chrome_processes_under(node.data_dir)}]
    assert browsers, "the session's Chrome runs"
    assert "RABBIT_MQ_URL" in environ_of(node.proc.pid)  # the node itself has them; they stop there
    for pid in [session, *(p.pid for p in descendants(session))]:
        try:
            assert_environment_clean(pid, "Zq7vK2pW")
        except (FileNotFoundError, ProcessLookupError):
            continue  # a helper process that just ended
    assert all(psutil.pid_exists(p.pid) for p in browsers)
