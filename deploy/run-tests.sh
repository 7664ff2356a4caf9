#!/usr/bin/env bash
# The test command: sets up a fresh Debian machine (see setup-debian.sh)
# and runs the whole suite against real RabbitMQ, Redis and Chromium.
# Extra arguments go to pytest, e.g.  deploy/run-tests.sh -k sessionproc
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup-debian.sh
# Workers in parallel, a test file each at a time (its module's shared node
# and browser stay on one worker); tests/support.py gives each worker a
# RabbitMQ virtual host and a Redis database of its own.  Four workers on
# two cores: most of a test's time is waiting (for a browser, a broker, a
# lease; docs/decisions.md, "Four test workers on two cores").  TEST_WORKERS=0 runs
# the suite in one process; a later -n in the arguments wins.
# --no-loadscope-reorder: the files are handed out in the order
# tests/conftest.py gives them (the longest first), not by their count of
# tests, which left the longest single test's file to the end of the run.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-4}" --dist loadfile --no-loadscope-reorder "$@"
