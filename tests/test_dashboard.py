"""``wwnode dashboard``, run as a user runs it (a process of its own).

- In real headless Chromium, against a real node whose session is real
  (Chromium on the stand-in): a session created with the page's button is
  shown in ``qr`` with its code as an image; the image, as the browser draws
  it, decodes to the string in Redis; the stand-in's phone scans what was
  decoded; the page shows the session ready without being reloaded; its
  buttons send a test message (the phone's contact gets it) and destroy
  the session.
- Safe by default: bound elsewhere than loopback it refuses to start
  without ``DASHBOARD_TOKEN``; with a token nothing is served without it;
  a command from another site's page is refused; no password is shown."""

from __future__ import annotations

import io
import re
import time
import urllib.error
import urllib.request

import orjson
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from support import CliProcess, free_port, new_phone, run_cli, wait_for

TOKEN = "a-long-random-token-for-tests"


@pytest.fixture
def dashboard(rabbit_url, redis_url):
    started = []

    def start(*args: str, **env) -> tuple[CliProcess, str]:
        port = free_port()
        cli = CliProcess("dashboard", "--port", str(port), *args,
                         env={"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url, **env})
        started.append(cli)
        cli.wait_output("wwnode dashboard on")
        return cli, f"http://127.0.0.1:{port}"

    yield start
    for cli in started:
        cli.interrupt()
        try:
            cli.wait(10)
        finally:
            cli.kill()


def request(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def state_on_page(page, key: str) -> str | None:
    """The state the fleet's table shows for the key (read in one step:
    the page redraws its rows as updates come)."""
    return page.execute_script(
        "const row = document.querySelector(`#sessions tr[data-key=\"${arguments[0]}\"]`);"
        "return row ? row.querySelector('.state').textContent : null;", key)


def click(page, css: str) -> None:
    """Click what the selector finds now (the page redraws its counts and
    rows as updates come: a found element may be replaced before a click)."""
    page.execute_script("document.querySelector(arguments[0]).click()", css)


def first_row(page) -> str | None:
    """The key of the first session row shown (read in one step)."""
    return page.execute_script("const r = document.querySelector('#sessions tbody tr'); return r && r.dataset.key;")


def shown(page) -> str:
    return page.execute_script("return document.getElementById('shown').textContent")


def session_state_on_page(page) -> str:
    return page.execute_script("return document.querySelector('#s-state').textContent")


def outcome(page, element_id: str) -> tuple[str, str]:
    """An action's outcome line, as shown where it was made: (text, class)."""
    return tuple(page.execute_script(
        "const e = document.getElementById(arguments[0]); return [e.textContent, e.className];", element_id))


def decode_qr(png: bytes) -> list[str]:
    """The QR codes a decoder reads in a PNG image."""
    import zxingcpp
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return [r.text for r in zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)]


def scrolled_to(element):
    """The element, scrolled into the window (its screenshot is what the
    window shows of it)."""
    element.parent.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    return element


def stable(read):
    """``read()``, or None when the page redrew what it was reading."""
    try:
        return read()
    except StaleElementReferenceException:
        return None


SIZES = {"desktop": (1440, 900), "laptop": (1280, 720)}


@pytest.mark.browser
def test_the_console_takes_a_session_from_create_to_destroy_without_reload(nodes, dashboard, page, rabbit,
                                                                           redis_client, control, tmp_path):
    node = nodes()
    _, url = dashboard()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page.set_window_size(*SIZES["desktop"])
    page.get(url)
    wait_for(lambda: page.find_elements(By.CSS_SELECTOR, '#nodes tr[data-node="node-a"]'), timeout=30,
             what="the node on the page")
    page.execute_script("window.notReloaded = 42; window.confirm = () => true;")

    # Create: the outcome is shown beside the form, once the node started the session.
    page.find_element(By.CSS_SELECTOR, "#create input[name=key]").send_keys("dash-1")
    page.find_element(By.CSS_SELECTOR, "#create button").click()
    wait_for(lambda: outcome(page, "create-outcome")[0].startswith("started on node-a"), timeout=60,
             what="the create's outcome beside its form")
    wait_for(lambda: state_on_page(page, "dash-1") == "qr", timeout=60, what="the session in qr on the page")
    counts = page.find_element(By.ID, "counts").text
    assert "qr" in counts and "all" in counts

    # Its own page: the QR code as an image a phone reads.
    page.find_element(By.CSS_SELECTOR, '#sessions tr[data-key="dash-1"] a').click()
    wait_for(lambda: session_state_on_page(page) == "qr", timeout=30, what="the session's page")

    def scanned_from_the_page() -> str | None:
        # What a phone pointed at the screen reads: the image as drawn.
        images = page.find_elements(By.CSS_SELECTOR, "#s-qr img.qr")
        shot = stable(lambda: scrolled_to(images[0]).screenshot_as_png) if images else None
        if shot is None:
            return None
        decoded = decode_qr(shot)
        current = redis_client.get("instances:dash-1:qr_code")
        return current if decoded == [current] else None  # else the code rotated meanwhile: look again

    qr = wait_for(scanned_from_the_page, timeout=30, what="the page's QR image to decode to the code in Redis")
    page.save_screenshot(str(shots / "session-qr-desktop.png"))
    phone, friend = new_phone(), new_phone()
    control.scan(qr, phone)
    wait_for(lambda: session_state_on_page(page) == "ready", timeout=60, what="ready on the session's page")
    assert page.execute_script("return window.notReloaded") == 42
    assert page.find_elements(By.CSS_SELECTOR, "#s-qr img.qr") == []
    wait_for(lambda: page.find_element(By.ID, "s-me").text == f"{phone}@c.us", what="its own number")

    # Send: "sent", shown under the form, once message_sent_instance carries the command's id.
    form = page.find_element(By.CSS_SELECTOR, "#send")
    form.find_element(By.NAME, "chat_id").send_keys(f"{friend}@c.us")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: outcome(page, "send-outcome")[0].startswith("sent at "), timeout=60, what="the send's outcome")
    assert [m["body"] for m in control.sent_by(phone)] == ["test from the dashboard"]
    # A file with a caption, read by the page and sent as the command's media.
    from wwnode.tools.qrterm import write_png
    picture = tmp_path / "hello.png"
    write_png("a picture to send", picture)
    first = outcome(page, "send-outcome")[0]
    form.find_element(By.NAME, "message").clear()
    form.find_element(By.NAME, "message").send_keys("a picture")
    form.find_element(By.NAME, "file").send_keys(str(picture))
    form.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: outcome(page, "send-outcome")[0] != first and outcome(page, "send-outcome")[0].startswith("sent"),
             timeout=60, what="the file's send outcome")
    media = [m["media"] for m in control.sent_by(phone) if m.get("media")]
    assert len(media) == 1, media
    assert media[0]["caption"] == "a picture" and media[0]["mimetype"] == "image/png", media
    assert media[0]["size"] == picture.stat().st_size
    # The session's events, as readable lines (24-hour clock), not JSON.
    lines = page.find_element(By.ID, "s-events").text.splitlines()
    sent_line = next(line for line in lines if "message_sent_instance" in line)
    assert re.match(r"\d\d:\d\d:\d\d\.\d{3} node-a\s+message_sent_instance\s+key=dash-1 ", sent_line), sent_line
    assert not any(line.lstrip().startswith("{") for line in lines)
    assert re.fullmatch(r"\d\d:\d\d:\d\d", page.find_element(By.ID, "clock").text)

    # Chats, through the contract's query command: the friend written to is one.
    page.find_element(By.ID, "load-chats").click()
    try:
        wait_for(lambda: re.match(r"\d+ chats", outcome(page, "chats-outcome")[0]), timeout=60, what="the chats")
    except AssertionError:
        raise AssertionError(f"no chats; the outcome line says {outcome(page, 'chats-outcome')}") from None
    assert f"{friend}@c.us" in page.find_element(By.ID, "chats").text

    page.set_window_size(*SIZES["laptop"])
    page.save_screenshot(str(shots / "session-ready-laptop.png"))

    # A refused action shows its refusal where it was made, in place of "published".
    page.find_element(By.CSS_SELECTOR, "#settings textarea").clear()
    page.find_element(By.CSS_SELECTOR, "#settings textarea").send_keys('{"no_such_setting": 1}')
    page.find_element(By.CSS_SELECTOR, "#settings button").click()
    wait_for(lambda: outcome(page, "settings-outcome")[1].endswith("refused"), timeout=60,
             what="the refusal of a bad setting")
    assert "bad_settings" in outcome(page, "settings-outcome")[0]

    page.find_element(By.ID, "s-destroy").click()
    wait_for(lambda: outcome(page, "destroy-outcome")[0].startswith("stopped at "), timeout=60,
             what="the destroy's outcome")
    wait_for(lambda: session_state_on_page(page) in ("stopped", "unknown"), timeout=30, what="the state to follow")

    # A command for a key no node runs: the node's command_failed replaces "published".
    page.get(url + "/#/session/nobody-here")
    wait_for(lambda: page.find_element(By.ID, "s-key").text == "nobody-here", what="that key's page")
    page.find_element(By.CSS_SELECTOR, "#send input[name=chat_id]").clear()
    page.find_element(By.CSS_SELECTOR, "#send input[name=chat_id]").send_keys(f"{friend}@c.us")
    page.find_element(By.CSS_SELECTOR, "#send button").click()
    try:
        wait_for(lambda: outcome(page, "send-outcome")[1].endswith("refused"), timeout=60,
                 what="the refusal of a send to a key nobody runs")
    except AssertionError:
        raise AssertionError(f"{outcome(page, 'send-outcome')}; events: "
                             f"{page.find_element(By.ID, 'events').text[:3000]}") from None
    assert outcome(page, "send-outcome")[0].startswith("refused: unknown_instance")

    page.get(url + "/#/")
    wait_for(lambda: page.find_elements(By.CSS_SELECTOR, '#nodes tr[data-node="node-a"]'), timeout=30,
             what="the fleet again")
    for name, size in SIZES.items():
        page.set_window_size(*size)
        page.save_screenshot(str(shots / f"fleet-{name}.png"))
    print(f"\nscreenshots in {shots}: {', '.join(sorted(p.name for p in shots.iterdir()))}")
    assert node.alive()


@pytest.mark.services
def test_two_hundred_sessions_stay_usable_counts_filter_and_pages(dashboard, page, redis_client, tmp_path):
    """The page with a fleet of 200 sessions: as Redis shows them (each
    state hash as a node writes it), so no 200 processes are needed."""
    states = ["ready"] * 150 + ["qr"] * 30 + ["failed"] * 20
    now = int(time.time() * 1000)
    for n, state in enumerate(states):
        redis_client.hset(f"instances:fleet-{n:03d}:state",
                          mapping={"state": state, "node": f"node-{n % 4}", "since": now - n * 1000})
    _, url = dashboard()
    page.set_window_size(*SIZES["laptop"])
    page.get(url)
    wait_for(lambda: "200" in (page.execute_script(
        "const b = document.querySelector('#counts button[data-state=\"\"]'); return b && b.textContent;") or ""),
        timeout=30, what="the counts")
    counts = page.execute_script("const c = {}; for (const b of document.querySelectorAll('#counts button'))"
                                 " c[b.dataset.state] = b.textContent; return c;")
    assert counts["ready"].endswith("150") and counts["qr"].endswith("30") and counts["failed"].endswith("20")
    assert len(page.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")) == 50  # one page of 50
    assert shown(page) == "1-50 of 200"
    page.find_element(By.ID, "next").click()
    assert shown(page) == "51-100 of 200"
    assert first_row(page) == "fleet-050"

    click(page, '#counts button[data-state="failed"]')
    assert shown(page) == "1-20 of 20 (filtered)"
    click(page, '#counts button[data-state=""]')
    page.find_element(By.ID, "filter").send_keys("node-3")
    assert shown(page) == "1-50 of 50 (filtered)"
    page.find_element(By.CSS_SELECTOR, '#sessions th[data-sort="key"]').click()  # now descending
    assert first_row(page) == "fleet-199"
    page.find_element(By.ID, "filter").clear()
    page.find_element(By.ID, "filter").send_keys(" ")  # an input event; no word: everything
    took = page.execute_script("renderSessions(); return window.lastRenderMs;")
    page.save_screenshot(str(tmp_path / "fleet-200-laptop.png"))
    print(f"\n200 sessions: one render of counts, filter, sort and a page took {took:.1f} ms "
          f"(screenshot {tmp_path / 'fleet-200-laptop.png'})")


@pytest.mark.services
def test_bound_beyond_loopback_it_needs_a_token(dashboard, rabbit_url, redis_url, rabbit):
    env = {"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url, "DASHBOARD_TOKEN": ""}
    refused = run_cli("dashboard", "--host", "0.0.0.0", "--port", str(free_port()), env=env)
    assert refused.returncode == 2
    assert "DASHBOARD_TOKEN" in refused.stderr and "Traceback" not in refused.stderr

    _, url = dashboard("--host", "0.0.0.0", DASHBOARD_TOKEN=TOKEN)
    assert request(url + "/")[0] == 401
    assert request(url + "/?token=wrong-token-of-the-same-size")[0] == 401
    status, _, headers = request(url + "/?token=" + TOKEN)
    assert status == 302 and "wwnode_dashboard=" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
    # The redirect that takes the token off the address bar stays on this
    # dashboard: a path like //evil.example/x is no other site's address.
    for path in ("//evil.example/x", "/\\evil.example/x"):
        status, _, headers = request(url + path + "?token=" + TOKEN + "&a=1")
        assert status == 302 and headers["Location"] == "/", (path, headers["Location"])
    assert request(url + "/api/sessions?token=" + TOKEN + "&a=1")[2]["Location"] == "/api/sessions?a=1"
    status, html, _ = request(url + "/", headers={"Cookie": f"wwnode_dashboard={TOKEN}"})
    assert status == 200 and "wwnode console" in html
    # Never a password: the broker's is "guest", shown masked.
    assert "guest:guest" not in html and ":guest@" not in html
    status, _, _ = request(url + "/api/create", b'{"key": "tok-1"}',
                           {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert rabbit.depth("create_instance")[0] == 1


@pytest.mark.services
def test_commands_from_other_sites_and_bad_input_are_refused(dashboard, rabbit):
    _, url = dashboard()
    json = {"Content-Type": "application/json"}
    assert request(url + "/api/create", b"key=x", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    assert request(url + "/api/create", b'{"key": "x"}', {**json, "Origin": "http://evil.example"})[0] == 403
    assert request(url + "/", headers={"Host": "evil.example"})[0] == 403  # a DNS name rebound to 127.0.0.1
    status, body, _ = request(url + "/api/create", b'{"key": "no spaces"}', json)
    assert status == 400 and "bad_key" in body
    status, body, _ = request(url + "/api/send", b'{"key": "k", "chat_id": "nope", "message": "x"}', json)
    assert status == 400
    assert rabbit.depth("create_instance")[0] == 0 and rabbit.depth("send_message")[0] == 0


@pytest.mark.services
def test_a_sessions_page_reads_its_settings_with_the_proxy_password_masked(dashboard, redis_client):
    from wwnode.sessionsettings import parse_proxy, SessionSettings

    settings = SessionSettings(proxy=parse_proxy("http://bob:pw-secret-42@127.0.0.1:3128"), reject_calls=True)
    redis_client.set("instances:set-1:settings", orjson.dumps(settings.stored()))
    redis_client.set("instances:set-1:pairing_code", "ABCD-EFGH")
    _, url = dashboard()
    status, body, _ = request(url + "/api/session?key=set-1")
    assert status == 200 and "pw-secret-42" not in body
    doc = orjson.loads(body)
    assert doc["settings"]["reject_calls"] is True and "127.0.0.1:3128" in doc["settings"]["proxy"]
    assert doc["pairing_code"] == "ABCD-EFGH"
    status, body, _ = request(url + "/api/session?key=no%20spaces")
    assert status == 400 and "bad_key" in body
