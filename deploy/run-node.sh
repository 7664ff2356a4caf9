#!/usr/bin/env bash
# The run command: sets up a fresh Debian machine (see setup-debian.sh) and
# runs a node under supervisord, with RabbitMQ and Redis on this machine
# unless they already run or RABBIT_MQ_URL / REDIS_URL point elsewhere.
# Settings: environment and ./.env (see .env.example).  Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export WWNODE_HOME="$PWD"
export WWNODE_PYTHON="$PWD/.venv/bin/python"
export WWNODE_RUN="${WWNODE_RUN:-$PWD/data/run}"
mkdir -p "$WWNODE_RUN"
chmod 700 "$WWNODE_RUN"

WITH_TESTS=0 START_SERVICES=0 deploy/setup-debian.sh

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# supervisord runs RabbitMQ and Redis only when nothing listens on their
# ports yet (a system service, or another machine's through an SSH tunnel).
WWNODE_LOCAL_REDIS=false
WWNODE_LOCAL_RABBITMQ=false
port_open 6379 || WWNODE_LOCAL_REDIS=true
port_open 5672 || WWNODE_LOCAL_RABBITMQ=true
export WWNODE_LOCAL_REDIS WWNODE_LOCAL_RABBITMQ
exec .venv/bin/supervisord -c deploy/supervisord.conf
