"""The session process, driven over its pipes only, with real Chromium and
the stand-in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from sessionproc import browser
from sessionproc.devtools import DevTools, DevToolsError, page_websocket_url
from sessionproc.pagescripts import SEND_HELPERS_JS
from sessionproc.protocol import EXIT_CANNOT_START, EXIT_CRASHED, EXIT_ENDED, EXIT_STOPPED
from support import all_gone, chrome_processes_under, descendants, new_phone, wait_for
from wwnode.fakewa.client import Control, ControlError

pytestmark = pytest.mark.browser

TRICKY_TEXTS = [
    'say "hi" and \'bye\'',
    "back\\slash \\n \\u0041 not escapes",
    "</script><script>window.__pwned = 1</script>",
    "line 1\nline 2\r\nline 3\ttab",
    "emoji 😀👍🏽 and ünïcödé",
    "${not_a_template} `backticks` \u2028\u2029",
    "x" * 5000,
]

WWEBJS_MESSAGE_FIELDS = {
    "id", "body", "type", "timestamp", "from", "to", "author", "fromMe", "hasMedia", "ack",
    "isForwarded", "mentionedIds", "deviceType", "forwardingScore", "isStatus", "isStarred",
    "broadcast", "hasQuotedMsg", "links",
}


def in_page(session, expression: str):
    """The value of ``expression`` in the page of a running session's
    Chromium (reached through the DevTools port it notes in its profile)."""
    port = (session.profile / "DevToolsActivePort").read_text().split()[0]
    tools = DevTools(page_websocket_url(f"127.0.0.1:{port}"), lambda *_: None, lambda: None)
    try:
        done = tools.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
    finally:
        tools.close()
    assert "exceptionDetails" not in done, done
    return done["result"].get("value")


def authenticate(session, control, phone: str) -> dict:
    qr = session.expect("qr", attempt=1)
    control.scan(qr["qr"], phone)
    session.expect("authenticated")
    return session.expect("ready")


def test_the_browser_presents_itself_as_desktop_chromium(page, wa):
    # The options every launch uses (the session's and the tests' shared
    # browser alike), read inside the page.
    page.get(wa.url)
    ua, webdriver = page.execute_script("return [navigator.userAgent, navigator.webdriver]")
    major = browser.chrome_major_version(browser.DEFAULT_CHROME)
    assert "Headless" not in ua and f" Chrome/{major}.0.0.0 " in ua
    assert webdriver is False


def test_qr_is_shown_and_refreshed(sessions, make_wa):
    wa = make_wa(qr_first=0.8, qr_next=0.4)
    s = sessions("qr-key", url=wa.url)
    first = s.expect("qr", attempt=1)
    second = s.expect("qr", attempt=2)
    assert len(first["qr"].split(",")) == 5 and first["qr"] != second["qr"]
    assert [p["qr"] for p in Control(wa.url).pending_qr()] == [second["qr"]]
    assert s.stop() == EXIT_STOPPED


def test_scan_authenticates_send_and_receive(sessions, wa, control):
    s = sessions("k1")
    phone, friend = new_phone(), new_phone()
    assert authenticate(s, control, phone)["me"] == f"{phone}@c.us"

    for i, text in enumerate(TRICKY_TEXTS):
        s.send({"cmd": "send", "id": f"c{i}", "chat_id": f"{friend}@c.us", "text": text})
    ids = [s.expect("sent", id=f"c{i}")["message_id"] for i in range(len(TRICKY_TEXTS))]
    sent = control.sent_by(phone)
    assert [m["body"] for m in sent] == TRICKY_TEXTS
    assert [f"true_{friend}@c.us_{m['id']}" for m in sent] == ids

    msg_id = control.deliver(phone, friend, "hello from the phone")
    message = s.expect("message")["message"]
    assert WWEBJS_MESSAGE_FIELDS <= set(message)
    assert message["id"] == {"fromMe": False, "remote": f"{friend}@c.us", "id": msg_id,
                             "_serialized": f"false_{friend}@c.us_{msg_id}"}
    assert (message["body"], message["from"], message["to"], message["fromMe"]) == (
        "hello from the phone", f"{friend}@c.us", f"{phone}@c.us", False)
    assert message["type"] == "chat" and message["hasMedia"] is False
    # Our own sends are not reported as inbound messages.
    assert [e for e in s.seen if e["event"] == "message"] == [s.seen[-1]]
    assert s.stop() == EXIT_STOPPED


def test_send_before_ready_and_bad_sends_fail_with_reasons(sessions, wa, control):
    s = sessions("k1")
    qr = s.expect("qr")["qr"]
    s.send({"cmd": "send", "id": "early", "chat_id": "5511999990001@c.us", "text": "hi"})
    assert s.expect("send_failed", id="early")["reason"] == "not_ready"
    control.scan(qr, new_phone())
    s.expect("ready")
    s.send({"cmd": "send", "id": "bad", "chat_id": "not-a-chat", "text": "hi"})
    assert s.expect("send_failed", id="bad")["reason"] == "bad_chat_id"
    s.send({"cmd": "send", "id": "badlid", "chat_id": "12ab@lid", "text": "hi"})
    assert s.expect("send_failed", id="badlid")["reason"] == "bad_lid"
    s.send({"cmd": "send", "id": "badmention", "chat_id": "5511999990001@c.us", "text": "hi", "mentions": ["1@lid"]})
    assert s.expect("send_failed", id="badmention")["reason"] == "bad_lid"
    s.send({"cmd": "send", "id": "long", "chat_id": "5511999990001@c.us", "text": "x" * 65537})
    assert s.expect("send_failed", id="long")["reason"] == "too_long"
    assert s.stop() == EXIT_STOPPED


def test_sends_the_page_refuses_or_answers_too_late_fail_with_reasons(sessions, wa, control):
    phone, friend = new_phone(), new_phone()
    s = sessions("k1", "--send-timeout", "1")
    authenticate(s, control, phone)
    control.sends(phone, "fail")
    s.send({"cmd": "send", "id": "f1", "chat_id": f"{friend}@c.us", "text": "refused"})
    assert s.expect("send_failed", id="f1")["reason"] == "rejected"
    control.sends(phone, "slow", delay=3)
    s.send({"cmd": "send", "id": "f2", "chat_id": f"{friend}@c.us", "text": "crawling"})
    assert s.expect("send_failed", id="f2")["reason"] == "timeout"
    control.sends(phone, "ok")
    s.send({"cmd": "send", "id": "f3", "chat_id": f"{friend}@c.us", "text": "fine again"})
    s.expect("sent", id="f3", timeout=30)
    assert "refused" not in [m["body"] for m in control.sent_by(phone)]
    assert s.stop() == EXIT_STOPPED


def test_restart_on_same_profile_authenticates_without_qr(sessions, wa, control):
    phone = new_phone()
    first = sessions("k1")
    authenticate(first, control, phone)
    assert first.stop() == EXIT_STOPPED

    second = sessions("k1")
    assert second.expect("ready")["me"] == f"{phone}@c.us"
    assert "qr" not in second.names()
    assert second.stop() == EXIT_STOPPED


def test_unlinked_while_down_is_an_auth_failure(sessions, wa, control):
    phone = new_phone()
    first = sessions("k1")
    authenticate(first, control, phone)
    first.stop()
    control.logout(phone)

    second = sessions("k1")
    assert second.expect("auth_failure")["reason"] == "credentials_rejected"
    assert second.wait() == EXIT_ENDED
    assert "authenticated" not in second.names() and "qr" not in second.names()

    # The dead link is forgotten: the next start offers a QR code.
    third = sessions("k1")
    assert third.expect("qr")["attempt"] == 1
    third.stop()


@pytest.mark.parametrize("qr_count, qr_max", [(10, "2"), (2, "5")], ids=["our-limit", "the-page-gives-up"])
def test_qr_attempts_running_out_is_an_auth_failure(sessions, make_wa, qr_count, qr_max):
    wa = make_wa(qr_first=0.3, qr_next=0.2, qr_count=qr_count)
    s = sessions("k1", "--qr-max", qr_max, url=wa.url)
    assert s.expect("auth_failure")["reason"] == "qr_attempts_exhausted"
    assert [e["attempt"] for e in s.seen if e["event"] == "qr"] == [1, 2]
    assert s.wait() == EXIT_ENDED


@pytest.mark.parametrize("phone_does, reason", [(Control.logout, "LOGOUT"), (Control.conflict, "CONFLICT")],
                         ids=["logout", "conflict"])
def test_the_phone_ending_the_session_disconnects(sessions, wa, control, phone_does, reason):
    phone = new_phone()
    s = sessions("k1")
    authenticate(s, control, phone)
    phone_does(control, phone)
    assert s.expect("disconnected")["reason"] == reason
    assert s.wait() == EXIT_ENDED


def test_stop_with_logout_unlinks_and_deletes_the_profile(sessions, wa, control):
    phone = new_phone()
    s = sessions("k1")
    authenticate(s, control, phone)
    s.send({"cmd": "stop", "logout": True})
    assert s.wait() == EXIT_STOPPED
    assert not s.profile.exists()
    with pytest.raises(ControlError) as e:
        control.logout(phone)  # nothing is linked to the phone any more
    assert e.value.status == 404


def test_malformed_input_gets_error_events_and_the_process_goes_on(sessions, wa):
    s = sessions("k1")
    s.expect("qr")
    bad_lines = [b"not json\n", b"[1,2]\n", b'{"cmd": "explode"}\n', b'{"cmd": "send", "id": "x"}\n',
                 b'{"cmd": "ping"}\n', b"\xff\xfe\n", b'{"cmd": "stop", "logout": "yes"}\n',
                 b"x" * (1024 * 1024 + 10) + b"\n"]
    for line in bad_lines:
        s.send(line)
    for _ in bad_lines:
        assert s.expect("error")["reason"] == "bad_command"
    s.send({"cmd": "ping", "id": "p1"})
    pong = s.expect("pong", id="p1")
    assert pong["ok"] is True and pong["state"] == "UNPAIRED"
    assert s.stop() == EXIT_STOPPED


def test_a_hung_page_fails_its_health_check(sessions, wa, control):
    phone = new_phone()
    s = sessions("k1", "--ping-timeout", "1")
    authenticate(s, control, phone)
    s.send({"cmd": "ping", "id": "p1"})
    assert s.expect("pong", id="p1")["ok"] is True
    assert control.freeze(phone) == 1  # answered once the page says it is hung
    s.send({"cmd": "ping", "id": "p2"})
    pong = s.expect("pong", id="p2")
    assert pong["ok"] is False and "did not answer" in pong["detail"]
    s.kill()


def test_end_of_input_stops_cleanly(sessions, wa):
    s = sessions("k1")
    s.expect("qr")
    s.proc.stdin.close()
    assert s.wait() == EXIT_STOPPED


def test_chrome_killed_means_crashed_and_nothing_left(sessions, wa, control):
    s = sessions("k1")
    pids = s.expect("browser")["pids"]
    s.expect("qr")
    chrome = [p for p in descendants(pids[0]) if "chrom" in p.name()]
    browser_proc = next(p for p in chrome if p.ppid() == pids[0])
    tree = descendants(s.proc.pid)
    browser_proc.kill()
    assert s.expect("disconnected")["reason"] in ("browser_closed", "page_crashed")
    assert s.wait() == EXIT_CRASHED
    wait_for(lambda: all_gone(tree), timeout=10, what="the whole tree to exit")


def command_line(p) -> str:
    """A process's command line; "" for one gone or a zombie meanwhile
    (Chromium's short-lived helpers)."""
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def test_renderer_killed_means_crashed(sessions, wa):
    s = sessions("k1")
    pids = s.expect("browser")["pids"]
    s.expect("qr")
    renderers = [p for p in descendants(pids[0]) if "--type=renderer" in command_line(p)]
    assert renderers
    for r in renderers:
        r.kill()
    assert s.expect("disconnected")["reason"] == "page_crashed"
    assert s.wait() == EXIT_CRASHED


def test_debian_s_launcher_script_is_skipped_for_its_binary(tmp_path, monkeypatch):
    launcher, binary = tmp_path / "chromium", tmp_path / "lib-chromium"
    launcher.write_text("#!/bin/sh\nexec lib-chromium \"$@\"\n")
    binary.write_bytes(b"\x7fELF")
    binary.chmod(0o755)
    monkeypatch.setattr(browser, "DEBIAN_LAUNCHER", (str(launcher), str(binary)))
    assert browser.browser_binary(str(launcher)) == str(binary)
    assert browser.browser_binary(str(tmp_path / "other")) == str(tmp_path / "other")  # as given
    launcher.write_bytes(b"\x7fELF")  # a binary there: run as it is
    assert browser.browser_binary(str(launcher)) == str(launcher)
    launcher.write_text("#!/bin/sh\n")
    binary.unlink()  # no binary to run instead
    assert browser.browser_binary(str(launcher)) == str(launcher)


def test_page_calls_over_devtools_pass_data_as_data_and_keep_errors_and_timeouts_apart(sessions, wa):
    # A text send is such a call (pagescripts.SEND_FN): a throw in the page
    # must read as the page's error, no answer in time as a timeout, and
    # what the call hands over must arrive as data, never as source.
    s = sessions("k1")
    s.expect("qr")
    port = (s.profile / "DevToolsActivePort").read_text().split()[0]
    tools = DevTools(page_websocket_url(f"127.0.0.1:{port}"), lambda *_: None, lambda: None)
    try:
        odd = ['"); throw 1; ("', "</script>", {"quoted": None, "mentions": ["1@lid"], "text": "ünï 😀 \u2028"}]
        assert tools.call_function("async function (a, b, c) { return [a, b, c]; }", odd) == odd
        with pytest.raises(DevToolsError, match="refused here"):
            tools.call_function("async function () { throw new Error('refused here'); }", [])
        with pytest.raises(TimeoutError):
            tools.call_function("function () { return new Promise(() => {}); }", [], timeout=0.5)
        # A call after a timeout runs as any other: the connection is not left waiting.
        assert tools.call_function("function () { return typeof this.document; }", []) == "object"
    finally:
        tools.close()
    assert s.stop() == EXIT_STOPPED


def test_a_page_call_after_the_document_was_replaced_runs_once_on_the_new_one(sessions, wa):
    # The page's global object is asked once and kept (DevTools.call_function);
    # a reload replaces it, and the next call is refused on the old one
    # before it runs, then made on the new document.
    s = sessions("k1")
    s.expect("qr")
    port = (s.profile / "DevToolsActivePort").read_text().split()[0]
    tools = DevTools(page_websocket_url(f"127.0.0.1:{port}"), lambda *_: None, lambda: None)
    count = "function () { this.__wwnodeTestCalls = (this.__wwnodeTestCalls || 0) + 1; return this.__wwnodeTestCalls; }"

    def reloaded():
        state = tools.call("Runtime.evaluate", {"expression": "[typeof __wwnodeTestCalls, document.readyState]",
                                                "returnByValue": True})
        return state["result"]["value"] == ["undefined", "complete"]

    try:
        assert [tools.call_function(count, []) for _ in range(3)] == [1, 2, 3]
        tools.call("Page.reload")
        wait_for(reloaded, timeout=20, what="the page to load again")
        assert tools.call_function(count, []) == 1
        assert tools.call_function(count, []) == 2
    finally:
        tools.close()
    assert s.stop() == EXIT_STOPPED


def test_the_first_tab_is_blank_and_the_boot_s_phases_are_logged(sessions, wa):
    # Not Chromium's New Tab page, a WebUI renderer of its own that the
    # page could not reuse (browser.START_PREFS).
    s = sessions("k1")
    s.expect("qr")
    port = (s.profile / "DevToolsActivePort").read_text().split()[0]
    tools = DevTools(page_websocket_url(f"127.0.0.1:{port}"), lambda *_: None, lambda: None)
    try:
        history = tools.call("Page.getNavigationHistory")
    finally:
        tools.close()
    assert [e["url"] for e in history["entries"]][:1] == ["about:blank"]
    assert history["entries"][-1]["url"].startswith(wa.url)
    log = s.log_file.read_text()
    for phase in ("process up in ", "browser up in ", "browser and DevTools ready in "):
        assert phase in log


def test_kill_9_of_the_session_process_takes_its_browser_along(sessions, wa):
    s = sessions("k1")
    s.expect("qr")
    tree = descendants(s.proc.pid)
    assert any("chrom" in p.name() for p in tree)
    s.kill()
    wait_for(lambda: all_gone(tree), timeout=10, what="chromedriver and Chrome to exit")
    assert chrome_processes_under(s.profile) == []


def test_parent_death_ends_the_session(tmp_path, wa):
    # A parent that starts a session and is then killed with SIGKILL.
    parent_code = textwrap.dedent(f"""
        import subprocess, sys
        p = subprocess.Popen([sys.executable, "-m", "sessionproc", "--key", "orphan",
                              "--profile", {str(tmp_path / 'p')!r}, "--url", {wa.url!r},
                              "--log-file", {str(tmp_path / 'orphan.log')!r}],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for line in p.stdout:
            if b'"qr"' in line:
                print(p.pid, flush=True)
                break
        input()  # wait to be killed
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    child_pid = int(parent.stdout.readline())
    tree = [psutil.Process(child_pid), *descendants(child_pid)]
    parent.kill()
    parent.wait()
    wait_for(lambda: all_gone(tree), timeout=15, what="the orphaned session and its browser to exit")


def test_profile_with_stale_locks_still_starts(sessions, wa, control, tmp_path):
    phone = new_phone()
    first = sessions("k1")
    authenticate(first, control, phone)
    first.kill()  # Chrome dies without cleaning its profile
    profile = first.profile
    wait_for(lambda: chrome_processes_under(profile) == [], what="Chrome to exit")
    # What a Chrome killed mid-run leaves behind, pointing at a dead process.
    for name in ("SingletonLock", "SingletonSocket", "SingletonCookie"):
        (profile / name).unlink(missing_ok=True)
    os.symlink(f"{socket.gethostname()}-999999", profile / "SingletonLock")
    os.symlink("/tmp/nonexistent/SingletonSocket", profile / "SingletonSocket")
    os.symlink("123456789", profile / "SingletonCookie")

    second = sessions("k1")
    assert second.expect("ready")["me"] == f"{phone}@c.us"
    second.stop()


def test_profile_held_by_a_live_process_is_a_crash_worth_retrying(sessions, wa, tmp_path):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        profile = tmp_path / "profiles" / "held"
        profile.mkdir(parents=True)
        os.symlink(f"{socket.gethostname()}-{holder.pid}", profile / "SingletonLock")
        s = sessions("held")
        event = s.expect("disconnected")
        assert event["reason"] == "browser_failed" and "in use" in event["detail"]
        assert s.wait() == EXIT_CRASHED
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    "args",
    [
        ["--key", "../x", "--profile", "/tmp/x", "--url", "http://127.0.0.1:1/"],
        ["--key", "a" * 65, "--profile", "/tmp/x", "--url", "http://127.0.0.1:1/"],
        ["--key", "ok", "--profile", "/tmp/x", "--url", "javascript:alert(1)"],
        ["--profile", "/tmp/x", "--url", "http://127.0.0.1:1/"],
        ["--key", "ok", "--profile", "/tmp/x", "--url", "http://127.0.0.1:1/", "--boot-timeout", "0"],
        ["--key", "ok", "--profile", "/tmp/x", "--url", "http://127.0.0.1:1/", "--user-agent", "UA\r\nX-Evil: 1"],
    ],
)
def test_bad_arguments_cannot_start(args):
    proc = subprocess.run([sys.executable, "-m", "sessionproc", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=30)
    assert proc.returncode == EXIT_CANNOT_START
    assert proc.stdout == b""
    assert b"sessionproc:" in proc.stderr


def test_missing_chrome_cannot_start(sessions, wa, tmp_path):
    s = sessions("k1", "--chrome", str(tmp_path / "no-chrome"))
    event = s.expect("disconnected")
    assert event["reason"] == "cannot_start" and "no-chrome" in event["detail"]
    assert s.wait() == EXIT_CANNOT_START


def test_log_file_has_events_but_not_message_texts(sessions, wa, control):
    phone, friend = new_phone(), new_phone()
    s = sessions("k1")
    authenticate(s, control, phone)
    s.send({"cmd": "send", "id": "c1", "chat_id": f"{friend}@c.us", "text": "secret outbound words"})
    s.expect("sent")
    control.deliver(phone, friend, "secret inbound words")
    s.expect("message")
    s.stop()
    text = s.log_text()
    assert "event ready" in text and "sent c1" in text
    assert "secret" not in text
    assert oct(s.log_file.stat().st_mode & 0o777) == "0o600"
    assert oct(s.profile.stat().st_mode & 0o777) == "0o700"


def test_sigterm_stops_cleanly(sessions, wa):
    s = sessions("k1")
    s.expect("qr")
    s.proc.send_signal(signal.SIGTERM)
    assert s.wait() == EXIT_STOPPED


# ----------------------------------------------- the page the session sees
def test_the_session_reports_what_the_page_sees_of_the_browser(sessions, wa):
    s = sessions("k1")
    loaded = s.expect("loaded")
    major = browser.chrome_major_version(browser.DEFAULT_CHROME)
    assert "Headless" not in loaded["user_agent"] and f" Chrome/{major}.0.0.0 " in loaded["user_agent"]
    assert loaded["webdriver"] is False and loaded["version"]
    s.expect("qr")  # after loaded: the page was checked before anything relied on it
    assert s.stop() == EXIT_STOPPED

    mine = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0.0.0 Safari/537.36"
    s = sessions("k2", "--user-agent", mine)
    assert s.expect("loaded")["user_agent"] == mine
    assert s.stop() == EXIT_STOPPED


def test_a_page_lacking_what_a_qr_code_needs_ends_the_session_for_good_at_load(sessions, make_wa):
    wa = make_wa(drop_modules=("WAWebUserPrefsMultiDevice", "WAWebAdvSignatureApi"))
    s = sessions("k1", url=wa.url)
    event = s.expect("disconnected")
    assert event["reason"] == "incompatible_page"
    assert "WAWebUserPrefsMultiDevice.getADVSecretKey or WAWebAdvSignatureApi.getADVSecretKey" in event["detail"]
    assert s.wait() == EXIT_CANNOT_START
    assert not {"loaded", "qr", "state"} & set(s.names())  # it stopped before relying on the page


@pytest.mark.parametrize("dropped, named", [
    ("WALinkify", "WALinkify.findLinks"),
    ("WAWebUpdateUnreadChatAction", "WAWebUpdateUnreadChatAction.sendSeen"),
])
def test_a_page_lacking_what_messages_need_ends_the_session_for_good_once_synced(sessions, make_wa, dropped, named):
    # whatsapp-web.js touches these only after the sync, so the session does
    # not ask for them before: the QR code still shows.
    wa = make_wa(drop_modules=(dropped,))
    s = sessions("k1", url=wa.url)
    qr = s.expect("qr", attempt=1)
    Control(wa.url).scan(qr["qr"], new_phone())
    event = s.expect("disconnected")
    assert event["reason"] == "incompatible_page" and named in event["detail"]
    assert s.wait() == EXIT_CANNOT_START
    assert not {"authenticated", "ready"} & set(s.names())


def test_the_adv_secret_comes_from_the_older_module_where_the_page_has_only_that(sessions, make_wa):
    wa = make_wa(drop_modules=("WAWebUserPrefsMultiDevice",))
    s = sessions("k1", url=wa.url)
    phone = new_phone()
    assert authenticate(s, Control(wa.url), phone)["me"] == f"{phone}@c.us"  # the phone accepted the QR
    assert s.stop() == EXIT_STOPPED


def test_without_send_seen_the_session_neither_needs_nor_uses_it(sessions, make_wa):
    wa = make_wa(drop_modules=("WAWebUpdateUnreadChatAction",))
    control = Control(wa.url)
    s = sessions("k1", "--no-send-seen", url=wa.url)
    phone, friend = new_phone(), new_phone()
    authenticate(s, control, phone)
    s.send({"cmd": "send", "id": "c1", "chat_id": f"{friend}@c.us", "text": "hi"})
    s.expect("sent", id="c1")
    assert [m["body"] for m in control.sent_by(phone)] == ["hi"]
    assert s.stop() == EXIT_STOPPED


def test_past_the_time_the_page_allows_an_edit_or_a_deletion_is_refused_with_its_reason(sessions, make_wa):
    # A page that allows no time at all: every message is past it.
    wa = make_wa(edit_window=0, revoke_window=0)
    control = Control(wa.url)
    s = sessions("k1", url=wa.url)
    phone, friend = new_phone(), new_phone()
    authenticate(s, control, phone)
    s.send({"cmd": "send", "id": "c1", "chat_id": f"{friend}@c.us", "text": "too late to fix"})
    msg_id = s.expect("sent", id="c1")["message_id"]
    s.send({"cmd": "action", "id": "e1", "action": "edit", "message_id": msg_id, "text": "fixed"})
    refused = s.expect("action_failed", id="e1")
    assert refused["reason"] == "cannot_edit" and "s ago" in refused["detail"]
    s.send({"cmd": "action", "id": "d1", "action": "revoke", "message_id": msg_id, "for_me": False})
    assert s.expect("action_failed", id="d1")["reason"] == "cannot_revoke"
    [record] = control.sent_by(phone)
    assert record["body"] == "too late to fix" and "revoked" not in record  # nothing changed
    # Deleting for this device only is no deletion for the others: allowed.
    s.send({"cmd": "action", "id": "d2", "action": "revoke", "message_id": msg_id, "for_me": True})
    s.expect("action_done", id="d2")
    assert "revoked" not in control.sent_by(phone)[0] and "message_revoke" not in s.names()
    assert s.stop() == EXIT_STOPPED


def test_sending_marks_the_chat_seen_and_carries_its_ephemeral_fields(sessions, wa, control):
    s = sessions("k1")
    phone, friend = new_phone(), new_phone()
    authenticate(s, control, phone)
    control.deliver(phone, friend, "are you there?")
    s.expect("message")
    chat = f"window.require('WAWebCollections').Chat.get('{friend}@c.us')"
    assert in_page(s, f"{chat}.unreadCount") == 1
    in_page(s, f"{chat}.ephemeralDuration = 604800")  # disappearing messages on, as the phone set them

    s.send({"cmd": "send", "id": "c1", "chat_id": f"{friend}@c.us", "text": "yes"})
    sent = s.expect("sent", id="c1")
    assert in_page(s, f"{chat}.unreadCount") == 0
    msg = f"window.require('WAWebCollections').Msg.get('{sent['message_id']}')"
    assert in_page(s, f"{msg}.ephemeralDuration") == 604800
    assert s.stop() == EXIT_STOPPED


def test_a_page_that_never_loads_is_a_crash_worth_a_restart(sessions, wa):
    # The stand-in's origin, but a document without WhatsApp Web's app.
    s = sessions("k1", "--boot-timeout", "2", url=wa.url + "not-the-app")
    event = s.expect("disconnected")
    assert event["reason"] == "boot_timeout" and "2 s" in event["detail"]
    assert s.wait() == EXIT_CRASHED
    assert "loaded" not in s.names()


def test_a_server_that_never_answers_is_a_boot_timeout(sessions, wa):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections are taken, never answered
    try:
        port = silent.getsockname()[1]
        s = sessions("k1", "--boot-timeout", "2", url=f"http://127.0.0.1:{port}/")
        assert s.expect("disconnected", timeout=30)["reason"] == "boot_timeout"
        assert s.wait() == EXIT_CRASHED
    finally:
        silent.close()


def test_a_headless_user_agent_gets_no_app_and_times_out(sessions, wa):
    # What the real site does with a browser it does not support.
    headless = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "HeadlessChrome/156.0.0.0 Safari/537.36")
    s = sessions("k1", "--user-agent", headless, "--boot-timeout", "2")
    assert s.expect("disconnected")["reason"] == "boot_timeout"
    assert s.wait() == EXIT_CRASHED


def test_inbound_messages_carry_links_as_whatsapp_web_finds_them(sessions, wa, control):
    s = sessions("k1")
    phone, friend = new_phone(), new_phone()
    authenticate(s, control, phone)
    msg_id = control.deliver(phone, friend, "see https://example.org/a?b=1, and www.example.com.")
    message = s.expect("message")["message"]
    assert message["links"] == [{"link": "https://example.org/a?b=1", "isSuspicious": False},
                                {"link": "http://www.example.com", "isSuspicious": False}]
    assert (len(msg_id), message["deviceType"], message["hasMedia"]) == (20, "web", False)
    assert s.stop() == EXIT_STOPPED


@pytest.mark.parametrize("cmd_event", ["logout", "logout_from_bridge"])
def test_either_logout_event_of_the_page_ends_the_session(sessions, wa, control, cmd_event):
    s = sessions("k1")
    authenticate(s, control, new_phone())
    # The event alone, no navigation; in a later task, so that the answer
    # to this call is out before the session ends and its browser with it.
    in_page(s, f"setTimeout(() => window.require('WAWebCmd').Cmd.trigger('{cmd_event}'), 0)")
    assert s.expect("disconnected")["reason"] == "LOGOUT"
    assert s.wait() == EXIT_ENDED


# ------------------------------------ the page-side functions, on their own
MESSAGE_JS = (Path(browser.__file__).parent / "message.js").read_text()


def client_message(page, model_js: str) -> dict:
    page.get("about:blank")
    return page.execute_script(MESSAGE_JS + f"\nreturn toClientMessage({model_js}, () => [], () => undefined);")


def test_a_persons_other_id_is_added_where_the_page_knows_it(page):
    page.get("about:blank")
    known = "{'111111111111111@lid': '5511999990001@c.us', '5511999990002@c.us': '222222222222222@lid'}"
    model = ("{id: {id: 'A', remote: '120363000000000001@g.us'}, from: '120363000000000001@g.us', "
             "author: '111111111111111@lid', to: '5511999990002@c.us', body: 'hi'}")
    got = page.execute_script(MESSAGE_JS + f"\nconst known = {known};\n"
                              f"return toClientMessage({model}, () => [], () => undefined, (w) => known[w] || null);")
    assert (got["from"], got["author"], got["author_pn"], got["to"], got["to_lid"]) == (
        "120363000000000001@g.us", "111111111111111@lid", "5511999990001@c.us", "5511999990002@c.us",
        "222222222222222@lid")
    assert "from_pn" not in got and "from_lid" not in got  # a group is no person
    # A page whose mapping breaks: the message as the page gave it, and one report.
    reports = page.execute_script(MESSAGE_JS + "\nconst reports = [];\n"
                                  f"const m = toClientMessage({model}, () => [], (r) => reports.push(r), "
                                  "() => { throw new Error('gone'); });\n"
                                  "return [m.author, 'author_pn' in m, reports.map((r) => r.reason)];")
    assert reports == ["111111111111111@lid", False, ["lid_mapping_unreadable"]]


@pytest.mark.parametrize("message_id, device", [
    ("3EB0C2A1D4E5F60718293A4B", "web"),  # 24 characters: web for whatsapp-web.js 1.34.7
    ("A" * 25, "web"),
    ("A" * 26, "android"),
    ("3A1B2C3D4E5F60718293", "ios"),
])
def test_device_type_as_whatsapp_web_js_computes_it(page, message_id, device):
    model = f"{{id: {{id: '{message_id}', fromMe: false, remote: '1@c.us', _serialized: 'x'}}, body: 'b'}}"
    assert client_message(page, model)["deviceType"] == device


def test_media_is_what_has_a_direct_path(page):
    base = "id: {id: 'A', remote: '1@c.us'}, body: 'thumbnail bytes', caption: 'look'"
    with_path = client_message(page, f"{{{base}, directPath: '/v/t62/x', type: 'image'}}")
    assert (with_path["hasMedia"], with_path["body"]) == (True, "look")
    key_only = client_message(page, f"{{{base}, mediaKey: 'k', type: 'image'}}")
    assert (key_only["hasMedia"], key_only["body"]) == (False, "thumbnail bytes")
    event = client_message(page, "{id: {id: 'A', remote: '1@c.us'}, eventName: 'Party', type: 'event_creation'}")
    assert event["body"] == "Party" and event["author"] is None


@pytest.mark.parametrize("chat_js, expected", [
    ("{id: {isLid: () => true, isGroup: () => false}}", "lid"),
    ("{id: {isLid: () => false, isGroup: () => false}}", "pn"),
    ("{id: {isGroup: () => true}, groupMetadata: {isLidAddressingMode: true}}", "lid"),
    ("{id: {isGroup: () => true}, groupMetadata: {isLidAddressingMode: false}}", "pn"),
    ("{id: {}}", "pn"),  # a Wid without isLid: not a LID chat
])
def test_sends_come_from_the_lid_user_in_chats_addressed_by_lid(page, chat_js, expected):
    page.get("about:blank")
    assert page.execute_script(SEND_HELPERS_JS + f"\nreturn ownUser({chat_js}, 'pn', 'lid');") == expected
    assert page.execute_script(SEND_HELPERS_JS + f"\nreturn ownUser({chat_js}, 'pn', undefined);") == "pn"


def test_settings_ignore_kinds_of_chat_live_and_each_send_says_whether_to_mark_seen(sessions, wa, control, tmp_path):
    settings = tmp_path / "wwnode-settings.json"
    settings.write_text('{"ignore": ["groups"]}')
    s = sessions("k1", "--settings-file", str(settings))
    phone, friend = new_phone(), new_phone()
    authenticate(s, control, phone)
    group = "120363000000000077@g.us"
    control.deliver(phone, friend, "in the group", group=group)
    control.deliver(phone, friend, "to me alone")
    assert s.expect("message")["message"]["body"] == "to me alone"  # the group's came first, unreported
    # Changed while it runs: groups are reported again.
    s.send({"cmd": "settings", "ignore": []})
    # Not answered: what the page reports before the stdin thread has taken
    # it is still held to the old settings, so the next message waits for its log line.
    wait_for(lambda: "settings changed: ignoring nothing" in s.log_text(), what="the new settings taken")
    control.deliver(phone, friend, "in the group again", group=group)
    got = s.expect("message")["message"]
    assert got["body"] == "in the group again" and got["from"] == group
    assert not [e for e in s.seen if e.get("event") == "message" and e["message"]["body"] == "in the group"]
    # Marking read: this send says not to, whatever --no-send-seen says.
    s.send({"cmd": "send", "id": "c1", "chat_id": f"{friend}@c.us", "text": "no tick", "seen": False})
    s.expect("sent", id="c1")
    assert control.seen_by(phone) == []
    s.send({"cmd": "send", "id": "c2", "chat_id": f"{friend}@c.us", "text": "read", "seen": True})
    s.expect("sent", id="c2")
    assert [c["chat"] for c in control.seen_by(phone)] == [f"{friend}@c.us"]
    assert s.stop() == EXIT_STOPPED


def test_a_send_with_typing_shows_it_for_that_long_first_and_a_stop_cuts_it_short(sessions, wa, control):
    s = sessions("k1")
    phone, friend = new_phone(), new_phone()
    authenticate(s, control, phone)
    s.send({"cmd": "send", "id": "c1", "chat_id": f"{friend}@c.us", "text": "typed", "typing_ms": 1200})
    s.expect("sent", id="c1")
    [typing] = control.chat_states(phone)["states"]
    [sent] = control.sent_by(phone)
    assert typing["chat"] == f"{friend}@c.us" and typing["state"] == "composing"
    assert sent["received_ms"] - typing["t"] >= 1200
    # Without typing_ms: no chat state at all.
    s.send({"cmd": "send", "id": "c2", "chat_id": f"{friend}@c.us", "text": "plain"})
    s.expect("sent", id="c2")
    assert len(control.chat_states(phone)["states"]) == 1
    # A stop while it types: not sent, and "typing..." taken back.
    s.send({"cmd": "send", "id": "c3", "chat_id": f"{friend}@c.us", "text": "never", "typing_ms": 30_000})
    wait_for(lambda: len(control.chat_states(phone)["states"]) == 2, what="typing shown")
    s.send({"cmd": "stop"})
    assert s.expect("send_failed", id="c3")["reason"] == "stopping"
    assert s.wait() == EXIT_STOPPED
    assert [c["state"] for c in control.chat_states(phone)["states"]] == ["composing", "composing", "paused"]
    assert [m["body"] for m in control.sent_by(phone)] == ["typed", "plain"]
