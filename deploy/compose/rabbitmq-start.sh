#!/usr/bin/env bash
# The RabbitMQ container's command: the broker in the foreground, and once
# it is up, deploy/rabbitmq-setup.sh, as on a host under supervisord: the
# node's user wwnode with RABBITMQ_PASSWORD (set again at every start, so a
# new password in .env takes effect), no guest, and the bounded-queue
# policy.  A setup that fails stops the broker, so the container ends and
# says so instead of running without the policy or with guest.  SIGTERM
# (from tini) is passed to the broker: a clean stop, durable queues kept.
set -uo pipefail
: "${RABBITMQ_PASSWORD:?RABBITMQ_PASSWORD is required (see deploy/compose/make-secrets.sh)}"

export RABBITMQ_DEFAULT_USER=wwnode RABBITMQ_DEFAULT_PASS="$RABBITMQ_PASSWORD" RABBITMQ_DEFAULT_VHOST=/
/usr/lib/rabbitmq/bin/rabbitmq-server &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT

(
  export WWNODE_RABBITMQ_USER="$(id -un)" WWNODE_RABBITMQ_HOME="$HOME" \
    WWNODE_RABBITMQ_NODENAME="$RABBITMQ_NODENAME" WWNODE_RABBITMQ_PASSWORD="$RABBITMQ_PASSWORD" \
    WWNODE_RABBITMQ_VHOST=/ WWNODE_RABBITMQ_MANAGEMENT_PORT=15672
  unset RABBITMQ_PASSWORD RABBITMQ_DEFAULT_PASS
  /bin/bash /opt/wwnode-rabbitmq/rabbitmq-setup.sh || kill -TERM "$server"
) &

status=0
while kill -0 "$server" 2>/dev/null; do
  wait "$server" || status=$?
done
exit "$status"
