"""With the SDKs' variables set and no account in tokentray, `DefaultAzureCredential` must reach
its next credential (here AzureCliCredential, answered by a stand-in `az`), in Python and in JS:
what makes installing the variables session-wide (`tokentray env --install`) safe. The port is
held as tokentray.socket holds it (systemd-socket-activate starts the daemon on the first
connection). Without anything on the port, Python's stops at managed identity instead, which is
why `--install` requires the socket; that is checked too. How long each took is printed by
`make bench`, not asserted here.
"""
import json
import os
import signal
import subprocess
import time

import pytest

import tokentray_helpers as tt
from test_endpoint_azure_identity import ARM_SCOPE, OTHER_IDENTITY_VARS
from test_socket_activation import activated, free_port
from tokentray_helpers import BIN, NODE_DIR, ROOT

NEXT = "token-of-the-next-credential"


@pytest.fixture
def nobody(tmp_path, fake_entra):
    """No account signed in; the SDKs' variables for a fixed port; a stand-in `az` first on
    PATH that answers `az account get-access-token` as az does, with NEXT."""
    port = free_port()
    env = tt.environment(tmp_path / "home", fake_entra, port, TOKENTRAY_LOG="warn,tokentray::audit=info",
                         HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"))
    for name in OTHER_IDENTITY_VARS + ["AZURE_TOKEN_CREDENTIALS"]:
        env.pop(name, None)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    expires = int(time.time()) + 3600
    answer = json.dumps({"accessToken": NEXT, "expiresOn": time.strftime("%Y-%m-%d %H:%M:%S.000000",
                         time.localtime(expires)), "expires_on": expires, "subscription": "s",
                         "tenant": "t", "tokenType": "Bearer"})
    az.write_text(f"#!/bin/sh\ncat <<'JSON'\n{answer}\nJSON\n")
    az.chmod(0o755)
    sdk = dict(env, **tt.env_for(env, "sdk"), PATH=f"{bin_dir}:{os.environ['PATH']}")
    return env, sdk, port


def python_dac(env):
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c",
         "import sys\nfrom azure.identity import DefaultAzureCredential as C\n"
         "print(C().get_token(sys.argv[1]).token)", ARM_SCOPE],
        env=env, capture_output=True, text=True, timeout=120)


def node_dac(env):
    return subprocess.run(["node", str(NODE_DIR / "default_azure_credential.mjs"), ARM_SCOPE], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_with_the_port_held_both_sdks_reach_their_next_credential(nobody, tmp_path):
    env, sdk, port = nobody
    process, log = activated(env, tmp_path, f"127.0.0.1:{port}")
    try:
        python = python_dac(sdk)
        assert python.returncode == 0 and python.stdout.strip() == NEXT, python.stderr[-3000:]
        node = node_dac(sdk)
        assert node.returncode == 0 and json.loads(node.stdout)["token"] == NEXT, node.stderr[-3000:]
        # The daemon the socket started answered them, saying nobody is signed in.
        assert json.loads((tt.Path(env["TOKENTRAY_HOME"]) / "run" / "endpoint.json").read_text())["pid"] == process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_with_nothing_on_the_port_python_stops_at_managed_identity(nobody):
    _, sdk, _ = nobody
    python = python_dac(sdk)
    assert python.returncode != 0 and NEXT not in python.stdout, python.stdout
    assert "ManagedIdentityCredential" in python.stderr, python.stderr[-3000:]
    assert subprocess.run([BIN, "env", "--install"], env=sdk, capture_output=True).returncode == 2
