#!/usr/bin/env bash
# The package test: the .deb that `make package` built, installed into a throwaway root with
# `dpkg --root` (its declared dependencies are the host's: --force-depends), then used from the
# installed files: both binaries run, `tokentray` links no GUI library, docker's credential
# helper is linked and answers, the systemd user units
# and the desktop entry are where systemd and XDG look, the socket is enabled for every user's
# session, a token is served to azure-identity through the socket-activated daemon
# (systemd-socket-activate plays tokentray.socket), and removing the package leaves nothing
# behind. Usage: tests/package/run.sh DEB (make test-package passes the one it built).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
deb=$1
python=${TOKENTRAY_PYTHON:-$repo/.venv/bin/python}
fail() { echo "FAIL: $*" >&2; exit 1; }

scratch=$(mktemp -d -t tokentray-package-XXXXXX)
daemon=
cleanup() { [ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT
root=$scratch/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status"
force=--force-depends,script-chrootless
[ "$(id -u)" = 0 ] || force=$force,not-root
dpkg_root() { dpkg --root="$root" --log=/dev/null "$force" "$@"; }

echo "== package: $deb"
info=$(dpkg-deb --field "$deb" Package Version Depends)
echo "$info"
for dep in libwebkit2gtk-4.1-0 libgtk-3-0 libayatana-appindicator3-1; do
  grep -q "$dep" <<<"$info" || fail "Depends lacks $dep"
done

echo "== install into $root"
dpkg_root -i "$deb" >"$scratch/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$scratch/dpkg.log")"
for f in usr/bin/tokentray usr/bin/tokentray-app usr/lib/systemd/user/tokentray.socket \
         usr/lib/systemd/user/tokentray.service usr/share/applications/tokentray.desktop \
         usr/share/icons/hicolor/128x128/apps/tokentray-app.png; do
  [ -e "$root/$f" ] || fail "/$f is not installed"
done
grep -qx 'Exec=tokentray-app' "$root/usr/share/applications/tokentray.desktop" \
  || fail "the desktop entry does not start tokentray-app: $(cat "$root/usr/share/applications/tokentray.desktop")"
wants=$root/etc/systemd/user/sockets.target.wants/tokentray.socket
[ -L "$wants" ] || fail "postinst did not enable tokentray.socket for every user ($wants)"
# systemd checks the units as installed, with ExecStart pointing into the root (it also checks
# that the command is there and executable).
mkdir -p "$scratch/units" "$scratch/xdg-runtime" && chmod 700 "$scratch/xdg-runtime"
for unit in tokentray.socket tokentray.service; do
  sed "s|/usr/bin/|$root/usr/bin/|" "$root/usr/lib/systemd/user/$unit" >"$scratch/units/$unit"
done
XDG_RUNTIME_DIR=$scratch/xdg-runtime systemd-analyze --user verify "$scratch/units/tokentray.socket" \
  "$scratch/units/tokentray.service" || fail "systemd rejects the units"

echo "== the installed binaries"
cli=$root/usr/bin/tokentray
"$cli" --version | grep -qx "tokentray $(dpkg-deb --field "$deb" Version)" || fail "--version"
if ldd "$cli" | grep -Ei 'gtk|gdk|webkit|appindicator|soup'; then fail "tokentray links a GUI library"; fi
ldd "$root/usr/bin/tokentray-app" | grep -q libwebkit2gtk || fail "tokentray-app does not link WebKit"
home=$scratch/home
# A plaintext store (no keyring needed here); never the real Entra ID.
export TOKENTRAY_HOME=$home TOKENTRAY_STORE=plaintext TOKENTRAY_AUTHORITY=https://127.0.0.1:1
unset MSI_ENDPOINT MSI_SECRET IDENTITY_SERVER_THUMBPRINT IMDS_ENDPOINT AZURE_CLIENT_ID AZURE_TENANT_ID
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export TOKENTRAY_PORT=$port
"$python" "$repo/tests/package/fresh_cache.py" "$repo/tests/fixtures/azure_cli_msal_token_cache.json" \
  "$scratch/az.json"
"$cli" cache import "$scratch/az.json" >/dev/null
"$cli" status >/dev/null || fail "tokentray status"
helper=$root/usr/bin/docker-credential-tokentray
[ "$(readlink "$helper")" = tokentray ] || fail "postinst did not link docker-credential-tokentray"
[ "$(echo ghcr.io | "$helper" get)" = "credentials not found in native keychain" ] \
  || fail "docker-credential-tokentray does not answer docker's protocol"
eval "$("$cli" env)"
systemd-socket-activate --listen="127.0.0.1:$port" --setenv=TOKENTRAY_HOME --setenv=TOKENTRAY_STORE \
  --setenv=TOKENTRAY_AUTHORITY --setenv=TOKENTRAY_PORT "$cli" daemon 2>"$scratch/daemon.log" &
daemon=$!
for _ in $(seq 100); do grep -q "Listening on" "$scratch/daemon.log" && break; sleep 0.05; done
[ ! -e "$home/run/endpoint.json" ] || fail "the daemon runs before the first connection"
held=$("$cli" token --resource https://management.core.windows.net/ --format raw)
served=$("$python" -c '
from azure.identity import ManagedIdentityCredential
print(ManagedIdentityCredential().get_token("https://management.core.windows.net/.default").token)')
[ "$served" = "$held" ] || fail "azure-identity did not get the cached token: $(cat "$scratch/daemon.log")"
kill -TERM "$daemon"; wait "$daemon" || fail "the daemon did not stop cleanly: $(cat "$scratch/daemon.log")"
daemon=
[ ! -e "$home/run/endpoint.json" ] || fail "endpoint.json left behind"

echo "== remove"
dpkg_root --purge tokentray >"$scratch/dpkg.log" 2>&1 || fail "dpkg --purge: $(cat "$scratch/dpkg.log")"
left=$(cd "$root" && find . -mindepth 1 \( -type f -o -type l \) -not -path './var/lib/dpkg/*')
[ -z "$left" ] || fail "left behind after removal: $left"
echo "package test: ok"
