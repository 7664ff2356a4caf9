"""``wwnode doctor``: has the page everything the sessions use?

It opens the page as a session would -- the same browser launch code, the
same flags and user agent (``USER_AGENT``), on a throwaway profile that is
removed afterwards -- waits up to ``BOOT_TIMEOUT`` for WhatsApp Web's module
system (``window.Debug.VERSION``), and checks every module and member of
``sessionproc.pageapi`` with the session's own checker.  What an operator
runs against the real site before upgrading Chromium, or after WhatsApp
ships a new page.  Nothing is linked and nothing is sent.

The page is checked before a login, so needs the session checks only once
the page has synced (stage ``synced`` in the report: messages and sends,
``sessionproc.pageapi.WHEN_SYNCED``) are looked for early here.  A real
page that loads those modules only after a login shows them missing before
one; such a report is not proof that sessions would fail (docs/operating.md says
what is known of this).

Exit codes (also in docs/operating.md):

- 0 (``OK``): the page has everything the session uses;
- 1 (``INCOMPLETE``): it loaded but lacks something; a session would end
  with ``incompatible_page``;
- 2: a bad setting or argument (as every ``wwnode`` command);
- 3 (``NOT_LOADED``): no ``window.Debug.VERSION`` within ``BOOT_TIMEOUT``
  (or the page could not be reached); a session would restart with
  ``boot_timeout``;
- 4 (``NO_BROWSER``): Chromium or chromedriver could not start.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

from sessionproc import browser, pageapi

from ..config import Config

OK, INCOMPLETE, NOT_LOADED, NO_BROWSER = 0, 1, 3, 4

# [WhatsApp Web's version once its module system is up (else null), the address]
LOAD_STATE_JS = (
    "return [(window.Debug && window.Debug.VERSION && typeof window.require === 'function')"
    " ? String(window.Debug.VERSION) : null, String(location.href)];"
)
BROWSER_JS = "return [String(navigator.userAgent), navigator.webdriver === true];"
CHECK_JS = f"return ({pageapi.CHECK_FN})(arguments[0]);"
POLL = 0.05  # seconds between looks for window.Debug.VERSION


class _Unreachable(Exception):
    """Chromium shows its own error page: there is nothing to wait for."""


def _loaded_version(driver) -> str | None:
    version, href = driver.execute_script(LOAD_STATE_JS)
    if href.startswith("chrome-error:"):
        raise _Unreachable()
    return version


@dataclass
class Finding:
    need: pageapi.Need
    present: list[bool]  # one per alternative

    @property
    def ok(self) -> bool:
        return any(self.present)


@dataclass
class Report:
    url: str
    code: int = OK
    problem: str = ""
    user_agent: str | None = None
    webdriver: bool | None = None
    version: str | None = None
    load_seconds: float | None = None
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "url": self.url,
            "code": self.code,
            "problem": self.problem,
            "user_agent": self.user_agent,
            "webdriver": self.webdriver,
            "version": self.version,
            "load_seconds": self.load_seconds,
            "surface": [
                {"use": f.need.use, "stage": f.need.stage, "need": str(f.need), "present": f.ok,
                 "alternatives": {str(m): p for m, p in zip(f.need.alternatives, f.present)}}
                for f in self.findings
            ],
        }


def examine(cfg: Config, url: str) -> Report:
    """Open ``url`` in a browser launched as a session's is, and check it."""
    report = Report(url)
    with tempfile.TemporaryDirectory(prefix="wwnode-doctor-") as tmp:
        profile = Path(tmp) / "profile"
        bcfg = browser.BrowserConfig(
            profile_dir=profile,
            chrome=cfg.chrome_path,
            chromedriver=cfg.chromedriver_path,
            user_agent=cfg.user_agent,
            page_load_timeout=cfg.boot_timeout,
        )
        try:
            driver = browser.launch(bcfg)
        except (browser.CannotStart, browser.ProfileInUse, RuntimeError) as e:
            report.code, report.problem = NO_BROWSER, f"the browser did not start: {e}"
        else:
            try:
                _examine_page(driver, cfg, report)
            finally:
                driver.quit()
        browser.wait_until_gone(profile)  # before the profile goes
    return report


def _examine_page(driver, cfg: Config, report: Report) -> None:
    started = time.monotonic()
    try:
        browser.open_url(driver, report.url, cfg.boot_timeout)  # the wait below says what came of it
    except WebDriverException as e:
        report.code, report.problem = NOT_LOADED, f"the page could not be opened: {(e.msg or str(e)).splitlines()[0]}"
        return
    left = max(0.0, started + cfg.boot_timeout - time.monotonic())
    try:
        report.version = WebDriverWait(driver, left, poll_frequency=POLL).until(_loaded_version)
        report.load_seconds = round(time.monotonic() - started, 2)
    except TimeoutException:
        report.code = NOT_LOADED
        report.problem = f"WhatsApp Web did not load within {cfg.boot_timeout:g} s (no window.Debug.VERSION)"
    except _Unreachable:
        report.code, report.problem = NOT_LOADED, "the page could not be reached (Chromium shows its error page)"
    report.user_agent, report.webdriver = driver.execute_script(BROWSER_JS)
    if report.version is None:
        return
    wanted = pageapi.needs(send_seen=cfg.send_seen, pairing=True)
    found = driver.execute_script(CHECK_JS, pageapi.as_data(wanted))
    report.findings = [Finding(n, p) for n, p in zip(wanted, pageapi.present(wanted, found))]
    lacking = [f for f in report.findings if not f.ok]
    if lacking:
        report.code = INCOMPLETE
        report.problem = f"the page lacks {len(lacking)} of the {len(wanted)} things the session uses"


def render(report: Report) -> str:
    """The report for people."""
    yes_no = {True: "true", False: "false", None: "(unknown)"}
    lines = [
        f"page          {report.url}",
        f"user agent    {report.user_agent or '(unknown)'}",
        f"webdriver     {yes_no[report.webdriver]}",
        f"version       {report.version or '(not loaded)'}",
        f"loaded in     {f'{report.load_seconds:.2f} s' if report.load_seconds is not None else '(not loaded)'}",
    ]
    if report.user_agent and "Headless" in report.user_agent:
        lines.append("warning       the user agent says Headless: WhatsApp Web refuses such a browser")
    if report.findings:
        lines.append("")
        width = max(len(u) for u in pageapi.USES)
        for f in report.findings:
            line = f"  {'present' if f.ok else 'MISSING'}  {f.need.stage:<6}  {f.need.use:<{width}}  {f.need}"
            if len(f.need.alternatives) > 1 and f.ok:
                line += "  (has " + ", ".join(str(m) for m, p in zip(f.need.alternatives, f.present) if p) + ")"
            lines.append(line)
    lines.append("")
    verdict = report.problem or f"ok: the page has all {len(report.findings)} things the session uses"
    lines.append(f"result        {verdict}")
    return "\n".join(lines)
