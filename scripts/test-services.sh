#!/usr/bin/env bash
# Start what the test suite needs and that may not be running: PostgreSQL, and install
# Debian's Chromium for the browser tests (Playwright drives it; never `playwright install`).
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
echo "PostgreSQL up"

# Chromium for tests/browser (idempotent: nothing to do when it is there).
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Chromium (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi
/usr/bin/chromium --version >/dev/null 2>&1 || { echo "Chromium does not run" >&2; exit 1; }
echo "Chromium up ($(/usr/bin/chromium --version 2>/dev/null | head -1))"

# Prometheus and promtool for tests/ops (marker prometheus): Debian's package, not started here
# (the tests start their own on a free loopback port with a generated config).
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "installing Prometheus (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends prometheus
  # The package may start its own service; the tests never use it.
  (systemctl stop prometheus 2>/dev/null || service prometheus stop 2>/dev/null || true) >/dev/null
fi
promtool --version >/dev/null 2>&1 || { echo "promtool does not run" >&2; exit 1; }
echo "Prometheus up ($(prometheus --version 2>&1 | head -1))"
