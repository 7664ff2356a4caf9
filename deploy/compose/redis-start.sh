#!/bin/sh
# The Redis container's command.  The password goes to redis-server as
# configuration on its standard input, never on its command line.
set -eu
: "${REDIS_PASSWORD:?REDIS_PASSWORD is required (see deploy/compose/make-secrets.sh)}"
exec redis-server - <<CONF
bind 0.0.0.0
port 6379
requirepass $REDIS_PASSWORD
save ""
appendonly no
CONF
