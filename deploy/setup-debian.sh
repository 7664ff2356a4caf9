#!/usr/bin/env bash
# Installs what the node and its tests need on a Debian machine, starts
# RabbitMQ and Redis when nothing listens on their ports yet, and puts the
# package in a virtual environment at .venv.  Safe to run again.
#
#   deploy/setup-debian.sh                  node + tests, services started
#   WITH_TESTS=0 deploy/setup-debian.sh     without the test packages
#
# With the tests it also installs Node.js and npm (Debian's, where missing)
# and whatsapp-web.js, pinned in tests/wwebjs, which a test runs against the
# stand-in (no browser is downloaded: it uses Debian's Chromium), and the
# proxy servers tinyproxy and microsocks, and Podman, runc, debootstrap and
# kubectl for the container and Kubernetes tests.
#   START_SERVICES=0 deploy/setup-debian.sh installs, starts nothing
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
port_open 6379 || command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
port_open 5672 || command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv python3-pip)
command -v curl >/dev/null 2>&1 || missing+=(curl)  # the README's quick start speaks to the stand-in with it
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # fakewa --tls makes its certificate with it
if [ "${WITH_TESTS:-1}" = 1 ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  # Real proxy servers the per-session proxy tests start on ports of their
  # own (tests/proxies.py): HTTP with basic authentication, SOCKS5 with a
  # user and password.
  [ -x /usr/bin/tinyproxy ] || missing+=(tinyproxy)
  [ -x /usr/bin/microsocks ] || missing+=(microsocks)
  # The container tests (tests/test_container_*.py): Podman with runc, and
  # debootstrap to make the Debian base image where no registry is reached.
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || missing+=(runc)
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  # kubectl kustomize renders deploy/kubernetes in its test.
  command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

start_service() {  # name port command...
  local name=$1 port=$2
  shift 2
  port_open "$port" && return 0
  echo "setup: starting $name"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start "$name" || "$@"
  else
    "$@"
  fi
  for _ in $(seq 1 120); do
    port_open "$port" && return 0
    sleep 0.5
  done
  echo "setup: $name did not come up on port $port" >&2
  return 1
}
if [ "${START_SERVICES:-1}" = 1 ]; then
  start_service redis-server 6379 $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 \
    --save "" --appendonly no
  start_service rabbitmq-server 5672 $SUDO rabbitmq-server -detached
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# The package is installed editable: its code is read from the checkout, so
# only a change of its metadata (dependencies, entry points) or of what was
# asked for (with the tests or not) calls for pip again.  Skipping it keeps
# a normal start of the run command quiet and quick.
want="$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1) tests=${WITH_TESTS:-1}"
installed=.venv/.wwnode-installed-from
if [ "$(cat "$installed" 2>/dev/null)" != "$want" ] && ! { [ "${WITH_TESTS:-1}" = 0 ] \
    && [ "$(cat "$installed" 2>/dev/null)" = "${want% *} tests=1" ]; }; then
  echo "setup: installing the package and its dependencies in .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ "${WITH_TESTS:-1}" = 1 ]; then
    .venv/bin/python -m pip install -q -e '.[test]'
  else
    .venv/bin/python -m pip install -q -e .
  fi
  echo "$want" >"$installed"
fi
if [ "${WITH_TESTS:-1}" = 1 ]; then
  # whatsapp-web.js exactly as its lock file says; again only when the lock
  # file changed since the last install.
  stamp=tests/wwebjs/node_modules/.installed-from-lock
  if ! cmp -s tests/wwebjs/package-lock.json "$stamp"; then
    echo "setup: installing whatsapp-web.js for the tests"
    (cd tests/wwebjs && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp tests/wwebjs/package-lock.json "$stamp"
  fi
fi
echo "setup: ready ($(.venv/bin/python --version), $(chromium --version 2>/dev/null | head -1))"
