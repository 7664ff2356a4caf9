#!/usr/bin/env bash
# The test command: sets up a fresh Debian machine (see setup-debian.sh)
# and runs the whole suite against real RabbitMQ, Redis and Chromium.
# Extra arguments go to pytest, e.g.  deploy/run-tests.sh -k sessionproc
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup-debian.sh
exec .venv/bin/python -m pytest "$@"
