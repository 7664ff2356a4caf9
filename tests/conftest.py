from __future__ import annotations

import pytest

from sessionproc import browser
from support import SessionProcess, all_gone, chrome_processes_using, wait_for
from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control


@pytest.fixture
def make_wa():
    """Start stand-ins with given QR timings; each has its own port, so its
    pages have their own origin and storage even in a shared browser."""
    started = []

    def make(**settings) -> FakeWA:
        wa = FakeWA(settings=Settings(**settings)).start()
        started.append(wa)
        return wa

    yield make
    for wa in started:
        wa.stop()


@pytest.fixture
def wa(make_wa) -> FakeWA:
    return make_wa()


@pytest.fixture
def control(wa) -> Control:
    return Control(wa.url)


@pytest.fixture(scope="session")
def shared_browser(tmp_path_factory):
    """One Chromium for the tests that only need a page, not a profile of
    their own.  Each test opens a fresh tab on its own stand-in."""
    driver = browser.launch(browser.BrowserConfig(profile_dir=tmp_path_factory.mktemp("shared-profile")))
    yield driver
    driver.quit()


@pytest.fixture
def page(shared_browser):
    """A new tab in the shared browser, closed afterwards."""
    driver = shared_browser
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    yield driver
    driver.close()
    driver.switch_to.window(first)


@pytest.fixture
def browsers(tmp_path):
    """Start browsers on profiles of their own; all quit at the end."""
    started = []

    def launch(profile_name: str = "profile"):
        driver = browser.launch(browser.BrowserConfig(profile_dir=tmp_path / profile_name))
        started.append(driver)
        return driver

    yield launch
    for driver in started:
        driver.quit()


@pytest.fixture
def sessions(tmp_path, wa):
    """Start session processes; at the end each is stopped and its Chrome
    must be gone."""
    started: list[SessionProcess] = []

    def start(key: str = "k1", *extra: str, url: str | None = None, profile=None) -> SessionProcess:
        profile = profile or tmp_path / "profiles" / key
        proc = SessionProcess(key, profile, url or wa.url, tmp_path / "logs" / f"{key}.log", *extra)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.stop()
        wait_for(lambda: all_gone(chrome_processes_using(proc.profile)), timeout=10, what="Chrome to exit")
