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
import urllib.error
import urllib.request

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
    """The state the page shows for the key (read in one step: the page
    redraws its rows as updates come)."""
    return page.execute_script(
        "const row = document.querySelector(`#sessions tr[data-key=\"${arguments[0]}\"]`);"
        "return row ? row.querySelector('.state').textContent : null;", key)


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


@pytest.mark.browser
def test_the_page_shows_a_scannable_qr_and_the_session_ready_without_reload(nodes, dashboard, page, rabbit,
                                                                           redis_client, control):
    node = nodes()
    _, url = dashboard()
    page.get(url)
    wait_for(lambda: page.find_elements(By.CSS_SELECTOR, '#nodes tr[data-node="node-a"]'), timeout=30,
             what="the node on the page")
    page.execute_script("window.notReloaded = 42; window.confirm = () => true;")

    page.find_element(By.CSS_SELECTOR, "#create input[name=key]").send_keys("dash-1")
    page.find_element(By.CSS_SELECTOR, "#create button").click()
    wait_for(lambda: state_on_page(page, "dash-1") == "qr", timeout=60, what="the session in qr on the page")

    def scanned_from_the_page() -> str | None:
        # What a phone pointed at the screen reads: the image as drawn.
        images = page.find_elements(By.CSS_SELECTOR, '#sessions tr[data-key="dash-1"] img.qr')
        shot = stable(lambda: scrolled_to(images[0]).screenshot_as_png) if images else None
        if shot is None:
            return None
        decoded = decode_qr(shot)
        current = redis_client.get("instances:dash-1:qr_code")
        return current if decoded == [current] else None  # else the code rotated meanwhile: look again

    qr = wait_for(scanned_from_the_page, timeout=30, what="the page's QR image to decode to the code in Redis")
    phone, friend = new_phone(), new_phone()
    control.scan(qr, phone)
    wait_for(lambda: state_on_page(page, "dash-1") == "ready", timeout=60, what="ready on the page")
    assert page.execute_script("return window.notReloaded") == 42
    assert page.find_elements(By.CSS_SELECTOR, '#sessions tr[data-key="dash-1"] img.qr') == []
    wait_for(lambda: phone in (page.execute_script(
        "const row = document.querySelector('#sessions tr[data-key=\"dash-1\"]'); return row && row.textContent;")
        or ""), what="its own number on the page")

    form = page.find_element(By.CSS_SELECTOR, "#send")
    form.find_element(By.NAME, "key").send_keys("dash-1")
    form.find_element(By.NAME, "chat_id").send_keys(f"{friend}@c.us")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: [m for m in control.sent_by(phone) if m["body"] == "test from the dashboard"], timeout=60,
             what="the test message to reach the stand-in")
    wait_for(lambda: "message_sent_instance" in page.find_element(By.ID, "events").text, timeout=30,
             what="message_sent_instance in the page's events")

    page.execute_script("document.querySelector('#sessions tr[data-key=\"dash-1\"] button.destroy').click()")
    wait_for(lambda: state_on_page(page, "dash-1") in (None, "stopped"), timeout=60, what="the session gone")
    assert page.execute_script("return window.notReloaded") == 42
    assert node.alive()


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
    assert status == 200 and "wwnode dashboard" in html
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
