"""`tokentray doctor` in environments that have each condition it reports, in a throwaway HOME
and XDG_CONFIG_HOME (so the session environment and git's global config are the test's own).

Where doctor says DefaultAzureCredential will or will not get tokentray's token, the real
azure-identity is run in the same environment and must agree.
"""
import json
import subprocess

import pytest

import fake_entra_helpers as fe
import tokentray_helpers as tt
from test_endpoint_azure_identity import ARM_SCOPE, OTHER_IDENTITY_VARS
from tokentray_helpers import enable_socket
from test_socket_activation import free_port
from tokentray_helpers import BIN, ROOT

AZURE_VARS = OTHER_IDENTITY_VARS + ["AZURE_TOKEN_CREDENTIALS", "AZURE_CLIENT_CERTIFICATE_PATH",
                                    "AZD_AUTH_ENDPOINT", "ARM_USE_MSI", "ARM_MSI_ENDPOINT",
                                    "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "KUBECONFIG"]


@pytest.fixture
def machine(tmp_path, fake_entra):
    """Alice signed in, a daemon serving on a fixed port, and this shell's variables from
    `tokentray env`; none of the runner's own Azure variables."""
    port = free_port()
    env = tt.environment(tmp_path / "home", fake_entra, port, HOME=str(tmp_path),
                         XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
                         XDG_RUNTIME_DIR=str(tmp_path / "xdg-runtime"), PATH="/usr/bin:/bin")
    (tmp_path / "xdg-runtime").mkdir(mode=0o700)
    for name in AZURE_VARS:
        env.pop(name, None)
    tt.sign_in(env, fake_entra)
    daemon = tt.start_daemon(env, tmp_path / "daemon.log")
    shell = dict(env, **tt.env_for(env, "sdk"))
    yield env, shell, port, daemon
    daemon.terminate()
    daemon.wait(timeout=10)


def doctor(env):
    p = subprocess.run([BIN, "doctor", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def problems(report):
    return [f for f in report["findings"] if f["state"] == "problem"]


def sdk_gets_tokentrays_token(env):
    """Whether the real DefaultAzureCredential, run in `env`, returns tokentray's token."""
    p = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c",
         "import sys\nfrom azure.identity import DefaultAzureCredential as C\n"
         "try: print(C().get_token(sys.argv[1]).token)\nexcept Exception as e: print('failed', type(e).__name__)",
         ARM_SCOPE], env=env, capture_output=True, text=True, timeout=120)
    return p.stdout.strip() == tt.held(env, ARM_SCOPE)


def test_all_well_is_said_and_the_sdk_agrees(machine):
    env, shell, port, _ = machine
    report = doctor(shell)
    assert report["problems"] == 0, problems(report)
    by_check = {f["check"]: f for f in report["findings"]}
    assert f"http://127.0.0.1:{port}" in by_check["endpoint"]["detail"]
    assert fe.ALICE[0] in by_check["account"]["detail"]
    assert by_check["session"]["state"] == "note" and by_check["session"]["fix"] == "`tokentray env --install`"
    assert sdk_gets_tokentrays_token(shell)
    # AZURE_TOKEN_CREDENTIALS naming managed identity keeps it (and tokentray) in.
    chosen = dict(shell, AZURE_TOKEN_CREDENTIALS="ManagedIdentityCredential")
    assert problems(doctor(chosen)) == [] and sdk_gets_tokentrays_token(chosen)
    secret = json.loads((tt.Path(env["TOKENTRAY_HOME"]) / "run" / "endpoint.json").read_text())["secret"]
    text = subprocess.run([BIN, "doctor"], env=shell, capture_output=True, text=True, timeout=60).stdout
    assert "No problems found." in text and secret not in text


@pytest.mark.parametrize("variables, says, fix", [
    ({"AZURE_CLIENT_ID": "00000000-0000-0000-0000-0000000000aa"}, "user-assigned identity", "unset AZURE_CLIENT_ID"),
    ({"AZURE_TOKEN_CREDENTIALS": "dev"}, "leaves managed identity out", "ManagedIdentityCredential"),
    ({"IDENTITY_HEADER": "not-the-secret"}, "not tokentray's secret", "tokentray env"),
    ({"IDENTITY_ENDPOINT": None}, "IDENTITY_ENDPOINT is not set", "tokentray env"),
])
def test_what_keeps_the_sdk_from_tokentray_is_a_problem_and_the_sdk_agrees(machine, variables, says, fix):
    _, shell, _, _ = machine
    env = dict(shell)
    for name, value in variables.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    found = problems(doctor(env))
    assert len(found) == 1 and says in found[0]["detail"] and fix in found[0]["fix"], found
    assert not sdk_gets_tokentrays_token(env)


@pytest.mark.parametrize("variables, says", [
    ({"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"}, "EnvironmentCredential"),
    ({"AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"}, "WorkloadIdentityCredential"),
    ({"IDENTITY_SERVER_THUMBPRINT": "ab12"}, "Service Fabric"),
    ({"IMDS_ENDPOINT": "http://127.0.0.1:1"}, "Azure Arc"),
    ({"MSI_ENDPOINT": "http://127.0.0.1:1"}, "MSI_ENDPOINT"),
])
def test_variables_that_take_precedence_are_named_with_the_fix(machine, variables, says):
    # The SDK is not run here: each of these sends it to a network authority or another
    # protocol's endpoint, which this machine has not got.
    _, shell, _, _ = machine
    found = problems(doctor(dict(shell, **variables)))
    assert len(found) == 1 and says in found[0]["detail"], found
    assert found[0]["fix"].startswith("unset ") and all(n in found[0]["fix"] for n in variables), found


def test_nothing_serving_and_the_session_environment(machine):
    env, shell, port, daemon = machine
    # Installed with the socket: ok. The socket gone: a problem, with the way out.
    enable_socket(tt.Path(env["XDG_CONFIG_HOME"]), port)
    assert subprocess.run([BIN, "env", "--install"], env=env, capture_output=True).returncode == 0
    session = {f["check"]: f for f in doctor(shell)["findings"]}["session"]
    assert session["state"] == "ok" and "60-tokentray.conf" in session["detail"], session
    wants = tt.Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user" / "sockets.target.wants" / "tokentray.socket"
    wants.unlink()
    session = {f["check"]: f for f in doctor(shell)["findings"]}["session"]
    assert session["state"] == "problem" and "not enabled" in session["detail"], session
    assert "env --uninstall" in session["fix"]

    daemon.terminate()
    daemon.wait(timeout=10)
    endpoint = {f["check"]: f for f in doctor(shell)["findings"]}["endpoint"]
    assert endpoint["state"] == "problem" and "nothing serves tokens" in endpoint["detail"], endpoint
    assert "tokentray daemon" in endpoint["fix"]


def test_tools_on_path_and_what_they_would_use(machine, tmp_path):
    env, shell, _, _ = machine
    before = {f["check"]: f for f in doctor(shell)["findings"]}
    assert before["git"]["state"] == "note" and "git-credential --install" in before["git"]["fix"]
    assert subprocess.run([BIN, "git-credential", "--install"], env=env, capture_output=True).returncode == 0
    assert subprocess.run([BIN, "az-shim", "--install"], env=env, capture_output=True).returncode == 0
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("users:\n- name: u\n  user:\n    exec:\n      command: kubelogin\n")
    after_env = dict(shell, **tt.env_for(env, "sdk"), KUBECONFIG=str(kubeconfig))
    after = {f["check"]: f for f in doctor(after_env)["findings"]}
    assert after["git"]["state"] == "ok", after["git"]
    assert after["az"]["state"] == "ok" and "shim" in after["az"]["detail"], after["az"]
    assert after["kubectl"]["state"] == "note" and after["kubectl"]["fix"] == "`tokentray kubeconfig convert`"
