"""Tenants by name and each account's subscriptions, from fake-entra's ARM (`GET /tenants`,
`GET /subscriptions`, answered only for an ARM token it issued).

`tokentray subscriptions` lists them; `tokentray accounts` names the tenant; a running daemon
lists them by itself after sign-in, so the names are there while ARM is down. The expected
values are read from ARM with tokentray's own token, not written down here.
"""
import json
import subprocess
import time

import requests

import fake_entra_helpers as fe
import tokentray_helpers as tt
from tokentray_helpers import BIN

ARM = "https://management.core.windows.net//.default"


def arm(fake, token, what):
    r = requests.get(f"{fake.url}/{what}", params={"api-version": "2022-12-01"},
                     headers={"Authorization": "Bearer " + token}, verify=str(fake.ca_path), timeout=10)
    r.raise_for_status()
    return r.json()["value"]


def run(env, *args):
    p = subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_subscriptions_and_tenant_names_from_arm(tmp_path, fake_entra):
    env = tt.environment(tmp_path / "home", fake_entra)
    tt.sign_in(env, fake_entra)
    tt.sign_in(env, fake_entra, fe.BOB)
    alice, bob = tt.held(env, ARM), tt.held(env, ARM, "--account", fe.BOB[0])
    listed = {fe.ALICE[0]: arm(fake_entra, alice, "subscriptions"), fe.BOB[0]: arm(fake_entra, bob, "subscriptions")}
    tenants = {t["tenantId"]: t["displayName"] for token in (alice, bob) for t in arm(fake_entra, token, "tenants")}
    assert len(tenants) == 2 and all(tenants.values())

    shown = json.loads(run(env, "subscriptions", "--json"))
    assert [(s["account"], s["subscription_id"], s["name"], s["state"], s["tenant_id"]) for s in shown] == [
        (user, s["subscriptionId"], s["displayName"], s["state"], s["tenantId"])
        for user in (fe.ALICE[0], fe.BOB[0]) for s in listed[user]]
    assert all(s["tenant_name"] == tenants[s["tenant_id"]] for s in shown)
    first_enabled = next(s for s in listed[fe.ALICE[0]] if s["state"] == "Enabled")
    assert [s["subscription_id"] for s in shown if s["is_default"]] == [first_enabled["subscriptionId"]], \
        "the default account's first enabled subscription in its tenant"

    table = run(env, "subscriptions").splitlines()
    assert table[0].split() == ["NAME", "ID", "STATE", "TENANT", "ACCOUNT"], table
    assert len(table) == 1 + len(shown)
    default_row = next(line for line in table if line.startswith("*"))
    assert first_enabled["subscriptionId"] in default_row and tenants[first_enabled["tenantId"]] in default_row
    tsv = [line.split("\t") for line in run(env, "subscriptions", "-o", "tsv").splitlines()]
    assert [row[2] for row in tsv] == [s["subscription_id"] for s in shown] and all(len(r) == 6 for r in tsv)

    # The accounts name their tenants now that ARM named them.
    accounts = [line.split("\t") for line in run(env, "accounts", "-o", "tsv").splitlines()]
    alice_tid = fe.jwt_claims(alice)["tid"]
    assert [(r[0], r[1], r[3]) for r in accounts] == [
        ("*", fe.ALICE[0], tenants[alice_tid]), ("", fe.BOB[0], tenants[fe.jwt_claims(bob)["tid"]])], accounts
    header = run(env, "accounts").splitlines()[0].split()
    assert header == ["USERNAME", "NAME", "TENANT", "CLOUD", "STATUS"], header


def test_a_running_daemon_lists_them_by_itself_and_they_outlive_arm(tmp_path, fake_entra_factory):
    fake = fake_entra_factory("--device-code-interval", "1")
    env = tt.environment(tmp_path / "home", fake)
    log = tmp_path / "daemon.log"
    daemon = tt.start_daemon(env, log)
    try:
        tt.sign_in(env, fake)  # the CLI signs in; the daemon sees the cache change
        kept = tmp_path / "home" / "data" / "subscriptions.json"
        for _ in range(200):
            if kept.exists() and json.loads(kept.read_text())["accounts"].get(fe.ALICE[0]):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the daemon listed nothing: {log.read_text()}")
        listed = json.loads(kept.read_text())["accounts"][fe.ALICE[0]]
        token = tt.held(env, ARM)
        assert [s["subscriptionId"] for s in listed["subscriptions"]] == \
            [s["subscriptionId"] for s in arm(fake, token, "subscriptions")]
        assert [t["tenantId"] for t in listed["tenants"]] == [fe.jwt_claims(token)["tid"]]
        assert token not in kept.read_text(), "no token kept beside the lists"
    finally:
        daemon.terminate()
        assert daemon.wait(timeout=10) == 0, log.read_text()
    fake.stop()
    # ARM (and Entra) gone: the names and lists are still shown.
    name = listed["tenants"][0]["displayName"]
    accounts = run(env, "accounts", "-o", "tsv").split("\t")
    assert accounts[3] == name, accounts
    p = subprocess.run([BIN, "subscriptions", "-o", "tsv"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and len(p.stdout.splitlines()) == len(listed["subscriptions"]), p
