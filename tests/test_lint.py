"""The code as the linter reads it (ruff, with the rules pyproject.toml
names): no unused import or name, no undefined name, none of bugbear's
likely bugs.  A finding fails the suite, with its file and line."""

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
