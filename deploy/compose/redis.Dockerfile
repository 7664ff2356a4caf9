# Redis for compose.yaml: Debian's package, run as the redis user, with a
# password and nothing saved to disk (as the Debian path runs it: the
# node's keys are leases, heartbeats and QR codes, rebuilt by the nodes).
# Built from deploy/, as rabbitmq.Dockerfile is.
FROM debian:bookworm-slim

RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

COPY compose/redis-start.sh /usr/local/bin/redis-start.sh
USER redis
WORKDIR /var/lib/redis
EXPOSE 6379
HEALTHCHECK --interval=15s --timeout=5s --retries=4 CMD ["sh", "-c", "REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli ping | grep -q PONG"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/redis-start.sh"]
