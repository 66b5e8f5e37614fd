#!/usr/bin/env bash
# The window suite: the real tokentray app driven over WebDriver (tauri-driver + WebKitWebDriver)
# in a fresh X server (Xvfb) and a fresh D-Bus session on every run, with an unlocked
# gnome-keyring (the app's Secret Service store) and dunst answering notifications, which
# dbus-monitor records (tests choose a notification's action through tests/gui/dunst-pick.sh). Screenshots and logs go to target/test-output/gui. Called by
# tests/run.sh; run it alone with `tests/gui/run.sh [pytest args]` after `make build venv`.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ -z "${TOKENTRAY_GUI_SESSION:-}" ]; then
  scratch=$(mktemp -d -t tokentray-gui-XXXXXX)
  trap 'rm -rf "$scratch"' EXIT
  mkdir -p "$scratch"/{home,data,config,runtime,cache}
  chmod 700 "$scratch/runtime"
  # A throwaway home: the keyring, dunst and the app never touch the user's own.
  export HOME=$scratch/home XDG_DATA_HOME=$scratch/data XDG_CONFIG_HOME=$scratch/config \
         XDG_RUNTIME_DIR=$scratch/runtime XDG_CACHE_HOME=$scratch/cache
  export TOKENTRAY_GUI_SESSION=1
  # Not exec: the trap removes the scratch directory afterwards.
  xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" dbus-run-session -- "$0" "$@"
  exit $?
fi

out=$root/target/test-output/gui
rm -rf "$out" && mkdir -p "$out"
echo -n "tokentray-test" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
dbus-monitor --session "interface='org.freedesktop.Notifications'" >"$out/notifications.log" 2>&1 &
monitor=$!
# A notification's actions are chosen with `dunstctl context`: dunst hands them to this "dmenu".
mkdir -p "$XDG_CONFIG_HOME/dunst"
printf '[global]\n    dmenu = %s\n' "$root/tests/gui/dunst-pick.sh" >"$XDG_CONFIG_HOME/dunst/dunstrc"
dunst >"$out/dunst.log" 2>&1 &
dunst=$!
trap 'kill $monitor $dunst 2>/dev/null || true' EXIT

export TOKENTRAY_BIN=${TOKENTRAY_BIN:-$root/target/debug/tokentray}
export TOKENTRAY_APP=${TOKENTRAY_APP:-$root/target/debug/tokentray-app}
export TOKENTRAY_PYTHON=${TOKENTRAY_PYTHON:-$root/.venv/bin/python}
export TAURI_DRIVER=${TAURI_DRIVER:-$root/.tools/bin/tauri-driver}
export TOKENTRAY_TEST_OUTPUT=$out
"$TOKENTRAY_PYTHON" -m pytest -q -p no:cacheprovider tests/gui "$@"
