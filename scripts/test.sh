#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine (root, Python 3.11): installs and starts Redis,
# PostgreSQL and RabbitMQ if they are not already running, creates .venv, installs the project with its dev extra
# pinned by constraints.txt (the lock file), and runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
command -v pg_ctlcluster >/dev/null 2>&1 || apt_packages+=(postgresql)
command -v rabbitmq-server >/dev/null 2>&1 || apt_packages+=(rabbitmq-server)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_packages+=(python3-venv)
if [ ${#apt_packages[@]} -gt 0 ]; then
  log "installing ${apt_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# Redis on 127.0.0.1:6379 (nothing kept on disk).
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  log "starting redis-server"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

# PostgreSQL on 127.0.0.1:5432, reachable as user postgres without a password (a test machine).
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  log "starting postgresql"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
fi
for _ in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 0.5; done
if ! PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  log "allowing trust authentication for postgres on 127.0.0.1 (test machine)"
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi

# RabbitMQ on 127.0.0.1:5672 (guest/guest, loopback only): the tests make a vhost each.
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  log "starting rabbitmq-server"
  as_root rabbitmq-server -detached
  for _ in $(seq 1 120); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 0.5; done
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
log "installing function-runner[dev] at the versions of constraints.txt (the lock file; bash scripts/lock.sh)"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'

log "running the tests"
exec .venv/bin/python -m pytest "$@"
