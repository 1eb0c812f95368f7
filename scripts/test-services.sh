#!/usr/bin/env bash
# Start what the test suite needs and that may not be running: PostgreSQL, and install
# Debian's Chromium for the browser tests (Playwright drives it; never `playwright install`).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -q; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$@"
}

# PostgreSQL (Debian's package): installed when missing, its cluster created and started, and
# the test role made. The role and its password are the test suite's own (loopback only); the
# tests read LEZ_TEST_POSTGRES_URL, whose default in tests/conftest.py matches them.
PG_TEST_ROLE=lez_test
PG_TEST_PASSWORD=lez_test
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    echo "installing PostgreSQL (apt-get)"
    apt_install postgresql
  fi
  PG_VERSION="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$PG_VERSION main"; then
    echo "creating the PostgreSQL $PG_VERSION cluster"
    $SUDO pg_createcluster "$PG_VERSION" main >/dev/null
  fi
  echo "starting PostgreSQL $PG_VERSION"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
$SUDO runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_TEST_ROLE') THEN
    CREATE ROLE $PG_TEST_ROLE LOGIN CREATEDB PASSWORD '$PG_TEST_PASSWORD';
  END IF;
END
\$\$;
-- the tests drop their databases WITH (FORCE): an autovacuum worker busy in one can only be
-- ended with pg_signal_backend (PostgreSQL 15)
GRANT pg_signal_backend TO $PG_TEST_ROLE;
SQL
echo "PostgreSQL up (role $PG_TEST_ROLE)"

# Chromium for tests/browser (idempotent: nothing to do when it is there).
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Chromium (apt-get)"
  apt_install chromium
fi
/usr/bin/chromium --version >/dev/null 2>&1 || { echo "Chromium does not run" >&2; exit 1; }
echo "Chromium up ($(/usr/bin/chromium --version 2>/dev/null | head -1))"

# Prometheus and promtool for tests/ops (marker prometheus): Debian's package, not started here
# (the tests start their own on a free loopback port with a generated config).
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "installing Prometheus (apt-get)"
  apt_install --no-install-recommends prometheus
  # The package may start its own service; the tests never use it.
  (systemctl stop prometheus 2>/dev/null || service prometheus stop 2>/dev/null || true) >/dev/null
fi
promtool --version >/dev/null 2>&1 || { echo "promtool does not run" >&2; exit 1; }
echo "Prometheus up ($(prometheus --version 2>&1 | head -1))"
