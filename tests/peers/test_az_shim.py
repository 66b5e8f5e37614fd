"""The `az` shim (`tokentray az-shim --install`) with the real azure-identity `AzureCliCredential`.

With the shim's directory first on PATH (the line `tokentray env` adds while it is installed) and
no Azure CLI installed, `AzureCliCredential` gets the token tokentray holds, with and without a
tenant; `--query accessToken -o tsv` and `--scope` answer as az does. A command the shim does not
answer reaches the next `az` on PATH (a stand-in that records its argv and exits 7) with argv and
exit code intact; with nothing signed in and no az behind it, the shim fails the way that makes
the SDKs move on to their next credential.
"""
import json
import os
import shutil
import subprocess

import pytest
from azure.identity import AzureCliCredential, CredentialUnavailableError

import fake_entra_helpers as fe
import tokentray_helpers as tt

ARM = "https://management.core.windows.net//.default"
VAULT = "https://vault.azure.net/.default"


def shell_env(lines):
    """The variables `tokentray env` prints, as a dict (PATH with its "$PATH" expanded)."""
    env = {}
    for line in lines.splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        env[name] = value.replace(':"$PATH"', ":" + os.environ["PATH"]).replace("'", "")
    return env


@pytest.fixture
def shim(tmp_path, fake_entra, monkeypatch):
    """Alice signed in, the shim installed, this process's environment as `tokentray env` says:
    (env, shim path)."""
    assert shutil.which("az") is None, "these tests need a machine with no Azure CLI on PATH"
    env = tt.environment(tmp_path / "home", fake_entra)
    tt.sign_in(env, fake_entra)
    before = subprocess.run([tt.BIN, "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert "PATH" not in before, "no PATH line while the shim is not installed"
    installed = subprocess.run([tt.BIN, "az-shim", "--install"], env=env, capture_output=True, text=True,
                               check=True)
    shim_path = tmp_path / "home" / "data" / "bin" / "az"
    assert str(shim_path) in installed.stdout
    lines = subprocess.run([tt.BIN, "env"], env=env, capture_output=True, text=True, check=True).stdout
    for name, value in dict(env, **shell_env(lines)).items():
        monkeypatch.setenv(name, value)
    assert shutil.which("az") == str(shim_path)
    return dict(os.environ), shim_path


def az(*args, env=None):
    return subprocess.run(["az", *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def held(env, scope, *args):
    return subprocess.run([tt.BIN, "token", "--scope", scope, "--format", "raw", *args], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_azure_cli_credential_gets_tokentray_s_token_through_the_shim(shim):
    env, _ = shim
    token = AzureCliCredential().get_token(ARM)
    assert token.token == held(env, ARM)
    assert token.expires_on == fe.jwt_claims(token.token)["exp"]
    tenant = fe.jwt_claims(token.token)["tid"]
    for_tenant = AzureCliCredential(tenant_id=tenant).get_token(VAULT)
    assert fe.jwt_claims(for_tenant.token)["tid"] == tenant
    assert for_tenant.token == held(env, VAULT)


def test_the_shim_prints_what_az_prints(shim):
    env, _ = shim
    got = az("account", "get-access-token", "-o", "json", env=env)
    assert got.returncode == 0 and got.stderr == "", got.stderr
    answer = json.loads(got.stdout)
    assert list(answer) == sorted(answer), "az sorts its keys"
    assert set(answer) == {"accessToken", "expiresOn", "expires_on", "tenant", "tokenType"}
    assert answer["accessToken"] == held(env, ARM) and answer["tokenType"] == "Bearer"
    assert isinstance(answer["expires_on"], int)
    assert got.stdout.startswith('{\n  "accessToken"'), "two-space indent, as az prints"
    tsv = az("account", "get-access-token", "--scope", VAULT, "--query", "accessToken", "-o", "tsv", env=env)
    assert tsv.returncode == 0 and tsv.stdout == held(env, VAULT) + "\n"


def test_what_the_shim_does_not_answer_reaches_the_real_az_intact(shim, tmp_path):
    env, _ = shim
    behind = tmp_path / "real-az"
    behind.mkdir()
    record = tmp_path / "argv.json"
    (behind / "az").write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"json.dump(sys.argv[1:], open({str(record)!r}, 'w'))\nsys.exit(7)\n")
    (behind / "az").chmod(0o755)
    env = dict(env, PATH=env["PATH"] + os.pathsep + str(behind))
    for args in (["group", "list", "--query", "[?name=='a b']"],
                 ["account", "get-access-token", "--subscription", "s1"],
                 ["account", "show", "-o", "json"]):
        p = az(*args, env=env)
        assert p.returncode == 7, p.stderr
        assert json.loads(record.read_text()) == args


def test_with_nothing_signed_in_and_no_az_the_credential_moves_on(tmp_path, fake_entra, monkeypatch):
    env = tt.environment(tmp_path / "empty", fake_entra)
    subprocess.run([tt.BIN, "az-shim", "--install"], env=env, capture_output=True, check=True)
    lines = subprocess.run([tt.BIN, "env"], env=env, capture_output=True, text=True, check=True).stdout
    for name, value in dict(env, **shell_env(lines)).items():
        monkeypatch.setenv(name, value)
    p = az("account", "get-access-token", "-o", "json")
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("ERROR: Please run 'az login' to setup account.") and "AADSTS" not in p.stderr
    with pytest.raises(CredentialUnavailableError):
        AzureCliCredential().get_token(ARM)
    missing = az("group", "list")
    assert missing.returncode == 127 and "az: command not found" in missing.stderr

    subprocess.run([tt.BIN, "az-shim", "--uninstall"], env=env, capture_output=True, check=True)
    assert not (tmp_path / "empty" / "data" / "bin" / "az").exists()
    after = subprocess.run([tt.BIN, "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert "PATH" not in after
