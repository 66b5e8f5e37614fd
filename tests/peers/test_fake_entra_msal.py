"""fake-entra against the real MSAL Python: device-code and auth-code (PKCE) sign-in, the
unified cache they fill, silent refresh through the refresh token, revocation, refresh-token
expiry on the fake's clock, and a Conditional Access claims challenge."""
import json
import threading
import time

import msal
import pytest

import fake_entra_helpers as fe
from fake_entra_helpers import ALICE, ARM, ARM_GRANTED, AZURE_CLI, DEVICE_GRANT


def msal_app(fake, cache=None, tenant="organizations"):
    return msal.PublicClientApplication(
        AZURE_CLI,
        authority=fake.authority(tenant),
        instance_discovery=False,
        http_client=fake.session(),
        token_cache=cache if cache is not None else msal.SerializableTokenCache(),
    )


def device_sign_in(fake, app, approve_after=0.0, action="approve"):
    """MSAL's device flow, approved through /devicelogin (in a thread, while MSAL polls)."""
    flow = app.initiate_device_flow(scopes=[ARM])
    assert "user_code" in flow, flow
    approver = threading.Timer(approve_after, fake.approve_device_code,
                               args=(flow["user_code"], *ALICE), kwargs={"action": action})
    approver.start()
    deadline = time.time() + 30
    result = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: time.time() > deadline)
    approver.join()
    return flow, result


def test_device_code_flow_fills_msals_cache(fake_entra_factory):
    fake = fake_entra_factory("--device-code-interval", "1")
    cache = msal.SerializableTokenCache()
    app = msal_app(fake, cache)
    flow, result = device_sign_in(fake, app, approve_after=1.5)

    assert flow["verification_uri"] == fake.url + "/devicelogin"
    assert flow["user_code"] in flow["message"]
    assert "access_token" in result, result
    alice = fake.users()[ALICE[0]]
    assert result["id_token_claims"]["oid"] == alice["oid"]
    assert result["id_token_claims"]["tid"] == alice["tenant_id"]
    assert result["id_token_claims"]["aud"] == AZURE_CLI
    assert fe.jwt_claims(result["access_token"])["aud"] == "https://management.core.windows.net/"

    data = json.loads(cache.serialize())
    for section in ("Account", "AccessToken", "RefreshToken", "IdToken", "AppMetadata"):
        assert len(data.get(section, {})) == 1, (section, data)
    for section in ("Account", "AccessToken", "RefreshToken", "IdToken"):
        entry = next(iter(data[section].values()))
        assert entry["home_account_id"] == alice["home_account_id"] == f"{alice['oid']}.{alice['tenant_id']}"
        assert entry["environment"] == "127.0.0.1"
    at = next(iter(data["AccessToken"].values()))
    assert at["target"] == ARM_GRANTED
    assert at["realm"] == "organizations"
    account = next(iter(data["Account"].values()))
    assert account["username"] == ALICE[0]
    assert account["local_account_id"] == alice["oid"]
    assert account["authority_type"] == "MSSTS"
    assert app.get_accounts()[0]["home_account_id"] == alice["home_account_id"]

    # MSAL polled while the user was still on the page: pending first, tokens last.
    polls = [e for e in fake.log() if e["grant_type"] == DEVICE_GRANT]
    assert len(polls) >= 2, polls
    assert polls[0]["status"] == 400 and polls[-1]["status"] == 200
    assert all(e["client_id"] == AZURE_CLI for e in polls)


def test_declined_device_code_is_an_error_for_msal(fake_entra):
    _, result = device_sign_in(fake_entra, msal_app(fake_entra), action="decline")
    assert result["error"] == "authorization_declined", result
    assert "access_token" not in result


@pytest.mark.parametrize("response_mode", [None, "form_post"])
def test_auth_code_flow_with_pkce(fake_entra, response_mode):
    cache = msal.SerializableTokenCache()
    app = msal_app(fake_entra, cache)
    flow = app.initiate_auth_code_flow(scopes=[ARM], redirect_uri="http://localhost:8400",
                                       login_hint=ALICE[0], response_mode=response_mode)
    assert "code_challenge=" in flow["auth_uri"] and "code_challenge_method=S256" in flow["auth_uri"]

    page = fake_entra.session().get(flow["auth_uri"]).text
    assert f'name="username" value="{ALICE[0]}"' in page, "login_hint prefills the username"
    response = fake_entra.sign_in(flow["auth_uri"], *ALICE)
    if response_mode == "form_post":
        assert response.pop("_action") == "http://localhost:8400"
    assert response["state"] == flow["state"]
    assert response["code"] and response["client_info"]

    result = app.acquire_token_by_auth_code_flow(flow, response)
    # MSAL itself checks the id_token's nonce and aud here.
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == ALICE[0]
    account = next(iter(json.loads(cache.serialize())["Account"].values()))
    assert account["account_source"] == "authorization_code"

    # The code was single-use: redeeming it again is Entra's AADSTS54005.
    replay = fake_entra.session().post(fake_entra.authority() + "/oauth2/v2.0/token", data={
        "client_id": AZURE_CLI, "grant_type": "authorization_code", "code": response["code"],
        "redirect_uri": "http://localhost:8400", "code_verifier": flow["code_verifier"]})
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert replay.json()["error_codes"] == [54005]


def test_cancelled_sign_in_reaches_msal_as_access_denied(fake_entra):
    app = msal_app(fake_entra)
    flow = app.initiate_auth_code_flow(scopes=[ARM], redirect_uri="http://localhost:8400")
    response = fake_entra.sign_in(flow["auth_uri"], "", "", action="cancel")
    assert response["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert result["error"] == "access_denied", result


def test_silent_refresh_rotates_and_revocation_ends_it(fake_entra_factory):
    # Under 300 s left, MSAL treats an access token as expired and refreshes.
    fake = fake_entra_factory("--access-token-lifetime", "60", "--strict-rotation")
    cache = msal.SerializableTokenCache()
    app = msal_app(fake, cache)
    _, first = device_sign_in(fake, app)
    assert "access_token" in first, first
    account = app.get_accounts()[0]
    old_rt = next(iter(json.loads(cache.serialize())["RefreshToken"].values()))["secret"]
    fake.clear_log()

    result = app.acquire_token_silent([ARM], account)
    assert result and "access_token" in result, result
    assert result["token_source"] == "identity_provider"
    assert result["access_token"] != first["access_token"]
    refreshes = [e for e in fake.log() if e["grant_type"] == "refresh_token"]
    assert [e["status"] for e in refreshes] == [200]
    new_rt = next(iter(json.loads(cache.serialize())["RefreshToken"].values()))["secret"]
    assert new_rt != old_rt, "MSAL stored the rotated refresh token"
    stale = fake.session().post(fake.authority() + "/oauth2/v2.0/token", data={
        "client_id": AZURE_CLI, "grant_type": "refresh_token", "refresh_token": old_rt})
    assert stale.json()["error"] == "invalid_grant", "the rotated-out token is dead"

    assert fake.revoke(ALICE[0])["revoked_refresh_tokens"] == 1
    failed = app.acquire_token_silent_with_error([ARM], account)
    assert failed["error"] == "invalid_grant", failed
    assert 50173 in failed["error_codes"]
    assert app.acquire_token_silent([ARM], account) is None


def test_refresh_token_expiry_follows_the_fakes_clock(fake_entra):
    app = msal_app(fake_entra)
    _, first = device_sign_in(fake_entra, app)
    assert "access_token" in first, first
    account = app.get_accounts()[0]
    fake_entra.advance_clock(91 * 24 * 3600)
    result = app.acquire_token_silent_with_error([ARM], account, force_refresh=True)
    assert result["error"] == "invalid_grant", result
    assert 700082 in result["error_codes"]


def test_claims_challenge_fault_reaches_msal(fake_entra_factory):
    fake = fake_entra_factory("--access-token-lifetime", "60")
    app = msal_app(fake)
    _, first = device_sign_in(fake, app)
    assert "access_token" in first, first
    fake.queue_fault({"endpoint": "token", "grant_type": "refresh_token",
                      "fault": {"kind": "interaction_required"}})
    result = app.acquire_token_silent_with_error([ARM], app.get_accounts()[0])
    assert result["error"] == "interaction_required", result
    assert result["classification"] == "basic_action"
    assert json.loads(result["claims"])["access_token"]["capolids"]["essential"] is True
    # The fault was used up: answering the challenge (a new request body, so MSAL's replay
    # cache of 400s does not apply) refreshes successfully.
    again = app.acquire_token_silent([ARM], app.get_accounts()[0], claims_challenge=result["claims"])
    assert again and "access_token" in again, again
    refreshes = [(e["fault"], e["status"]) for e in fake.log() if e["grant_type"] == "refresh_token"]
    assert refreshes == [("interaction_required", 400), (None, 200)]
