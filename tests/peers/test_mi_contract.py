"""The App Service managed-identity contract, as each real client speaks it (tests/README.md,
"The managed-identity contract"): azure-identity's ManagedIdentityCredential and MSAL Python's
ManagedIdentityClient, @azure/identity's ManagedIdentityCredential and msal-node's
ManagedIdentityApplication, each getting tokentray's token in the configurations developers run
with: ARM by scope or resource, with or without a trailing slash, another resource, another
account by object id, other Azure variables set for other credentials. The expiry each client
parsed must be tokentray's.
"""
import json
import os
import subprocess

import msal
import pytest
import requests
from azure.identity import ManagedIdentityCredential

import fake_entra_helpers as fe
import tokentray_helpers as tt
from test_endpoint_azure_identity import OTHER_IDENTITY_VARS
from tokentray_helpers import NODE_DIR

# Other credentials' variables a developer commonly has set; managed identity ignores them.
UNRELATED = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
             "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com",
             "AZURE_CLIENT_SECRET": "someone-elses-secret"}


@pytest.fixture
def signed_in(tmp_path, fake_entra):
    """Alice (the default) and Bob signed in, a daemon serving, and the SDK variables."""
    home = tmp_path
    env = tt.environment(home / "home", fake_entra)
    tt.sign_in(env, fake_entra, fe.ALICE)
    tt.sign_in(env, fake_entra, fe.BOB)
    subprocess.run([tt.BIN, "switch", fe.ALICE[0]], env=env, check=True, capture_output=True)
    daemon = tt.start_daemon(env, home / "daemon.log")
    sdk = {k: v for k, v in env.items() if k not in OTHER_IDENTITY_VARS}
    sdk.update(tt.env_for(env, "sdk"), **UNRELATED)
    yield env, sdk
    daemon.terminate()
    daemon.wait(timeout=10)


def served(env, scope, account=None):
    """tokentray's own token and expiry for `scope` (the native API, as a tool would ask)."""
    endpoint = json.loads((tt.Path(env["TOKENTRAY_HOME"]) / "run" / "endpoint.json").read_text())
    r = requests.get(endpoint["url"] + "/v1/token", params={"scope": scope, **({"account": account} if account else {})},
                     headers={"Authorization": "Bearer " + endpoint["secret"]}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    return body["access_token"], body["expires_on"]


def object_id(env, username):
    accounts = json.loads(subprocess.run([tt.BIN, "--json", "accounts"], env=env, check=True,
                                         capture_output=True, text=True).stdout)
    account = next(a for a in accounts if a["username"] == username)
    return account["home_account_id"].split(".")[0]


def python_identity(sdk, scope, oid):
    os.environ.update(sdk)
    credential = ManagedIdentityCredential(identity_config={"object_id": oid}) if oid else ManagedIdentityCredential()
    token = credential.get_token(scope)
    return token.token, token.expires_on


def python_msal(sdk, scope, oid):
    os.environ.update(sdk)
    identity = msal.UserAssignedManagedIdentity(object_id=oid) if oid else msal.SystemAssignedManagedIdentity()
    client = msal.ManagedIdentityClient(identity, http_client=requests.Session())
    result = client.acquire_token_for_client(resource=scope.removesuffix("/.default"))
    assert "access_token" in result, result
    return result["access_token"], None


def node(kind):
    def run(sdk, scope, oid):
        target = scope if kind == "identity" else scope.removesuffix("/.default")
        p = subprocess.run(["node", str(NODE_DIR / "managed_identity.mjs"), kind, target, *([oid] if oid else [])],
                           env=sdk, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        answer = json.loads(p.stdout.strip().splitlines()[-1])
        assert "token" in answer, answer
        return answer["token"], answer["expiresOnTimestamp"] // 1000
    return run


CLIENTS = {"azure-identity": python_identity, "msal-python": python_msal,
           "@azure/identity": node("identity"), "msal-node": node("msal")}


@pytest.fixture
def clean_environ():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


SCOPES = ["https://management.azure.com/.default", "https://management.azure.com//.default",
          "https://management.azure.com", "https://management.core.windows.net/.default",
          "https://graph.microsoft.com/.default", "https://vault.azure.net/.default"]


@pytest.mark.parametrize("client", CLIENTS)
def test_each_client_gets_tokentrays_tokens_expiry_and_accounts(signed_in, clean_environ, client):
    env, sdk = signed_in
    got = {}
    for scope in SCOPES:
        token, expires_on = CLIENTS[client](sdk, scope, None)
        # What tokentray serves a tool asking its own API for that scope.
        expected, expected_on = served(env, scope if scope.endswith("/.default") else scope + "/.default")
        assert token == expected, (client, scope)
        if expires_on is not None:
            assert abs(expires_on - expected_on) <= 1, (scope, expires_on, expected_on)
        assert fe.jwt_claims(token)["upn"] == fe.ALICE[0], "the default account"
        got[scope] = token
    # A resource with or without its trailing slash is one token.
    assert got[SCOPES[0]] == got[SCOPES[1]] == got[SCOPES[2]]
    # An object id (a user-assigned identity's, to the SDK) picks another signed-in account.
    token, _ = CLIENTS[client](sdk, "https://management.azure.com/.default", object_id(env, fe.BOB[0]))
    assert fe.jwt_claims(token)["upn"] == fe.BOB[0]
    assert token == served(env, SCOPES[0], fe.BOB[0])[0]
