#!/usr/bin/env bash
# The run command: sets up a fresh Debian machine (see setup-debian.sh) and
# runs a node under supervisord (deploy/supervisord.conf), with RabbitMQ and
# Redis on this machine when RABBIT_MQ_URL / REDIS_URL name this machine and
# nothing listens on their ports yet (deploy/local_services.py decides, and
# says why on stderr).  Settings: environment and ./.env (see .env.example and
# local_services.py).  Ctrl-C (or SIGTERM) stops the node, then whatever this
# command started; nothing it started outlives it.
set -euo pipefail
cd "$(dirname "$0")/.."
export WWNODE_HOME="$PWD"
export WWNODE_PYTHON="$PWD/.venv/bin/python"
export WWNODE_RUN="$(realpath -m "${WWNODE_RUN:-data/run}")"
mkdir -p "$WWNODE_RUN"
chmod 700 "$WWNODE_RUN"

WITH_TESTS=0 START_SERVICES=0 deploy/setup-debian.sh

# After setup: the servers' packages (and their users) may be new.
services=$("$WWNODE_PYTHON" deploy/local_services.py)
eval "$services"
echo "run-node: starting under supervisord (its log: $WWNODE_RUN/supervisord.log); the node's output goes to" \
  "$WWNODE_RUN/wwnode.out, and this terminal says when it takes commands" >&2
exec .venv/bin/supervisord -c deploy/supervisord.conf
