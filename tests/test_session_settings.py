"""Per-session settings (issue 24, the contract's "Per-session settings"):
checked as clients give them, kept with the session (its memory on the
node, the profile's file, Redis, the login's snapshot), handed to its
process and its sends, and changed by ``update_settings``.  No browser:
the node's rules on the unit rig (``support.node_rig``), the stores
against the real Redis."""

from __future__ import annotations

import os
import stat

import orjson
import pytest

from support import delivery, node_rig
from sessionproc import settingsfile
from sessionproc.protocol import (EXIT_CRASHED, SETTINGS_FILE, BadCommand, SessionArgs, chat_kind,
                                  decode_command)
from sessionproc.proxyurl import BadProxy, parse_proxy
from wwnode import states as S
from wwnode.commands import Command, Rejected, parse
from wwnode.sessionsettings import DEFAULT, Pacing, SessionSettings, Typing, from_stored
from wwnode.snapshots import capture, extract

PROXY = "http://alice:s3cr%40t-pw@proxy.example:3128"


def body(**fields) -> bytes:
    return orjson.dumps({"key": "k", **fields})


def refusal(queue: str, **fields) -> tuple[str, str]:
    with pytest.raises(Rejected) as e:
        parse(queue, body(**fields))
    return e.value.reason, e.value.detail


# ============================================================== checking
def test_a_create_takes_settings_whole_and_defaults_what_it_leaves_out():
    cmd = parse("create_instance", body(settings={"proxy": PROXY, "ignore": ["status", "groups"], "send_seen": False,
                                                  "typing": True, "pacing": {"min_gap_ms": 1500, "per_minute": 20},
                                                  "reject_calls": True, "call_reply": "Busy"}))
    s = cmd.settings
    assert s.proxy.host_port() == "proxy.example:3128" and (s.proxy.user, s.proxy.password) == ("alice", "s3cr@t-pw")
    assert s.ignore == ("groups", "status") and s.send_seen is False and s.typing == Typing()
    assert s.pacing == Pacing(1500, 0, 20) and s.reject_calls and s.call_reply == "Busy"
    assert parse("create_instance", body(settings={})).settings == DEFAULT
    assert parse("create_instance", body()).settings is None  # none given: the kept ones, if any
    # A v1 create is unchanged.
    assert parse("create_instance", body(pair_with_phone="5511999990001")).pair_with_phone == "5511999990001"


@pytest.mark.parametrize("settings, words", [
    ([], "must be a JSON object"),
    ({"proxyy": "http://h:1"}, "unknown setting proxyy"),
    ({"proxy": "ftp://h:21"}, "http://, https://, socks5://"),
    ({"proxy": "http://h:0"}, "port"),
    ({"proxy": "http://h:99999"}, "port"),
    ({"proxy": "http://h:x"}, "port"),
    ({"proxy": "http://:pw@h:1"}, "user name"),
    ({"proxy": "http://u:p/w@h:1"}, "percent-encode"),
    ({"proxy": "http://h:1/path"}, "no path"),
    ({"proxy": "http://exa mple:1"}, "spaces"),
    ({"proxy": 5}, "must be a string"),
    ({"send_seen": "yes"}, "send_seen must be true or false"),
    ({"reject_calls": 1}, "reject_calls must be true or false"),
    ({"call_reply": ""}, "call_reply"),
    ({"ignore": ["groups", "spam"]}, "not spam"),
    ({"ignore": "groups"}, "ignore must be a list"),
    ({"typing": "fast"}, "typing must be"),
    ({"typing": {"speed": 1}}, "typing has no speed"),
    ({"typing": {"max_ms": -1}}, "typing.max_ms"),
    ({"pacing": {"min_gap_ms": True}}, "pacing.min_gap_ms"),
    ({"pacing": {"per_minute": 0}}, "pacing.per_minute"),
    ({"pacing": {"gap": 1}}, "pacing has no gap"),
    ({"pacing": 5}, "pacing must be"),
])
def test_bad_settings_are_refused_with_the_field_named(settings, words):
    for queue in ("create_instance", "update_settings"):
        reason, detail = refusal(queue, settings=settings)
        assert reason == "bad_settings" and words in detail, (queue, detail)


def test_a_refusal_never_quotes_the_proxys_password():
    for url in ("http://u:hunter22/x@h:1", "socks5://u:hunter22@h:0", "https://u:hunter22@h:1/x?y", "http://u:hunter22@"):
        with pytest.raises(BadProxy) as e:
            parse_proxy(url)
        assert "hunter22" not in str(e.value), url


def test_update_settings_needs_settings_and_takes_nulls_back_to_the_default():
    assert refusal("update_settings") == ("missing_field", "settings is required")
    cmd = parse("update_settings", body(settings={"proxy": None, "typing": {"ms_per_char": 10}}))
    assert cmd.settings_change == {"proxy": None, "typing": Typing(ms_per_char=10)}
    before = SessionSettings(proxy=parse_proxy(PROXY), ignore=("status",), typing=Typing())
    after = before.changed(cmd.settings_change)
    assert after.proxy is None and after.ignore == ("status",) and after.typing == Typing(ms_per_char=10)


def test_the_forms_kept_shown_and_counted():
    s = parse("create_instance", body(settings={"proxy": PROXY, "typing": {"max_ms": 100}})).settings
    stored = s.stored()
    assert stored["proxy"] == "http://alice:s3cr%40t-pw@proxy.example:3128"  # whole: kept
    assert from_stored(orjson.loads(orjson.dumps(stored))) == s
    public = orjson.dumps(s.public()).decode()
    assert "s3cr" not in public and "http://alice:***@proxy.example:3128" in public
    assert s.proxy_host() == "proxy.example:3128"
    assert parse_proxy("socks5://[::1]").host_port() == "[::1]:1080"
    assert parse_proxy("HTTPS://Proxy.Example").url() == "https://proxy.example:443"
    # Typing grows with the text, up to its cap; media and empty texts are not typed.
    t = Typing()
    assert t.for_text("") == 0 and t.for_text("hi") < t.for_text("hello there") <= t.max_ms
    assert t.for_text("x" * 10_000) == t.max_ms
    # A newer node's field is left out, not a reason to lose the rest.
    assert from_stored({"send_seen": False, "future": 1}).send_seen is False


# ================================================== the session process
def test_the_session_is_told_its_settings_by_file_and_live_and_its_sends_by_line(tmp_path):
    path = tmp_path / SETTINGS_FILE
    path.write_bytes(orjson.dumps({"proxy": PROXY, "ignore": ["channels"], "send_seen": True}))
    args = SessionArgs.parse(["--key", "k", "--profile", str(tmp_path), "--url", "http://h/",
                              "--settings-file", str(path)])
    assert args.settings_file == path and PROXY not in " ".join(args.argv())  # never on a command line
    got = settingsfile.read(path)
    assert got.proxy.password == "s3cr@t-pw" and got.ignore == ("channels",)
    assert settingsfile.read(None) == settingsfile.SessionSettings()
    path.write_bytes(b'{"proxy": "http://u:hunter22@h:0"}')
    with pytest.raises(settingsfile.BadSettingsFile) as e:
        settingsfile.read(path)
    assert "hunter22" not in str(e.value)
    assert decode_command(b'{"cmd": "settings", "ignore": ["groups"]}')["ignore"] == ["groups"]
    for line in (b'{"cmd": "settings", "ignore": ["spam"]}', b'{"cmd": "settings"}',
                 b'{"cmd": "send", "id": "1", "chat_id": "1@c.us", "text": "t", "typing_ms": -1}',
                 b'{"cmd": "send", "id": "1", "chat_id": "1@c.us", "text": "t", "seen": 1}'):
        with pytest.raises(BadCommand):
            decode_command(line)


@pytest.mark.parametrize("message, kind", [
    ({"id": {"remote": "5511999990001@c.us"}, "from": "5511999990001@c.us"}, None),
    ({"id": {"remote": "120363000000000000@g.us"}}, "groups"),
    ({"id": {"remote": "status@broadcast"}, "isStatus": True}, "status"),
    ({"id": {"remote": "1234567890@broadcast"}, "broadcast": True}, "broadcast"),
    ({"id": {"remote": "120363000000000001@newsletter"}}, "channels"),
    ({"from": "120363000000000000@g.us"}, "groups"),
])
def test_which_kind_of_chat_a_message_is_of(message, kind):
    assert chat_kind(message) == kind


# ========================================================= on the node
def settings_in_file(child) -> dict:
    return orjson.loads(child.args.settings_file.read_bytes())


def test_a_create_with_settings_hands_them_to_the_process_and_keeps_them(tmp_path):
    rig = node_rig(tmp_path, send_seen=True)
    d = delivery()
    assert rig.node.ownership.claim("k")
    settings = {"proxy": PROXY, "ignore": ["status"], "send_seen": False}
    rig.carry_out(parse("create_instance", body(settings=settings)), d, 0.0)
    rec = rig.sessions.get("k")
    args = rec.child.args
    assert args.settings_file == rig.node.paths.profile("k") / SETTINGS_FILE
    assert stat.S_IMODE(os.stat(args.settings_file).st_mode) == 0o600  # it holds a password
    assert settings_in_file(rec.child)["proxy"] == "http://alice:s3cr%40t-pw@proxy.example:3128"
    assert not args.send_seen  # this key's, not the node's SEND_SEEN
    assert PROXY not in " ".join(args.argv()) and "s3cr" not in " ".join(args.argv())
    assert orjson.loads(rig.store.settings["k"])["ignore"] == ["status"]
    # Another key keeps the node's default.
    other, _ = rig.start("other")
    assert other.child.args.send_seen and settings_in_file(other.child)["send_seen"] is None


def test_sends_carry_the_keys_own_send_seen_and_typing(tmp_path):
    rig = node_rig(tmp_path, send_seen=True)
    assert rig.node.ownership.claim("k")
    rig.carry_out(parse("create_instance", body(settings={"send_seen": False, "typing": True})), delivery(), 0)
    rec = rig.sessions.get("k")
    rig.make_ready(rec)
    rig.sends.send(Command("send_message", "k", "c1", chat_id="5511999990001@c.us", text="hello"), delivery(), 0)
    line = rec.child.commands("send")[-1]
    assert line["seen"] is False and line["typing_ms"] == Typing().for_text("hello")
    other, _ = rig.start("o")
    rig.make_ready(other)
    rig.sends.send(Command("send_message", "o", "c2", chat_id="5511999990001@c.us", text="hello"), delivery(), 0)
    line = other.child.commands("send")[-1]
    assert line["seen"] is True and "typing_ms" not in line


def update(rig, key: str, settings: dict, now: float = 0.0, command_id: str = "u1"):
    d = delivery("update_settings")
    rig.dispatch._carry_out(parse("update_settings", orjson.dumps({"key": key, "settings": settings,
                                                                     "id": command_id})), d, now)
    return d


def test_update_settings_applies_live_and_answers_with_the_password_masked(tmp_path):
    rig = node_rig(tmp_path)
    rec, _ = rig.start("k")
    rig.make_ready(rec)
    first = rec.child
    d = update(rig, "k", {"ignore": ["groups", "channels"], "pacing": {"min_gap_ms": 10}})
    answer = rig.broker.events("settings_updated_instance")[-1]
    assert answer["restarted"] is False and answer["command_id"] == "u1"
    assert answer["settings"]["ignore"] == ["groups", "channels"] and answer["settings"]["pacing"]["min_gap_ms"] == 10
    assert first.commands("settings") == [{"cmd": "settings", "ignore": ["groups", "channels"]}]
    rig.broker.confirm_all()
    assert d.tag in rig.broker.acked and rec.child is first and rec.state == S.READY
    kept = orjson.loads(rig.store.settings["k"])
    assert kept["ignore"] == ["groups", "channels"] and settings_in_file(first)["ignore"] == ["groups", "channels"]
    # A new proxy: the browser starts again (not a crash), with the new file.
    update(rig, "k", {"proxy": PROXY}, now=1.0, command_id="u2")
    answer = rig.broker.events("settings_updated_instance")[-1]
    assert answer["restarted"] is True and answer["settings"]["proxy"] == "http://alice:***@proxy.example:3128"
    assert rec.state == S.RESTARTING and first.commands("stop")
    rig.exit(rec, 0, now=2.0)
    rig.node._tick(2.0)
    assert rec.child is not first and settings_in_file(rec.child)["proxy"].startswith("http://alice:s3cr")
    assert rig.node.counters.get("crashes") == 0
    assert b"s3cr" not in b"".join(i.body for i in rig.broker.published)


def test_update_settings_is_refused_for_no_session_and_for_a_failed_one(tmp_path):
    rig = node_rig(tmp_path)
    update(rig, "ghost", {"typing": True})
    assert rig.broker.failed()[-1][1] == "unknown_instance"
    rec, _ = rig.start("k")
    for t in range(10):  # crash until it fails for good
        if rec.state == S.FAILED:
            break
        if rec.child is not None:
            rig.exit(rec, EXIT_CRASHED, now=float(t * 10))
        rig.node._tick(float(t * 10 + 9))
    assert rec.state == S.FAILED
    update(rig, "k", {"typing": True})
    assert rig.broker.failed()[-1][1] == "session_failed"


def test_a_create_without_settings_takes_the_kept_ones_redis_first_then_the_profile(tmp_path):
    rig = node_rig(tmp_path)
    rig.store.settings["k"] = orjson.dumps({"ignore": ["status"], "send_seen": False}).decode()  # a drain, a failover
    rec, _ = rig.start("k")
    assert settings_in_file(rec.child)["ignore"] == ["status"] and not rec.child.args.send_seen
    # Destroyed (no logout): Redis forgets them, the profile keeps them
    # with the login; a create without settings gets them back, one with
    # settings replaces them.
    d = delivery("destroy_instance")
    rig.carry_out(Command("destroy_instance", "k"), d, 1.0)
    rig.exit(rec, 0, now=1.0)
    assert "k" not in rig.store.settings and rig.sessions.get("k") is None
    rec, _ = rig.start("k", now=2.0)
    assert settings_in_file(rec.child)["ignore"] == ["status"]
    rig.carry_out(Command("destroy_instance", "k"), delivery("destroy_instance"), 3.0)
    rig.exit(rec, 0, now=3.0)
    assert rig.node.ownership.claim("k")
    rig.carry_out(parse("create_instance", body(settings={})), delivery(), 4.0)
    assert settings_in_file(rig.sessions.get("k").child)["ignore"] == []


def test_a_restarted_node_brings_a_session_back_with_its_settings(tmp_path):
    rig = node_rig(tmp_path)
    assert rig.node.ownership.claim("k")
    rig.carry_out(parse("create_instance", body(settings={"proxy": PROXY, "ignore": ["groups"]})),
                        delivery(), 0.0)
    rig.node.sessions.shutdown(1.0)
    rig.exit(rig.sessions.get("k"), 0, now=1.0)
    again = node_rig(tmp_path)  # the node started again on its DATA_DIR; Redis forgot (a day later)
    again.node._start()
    again.node._tick(10.0)
    child = again.sessions.get("k").child
    assert settings_in_file(child)["proxy"].startswith("http://alice:s3cr") and settings_in_file(child)["ignore"] == [
        "groups"]
    assert orjson.loads(again.store.settings["k"])["ignore"] == ["groups"]


def test_a_crashed_session_restarts_with_its_settings(tmp_path):
    rig = node_rig(tmp_path)
    assert rig.node.ownership.claim("k")
    rig.carry_out(parse("create_instance", body(settings={"ignore": ["broadcast"]})), delivery(), 0.0)
    rec = rig.sessions.get("k")
    update(rig, "k", {"typing": True})
    rig.exit(rec, EXIT_CRASHED, now=1.0)
    rig.node._tick(5.0)
    assert settings_in_file(rec.child)["ignore"] == ["broadcast"] and settings_in_file(rec.child)["typing"] is True


def test_the_logins_snapshot_carries_the_settings(tmp_path):
    profile = tmp_path / "p"
    profile.mkdir()
    (profile / "wwnode-linked").write_text("1@c.us")
    (profile / SETTINGS_FILE).write_bytes(orjson.dumps({"proxy": PROXY}))
    capture(profile, tmp_path / "s.tgz")
    extract(tmp_path / "s.tgz", tmp_path / "elsewhere")
    assert orjson.loads((tmp_path / "elsewhere" / SETTINGS_FILE).read_bytes())["proxy"] == PROXY


# ======================================================== in real Redis
@pytest.mark.services
def test_redis_keeps_the_settings_as_long_as_the_key_lives(redis_url, redis_client):
    from wwnode.ownership import Leases
    from wwnode.redis_side.store import Store

    leases = Leases(5.0)
    store = Store(redis_url, "node-s", qr_ttl=60, lease_ttl=5.0, token_of=leases.token_of, replica_wait=0)
    other = Store(redis_url, "node-t", qr_ttl=60, lease_ttl=5.0, token_of=lambda key: "node-t:1", replica_wait=0)
    try:
        for key in ("set-a", "set-b", "set-c"):
            redis_client.delete(*(f"instances:{key}:{p}" for p in ("owner", "fence", "state", "settings")))
            leases.hold(key, store.claim(key))
            store.set_settings(key, '{"ignore": ["status"]}')
        other.set_settings("set-a", '{"ignore": []}')  # not its owner: refused
        assert store.settings_of("set-a") == '{"ignore": ["status"]}'
        assert 0 < redis_client.pttl("instances:set-a:settings") <= store.state_ms
        redis_client.pexpire("instances:set-a:settings", 1000)
        store.renew(leases.tokens(), True, {"node": "node-s"})
        assert redis_client.pttl("instances:set-a:settings") > 1000  # renewed with the lease
        store.release("set-a", leases.give_up("set-a"))  # a destroy: no key left behind
        assert not redis_client.exists("instances:set-a:settings")
        store.let_go("set-b", leases.give_up("set-b"))  # failed: kept for the next create
        store.hand_off("set-c", leases.give_up("set-c"))  # drained: kept for the next owner
        assert store.settings_of("set-b") and store.settings_of("set-c")
    finally:
        redis_client.delete(*(f"instances:{k}:{p}" for k in ("set-a", "set-b", "set-c")
                              for p in ("owner", "fence", "state", "settings")))
        store.close()
        other.close()
