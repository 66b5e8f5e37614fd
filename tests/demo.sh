#!/usr/bin/env bash
# `make demo`: fake-entra with two users, and the tray app pointed at it, in a throwaway home.
# Everything a newcomer can try without an Azure tenant; nothing touches their real tokentray
# cache. Ends (and removes the demo home) when the app quits.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=$(mktemp -d -t tokentray-demo-XXXXXX)
fake_pid=
cleanup() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
  rm -rf "$demo"
}
trap cleanup EXIT

target/debug/fake-entra --port 0 --ca-out "$demo/fake-entra-ca.pem" \
  --user alice@contoso.example:alice-pw --user bob@fabrikam.example:bob-pw \
  --device-code-interval 2 --access-token-lifetime 900 >"$demo/fake-entra.out" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do [ -s "$demo/fake-entra.out" ] && break; sleep 0.1; done
url=$(head -1 "$demo/fake-entra.out")
case $url in https://*) ;; *) echo "fake-entra did not start: $url" >&2; exit 1 ;; esac

port=${TOKENTRAY_DEMO_PORT:-42118}
cat <<MSG
tokentray demo
  fake Entra ID:  $url   (its certificate is self-signed: your browser will warn; continue)
  users:          alice@contoso.example / alice-pw     bob@fabrikam.example / bob-pw
  device code:    open $url/devicelogin and enter the code the window shows
  token endpoint: http://127.0.0.1:$port  (tokens expire after 15 minutes, to watch them refresh)
  Quit from the tray menu (or Ctrl-C here) to end the demo. If tokentray is already running,
  quit it first: a second start only brings the running one forward.

In a second terminal, these lines point the CLI and your tools at the demo (not at your own
tokentray), e.g. then \`tokentray accounts\` or \`python -c "from azure.identity import
DefaultAzureCredential as C; print(C().get_token('https://management.azure.com/.default'))"\`:

  export TOKENTRAY_HOME='$demo/home' TOKENTRAY_AUTHORITY='$url' \\
    TOKENTRAY_CA_FILE='$demo/fake-entra-ca.pem' TOKENTRAY_PORT='$port' \\
    TOKENTRAY_ARM_ENDPOINT='$url' PATH='$PWD/target/debug':"\$PATH"
  eval "\$(tokentray env)"
MSG
TOKENTRAY_HOME=$demo/home TOKENTRAY_AUTHORITY=$url TOKENTRAY_CA_FILE=$demo/fake-entra-ca.pem \
  TOKENTRAY_PORT=$port TOKENTRAY_ARM_ENDPOINT=$url target/debug/tokentray-app
