# RabbitMQ for compose.yaml: Debian's package (the version the Debian path
# runs), its management panel on, run as the rabbitmq user.  Built from
# deploy/ (compose.yaml's build context) for rabbitmq-setup.sh.
FROM debian:bookworm-slim

# No service may start while packages install: a build has no init.
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && rabbitmq-plugins enable --offline rabbitmq_management >/dev/null

COPY rabbitmq-setup.sh compose/rabbitmq-start.sh /opt/wwnode-rabbitmq/

# The node name does not follow the container's host name, which changes
# with every new container: the broker's data (mnesia/, under the name)
# must outlive them.
ENV RABBITMQ_NODENAME=rabbit@localhost \
    RABBITMQ_LOGS=- \
    HOME=/var/lib/rabbitmq
VOLUME /var/lib/rabbitmq
USER rabbitmq
EXPOSE 5672 15672
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=4 \
  CMD ["rabbitmq-diagnostics", "-q", "check_port_connectivity"]
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/wwnode-rabbitmq/rabbitmq-start.sh"]
