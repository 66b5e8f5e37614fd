"""The loopback endpoint against the real azure-identity SDK.

Alice signs in to fake-entra with `tokentray login --device-code`; `tokentray daemon` serves; with
only the variables `tokentray env` prints, unmodified `ManagedIdentityCredential` and
`DefaultAzureCredential` get the token tokentray holds, a second scope refreshes through
fake-entra, and the audit log names each token served without containing any.
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

import fake_entra_helpers as fe
import tokentray_helpers as tt

from tokentray_helpers import BIN
ARM_SCOPE = "https://management.core.windows.net/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Variables that would make the SDKs pick another credential or identity source.
OTHER_IDENTITY_VARS = ["MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT",
                       "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_USERNAME",
                       "AZURE_FEDERATED_TOKEN_FILE", "AZURE_POD_IDENTITY_AUTHORITY_HOST"]


@pytest.fixture
def daemon(tmp_path, fake_entra):
    env = tt.environment(tmp_path / "home", fake_entra, TOKENTRAY_LOG="warn,tokentray::audit=info")
    tt.sign_in(env, fake_entra)
    log = tmp_path / "daemon.log"
    process = tt.start_daemon(env, log)
    endpoint = tmp_path / "home" / "run" / "endpoint.json"

    def run(*args):
        p = subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    yield run, log
    process.terminate()
    assert process.wait(timeout=10) == 0, log.read_text()
    assert not endpoint.exists(), "endpoint.json withdrawn at exit"


def use_tokentray_env(run, monkeypatch):
    for var in OTHER_IDENTITY_VARS:
        monkeypatch.delenv(var, raising=False)
    for line in run("env").splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        monkeypatch.setenv(name, value.strip("'"))
    assert os.environ["IDENTITY_ENDPOINT"].startswith("http://127.0.0.1:")


def test_managed_identity_and_default_credentials_get_tokentrays_tokens(daemon, fake_entra, monkeypatch):
    run, log = daemon
    use_tokentray_env(run, monkeypatch)
    held = run("token", "--scope", "https://management.core.windows.net//.default", "--format", "raw").strip()

    arm = ManagedIdentityCredential().get_token(ARM_SCOPE)
    assert arm.token == held
    assert arm.expires_on > time.time() + 600

    fake_entra.clear_log()
    graph = ManagedIdentityCredential().get_token(GRAPH_SCOPE)
    assert graph.token != held
    assert fe.jwt_claims(graph.token)["aud"].startswith("https://graph.microsoft.com")
    refreshes = [e for e in fake_entra.log() if e.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1, fake_entra.log()

    dac = DefaultAzureCredential().get_token(ARM_SCOPE)
    assert dac.token == held

    text = tt.logged(log, "client=")
    # Each audit line says when (UTC, RFC 3339): the daemon's log is read days later.
    audit = [line for line in text.splitlines() if "served route=" in line]
    assert audit and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ", line) for line in audit), audit
    assert "WARN" not in text, "starting is not a warning"
    assert 'served route=/msi/token account="alice@contoso.example"' in text, text
    # The client is this test process, named while it was still connected.
    assert f'client="pid {os.getpid()} (' in text, text
    for token in (held, graph.token):
        assert token not in text and token[-40:] not in text, "no token in the logs"


def test_wrong_secret_is_refused_by_the_sdk(daemon, monkeypatch):
    run, _ = daemon
    use_tokentray_env(run, monkeypatch)
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises(Exception) as refused:
        ManagedIdentityCredential().get_token(ARM_SCOPE)
    assert "401" in str(refused.value) or "secret" in str(refused.value), refused.value


def test_activity_lists_what_a_real_sdk_process_was_served(daemon, monkeypatch):
    run, _ = daemon
    use_tokentray_env(run, monkeypatch)
    arm = ManagedIdentityCredential().get_token(ARM_SCOPE)
    DefaultAzureCredential().get_token(ARM_SCOPE)
    graph = ManagedIdentityCredential().get_token(GRAPH_SCOPE)
    run("token", "--format", "raw")  # tokentray's own CLI, through the native route
    # Recorded off the request path, so possibly just after the answer.
    for _ in range(100):
        activity = json.loads(run("--json", "activity"))
        if activity and activity[0]["route"] == "/v1/token":
            break
        time.sleep(0.05)
    me = f"pid {os.getpid()} ("
    lines = [(a["route"], a["account"], a["client"].startswith(me), a["count"], "graph" in a["scopes"])
             for a in activity]
    assert lines == [
        ("/v1/token", "alice@contoso.example", False, 1, False),
        ("/msi/token", "alice@contoso.example", True, 1, True),
        ("/msi/token", "alice@contoso.example", True, 2, False),
    ], activity
    assert activity[2]["since"] <= activity[2]["at"] <= time.time() + 1
    assert os.path.basename(sys.executable) in activity[1]["client"]
    text = json.dumps(activity)
    assert arm.token not in text and graph.token not in text, "no token in the activity"

    table = run("activity").splitlines()
    assert table[0].split() == ["TIME", "PROGRAM", "ACCOUNT", "SCOPES", "ROUTE", "COUNT"], table
    assert len(table) == 4, table
    only_graph = run("activity", "--filter", "GRAPH.microsoft", "-o", "tsv").splitlines()
    assert len(only_graph) == 1 and only_graph[0].split("\t")[1].startswith(me), only_graph
    assert run("activity", "--filter", "vault.azure.net") == 'Nothing served matches "vault.azure.net".\n'


def test_activity_without_an_instance_says_how_to_start_one(tmp_path, fake_entra):
    env = tt.environment(tmp_path / "home", fake_entra)
    p = subprocess.run([BIN, "activity"], env=env, capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout) == (0, ""), p
    assert "Nothing serves tokens now" in p.stderr and "tokentray daemon" in p.stderr, p.stderr
    p = subprocess.run([BIN, "activity", "--json"], env=env, capture_output=True, text=True, timeout=30)
    assert json.loads(p.stdout) == [], p
