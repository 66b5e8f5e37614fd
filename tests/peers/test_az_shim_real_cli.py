"""The `az` shim in front of the real Azure CLI (azure-cli from PyPI, in `.venv-azcli`, which
`make venv` installs).

The shim's directory is first on PATH (as `tokentray env` says) and a directory holding only a
link to the real `az` comes later (not all of `.venv-azcli/bin`), with AZURE_CONFIG_DIR a fresh
directory, so the real az is installed but not logged in. The shim still answers first: Python's
and Node.js's `AzureCliCredential` get the token tokentray holds. Everything the shim does not
answer (`az version` when a real az exists, `az group list`, an unknown command, a
`--subscription` tokentray does not know) is the real az's: the same stdout, stderr and exit
code as running that az directly with the same argv. With nothing signed in to tokentray the
token request goes to the real az too, whose "Please run 'az login'" makes both credentials
unavailable.
"""
import json
import os
import shutil
import subprocess

import pytest
from azure.identity import AzureCliCredential, CredentialUnavailableError

import fake_entra_helpers as fe
import tokentray_helpers as tt
from tokentray_helpers import az, held, shell_env

ARM = "https://management.core.windows.net//.default"
VAULT = "https://vault.azure.net/.default"
AZ_VENV = tt.ROOT / ".venv-azcli"
REAL_AZ = AZ_VENV / "bin" / "az"


def installed_version():
    """azure-cli's version as pip installed it in .venv-azcli (not what az prints)."""
    return subprocess.run(
        [AZ_VENV / "bin" / "python", "-c",
         "import importlib.metadata as m; print(m.version('azure-cli'))"],
        capture_output=True, text=True, check=True).stdout.strip()


def put_the_real_az_behind(tmp_path, monkeypatch):
    """Appends a directory with only a link to the real `az` to PATH, and gives the real az a
    config directory of its own: the directory of that link."""
    assert REAL_AZ.exists(), f"no {REAL_AZ}: `make venv` installs the Azure CLI there"
    behind = tmp_path / "azure-cli"
    behind.mkdir()
    (behind / "az").symlink_to(REAL_AZ)
    monkeypatch.setenv("PATH", os.environ["PATH"] + os.pathsep + str(behind))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure-config"))
    # The real az would upload telemetry and check its storage account for a newer release:
    # telemetry off, and HTTPS outside loopback sent to a closed local port (refused at once).
    monkeypatch.setenv("AZURE_CORE_COLLECT_TELEMETRY", "false")
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    return behind


def signed_out_shim_before_the_real_az(home, fake, tmp_path, monkeypatch):
    """Nothing signed in to tokentray at `home`, the shim installed and this process's
    environment as `tokentray env` says, the real az behind it: the directory of its link."""
    env = tt.environment(home, fake)
    subprocess.run([tt.BIN, "az-shim", "--install"], env=env, capture_output=True, check=True)
    lines = subprocess.run([tt.BIN, "env"], env=env, capture_output=True, text=True, check=True).stdout
    for name, value in dict(env, **shell_env(lines)).items():
        monkeypatch.setenv(name, value)
    return put_the_real_az_behind(tmp_path, monkeypatch)


@pytest.fixture
def real_az(shim, tmp_path, monkeypatch):
    """Alice signed in, the shim first on PATH and the real az later: (env, shim path, the
    directory of the real az's link)."""
    _, shim_path = shim
    behind = put_the_real_az_behind(tmp_path, monkeypatch)
    assert shutil.which("az") == str(shim_path), "the shim comes first"
    return dict(os.environ), shim_path, behind


def direct(behind, *args, env):
    """The real az run directly (not through the shim) with `args`."""
    return subprocess.run([behind / "az", *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def outcome(p):
    return p.returncode, p.stdout, p.stderr


def test_with_the_real_az_behind_both_credentials_still_get_tokentray_s_token(real_az):
    env, _, _ = real_az
    token = AzureCliCredential().get_token(ARM)
    assert token.token == held(env, ARM)
    tenant = fe.jwt_claims(token.token)["tid"]
    assert AzureCliCredential(tenant_id=tenant).get_token(VAULT).token == held(env, VAULT)
    for scope, tenant_id in ((ARM, None), (VAULT, tenant)):
        p = tt.node_azure_cli_credential(scope, tenant_id, env=env)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["token"] == held(env, scope)
    tsv = az("account", "get-access-token", "--scope", VAULT, "--query", "accessToken", "-o", "tsv",
             env=env)
    assert tsv.returncode == 0 and tsv.stdout == held(env, VAULT) + "\n", tsv.stderr


def test_az_version_is_the_real_az_s(real_az):
    env, _, behind = real_az
    version = installed_version()
    got = az("version", "-o", "json", env=env)
    assert got.returncode == 0, got.stderr
    answer = json.loads(got.stdout)
    assert answer["azure-cli"] == version and answer["azure-cli-core"] == version
    assert "tokentray" not in answer, "the shim's own `version` answer (no real az) has that key"
    assert outcome(got)[:2] == outcome(direct(behind, "version", "-o", "json", env=env))[:2]
    # A JMESPath with quotes reaches az as one argument, as typed.
    queried = az("version", "--query", '"azure-cli"', "-o", "tsv", env=env)
    assert outcome(queried) == (0, version + "\n", "")


@pytest.mark.parametrize("args, code", [
    (["group", "list"], 1),
    (["group", "list", "--query", "[?name=='a b']", "-o", "tsv"], 1),
    (["account", "get-access-token", "--subscription", "s1"], 1),
    (["nosuchgroup"], 2),
    (["no such'group", "x"], 2),
], ids=["group-list", "query-with-quotes", "unknown-subscription", "unknown-command",
        "quoted-unknown-command"])
def test_what_the_shim_does_not_answer_is_the_real_az_s_output_and_exit_code(real_az, args, code):
    env, _, behind = real_az
    itself = direct(behind, *args, env=env)
    through = az(*args, env=env)
    assert outcome(through) == outcome(itself)
    assert through.returncode == code and through.stdout == "", through.stderr
    if code == 1:
        # What the real az says while it is not logged in.
        assert through.stderr.startswith("ERROR: Please run 'az login' to setup account."), through.stderr
    else:
        assert f"'{args[0]}' is misspelled or not recognized" in through.stderr, through.stderr
    assert "tokentray" not in through.stderr


def test_with_nothing_signed_in_the_token_request_goes_to_the_real_az(tmp_path, fake_entra,
                                                                       monkeypatch):
    behind = signed_out_shim_before_the_real_az(tmp_path / "empty", fake_entra, tmp_path, monkeypatch)
    env = dict(os.environ)
    args = ["account", "get-access-token", "--output", "json", "--resource",
            "https://management.core.windows.net/"]
    through = az(*args, env=env)
    assert outcome(through) == outcome(direct(behind, *args, env=env))
    assert through.returncode == 1 and "Please run 'az login'" in through.stderr
    assert "tokentray" not in through.stderr, "the real az's message, not the shim's own"
    with pytest.raises(CredentialUnavailableError):
        AzureCliCredential().get_token(ARM)
    p = tt.node_azure_cli_credential(ARM, env=env)
    assert p.returncode == 1 and p.stderr.startswith("CredentialUnavailableError: "), p.stderr
    assert "Please run 'az login'" in p.stderr


def test_a_logged_in_real_az_answers_what_tokentray_cannot(tmp_path, fake_entra, monkeypatch):
    """The real az signed in to fake-entra as Bob (its own MSAL cache), tokentray as nobody and
    then as Alice: the shim hands the token request to az while tokentray has no account, and
    answers it itself, with Alice's token, once she signs in."""
    behind = signed_out_shim_before_the_real_az(tmp_path / "home", fake_entra, tmp_path, monkeypatch)
    env = tt.az_login(behind / "az", fake_entra, fe.BOB, dict(os.environ))
    args = ["account", "get-access-token", "--output", "json", "--resource",
            "https://management.core.windows.net/"]
    from_az = json.loads(direct(behind, *args, env=env).stdout)
    assert fe.jwt_claims(from_az["accessToken"])["preferred_username"] == fe.BOB[0]
    through = az(*args, env=env)
    assert through.returncode == 0, through.stderr
    assert json.loads(through.stdout)["accessToken"] == from_az["accessToken"], "az's own cached token"

    tt.sign_in(env, fake_entra)
    mine = json.loads(az(*args, env=env).stdout)["accessToken"]
    assert mine == held(env, ARM) and fe.jwt_claims(mine)["preferred_username"] == fe.ALICE[0]
