"""The `az` shim's `account show | list | set`, `--subscription` and `version`: what Terraform
(hashicorp/go-azure-sdk runs `az version -o=json` and `az account show -o=json` before any
`get-access-token`) and scripts (`az account show --query id -o tsv`) read.

The subscriptions come from fake-entra's ARM `GET /subscriptions`, which answers only for an ARM
token it issued; the expected values are read from that endpoint with tokentray's own token, not
written down here. No Azure CLI is installed: everything is the shim's own answer.
"""
import json
import subprocess

import pytest
import requests

import fake_entra_helpers as fe
import tokentray_helpers as tt

ARM = "https://management.core.windows.net//.default"


def ok(*args, env=None):
    p = tt.az(*args, env=env)
    assert p.returncode == 0 and p.stderr == "", (args, p.stderr)
    return p.stdout


def arm_subscriptions(fake, token):
    """What ARM (fake-entra's) lists for `token`."""
    r = requests.get(fake.url + "/subscriptions", params={"api-version": "2022-12-01"},
                     headers={"Authorization": "Bearer " + token}, verify=str(fake.ca_path), timeout=10)
    r.raise_for_status()
    return r.json()["value"]


@pytest.fixture
def accounts(shim, fake_entra):
    """The shim, ARM at fake-entra (`tt.environment`): (env, Alice's subscriptions as ARM lists
    them)."""
    env, _ = shim
    assert env["TOKENTRAY_ARM_ENDPOINT"] == fake_entra.url
    return env, arm_subscriptions(fake_entra, tt.held(env, ARM))


def test_arm_lists_only_for_a_token_it_issued(fake_entra):
    r = requests.get(fake_entra.url + "/subscriptions", params={"api-version": "2022-12-01"},
                     headers={"Authorization": "Bearer forged.token.here"},
                     verify=str(fake_entra.ca_path), timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_account_show_is_the_default_subscription_as_az_prints_it(accounts):
    env, subscriptions = accounts
    text = ok("account", "show", "-o=json", env=env)
    shown = json.loads(text)
    assert list(shown) == sorted(shown) and text.startswith('{\n  "environmentName"')
    first = next(s for s in subscriptions if s["state"] == "Enabled")
    tenant = fe.jwt_claims(tt.held(env, ARM))["tid"]
    assert shown == {
        "environmentName": "AzureCloud", "homeTenantId": tenant, "id": first["subscriptionId"],
        "isDefault": True, "managedByTenants": [], "name": first["displayName"],
        "state": "Enabled", "tenantId": tenant, "user": {"name": fe.ALICE[0], "type": "user"},
    }
    assert ok("account", "show", "--query", "id", "-o", "tsv", env=env) == first["subscriptionId"] + "\n"
    assert ok("account", "show", "--query", "user.name", "-o", "tsv", env=env) == fe.ALICE[0] + "\n"


def test_account_list_shows_enabled_ones_and_all_with_all(accounts):
    env, subscriptions = accounts
    enabled = [s["subscriptionId"] for s in subscriptions if s["state"] == "Enabled"]
    assert 0 < len(enabled) < len(subscriptions), "the fake lists a disabled subscription too"
    listed = json.loads(ok("account", "list", env=env))
    assert [e["id"] for e in listed] == enabled
    assert [e["isDefault"] for e in listed] == [True] + [False] * (len(enabled) - 1)
    every = ok("account", "list", "--all", "--query", "[].id", "-o", "tsv", env=env)
    assert every.split() == [s["subscriptionId"] for s in subscriptions]


def test_account_set_makes_the_default_and_get_access_token_follows_it(accounts):
    env, subscriptions = accounts
    second = [s for s in subscriptions if s["state"] == "Enabled"][1]
    assert ok("account", "set", "--subscription", second["displayName"], env=env) == ""
    assert json.loads(ok("account", "show", env=env))["id"] == second["subscriptionId"]
    token = json.loads(ok("account", "get-access-token", env=env))
    assert token["subscription"] == second["subscriptionId"] and token["accessToken"] == tt.held(env, ARM)
    assert token["tenant"] == second["tenantId"]
    named = json.loads(ok("account", "show", "-s", second["subscriptionId"], env=env))
    assert named["isDefault"] is True


def test_subscription_picks_the_account_and_tenant_it_belongs_to(accounts, fake_entra):
    env, alice_s = accounts
    tt.sign_in(env, fake_entra, fe.BOB)
    bob_token = tt.held(env, ARM, "--account", fe.BOB[0])
    bob_s = arm_subscriptions(fake_entra, bob_token)
    assert bob_s[0]["tenantId"] != alice_s[0]["tenantId"], "Bob's subscriptions are another tenant's"
    got = json.loads(ok("account", "get-access-token", "--subscription", bob_s[0]["subscriptionId"],
                        "--scope", "https://vault.azure.net/.default", env=env))
    assert got["subscription"] == bob_s[0]["subscriptionId"] and got["tenant"] == bob_s[0]["tenantId"]
    assert fe.jwt_claims(got["accessToken"])["oid"] == fe.jwt_claims(bob_token)["oid"]
    listed = json.loads(ok("account", "list", env=env))
    assert {e["user"]["name"] for e in listed} == {fe.ALICE[0], fe.BOB[0]}

    ok("account", "set", "-s", bob_s[0]["displayName"], env=env)
    default = [a for a in json.loads(subprocess.run([tt.BIN, "--json", "accounts"], env=env,
               capture_output=True, text=True, check=True).stdout) if a["is_default"]]
    assert [a["username"] for a in default] == [fe.BOB[0]], "its account became the default"
    shown = json.loads(ok("account", "show", env=env))
    assert (shown["id"], shown["user"]["name"]) == (bob_s[0]["subscriptionId"], fe.BOB[0])

    missing = tt.az("account", "show", "-s", "no-such-subscription", env=env)
    assert missing.returncode == 1 and "not found" in missing.stderr and missing.stdout == ""


def test_the_kept_list_answers_while_arm_is_unreachable(accounts):
    env, subscriptions = accounts
    first = json.loads(ok("account", "show", env=env))
    unreachable = dict(env, TOKENTRAY_ARM_ENDPOINT="https://127.0.0.1:9")
    again = json.loads(ok("account", "list", "--refresh", env=unreachable))
    assert [e["id"] for e in again] == [s["subscriptionId"] for s in subscriptions if s["state"] == "Enabled"]
    assert json.loads(ok("account", "show", env=unreachable)) == first


def test_version_satisfies_terraform_without_a_real_az(accounts):
    env, _ = accounts
    version = json.loads(ok("version", "-o=json", env=env))
    major, minor, _ = (int(p) for p in version["azure-cli"].split("."))
    assert (2, 30) <= (major, minor) < (3, 0), "go-azure-sdk requires >= 2.30.0 and < 3.0.0"
    ours = subprocess.run([tt.BIN, "--version"], capture_output=True, text=True, check=True).stdout
    assert ours.split()[-1] == version["tokentray"]
