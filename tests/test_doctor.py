"""``wwnode doctor`` against the stand-in, and the one list it shares with
the session (``sessionproc/pageapi.py``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import pytest

from sessionproc import pageapi
from wwnode.tools.doctor import INCOMPLETE, NO_BROWSER, NOT_LOADED, OK

SESSIONPROC = Path(pageapi.__file__).parent


# ------------------------------------------------------------ the list
def test_every_module_the_session_requires_is_in_the_one_list():
    sources = [SESSIONPROC / name for name in ("hook.js", "message.js", "content.js", "polls.js", "pagescripts.py")]
    required = set()
    for path in sources:
        required |= set(re.findall(r"req(?:uire)?\('([A-Za-z0-9]+)'\)", path.read_text()))
    required |= set(re.findall(r"'(WA[A-Za-z0-9]+)'", (SESSIONPROC / "hook.js").read_text()))
    listed = {m.module for n in pageapi.SURFACE for m in n.alternatives}
    assert required and required <= listed, required - listed


def test_without_send_seen_its_modules_are_not_needed():
    assert {n.use for n in pageapi.needs(send_seen=False, pairing=True)} == set(pageapi.USES) - {"send_seen", "read"}
    assert pageapi.needs(send_seen=True, pairing=True) == pageapi.SURFACE


def test_what_counts_as_missing():
    wanted = (pageapi.need("boot", "A", "x"),
              pageapi.either("qr", pageapi.Member("B", "y"), pageapi.Member("C", "y")))
    assert pageapi.missing(wanted, [[True], [False, True]]) == []
    assert pageapi.missing(wanted, [[False], [False, False]]) == ["A.x", "B.y or C.y"]
    # An answer of another shape checked nothing.
    for answer in (None, [], [[True]], "yes", [[True], "x"]):
        assert pageapi.missing(wanted, answer) != [], answer


# ------------------------------------------------------------ the command
browser_test = pytest.mark.browser


def doctor(tmp_path, *args: str, **env: str) -> tuple[int, dict | str]:
    """Run ``wwnode doctor`` in a folder of its own (no .env), with a
    temporary folder of its own, so what it leaves behind can be seen.
    (That folder has a short name: Chromium puts a socket in it.)"""
    tmp = Path(tempfile.mkdtemp(prefix="wwdoc"))
    try:
        run_env = {k: v for k, v in os.environ.items() if k not in ("USER_AGENT", "BOOT_TIMEOUT", "SEND_SEEN")}
        run_env |= {"TMPDIR": str(tmp), **env}
        done = subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "doctor", *args], cwd=tmp_path, env=run_env,
                              capture_output=True, text=True, timeout=120)
        assert list(tmp.glob("wwnode-doctor-*")) == [], "the throwaway profile was left behind"
    finally:
        shutil.rmtree(tmp)
    out = orjson.loads(done.stdout) if "--json" in args and done.stdout.strip() else done.stdout + done.stderr
    return done.returncode, out


@browser_test
def test_the_stand_in_has_everything(tmp_path, wa):
    code, report = doctor(tmp_path, "--url", wa.url, "--json")
    assert code == OK and report["problem"] == ""
    assert [s["need"] for s in report["surface"]] == [str(n) for n in pageapi.SURFACE]
    assert all(s["present"] for s in report["surface"])
    assert {s["stage"] for s in report["surface"]} == {pageapi.AT_LOAD, pageapi.WHEN_SYNCED, pageapi.ON_USE}
    assert "Headless" not in report["user_agent"] and report["webdriver"] is False
    assert report["version"] and report["load_seconds"] > 0


@browser_test
def test_the_text_report_names_what_a_changed_page_lacks(tmp_path, make_wa):
    wa = make_wa(drop_modules=("WALinkify", "WAWebUserPrefsMultiDevice"))
    code, text = doctor(tmp_path, "--url", wa.url)
    assert code == INCOMPLETE
    assert re.search(r"MISSING +synced +message +WALinkify\.findLinks\n", text)
    # The ADV secret is still there, from the older module.
    assert re.search(r"present +load +qr +WAWebUserPrefsMultiDevice\.getADVSecretKey or "
                     r"WAWebAdvSignatureApi\.getADVSecretKey +\(has WAWebAdvSignatureApi\.getADVSecretKey\)", text)
    # Everything else is there (a location's link needs WALinkify too).
    linkify = [n for n in pageapi.SURFACE if any(m.module == "WALinkify" for m in n.alternatives)]
    assert re.search(r"MISSING +use +location +WALinkify\.findLink\n", text)
    assert len(re.findall(r"^  present ", text, re.M)) == len(pageapi.SURFACE) - len(linkify) == len(pageapi.SURFACE) - 2
    assert "user agent    Mozilla/5.0" in text and "webdriver     false" in text
    assert f"lacks {len(linkify)} of the" in text


@browser_test
def test_send_seen_off_needs_less(tmp_path, make_wa):
    wa = make_wa(drop_modules=("WAWebUpdateUnreadChatAction",))
    assert doctor(tmp_path, "--url", wa.url, "--json")[0] == INCOMPLETE
    code, report = doctor(tmp_path, "--url", wa.url, "--json", SEND_SEEN="false")
    assert code == OK and all(s["use"] not in ("send_seen", "read") for s in report["surface"])


@browser_test
def test_a_page_that_does_not_load_in_time(tmp_path, wa):
    code, report = doctor(tmp_path, "--url", wa.url + "not-the-app", "--json", BOOT_TIMEOUT="2")
    assert code == NOT_LOADED and "within 2 s" in report["problem"]
    assert report["version"] is None and report["surface"] == []


@browser_test
def test_the_site_refuses_a_headless_user_agent(tmp_path, wa):
    headless = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "HeadlessChrome/156.0.0.0 Safari/537.36")
    code, text = doctor(tmp_path, "--url", wa.url, USER_AGENT=headless, BOOT_TIMEOUT="2")
    assert code == NOT_LOADED
    assert f"user agent    {headless}\n" in text and "says Headless" in text


@browser_test
def test_an_unreachable_page_is_said_at_once(tmp_path):
    code, report = doctor(tmp_path, "--url", "http://127.0.0.1:9/", "--json")  # nothing listens on discard
    assert code == NOT_LOADED and "could not be" in report["problem"]


def test_a_missing_browser(tmp_path):
    code, report = doctor(tmp_path, "--url", "http://127.0.0.1:9/", "--json", CHROME_PATH=str(tmp_path / "no-chrome"))
    assert code == NO_BROWSER and "no-chrome" in report["problem"]


@pytest.mark.parametrize("args, env", [
    (["--url", "file:///etc/passwd"], {}),
    (["--url", "http://127.0.0.1:9/"], {"BOOT_TIMEOUT": "0"}),
])
def test_bad_settings_change_nothing(tmp_path, args, env):
    code, text = doctor(tmp_path, *args, **env)
    assert code == 2 and "bad setting" in text
