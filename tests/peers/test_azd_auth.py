"""azd's external authentication (`AZD_AUTH_ENDPOINT`, `AZD_AUTH_KEY`) against `tokentray daemon`.

No azd binary is installed here (it is not on PyPI, npm or Debian): the requests are azd's as
its source builds them (`cli/azd/pkg/auth/remote_credential.go`: `POST {endpoint}/token?
api-version=2023-07-12-preview`, `Content-Type: application/json`, `Authorization: Bearer
{key}`, body `{"scopes": [...], "tenantId": ...}` with `tenantId` omitted when empty), and the
answers are read as it reads them: only a 200 is parsed, `status` decides, `expiresOn` is RFC 3339.
"""
import datetime
import json
import subprocess
from pathlib import Path

import pytest
import requests

import fake_entra_helpers as fe
import tokentray_helpers as tt
from tokentray_helpers import BIN

ARM = "https://management.azure.com//.default"


@pytest.fixture
def azd_env(daemon_home):
    return daemon_home, tt.env_for(daemon_home, "azd")


def azd_get_token(variables, scopes, tenant="", headers=None):
    body = {"scopes": scopes}
    if tenant:
        body["tenantId"] = tenant
    return requests.post(variables["AZD_AUTH_ENDPOINT"] + "/token?api-version=2023-07-12-preview",
                         data=json.dumps(body), timeout=30,
                         headers={"Content-Type": "application/json",
                                  "Authorization": "Bearer " + variables["AZD_AUTH_KEY"], **(headers or {})})


def parsed(r):
    """What azd's RemoteCredential makes of an answer."""
    assert r.status_code == 200, (r.status_code, r.text)
    answer = r.json()
    if answer["status"] == "success":
        return answer["token"], datetime.datetime.fromisoformat(answer["expiresOn"])
    assert answer["status"] == "error" and set(answer) == {"status", "code", "message"}, answer
    return answer["code"], answer["message"]


def test_env_for_azd_points_at_the_endpoint_with_its_secret(azd_env):
    env, variables = azd_env
    assert set(variables) == {"AZD_AUTH_ENDPOINT", "AZD_AUTH_KEY"}
    endpoint = json.loads((Path(env["TOKENTRAY_HOME"]) / "run" / "endpoint.json").read_text())
    assert variables == {"AZD_AUTH_ENDPOINT": endpoint["url"], "AZD_AUTH_KEY": endpoint["secret"]}


def test_azd_gets_the_default_accounts_token_in_its_tenant_or_another(azd_env):
    env, variables = azd_env
    token, expires = parsed(azd_get_token(variables, [ARM]))
    assert token == tt.held(env, ARM)
    assert expires.tzinfo is not None and expires > datetime.datetime.now(datetime.timezone.utc)
    assert int(expires.timestamp()) == fe.jwt_claims(token)["exp"]
    tenant = fe.jwt_claims(token)["tid"]
    vault, _ = parsed(azd_get_token(variables, ["https://vault.azure.net/.default"], tenant))
    assert fe.jwt_claims(vault)["aud"].startswith("https://vault.azure.net") and fe.jwt_claims(vault)["tid"] == tenant


def test_azd_errors_are_answers_it_reads(azd_env, tmp_path, fake_entra):
    env, variables = azd_env
    code, message = parsed(azd_get_token(variables, []))
    assert code == "GetTokenError" and "scopes" in message
    code, message = parsed(requests.post(variables["AZD_AUTH_ENDPOINT"] + "/token?api-version=2023-07-12-preview",
                                         data="{not json", timeout=10,
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": "Bearer " + variables["AZD_AUTH_KEY"]}))
    assert code == "GetTokenError"
    # Signed out: azd is told to sign in, with how.
    subprocess.run([BIN, "logout", "--all"], env=env, check=True, capture_output=True)
    code, message = parsed(azd_get_token(variables, [ARM]))
    assert code == "NotSignedInError" and "tokentray login" in message, message


def test_the_edge_rules_hold_for_azds_route(azd_env):
    _, variables = azd_env
    wrong = dict(variables, AZD_AUTH_KEY="not-the-key")
    assert azd_get_token(wrong, [ARM]).status_code == 401
    assert azd_get_token(variables, [ARM], headers={"Origin": "https://evil.example"}).status_code == 403
    assert azd_get_token(variables, [ARM], headers={"Host": "evil.example"}).status_code == 403
    too_big = requests.post(variables["AZD_AUTH_ENDPOINT"] + "/token?api-version=2023-07-12-preview",
                            data=json.dumps({"scopes": ["x" * 20000]}), timeout=10,
                            headers={"Content-Type": "application/json",
                                     "Authorization": "Bearer " + variables["AZD_AUTH_KEY"]})
    assert too_big.status_code == 413
