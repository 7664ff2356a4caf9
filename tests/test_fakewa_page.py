"""The stand-in's page, driven in real headless Chromium with plain
``execute_script`` calls to its modules, the way sessions use the real page."""

from __future__ import annotations

import base64
import json

import pytest

from support import new_phone, wait_for
from wwnode.fakewa.client import Control, ControlError

pytestmark = pytest.mark.browser

MODULES = [
    "WAWebSocketModel", "WAWebConnModel", "WAWebCmd", "WAWebCollections", "WAWebWidFactory",
    "WAWebFindChatAction", "WAWebSendMsgChatAction", "WAWebMsgKey", "WAWebUserPrefsMeUser",
    "WAWebStreamModel", "WABase64", "WAWebCompanionRegClientUtils", "WAWebAdvSignatureApi",
    "WAWebUserPrefsInfoStore", "WAWebSignalStoreApi",
]
# What whatsapp-web.js 1.34.7 requires before `ready` (a missing one stops
# it) and lazily to send and receive text.
WWEBJS_EAGER = [
    "WAWebSocketModel", "WAWebCmd", "WAWebConnModel", "WAWebOfflineHandler", "WAWebAltDeviceLinkingApi",
    "WABase64", "WAWebCompanionRegClientUtils", "WAWebAdvSignatureApi", "WAWebUserPrefsInfoStore",
    "WAWebSignalStoreApi", "WAWebUserPrefsMultiDevice", "WAWebUserPrefsMeUser", "WAWebCollections",
    "WAWebSyncGatingUtils", "WAWebCallCollection",
]
WWEBJS_LAZY = [
    "WAWebWidFactory", "WAWebFindChatAction", "WAWebStreamModel", "WAWebUpdateUnreadChatAction",
    "WAWebChatGetters", "WALinkify", "WAWebMsgKey", "WAWebGetEphemeralFieldsMsgActionsUtils",
    "WAWebSendMsgChatAction",
]
MISSING_JS = "return arguments[0].filter((n) => { try { return !window.require(n); } catch (e) { return true; } })"

# The QR string exactly as whatsapp-web.js builds it.
QR_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const r = window.require;
  const reg = Object.assign({}, r('WAWebCompanionRegClientUtils'), r('WAWebAdvSignatureApi'),
                            r('WAWebUserPrefsInfoStore'), r('WAWebSignalStoreApi'));
  const b64 = r('WABase64').encodeB64;
  const info = await reg.waSignalStore.getRegistrationInfo();
  const noise = await reg.waNoiseInfo.get();
  return [r('WAWebConnModel').Conn.ref, b64(noise.staticKeyPair.pubKey), b64(info.identityKeyPair.pubKey),
          await reg.getADVSecretKey(), reg.DEVICE_PLATFORM].join(',');
})().then(done, (e) => done('error: ' + e));
"""

# Records the events sessions listen to, with the page's clock.
RECORD_JS = """
window.__rec = [];
const r = window.require;
const push = (what, value) => window.__rec.push([what, value, performance.now()]);
r('WAWebSocketModel').Socket.on('change:state', (_m, v) => push('state', v));
r('WAWebSocketModel').Socket.on('change:hasSynced', (_m, v) => push('hasSynced', v));
r('WAWebConnModel').Conn.on('change:ref', (_m, v) => push('ref', v));
r('WAWebCollections').Msg.on('add', (m) => push('msg', m.serialize()));
"""

# Sends a text the way whatsapp-web.js does; chat id and text are arguments.
SEND_JS = """
const [chatId, text, done] = arguments;
(async () => {
  const r = window.require;
  const wid = r('WAWebWidFactory').createWid(chatId);
  let chat = r('WAWebCollections').Chat.get(wid);
  if (!chat) chat = (await r('WAWebFindChatAction').findOrCreateLatestChat(wid)).chat;
  const me = r('WAWebUserPrefsMeUser').getMaybeMePnUser();
  const MsgKey = r('WAWebMsgKey');
  const id = new MsgKey({from: me, to: chat.id, id: await MsgKey.newId(), selfDir: 'out'});
  const [msgPromise, resultPromise] = r('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, {
    id, ack: 0, body: text, from: me, to: chat.id, local: true, self: 'out',
    t: Math.floor(Date.now() / 1000), isNewMsg: true, type: 'chat'});
  await msgPromise;
  return [id._serialized, await resultPromise];
})().then(done, (e) => done('error: ' + e));
"""

TRICKY_TEXTS = [
    'say "hi" and \'bye\'',
    "back\\slash \\n \\u0041 not escapes",
    "</script><script>window.__pwned = 1</script>",
    "line 1\nline 2\r\nline 3\ttab",
    "emoji 😀👍🏽 and ünïcödé, 中文, العربية",
    "${not_a_template} `backticks` \u2028\u2029",
    "x" * 5000,
]


def state(d) -> str:
    return d.execute_script("return window.Debug ? window.require('WAWebSocketModel').Socket.state : null")


def open_page(d, wa, want=("UNPAIRED",)):
    d.get(wa.url)
    return wait_for(lambda: state(d) in want and state(d), what=f"state in {want}")


def qr_of(d) -> str:
    return d.execute_async_script(QR_JS)


def pair(d, wa, phone: str) -> str:
    open_page(d, wa)
    wid = Control(wa.url).scan(qr_of(d), phone)
    wait_for(lambda: d.execute_script("return window.require('WAWebSocketModel').Socket.hasSynced"), what="sync")
    return wid


def recorded(d, what: str) -> list:
    return [v for w, v, _ in d.execute_script("return window.__rec") if w == what]


def test_page_exposes_version_and_modules(page, wa):
    open_page(page, wa)
    assert page.execute_script("return window.Debug.VERSION").startswith("2.3000.")
    assert len(WWEBJS_EAGER) == 15
    assert page.execute_script(MISSING_JS, MODULES + WWEBJS_EAGER + WWEBJS_LAZY) == []
    error = page.execute_script(
        "try { window.require('WAWebNoSuchModule'); return null; } catch (e) { return String(e.message); }"
    )
    assert "WAWebNoSuchModule" in error


def test_qr_has_five_parts_and_rotates_then_idles(page, make_wa):
    wa = make_wa(qr_first=1.0, qr_next=0.3, qr_count=3)
    open_page(page, wa)
    page.execute_script(RECORD_JS)
    qr = qr_of(page)
    ref, noise, identity, adv, platform = qr.split(",")
    assert ref == page.execute_script("return window.require('WAWebConnModel').Conn.ref")
    assert len(base64.b64decode(noise)) == 32 and len(base64.b64decode(identity)) == 32
    assert len(base64.b64decode(adv)) == 32 and platform == "WEB"
    assert Control(wa.url).pending_qr() == [{"ref": ref, "qr": qr}]

    wait_for(lambda: "UNPAIRED_IDLE" in recorded(page, "state"), timeout=10, what="the page to go idle")
    rec = page.execute_script("return window.__rec")
    refs = [(v, t) for w, v, t in rec if w == "ref" and v]
    assert len(refs) == 2 and len({ref, *(v for v, _ in refs)}) == 3  # three distinct codes in all
    assert rec[-1][:2] == ["state", "UNPAIRED_IDLE"]
    assert Control(wa.url).pending_qr() == []
    # A rotated QR is no longer shown, so it cannot be scanned.
    with pytest.raises(ControlError) as err:
        Control(wa.url).scan(qr, new_phone())
    assert err.value.status == 404


def test_scan_syncs_and_connects(page, wa):
    open_page(page, wa)
    page.execute_script(RECORD_JS)
    phone = new_phone()
    qr = qr_of(page)
    assert Control(wa.url).scan(qr, phone) == f"{phone}@c.us"
    wait_for(lambda: True in recorded(page, "hasSynced"), what="change:hasSynced")
    assert recorded(page, "state")[-1] == "CONNECTED"
    assert page.execute_script("return window.require('WAWebUserPrefsMeUser').getMaybeMePnUser()._serialized") == f"{phone}@c.us"
    assert Control(wa.url).pending_qr() == []
    with pytest.raises(ControlError) as err:  # the same code twice
        Control(wa.url).scan(qr, phone)
    assert err.value.status == 404


def test_restart_on_same_profile_comes_back_without_qr(browsers, wa):
    phone = new_phone()
    first = browsers()
    wid = pair(first, wa, phone)
    first.quit()

    second = browsers()
    assert open_page(second, wa, want=("CONNECTED",)) == "CONNECTED"
    wait_for(lambda: second.execute_script("return window.require('WAWebSocketModel').Socket.hasSynced"), what="sync")
    assert second.execute_script("return window.require('WAWebConnModel').Conn.ref") is None
    assert second.execute_script("return window.require('WAWebUserPrefsMeUser').getMaybeMePnUser()._serialized") == wid
    assert Control(wa.url).pending_qr() == []


def test_unlinked_while_closed_shows_qr_on_restart(browsers, wa):
    phone = new_phone()
    first = browsers()
    pair(first, wa, phone)
    first.quit()
    Control(wa.url).logout(phone)

    second = browsers()
    open_page(second, wa, want=("UNPAIRED",))
    assert second.execute_script("return window.require('WAWebUserPrefsMeUser').getMaybeMePnUser()") is None
    assert len(Control(wa.url).pending_qr()) == 1


def test_messages_for_a_closed_browser_are_held_until_it_returns(browsers, wa):
    phone, friend = new_phone(), new_phone()
    first = browsers()
    pair(first, wa, phone)
    first.quit()
    control = Control(wa.url)
    ids = [control.deliver(phone, friend, "while you were away"), control.deliver(phone, friend, "second")]

    second = browsers()
    open_page(second, wa, want=("CONNECTED",))
    wait_for(lambda: second.execute_script("return window.require('WAWebCollections').Msg.length") == 2, what="held messages")
    bodies = second.execute_script(
        "return window.require('WAWebCollections').Msg.models.map((m) => [m.id.id, m.body, m.from._serialized])"
    )
    assert bodies == [[ids[0], "while you were away", f"{friend}@c.us"], [ids[1], "second", f"{friend}@c.us"]]
    second.quit()

    # Delivered and acknowledged: a third start has them as the account's
    # history, not as new messages again; only the next one is new.
    third = browsers()
    open_page(third, wa, want=("CONNECTED",))
    control.deliver(phone, friend, "marker")
    wait_for(lambda: third.execute_script("return window.require('WAWebCollections').Msg.length") >= 3, what="marker")
    assert third.execute_script(
        "return window.require('WAWebCollections').Msg.models.map((m) => [m.body, m.isNewMsg])") == [
        ["while you were away", False], ["second", False], ["marker", True]]


def test_inbound_message_arrives_while_open(page, wa):
    phone, friend = new_phone(), new_phone()
    pair(page, wa, phone)
    page.execute_script(RECORD_JS)
    msg_id = Control(wa.url).deliver(phone, friend, "hello there")
    msgs = wait_for(lambda: recorded(page, "msg"), what="message add event")
    assert msgs[0]["id"] == {"fromMe": False, "remote": f"{friend}@c.us", "id": msg_id,
                             "_serialized": f"false_{friend}@c.us_{msg_id}"}
    assert msgs[0]["body"] == "hello there" and msgs[0]["isNewMsg"] is True and msgs[0]["type"] == "chat"


def test_phone_logout_navigates_like_the_real_page(page, wa):
    phone = new_phone()
    pair(page, wa, phone)
    Control(wa.url).logout(phone)
    wait_for(lambda: "post_logout=1" in page.current_url, what="post-logout navigation")
    wait_for(lambda: state(page) == "UNPAIRED", what="a QR after logout")
    assert page.execute_script("return window.require('WAWebUserPrefsMeUser').getMaybeMePnUser()") is None
    assert len(Control(wa.url).pending_qr()) == 1


def test_conflict_and_takeover(page, wa):
    phone = new_phone()
    pair(page, wa, phone)
    Control(wa.url).conflict(phone)
    wait_for(lambda: state(page) == "CONFLICT", what="CONFLICT")
    page.execute_script("window.require('WAWebSocketModel').Socket.takeover()")
    wait_for(lambda: state(page) == "CONNECTED", what="CONNECTED after takeover")


def test_sent_text_is_recorded_byte_for_byte(page, wa):
    phone, friend = new_phone(), new_phone()
    pair(page, wa, phone)
    for text in TRICKY_TEXTS:
        msg_id, result = page.execute_async_script(SEND_JS, f"{friend}@c.us", text)
        assert result == {"messageSendResult": "OK"}
        assert msg_id.startswith(f"true_{friend}@c.us_")
    sent = Control(wa.url).sent_by(phone)
    assert [m["body"] for m in sent] == TRICKY_TEXTS
    assert {m["to"] for m in sent} == {f"{friend}@c.us"}
    assert page.execute_script("return window.__pwned === undefined")


def test_page_logout_unlinks(page, wa):
    phone = new_phone()
    pair(page, wa, phone)
    page.execute_script("window.require('WAWebSocketModel').Socket.logout()")
    wait_for(lambda: "post_logout=1" in page.current_url, what="post-logout navigation")
    with pytest.raises(ControlError) as err:
        Control(wa.url).logout(phone)
    assert err.value.status == 404



def test_a_dropped_module_is_unknown_to_the_page(page, make_wa):
    wa = make_wa(drop_modules=("WAWebCallCollection", "WAWebUserPrefsMultiDevice"))
    open_page(page, wa)
    assert page.execute_script(MISSING_JS, WWEBJS_EAGER) == ["WAWebUserPrefsMultiDevice", "WAWebCallCollection"]


def test_headless_chrome_gets_no_module_system(page, wa):
    ua = page.execute_script("return navigator.userAgent")
    page.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": ua.replace("Chrome/", "HeadlessChrome/")})
    page.get(wa.url)
    assert "Chrome 85+" in page.find_element("tag name", "h1").text
    assert page.execute_script("return [typeof window.require, typeof window.Debug]") == ["undefined", "undefined"]


def test_adv_secret_of_both_modules_is_the_one_in_the_qr(page, wa):
    open_page(page, wa)
    adv = qr_of(page).split(",")[3]
    assert page.execute_script("return window.require('WAWebUserPrefsMultiDevice').getADVSecretKey()") == adv
    Control(wa.url).scan(qr_of(page), new_phone())  # the secret whatsapp-web.js puts in the QR is accepted


def test_sync_follows_connected_on_pairing_and_on_restore(browsers, make_wa):
    wa = make_wa(sync_delay=1.0)
    phone = new_phone()
    first = browsers()
    open_page(first, wa)
    first.execute_script(RECORD_JS)
    Control(wa.url).scan(qr_of(first), phone, pushname="Ana", platform="iphone")
    wait_for(lambda: True in recorded(first, "hasSynced"), what="hasSynced")
    rec = first.execute_script("return window.__rec")
    connected = next(t for w, v, t in rec if w == "state" and v == "CONNECTED")
    synced = next(t for w, v, t in rec if w == "hasSynced" and v)
    # ms on the page's clock: a sync, not the same instant.  The server
    # counts the delay from the scan, the page is CONNECTED a little later.
    assert synced - connected >= 500
    conn = first.execute_script("return window.require('WAWebConnModel').Conn.serialize()")
    # The wid stays a Wid, read by value (as whatsapp-web.js reads a chat's id._serialized).
    assert (conn["pushname"], conn["platform"], conn["wid"]["_serialized"]) == ("Ana", "iphone", f"{phone}@c.us")
    first.quit()

    second = browsers()
    second.get(wa.url)
    wait_for(lambda: second.execute_script("return !!window.Debug"), what="the page")
    second.execute_script(RECORD_JS)
    wait_for(lambda: True in recorded(second, "hasSynced"), what="hasSynced after restore")
    assert "CONNECTED" in recorded(second, "state") or state(second) == "CONNECTED"


HELD_JS = """
window.__offline = [];
const r = window.require;
r('WAWebCmd').Cmd.on('offline_progress_update_from_bridge', () => window.__offline.push(
  [r('WAWebOfflineHandler').OfflineMessageHandler.getOfflineDeliveryProgress(),
   r('WAWebCollections').Msg.length, r('WAWebSocketModel').Socket.hasSynced]));
"""


def test_held_messages_arrive_during_the_sync_with_offline_progress(browsers, make_wa):
    wa = make_wa(sync_delay=1.0)
    phone, friend = new_phone(), new_phone()
    first = browsers()
    pair(first, wa, phone)
    first.quit()
    control = Control(wa.url)
    control.deliver(phone, friend, "one")
    control.deliver(phone, friend, "two")

    second = browsers()
    second.get(wa.url)
    wait_for(lambda: second.execute_script("return !!window.Debug"), what="the page")
    second.execute_script(HELD_JS)  # in time: held messages come halfway through the sync
    wait_for(lambda: second.execute_script("return window.require('WAWebSocketModel').Socket.hasSynced"), what="sync")
    # [progress, messages so far, synced] at each report: both before hasSynced.
    # (The sync's opening report, 0 %, may come before the test listens.)
    got = second.execute_script("return window.__offline")
    assert got[-2:] == [[50, 1, False], [100, 2, False]] and all(r == [0, 0, False] for r in got[:-2])


ACKS_JS = """
window.__acks = [];
const r = window.require;
// Two names in one call, as whatsapp-web.js subscribes ('change:body change:caption').
r('WAWebCollections').Msg.on('change:ack change:body', (m, v) => window.__acks.push(['Msg', m.id.id, v]));
const chat = r('WAWebCollections').Chat.get(arguments[0]);
chat.msgs.on('change:ack', (m, v) => window.__acks.push(['chat', m.id.id, v]));
"""


def test_receipts_raise_acks_seen_on_every_collection(page, make_wa):
    wa = make_wa(auto_delivered=0.3)
    phone, friend = new_phone(), new_phone()
    pair(page, wa, phone)
    control = Control(wa.url)
    page.execute_async_script(SEND_JS, f"{friend}@c.us", "warm-up")  # makes the chat
    page.execute_script(ACKS_JS, f"{friend}@c.us")
    msg_key, _ = page.execute_async_script(SEND_JS, f"{friend}@c.us", "tick tick")
    msg_id = msg_key.rsplit("_", 1)[1]
    wait_for(lambda: ["Msg", msg_id, 2] in page.execute_script("return window.__acks"), what="delivered by itself")
    assert control.receipt(msg_id, "read") == 3
    wait_for(lambda: ["Msg", msg_id, 3] in page.execute_script("return window.__acks"), what="read")
    page.execute_script("window.require('WAWebCollections').Msg.get(arguments[0]).body = 'edited'", msg_key)
    acks = [(w, v) for w, i, v in page.execute_script("return window.__acks") if i == msg_id]
    # Both collections holding the message saw 1 (server), 2, 3; the second name of the pair fired too.
    assert acks == [("Msg", 1), ("chat", 1), ("Msg", 2), ("chat", 2), ("Msg", 3), ("chat", 3), ("Msg", "edited")]
    assert control.sent_by(phone)[-1]["ack"] == 3


SHAPES_JS = """
const r = window.require;
const wid = r('WAWebWidFactory').createWid;
const c = wid('5511999990001@c.us'), lid = wid('123456789@lid'), status = wid('status@broadcast');
const links = r('WALinkify').findLinks('see https://example.com/a?b=1, and www.example.org.');
const chat = r('WAWebCollections').Chat.get(arguments[0]);
chat.unreadCount = 2;
return {
  json: JSON.stringify({c, chat}),
  jid: [c.toJid(), lid.toJid()],
  lid: [c.isLid(), lid.isLid()], status: [c.isStatus(), status.isStatus()], group: c.isGroup(),
  links: links.map((l) => l.href), none: r('WALinkify').findLink('no link here'),
  getters: [r('WAWebChatGetters').getIsNewsletter(chat), r('WAWebChatGetters').getIsBroadcast(chat)],
  ephemeral: r('WAWebGetEphemeralFieldsMsgActionsUtils').getEphemeralFields(chat),
  calls: Object.keys(r('WAWebCallCollection')).filter((k) => r('WAWebCallCollection')[k] instanceof Map).length,
};
"""


def test_ids_links_and_chat_helpers_have_the_real_shapes(page, wa):
    phone, friend = new_phone(), new_phone()
    pair(page, wa, phone)
    Control(wa.url).deliver(phone, friend, "hi")
    wait_for(lambda: page.execute_script("return window.require('WAWebCollections').Msg.length"), what="message")
    got = page.execute_script(SHAPES_JS, f"{friend}@c.us")
    chat = json.loads(got["json"])["chat"]
    assert json.loads(got["json"])["c"] == "5511999990001@c.us" and chat["id"] == f"{friend}@c.us"
    assert got["jid"] == ["5511999990001@s.whatsapp.net", "123456789@lid"]
    assert got["lid"] == [False, True] and got["status"] == [False, True] and got["group"] is False
    assert got["links"] == ["https://example.com/a?b=1", "http://www.example.org"] and got["none"] is None
    assert got["getters"] == [False, False] and got["ephemeral"] == {} and got["calls"] == 1
    page.execute_async_script(
        "const [chatId, done] = arguments; const r = window.require;"
        "r('WAWebUpdateUnreadChatAction').sendSeen({chat: r('WAWebCollections').Chat.get(chatId)}).then(done);",
        f"{friend}@c.us")
    assert page.execute_script("return window.require('WAWebCollections').Chat.get(arguments[0]).unreadCount",
                               f"{friend}@c.us") == 0


LOGOUT_JS = """
const Cmd = window.require('WAWebCmd').Cmd;
for (const name of ['logout', 'logout_from_bridge']) {
  Cmd.on(name, () => sessionStorage.setItem('cmd', name));  // survives the post-logout navigation
}
"""


@pytest.mark.parametrize("who, event", [("phone", "logout_from_bridge"), ("page", "logout")])
def test_logout_fires_the_cmd_event_of_its_origin(page, wa, who, event):
    phone = new_phone()
    pair(page, wa, phone)
    page.execute_script(LOGOUT_JS)
    if who == "phone":
        Control(wa.url).logout(phone)
    else:
        page.execute_script("window.require('WAWebSocketModel').Socket.logout()")
    wait_for(lambda: "post_logout=1" in page.current_url, what="post-logout navigation")
    assert page.execute_script("return sessionStorage.getItem('cmd')") == event
