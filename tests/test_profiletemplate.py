"""A new session's profile starts as a copy of a template Chromium made
once (sessionproc/profiletemplate.py), which the node makes in the
background when its Chromium has none (wwnode/templates.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sessionproc import browser, profiletemplate
from sessionproc.protocol import SETTINGS_FILE
from sessionproc.useragent import VersionUnknown, chrome_version
from support import create_ready, new_phone, wait_for
from wwnode import wiring
from wwnode.config import load
from wwnode.paths import Paths
from wwnode.starts import Starts
from wwnode.templates import ProfileTemplates

VERSION = "156.0.8078.129"


def a_template(root: Path) -> Path:
    """A made-up template: a few files and folders, as a real one has."""
    folder = root / VERSION
    (folder / "Default" / "Local Storage").mkdir(parents=True)
    (folder / "Default" / "Preferences").write_text('{"made": "once"}')
    (folder / "Local State").write_text("{}")
    (folder / "First Run").write_bytes(b"")
    return folder


# ------------------------------------------------------------ the copy

def test_a_new_profile_is_a_whole_copy_and_an_existing_one_is_left_alone(tmp_path):
    template = a_template(tmp_path / "templates")
    profile = tmp_path / "sessions" / "k1" / "profile"
    assert profiletemplate.copy_into(template, profile)
    assert (profile / "Default" / "Preferences").read_text() == '{"made": "once"}'
    assert sorted(p.name for p in profile.parent.iterdir()) == ["profile"]  # no staging folder left

    (profile / "Default" / "Preferences").write_text('{"used": true}')  # the session ran on it
    assert not profiletemplate.copy_into(template, profile)
    assert (profile / "Default" / "Preferences").read_text() == '{"used": true}'

    empty = tmp_path / "sessions" / "k2" / "profile"
    empty.mkdir(parents=True)  # the node wrote the session's settings there before its start
    (empty / SETTINGS_FILE).write_text('{"proxy": null}')
    assert profiletemplate.copy_into(template, empty)
    assert (empty / "First Run").exists() and (empty / SETTINGS_FILE).read_text() == '{"proxy": null}'
    assert sorted(p.name for p in empty.parent.iterdir()) == ["profile"]


def test_no_template_no_copy(tmp_path):
    profile = tmp_path / "k1" / "profile"
    assert not profiletemplate.copy_into(tmp_path / "templates" / VERSION, profile)
    assert not profile.exists()


def test_a_copy_that_does_not_fit_leaves_no_profile_and_no_staging(tmp_path, small_disk, caplog):
    template = a_template(tmp_path / "templates")
    (template / "Default" / "History").write_bytes(os.urandom(3 * 1024 * 1024))
    disk = small_disk("sessions", "2m")
    profile = disk.folder / "k1" / "profile"
    with caplog.at_level(logging.WARNING):
        assert not profiletemplate.copy_into(template, profile)
    assert [p.name for p in (disk.folder / "k1").iterdir()] == ["profile"]  # no staging folder left
    assert list(profile.iterdir()) == []  # empty: Chromium makes it as without a template
    assert "starting on an empty one" in caplog.text


def test_a_template_is_named_after_a_version_only(tmp_path):
    assert profiletemplate.folder_for(tmp_path, VERSION) == tmp_path / VERSION
    for bad in ("", "../156", "156.0/x", "latest", "1.2.3.4.5"):
        with pytest.raises(ValueError):
            profiletemplate.folder_for(tmp_path, bad)


# ----------------------------------------------------------- the making

@pytest.mark.browser
def test_made_from_chromium_without_what_names_its_run(tmp_path):
    root = tmp_path / "templates"
    made = profiletemplate.make(root, VERSION, browser.DEFAULT_CHROME, browser.DEFAULT_CHROMEDRIVER)
    assert made == root / VERSION and (made / "Default" / "Preferences").is_file()
    assert (made / "First Run").exists() and (made / "Local State").is_file()
    left = [p for p in made.rglob("*") if p.name in profiletemplate.LEFT_OUT]
    assert left == []
    assert sorted(p.name for p in root.iterdir()) == [VERSION]  # its building folder is gone
    assert not browser.processes_using(made)
    # Made already: the second maker finds it and starts no browser.
    assert profiletemplate.make(root, VERSION, "/nonexistent/chromium", "/nonexistent/chromedriver") == made


def test_a_maker_that_cannot_start_chromium_leaves_nothing(tmp_path):
    root = tmp_path / "templates"
    done = subprocess.run([sys.executable, "-m", "sessionproc.profiletemplate", "--dir", str(root), "--version",
                           VERSION, "--chrome", "/nonexistent/chromium"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "not made" in done.stderr and "Traceback" not in done.stderr
    assert list(root.iterdir()) == []


# ------------------------------------------------------- the node's side

class FakeMaker:
    def __init__(self, argv, **kwargs):
        self.argv, self.pid, self.code, self.terminated = argv, 4242, None, False

    def poll(self):
        return self.code

    def terminate(self):
        self.terminated, self.code = True, -15

    def wait(self, timeout=None):
        return self.code


def node_side(root: Path | None, tmp_path: Path, version_of=lambda chrome: VERSION):
    made: list[FakeMaker] = []

    def popen(argv, **kwargs):
        made.append(FakeMaker(argv, **kwargs))
        return made[-1]

    templates = ProfileTemplates(root, "/usr/bin/chromium", "/usr/bin/chromedriver", tmp_path / "maker.log",
                                 python="python3", popen=popen, version_of=version_of)
    return templates, made


def test_the_node_makes_a_missing_template_once_and_names_it_to_starts(tmp_path, caplog):
    root = tmp_path / "templates"
    templates, made = node_side(root, tmp_path)
    assert templates.folder() == root / VERSION  # named before it exists: the session then starts empty
    with caplog.at_level(logging.INFO):
        templates.tick(0.0)
        templates.tick(0.5)
        assert len(made) == 1
        assert oct((tmp_path / "maker.log").stat().st_mode & 0o777) == "0o600"  # its output, private as every log
        assert made[0].argv == ["python3", "-m", "sessionproc.profiletemplate", "--dir", str(root), "--version",
                                VERSION, "--chrome", "/usr/bin/chromium", "--chromedriver", "/usr/bin/chromedriver"]
        a_template(root)
        made[0].code = 0
        templates.tick(1.5)
        templates.tick(9.0)
    assert len(made) == 1
    assert "profile template" in caplog.text and "made in 1.5 s" in caplog.text


def test_a_failed_making_is_told_and_not_retried_until_the_next_start(tmp_path, caplog):
    templates, made = node_side(tmp_path / "templates", tmp_path)
    templates.tick(0.0)
    made[0].code = 0  # its status taken by the node's reaper: the folder tells
    with caplog.at_level(logging.WARNING):
        templates.tick(1.0)
    templates.tick(2.0)
    assert len(made) == 1
    assert "was not made" in caplog.text and "maker.log" in caplog.text


def test_nothing_is_made_when_present_or_without_a_version(tmp_path):
    root = tmp_path / "templates"
    a_template(root)
    templates, made = node_side(root, tmp_path)
    templates.tick(0.0)
    assert made == [] and templates.folder() == root / VERSION

    def unknown(chrome):
        raise VersionUnknown("no Chromium there")

    templates, made = node_side(tmp_path / "other", tmp_path, version_of=unknown)
    templates.tick(0.0)
    assert made == [] and templates.folder() is None


def test_the_settings_name_the_folder_or_turn_templates_off(tmp_path):
    def starts_with(environ: dict) -> tuple[ProfileTemplates | None, list[str]]:
        cfg = load(environ={"DATA_DIR": str(tmp_path / "data"), **environ}, dotenv=None)
        paths = Paths(cfg.data_dir)
        templates = wiring.profile_templates(cfg, paths)
        starts = Starts(cfg, paths, spawner=None, health=None,
                        template=templates.folder if templates is not None else lambda: None)
        return templates, starts.args_for("k1").argv()

    version = chrome_version("/usr/bin/chromium")
    templates, argv = starts_with({})
    assert templates is not None and templates.root == (tmp_path / "data" / "profile-templates").resolve()
    assert argv[argv.index("--profile-template") + 1] == str(templates.root / version)
    templates, argv = starts_with({"PROFILE_TEMPLATE_DIR": str(tmp_path / "shared")})
    assert templates is not None and templates.root == tmp_path / "shared"
    templates, argv = starts_with({"PROFILE_TEMPLATES": "false"})
    assert templates is None and "--profile-template" not in argv


def test_the_node_stop_ends_a_maker_under_way(tmp_path):
    templates, made = node_side(tmp_path / "templates", tmp_path)
    templates.tick(0.0)
    assert not templates.busy()  # a stop does not wait for it
    templates.close()
    assert made[0].terminated


# -------------------------------------------------------------- end to end

@pytest.mark.browser
def test_a_created_session_starts_on_a_copy_and_its_restart_on_its_own(nodes, rabbit, control, tmp_path):
    """The node makes the template (a folder of its own, none there), a
    new key's session copies it, and the same key started again keeps
    its own profile (its login)."""
    root = tmp_path / "own-templates"
    node = nodes(profile_template_dir=str(root))
    version = chrome_version(browser.DEFAULT_CHROME)
    wait_for(lambda: (root / version).is_dir(), timeout=60, what="the node to make the template")
    wait_for(lambda: "profile template" in node.log_text() and "made in" in node.log_text(),
             what="the node to tell it made it")
    create_ready(rabbit, control, "tmpl-1", new_phone())
    log = node.data_dir / "logs" / "sessions" / "tmpl-1.log"
    assert log.read_text().count("new profile copied from the template") == 1
    assert (node.profile("tmpl-1") / "wwnode-linked").exists()
    assert not (root / version / "wwnode-linked").exists()  # the copy linked, not the template

    assert node.terminate() == 0
    node.start()
    rabbit.expect("ready_instance", key="tmpl-1")  # restored on its own profile
    assert log.read_text().count("new profile copied from the template") == 1
    assert len(rabbit.find("qr_instance", key="tmpl-1")) == 1  # its own login: no QR


def test_what_a_crash_left_is_removed_by_the_next_copy_or_maker(tmp_path):
    template = a_template(tmp_path / "templates")
    profile = tmp_path / "sessions" / "k1" / "profile"
    left_copy = tmp_path / "sessions" / "k1" / ".profile-copy-x1"
    (left_copy / "profile").mkdir(parents=True)
    assert profiletemplate.copy_into(template, profile)
    assert sorted(p.name for p in profile.parent.iterdir()) == ["profile"]

    old, young = tmp_path / "templates" / ".making-old", tmp_path / "templates" / ".making-young"
    old.mkdir()
    young.mkdir()  # another node's, at work on the same folder
    os.utime(old, (0, 0))
    assert profiletemplate.make(tmp_path / "templates", VERSION, "/nonexistent", "/nonexistent") == template
    assert not old.exists() and young.exists()


def test_two_makers_at_once_both_end_with_the_first_ones_template(tmp_path, monkeypatch):
    """Two nodes on one folder: the second finds the first's rename done
    when its own comes, and keeps the first's."""
    root = tmp_path / "templates"

    class Driver:
        def quit(self):
            a_template(root)  # the other maker renamed its folder in meanwhile

    def launch(cfg):
        (cfg.profile_dir / "Default").mkdir(parents=True)
        (cfg.profile_dir / "Local State").write_text('{"second": true}')
        return Driver()

    monkeypatch.setattr(browser, "launch", launch)
    assert profiletemplate.make(root, VERSION, "chromium", "chromedriver") == root / VERSION
    assert (root / VERSION / "Local State").read_text() == "{}"  # the first one's
    assert sorted(p.name for p in root.iterdir()) == [VERSION]  # the second's folder gone
