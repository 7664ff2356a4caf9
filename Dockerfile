# The node's image: Debian's Chromium and chromedriver, the package in a
# virtual environment, run as an unprivileged user with Chromium's sandbox
# on.  At the top of the checkout so that `docker build .` (or `podman
# build .`) needs no options; see "Containers" in docs/operating.md.
#
#   podman build --format docker -t wwnode .    (Docker: docker build -t wwnode .)
#   docker run --init ... is not needed: tini is PID 1 already.
#
# Layers from the least to the most often changed: Debian's packages, then
# the package's dependencies (read from setup.cfg alone, so editing the
# code reuses them), then the code.
FROM debian:bookworm-slim

# --no-install-recommends: Chromium's recommendations are desktop
# integration (notifications, a GTK file chooser) a headless page never
# uses; they would add some 150 MB.  tini: PID 1 that passes SIGTERM to the
# node and reaps the processes that Chromium's own leave behind.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      chromium chromium-driver python3 python3-venv tini ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

# A fixed uid, so a volume made elsewhere (a host folder, a Kubernetes
# securityContext.fsGroup) can be given to it.  Chromium's sandbox works
# for this user with no extra capability; as root it would need
# --no-sandbox, which the node then adds.
RUN groupadd --system --gid 10001 wwnode \
 && useradd --system --uid 10001 --gid wwnode --create-home --home-dir /home/wwnode \
      --shell /usr/sbin/nologin wwnode \
 && install -d -o wwnode -g wwnode -m 0750 /data

COPY setup.cfg pyproject.toml /src/
RUN python3 -m venv /opt/wwnode \
 && python3 -c "import configparser; c = configparser.ConfigParser(); c.read('/src/setup.cfg'); print(c['options']['install_requires'])" >/src/requirements.txt \
 && /opt/wwnode/bin/pip install --no-cache-dir --disable-pip-version-check -q -r /src/requirements.txt \
      'setuptools>=61' wheel

COPY README.md /src/
COPY wwnode /src/wwnode
COPY sessionproc /src/sessionproc
# --no-build-isolation: the setuptools and wheel of the layer above build
# it, rather than ones fetched again at every build.
RUN /opt/wwnode/bin/pip install --no-cache-dir --disable-pip-version-check -q --no-deps --no-build-isolation /src \
 && rm -rf /src
COPY deploy/container/healthcheck.py /opt/wwnode/healthcheck.py

# Every setting comes from the environment (docs/operating.md's settings table;
# .env.example).  These differ from a host's defaults: the sessions'
# folder is the volume, and /metrics and /healthz listen on every address
# of the container, for a probe or a Prometheus from outside it (publish
# the port on 127.0.0.1, or keep it on a network only they reach).
ENV PATH=/opt/wwnode/bin:$PATH \
    DATA_DIR=/data \
    METRICS_ADDR=0.0.0.0:9464 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/wwnode
VOLUME /data
WORKDIR /home/wwnode
USER wwnode
EXPOSE 9464

# /healthz says 503 while Redis or RabbitMQ is away: retries are those
# outages the node should ride out before being called unhealthy.
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=4 \
  CMD ["/opt/wwnode/bin/python", "/opt/wwnode/healthcheck.py"]

# SIGTERM: the node stops taking work, stops its sessions and their
# Chromium (STOP_TIMEOUT, 20 s by default) and exits 0.  Give the container
# that long: `docker stop -t 40`, compose's stop_grace_period, Kubernetes'
# terminationGracePeriodSeconds.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "wwnode"]
CMD ["run"]
