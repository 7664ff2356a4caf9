"""The stand-in's page, driven in real headless Chromium with plain
``execute_script`` calls to its modules, the way sessions use the real page."""

from __future__ import annotations

import base64

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
    missing = page.execute_script(
        "return arguments[0].filter((n) => { try { return !window.require(n); } catch (e) { return true; } })", MODULES
    )
    assert missing == []
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

    # Delivered and acknowledged: a third start gets nothing again.
    third = browsers()
    open_page(third, wa, want=("CONNECTED",))
    control.deliver(phone, friend, "marker")
    wait_for(lambda: third.execute_script("return window.require('WAWebCollections').Msg.length") >= 1, what="marker")
    assert third.execute_script("return window.require('WAWebCollections').Msg.models.map((m) => m.body)") == ["marker"]


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
