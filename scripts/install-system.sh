#!/usr/bin/env bash
# The Debian packages the studio and its tests use; installs only what is missing.
# redis-server: the Celery queue's broker (tests and the one-machine demo start their own).
# postgresql: the server the shared-database tests start (never the system's own cluster).
set -euo pipefail
need=()
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need+=(fonts-dejavu-core)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# postgresql: the shared database's tests start their own server (enfoads/testing/postgres.py)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || command -v pg_ctl >/dev/null 2>&1 \
  || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
