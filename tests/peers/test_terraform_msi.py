"""Terraform's managed identity (`ARM_USE_MSI`, `ARM_MSI_ENDPOINT`) against `tokentray daemon`.

No Terraform provider runs here (not on PyPI, npm or Debian): the request is the one
hashicorp/go-azure-sdk's `ManagedIdentityAuthorizer` (`sdk/auth/managed_identity_authorizer.go`)
builds: `GET {ARM_MSI_ENDPOINT}?api-version=2018-02-01&resource=R` (plus `client_id` when
`ARM_CLIENT_ID` is set) with header `Metadata: true` and no secret header; and the answer is read
as it reads it: a 2xx body whose `expires_in` (a string or a number) gives the expiry.
"""
import json
from urllib.parse import urlencode

import pytest
import requests

import fake_entra_helpers as fe
import tokentray_helpers as tt

ARM = "https://management.azure.com/"


@pytest.fixture
def terraform_env(daemon_home):
    return daemon_home, tt.env_for(daemon_home, "terraform")


def go_sdk_token(variables, resource=ARM, client_id="", headers=None, endpoint=None):
    query = {"api-version": "2018-02-01", "resource": resource}
    if client_id:
        query["client_id"] = client_id
    url = f"{endpoint or variables['ARM_MSI_ENDPOINT']}?{urlencode(query)}"
    return requests.get(url, headers={"Metadata": "true", **(headers or {})}, timeout=30)


def test_env_for_terraform_names_the_route_and_the_default_accounts_tenant(terraform_env):
    env, variables = terraform_env
    endpoint = json.loads((tt.Path(env["TOKENTRAY_HOME"]) / "run" / "endpoint.json").read_text())
    token = tt.held(env, "https://management.azure.com//.default")
    assert variables == {
        "ARM_USE_MSI": "true",
        "ARM_MSI_ENDPOINT": f"{endpoint['url']}/imds/{endpoint['secret']}/token",
        "ARM_TENANT_ID": fe.jwt_claims(token)["tid"],
    }


def test_the_providers_request_gets_the_token_and_an_expiry_they_read(terraform_env):
    env, variables = terraform_env
    r = go_sdk_token(variables)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["access_token"] == tt.held(env, "https://management.azure.com//.default")
    assert body["token_type"] == "Bearer" and body["resource"] == ARM
    expires_in = int(body["expires_in"])  # go-azure-sdk: a string of seconds, else no expiry
    assert expires_in > 600 and abs(int(body["expires_on"]) - fe.jwt_claims(body["access_token"])["exp"]) <= 1
    vault = go_sdk_token(variables, "https://vault.azure.net").json()
    assert fe.jwt_claims(vault["access_token"])["aud"].startswith("https://vault.azure.net")


def test_the_edge_rules_hold_for_the_imds_route(terraform_env):
    _, variables = terraform_env
    good = variables["ARM_MSI_ENDPOINT"]
    wrong = good.replace("/imds/", "/imds/x")
    assert go_sdk_token(variables, endpoint=wrong).status_code == 401
    assert go_sdk_token(variables, endpoint=good.rsplit("/", 2)[0] + "/token").status_code == 401, "no secret"
    no_metadata = requests.get(good, params={"api-version": "2018-02-01", "resource": ARM}, timeout=10)
    assert no_metadata.status_code == 400 and "Metadata" in no_metadata.json()["message"]
    assigned = go_sdk_token(variables, client_id="11111111-2222-3333-4444-555555555555")
    assert assigned.status_code == 400 and "ARM_CLIENT_ID" in assigned.json()["message"]
    assert go_sdk_token(variables, headers={"Origin": "https://evil.example"}).status_code == 403
    assert go_sdk_token(variables, headers={"Host": "evil.example"}).status_code == 403
