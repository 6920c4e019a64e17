#!/usr/bin/env bash
# Install the peer supervisors for bench/peers/run.py into bench/.peers/ (gitignored):
#   PM2 with npm into bench/.peers/npm, and supervisord, circus, honcho with pip into the
#   venv bench/.peers/venv. Idempotent: a peer that already runs is skipped. A peer that
#   fails to install is reported and skipped; the others still install (exit 1 if any failed).
#
#   bash bench/peers/install.sh            # PEERS_DIR=... to install elsewhere
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS="${PEERS_DIR:-$HERE/../.peers}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$PEERS"
PEERS="$(cd "$PEERS" && pwd)"
failed=()

have() { "$@" >/dev/null 2>&1; }

# --- PM2 (npm, local prefix: nothing global is touched) ---
# Never probe with `pm2 --version`: any pm2 command starts a God daemon. Read package.json.
pm2_version() { node -p "require('$PEERS/npm/node_modules/pm2/package.json').version" 2>/dev/null; }
if [ -x "$PEERS/npm/node_modules/.bin/pm2" ] && pm2_version >/dev/null; then
  echo "pm2: present ($(pm2_version))"
elif ! command -v npm >/dev/null; then
  echo "pm2: npm not found"; failed+=(pm2)
else
  echo "pm2: installing"
  if npm install --no-audit --no-fund --loglevel=error --prefix "$PEERS/npm" pm2 \
     && [ -x "$PEERS/npm/node_modules/.bin/pm2" ] && pm2_version >/dev/null; then
    echo "pm2: installed"
  else
    echo "pm2: FAILED"; failed+=(pm2)
  fi
fi

# --- supervisord, circus, honcho (pip into one venv) ---
VENV="$PEERS/venv"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || { echo "venv: FAILED"; failed+=(venv); }
fi
pkg_for() { case "$1" in supervisord) echo supervisor;; circusd) echo circus;; honcho) echo honcho;; esac; }
probe_for() {  # a command that proves the tool works
  case "$1" in
    supervisord) echo "$VENV/bin/supervisord --version";;
    circusd) echo "$VENV/bin/circusd --version";;
    honcho) echo "$VENV/bin/honcho --version";;
  esac
}
for tool in supervisord circusd honcho; do
  pkg="$(pkg_for "$tool")"
  if [ -x "$VENV/bin/python" ] && have $(probe_for "$tool"); then
    echo "$pkg: present ($($(probe_for "$tool") 2>&1 | tail -n1))"
    continue
  fi
  [ -x "$VENV/bin/python" ] || { failed+=("$pkg"); continue; }
  echo "$pkg: installing"
  if "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$pkg" && have $(probe_for "$tool"); then
    echo "$pkg: installed"
  else
    echo "$pkg: FAILED"; failed+=("$pkg")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]} (run.py reports these peers as not installed)"
  exit 1
fi
echo "all peers installed under $PEERS"
