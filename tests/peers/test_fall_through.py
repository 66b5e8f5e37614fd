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

import pytest

import tokentray_helpers as tt
from test_endpoint_azure_identity import ARM_SCOPE, OTHER_IDENTITY_VARS
from test_socket_activation import activated, free_port
from tokentray_helpers import BIN

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
    tt.stand_in_az(bin_dir, NEXT)
    sdk = dict(env, **tt.env_for(env, "sdk"), PATH=f"{bin_dir}:{os.environ['PATH']}")
    return env, sdk, port


def test_with_the_port_held_both_sdks_reach_their_next_credential(nobody, tmp_path):
    env, sdk, port = nobody
    process, log = activated(env, tmp_path, f"127.0.0.1:{port}")
    try:
        for language in ("python", "node"):
            token, _, error = tt.default_azure_credential(ARM_SCOPE, sdk, language)
            assert token == NEXT, (language, error)
        # The daemon the socket started answered them, saying nobody is signed in.
        assert json.loads((tt.Path(env["TOKENTRAY_HOME"]) / "run" / "endpoint.json").read_text())["pid"] == process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_with_nothing_on_the_port_python_stops_at_managed_identity(nobody):
    _, sdk, _ = nobody
    token, _, error = tt.default_azure_credential(ARM_SCOPE, sdk, "python")
    assert token is None and "ManagedIdentityCredential" in error, error
    assert subprocess.run([BIN, "env", "--install"], env=sdk, capture_output=True).returncode == 2
