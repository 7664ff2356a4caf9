#!/usr/bin/env bash
# Run by supervisord beside the RabbitMQ it runs (deploy/supervisord.conf),
# with the variables deploy/local_services.py decided.  Once the broker is
# up: the node's user (wwnode) with the password of $WWNODE_RUN/credentials,
# its virtual host and permissions, its tag for the management panel
# (monitoring: it sees the broker's figures and its own virtual host's
# queues, and manages no user), no guest user (any local user could
# publish a destroy with it), and the policy that bounds the event queues
# and wa.dead_letter.  Each step sets what it finds to what it should be, so
# it runs at every start, over a database of any earlier one.  The password
# goes to rabbitmqctl on its standard input, never on a command line.
set -uo pipefail
ctl_bin=/usr/lib/rabbitmq/bin/rabbitmqctl
user=wwnode

ctl() {  # rabbitmqctl as the broker's user, who holds its Erlang cookie
  if [ "$(id -u)" = 0 ] && [ "$WWNODE_RABBITMQ_USER" != root ]; then
    runuser -u "$WWNODE_RABBITMQ_USER" -- env HOME="$WWNODE_RABBITMQ_HOME" ERL_EPMD_PORT="$ERL_EPMD_PORT" \
      "$ctl_bin" -q -n "$WWNODE_RABBITMQ_NODENAME" "$@"
  else
    HOME="$WWNODE_RABBITMQ_HOME" "$ctl_bin" -q -n "$WWNODE_RABBITMQ_NODENAME" "$@"
  fi
}

up=0
for _ in $(seq 1 120); do
  if ctl await_startup --timeout 10 >/dev/null 2>&1; then up=1; break; fi
  sleep 1
done
[ "$up" = 1 ] || { echo "rabbitmq-setup: the broker did not come up"; exit 1; }

if ! printf '%s\n' "$WWNODE_RABBITMQ_PASSWORD" | ctl add_user "$user" >/dev/null 2>&1; then
  printf '%s\n' "$WWNODE_RABBITMQ_PASSWORD" | ctl change_password "$user" >/dev/null || exit 1
fi
ctl add_vhost "$WWNODE_RABBITMQ_VHOST" >/dev/null 2>&1  # there already: fine
ctl set_permissions -p "$WWNODE_RABBITMQ_VHOST" "$user" '.*' '.*' '.*' >/dev/null || exit 1
ctl set_user_tags "$user" monitoring >/dev/null || exit 1
ctl delete_user guest >/dev/null 2>&1  # gone already: fine
ctl set_policy -p "$WWNODE_RABBITMQ_VHOST" --apply-to queues wwnode-bounded \
  "$WWNODE_QUEUE_POLICY_PATTERN" "$WWNODE_QUEUE_POLICY" >/dev/null || exit 1
echo "rabbitmq-setup: user $user, virtual host $WWNODE_RABBITMQ_VHOST, no guest, policy wwnode-bounded $WWNODE_QUEUE_POLICY, management panel on 127.0.0.1:$WWNODE_RABBITMQ_MANAGEMENT_PORT"
