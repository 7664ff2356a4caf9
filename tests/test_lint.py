"""The code as the linter reads it (ruff, with the rules pyproject.toml
names): no unused import or name, no undefined name, none of bugbear's
likely bugs; and as the type checker reads it (mypy, with the settings
pyproject.toml gives, on wwnode and sessionproc).  A finding fails the
suite, with its file and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_linter_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           "wwnode", "sessionproc", "tests", "deploy"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_type_checker_finds_nothing():
    # The files to check, and how, are pyproject.toml's; no cache, so the
    # run reads the code as it is, whatever ran before.
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
