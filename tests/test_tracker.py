"""The session process's decisions, fed page reports directly."""

from __future__ import annotations

import pytest

from sessionproc.protocol import EXIT_CANNOT_START, EXIT_CRASHED, EXIT_ENDED, BadCommand, decode_command
from sessionproc.tracker import Tracker

URL = "https://web.whatsapp.com/"


def names(events):
    return [e["event"] for e in events]


def fresh(**kw) -> Tracker:
    t = Tracker(URL, qr_max=kw.get("qr_max", 3), was_linked=kw.get("was_linked", False))
    t.feed({"type": "page", "url": URL})
    return t


def test_fresh_profile_shows_qr_codes_then_authenticates():
    t = fresh()
    assert names(t.feed({"type": "state", "state": "UNPAIRED"})) == ["state"]
    assert t.feed({"type": "qr", "qr": "a,b,c,d,e"}) == [{"event": "qr", "qr": "a,b,c,d,e", "attempt": 1}]
    assert t.feed({"type": "qr", "qr": "f,b,c,d,e"})[0]["attempt"] == 2
    assert names(t.feed({"type": "synced", "me": "1@c.us"})) == ["authenticated", "ready"]
    assert t.ready and t.me == "1@c.us"
    assert t.feed({"type": "synced", "me": "1@c.us"}) == []  # once per run


def test_ready_carries_the_accounts_lid_where_the_page_has_one():
    t = fresh()
    assert t.feed({"type": "synced", "me": "1@c.us", "me_lid": "123456789012345@lid"})[1] == {
        "event": "ready", "me": "1@c.us", "me_lid": "123456789012345@lid"}
    for page_without in (None, "1@c.us"):  # no LID, or only the LID (then it is ``me``)
        t = fresh()
        assert t.feed({"type": "synced", "me": "1@c.us", "me_lid": page_without})[1] == {"event": "ready",
                                                                                          "me": "1@c.us"}


def test_too_many_qr_codes_is_an_auth_failure():
    t = fresh(qr_max=2)
    t.feed({"type": "qr", "qr": "1"})
    t.feed({"type": "qr", "qr": "2"})
    assert t.feed({"type": "qr", "qr": "3"}) == [{"event": "auth_failure", "reason": "qr_attempts_exhausted"}]
    assert t.exit_code == EXIT_ENDED
    assert t.feed({"type": "synced", "me": "1@c.us"}) == []  # over is over


def test_page_going_idle_before_a_scan_is_an_auth_failure():
    t = fresh()
    t.feed({"type": "qr", "qr": "1"})
    assert names(t.feed({"type": "state", "state": "UNPAIRED_IDLE"})) == ["state", "auth_failure"]


@pytest.mark.parametrize("report", [{"type": "qr", "qr": "1"}, {"type": "state", "state": "UNPAIRED"},
                                    {"type": "page", "url": URL + "?post_logout=1&logout_reason=0"}])
def test_a_linked_profile_that_gets_a_qr_was_rejected(report):
    t = fresh(was_linked=True)
    assert t.feed(report)[-1] == {"event": "auth_failure", "reason": "credentials_rejected"}
    assert t.exit_code == EXIT_ENDED


@pytest.mark.parametrize("report, reason", [
    ({"type": "logout"}, "LOGOUT"),
    ({"type": "page", "url": URL + "?post_logout=1"}, "LOGOUT"),
    ({"type": "state", "state": "CONFLICT"}, "CONFLICT"),
    ({"type": "state", "state": "UNPAIRED"}, "UNPAIRED"),
    ({"type": "state", "state": "TOS_BLOCK"}, "TOS_BLOCK"),
])
def test_after_authentication_these_end_the_session(report, reason):
    t = fresh()
    t.feed({"type": "synced", "me": "1@c.us"})
    assert t.feed(report)[-1] == {"event": "disconnected", "reason": reason}
    assert t.exit_code == EXIT_ENDED and not t.ready


@pytest.mark.parametrize("report, reason", [
    ({"type": "crashed"}, "page_crashed"),
    ({"type": "closed"}, "browser_closed"),
    ({"type": "page", "url": "https://example.org/"}, "navigated_away"),
    ({"type": "page", "url": "chrome-error://chromewebdata/"}, "page_unreachable"),
    ({"type": "error", "reason": "page_not_loaded"}, "page_not_loaded"),
])
def test_breakage_is_a_crash_worth_a_restart(report, reason):
    t = fresh()
    assert t.feed(report) == [{"event": "disconnected", "reason": reason}]
    assert t.exit_code == EXIT_CRASHED


def test_chrome_start_pages_before_ours_are_ignored():
    t = Tracker(URL, qr_max=3, was_linked=False)
    assert t.feed({"type": "page", "url": "chrome://new-tab-page/"}) == []
    assert t.exit_code is None


def test_normal_states_pass_through_once():
    t = fresh()
    assert t.feed({"type": "state", "state": "OPENING"}) == [{"event": "state", "state": "OPENING"}]
    assert t.feed({"type": "state", "state": "OPENING"}) == []
    assert t.exit_code is None


@pytest.mark.parametrize("line, words", [
    (b"nope", "not JSON"), (b"[]", "object"), (b'{"cmd": "fly"}', "unknown command"),
    (b'{"cmd": "send", "id": 1, "chat_id": "x", "text": "y"}', "string id"),
    (b'{"cmd": "send", "id": "1", "text": "y"}', "chat_id"),
    (b'{"cmd": "send", "id": "1", "chat_id": "x", "text": 5}', "text"),
    (b'{"cmd": "stop", "logout": 1}', "logout"),
])
def test_bad_commands_are_named(line, words):
    with pytest.raises(BadCommand, match=words):
        decode_command(line)


def test_good_commands_pass():
    assert decode_command(b'{"cmd": "ping", "id": "p"}') == {"cmd": "ping", "id": "p"}
    assert decode_command(b'{"cmd": "stop"}') == {"cmd": "stop"}


# ------------------------------------------------------------ booting
LOADED = {"type": "loaded", "version": "2.3000.1", "user_agent": "UA", "webdriver": False, "missing": []}


def test_a_page_that_does_not_load_in_time_is_a_boot_timeout():
    t = Tracker(URL, qr_max=3, was_linked=False, boot_timeout=60, now=100)
    t.feed({"type": "page", "url": URL}, now=101)  # the document started, its app did not come up
    assert t.tick(159.9) == []
    [event] = t.tick(160)
    assert (event["event"], event["reason"]) == ("disconnected", "boot_timeout") and "60 s" in event["detail"]
    assert t.exit_code == EXIT_CRASHED


def test_a_loaded_page_stops_the_clock_until_its_next_document():
    t = Tracker(URL, qr_max=3, was_linked=False, boot_timeout=60, now=0)
    t.feed({"type": "page", "url": URL}, now=1)
    assert t.feed(LOADED, now=5) == [{"event": "loaded", "version": "2.3000.1", "user_agent": "UA", "webdriver": False}]
    assert t.boot_deadline is None and t.tick(1000) == []
    t.feed({"type": "page", "url": URL}, now=1000)  # it navigated: the new document must load in turn
    assert t.tick(1059) == []
    assert t.tick(1060)[0]["reason"] == "boot_timeout"


def test_a_page_lacking_what_the_session_uses_cannot_start():
    t = fresh()
    missing = ["WALinkify.findLinks",
               "WAWebUserPrefsMultiDevice.getADVSecretKey or WAWebAdvSignatureApi.getADVSecretKey"]
    assert t.feed(LOADED | {"missing": missing}) == [{
        "event": "disconnected", "reason": "incompatible_page",
        "detail": "the page lacks WALinkify.findLinks, WAWebUserPrefsMultiDevice.getADVSecretKey or "
                  "WAWebAdvSignatureApi.getADVSecretKey",
    }]
    assert t.exit_code == EXIT_CANNOT_START
    assert t.tick(10**9) == [] and t.feed({"type": "qr", "qr": "1"}) == []  # over is over


def test_a_page_that_syncs_without_what_sends_need_ends_before_it_is_ready():
    t = fresh()
    t.feed(LOADED)
    assert names(t.feed({"type": "qr", "qr": "1"})) == ["qr"]
    assert t.feed({"type": "synced", "me": "1@c.us", "missing": ["WAWebSendMsgChatAction.addAndSendMsgToChat"]}) == [{
        "event": "disconnected", "reason": "incompatible_page",
        "detail": "the page lacks WAWebSendMsgChatAction.addAndSendMsgToChat",
    }]
    assert t.exit_code == EXIT_CANNOT_START and not t.ready


def pairing(**kw) -> Tracker:
    t = Tracker(URL, qr_max=kw.get("qr_max", 2), was_linked=kw.get("was_linked", False), pairing=True)
    t.feed({"type": "page", "url": URL})
    return t


def test_linking_by_pairing_code_shows_codes_not_qr_codes_and_counts_them():
    t = pairing()
    assert t.feed({"type": "qr", "qr": "a,b,c,d,e"}) == []  # the session asks for a code instead
    assert t.feed({"type": "pairing_code", "code": "ABCD2345"}) == [
        {"event": "pairing_code", "code": "ABCD2345", "attempt": 1}]
    assert t.feed({"type": "pairing_code", "code": "EFGH6789"})[0]["attempt"] == 2
    assert t.feed({"type": "pairing_code", "code": "JKLM2345"}) == [
        {"event": "auth_failure", "reason": "qr_attempts_exhausted"}]
    assert t.exit_code == EXIT_ENDED


def test_a_page_that_gives_no_pairing_code_ends_linking_and_a_linked_profile_needs_none():
    t = pairing()
    assert t.feed({"type": "pairing_refused", "detail": "no"}) == [{"event": "auth_failure", "reason": "pairing_refused"}]
    linked = pairing(was_linked=True)
    assert linked.feed({"type": "qr", "qr": "a"}) == [{"event": "auth_failure", "reason": "credentials_rejected"}]
    done = pairing()
    done.feed({"type": "synced", "me": "1@c.us"})
    assert done.feed({"type": "pairing_code", "code": "LATE2345"}) == []


def test_acks_and_reactions_become_events():
    t = fresh()
    assert t.feed({"type": "ack", "message_id": "true_1@c.us_A", "chat_id": "1@c.us", "ack": -1}) == [
        {"event": "ack", "message_id": "true_1@c.us_A", "chat_id": "1@c.us", "ack": -1}]
    assert t.feed({"type": "reaction", "message_id": "false_1@c.us_B", "reaction": "", "sender": "1@c.us"}) == [
        {"event": "reaction", "message_id": "false_1@c.us_B", "reaction": "", "sender": "1@c.us"}]
