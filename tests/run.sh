#!/usr/bin/env bash
# Runs every test suite inside a private D-Bus session with an unlocked gnome-keyring, so the
# Secret Service tests hit a real keyring and never the user's own. Called by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ -z "${TOKENTRAY_IN_SESSION:-}" ]; then
  scratch=$(mktemp -d -t tokentray-test-XXXXXX)
  trap 'rm -rf "$scratch"' EXIT
  mkdir -p "$scratch"/{data,config,runtime,cache}
  chmod 700 "$scratch/runtime"
  # The keyring daemon keeps its files under XDG_DATA_HOME: a throwaway one.
  export XDG_DATA_HOME=$scratch/data XDG_CONFIG_HOME=$scratch/config \
         XDG_RUNTIME_DIR=$scratch/runtime XDG_CACHE_HOME=$scratch/cache
  export TOKENTRAY_IN_SESSION=1
  exec dbus-run-session -- "$0" "$@"
fi

echo -n "tokentray-test" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
export TOKENTRAY_BIN=$root/target/debug/tokentray
export TOKENTRAY_PYTHON=$root/.venv/bin/python
export RUST_BACKTRACE=1

echo "== Rust: unit and black-box suites"
# --include-ignored: the tests that need the real keyrings, Chromium and the venv run here.
cargo test --workspace --no-fail-fast -- --include-ignored

if compgen -G "tests/peers/test_*.py" >/dev/null; then
  echo "== Python peers: MSAL Python, azure-identity, Chromium"
  "$root/.venv/bin/python" -m pytest -q tests/peers
fi

echo "== Window: the real app over WebDriver (own X server and D-Bus session)"
tests/gui/run.sh
