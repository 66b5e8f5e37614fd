"""The `az` shim (`tokentray az-shim --install`) with the real `AzureCliCredential` of
azure-identity (Python) and of @azure/identity (Node.js, tests/peers/node).

With the shim's directory first on PATH (the line `tokentray env` adds while it is installed) and
no Azure CLI installed, both `AzureCliCredential`s get the token tokentray holds, with and without
a tenant; `--query accessToken -o tsv` and `--scope` answer as az does. A command the shim does not
answer reaches the next `az` on PATH (a stand-in that records its argv and exits 7) with argv and
exit code intact; with nothing signed in and no az behind it, the shim fails the way that makes
the SDKs move on to their next credential.
"""
import json
import os
import subprocess

import pytest
from azure.identity import AzureCliCredential, CredentialUnavailableError

import fake_entra_helpers as fe
import tokentray_helpers as tt
from tokentray_helpers import az, held, shell_env

ARM = "https://management.core.windows.net//.default"
VAULT = "https://vault.azure.net/.default"


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
                 ["account", "get-access-token", "--subscription", "not-one-of-alice-s"],
                 ["account", "show", "-o", "table"],
                 ["account", "list", "--query", "[?isDefault].name"],
                 ["version"]):
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


def node_token(scope, tenant=None, env=None):
    """What the Node.js AzureCliCredential got: {token, expiresOnTimestamp} (ms)."""
    p = tt.node_azure_cli_credential(scope, tenant, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_the_node_azure_cli_credential_gets_tokentray_s_token_through_the_shim(shim):
    """@azure/identity 4.14.1 (tests/peers/node) on Linux: @azure/core-process resolves `az` on
    PATH itself (the first absolute PATH entry holding an executable file `az`, here the shim) and
    runs child_process.execFile(<that absolute path>, ["account", "get-access-token", "--output",
    "json", "--resource", <the scope less "/.default">, then "--tenant", T when a tenant is set],
    {cwd: "/bin", shell: false}): no shell, argv[0] the shim's full path. It reads `accessToken`
    and `expires_on` (seconds) from the JSON."""
    env, _ = shim
    got = node_token(ARM, env=env)
    assert got["token"] == held(env, ARM)
    claims = fe.jwt_claims(got["token"])
    # The cache counts expiry from `expires_in` at arrival, which can be a second off `exp`.
    assert abs(got["expiresOnTimestamp"] / 1000 - claims["exp"]) <= 2
    tenant = claims["tid"]
    for_tenant = node_token(VAULT, tenant, env=env)
    assert fe.jwt_claims(for_tenant["token"])["tid"] == tenant
    assert for_tenant["token"] == held(env, VAULT)
    assert for_tenant["token"] != got["token"], "a vault token is not the ARM token"


def test_with_nothing_signed_in_and_no_az_the_node_credential_is_unavailable(tmp_path, fake_entra):
    """Nothing signed in: the shim's "ERROR: Please run 'az login' ..." (exit 1) is the message
    @azure/identity turns into a CredentialUnavailableError (what DefaultAzureCredential moves on
    from). No `az` on PATH at all: also CredentialUnavailableError (the CLI "could not be found")."""
    env = tt.environment(tmp_path / "empty", fake_entra)
    subprocess.run([tt.BIN, "az-shim", "--install"], env=env, capture_output=True, check=True)
    lines = subprocess.run([tt.BIN, "env"], env=env, capture_output=True, text=True, check=True).stdout
    with_shim = dict(env, **shell_env(lines))
    p = tt.node_azure_cli_credential(ARM, env=with_shim)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("CredentialUnavailableError: "), p.stderr
    assert "Please run 'az login'" in p.stderr, "the login message, not 'could not be found'"
    without = tt.node_azure_cli_credential(ARM, env=env)
    assert without.returncode == 1 and without.stderr.startswith("CredentialUnavailableError: ")
    assert "Please run 'az login'" not in without.stderr, without.stderr
