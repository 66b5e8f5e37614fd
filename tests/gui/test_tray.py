"""The real tray: the app's icon registers with a StatusNotifierWatcher on the session bus
(tests/gui/sni.py, as a desktop panel does), its menu lists the accounts with a check mark on
the default, a click on an account in that menu makes it the default, and the icon follows
sign-in and an account needing sign-in again."""
import json
import os
import subprocess
import time

import pytest
from selenium.webdriver.common.by import By

from conftest import ALICE, BOB, CLI, OUT
from sni import Watcher
from test_window import wait


@pytest.fixture
def watcher():
    w = Watcher()
    yield w
    w.close()


def cli(app_env, *args):
    return subprocess.run([str(CLI), *args], env={**os.environ, **app_env}, capture_output=True,
                          text=True, timeout=60)


def device_login(app_env, fake, user):
    login = subprocess.Popen([str(CLI), "--json", "login", "--device-code"], env={**os.environ, **app_env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fake.approve_device_code(json.loads(login.stdout.readline())["user_code"], *user)
    assert login.wait(timeout=60) == 0, login.stderr.read()


def eventually(check, what, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def default(app_env):
    """The default account, as `tokentray accounts -o tsv` marks it."""
    rows = [line.split("\t") for line in cli(app_env, "accounts", "-o", "tsv").stdout.splitlines()]
    return next((r[1] for r in rows if r[0] == "*"), None)


def accounts_in(menu):
    return {e["label"]: e["toggle-state"] for e in menu if e["label"] in (ALICE[0], BOB[0])}


def test_the_tray_menu_on_the_session_bus_lists_and_switches_accounts(watcher, launch, fake, app_env,
                                                                     monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_path))
    driver = launch()
    wait(driver, lambda d: d.find_element(By.ID, "tab-accounts").is_displayed(), "the window")
    watcher.wait_for_item()
    first = watcher.item_properties()
    assert first["Status"] in ("Active", "NeedsAttention"), first
    no_account_icon = first["IconName"]
    labels = [e["label"] for e in watcher.menu()]
    assert "Not signed in" in labels and "Quit tokentray" in labels, labels

    # Two accounts signed in from a terminal: the menu lists both, Alice (the first) checked.
    device_login(app_env, fake, ALICE)
    device_login(app_env, fake, BOB)
    menu = eventually(lambda: (m := watcher.menu()) and len(accounts_in(m)) == 2 and m, "both accounts")
    assert accounts_in(menu) == {ALICE[0]: 1, BOB[0]: 0}, menu
    signed_in_icon = watcher.item_properties()["IconName"]
    assert signed_in_icon != no_account_icon, "the icon says signed in"
    sign_out = next(e for e in menu if e["label"] == "Sign out")
    assert sorted(c["label"] for c in sign_out["children"]) == sorted(f"{u}…" for u in (ALICE[0], BOB[0]))

    # A click on Bob in the real menu makes him the default, for every tool.
    # (The menu is rebuilt whenever the accounts change, with new ids, as a panel learns from
    # LayoutUpdated: each try clicks the current one.)
    # A menu rebuilt between reading it and clicking refuses the old id ("does not refer to a
    # menu item we have"): that try fails and the next reads the menu again.
    def click_bob():
        bob = next(e for e in watcher.menu() if e["label"] == BOB[0])
        try:
            watcher.click(bob["id"])
            return eventually(lambda: default(app_env) == BOB[0], "Bob as the default", timeout=3)
        except AssertionError:
            return False
    eventually(click_bob, "a click on Bob to make him the default", timeout=20)
    eventually(lambda: accounts_in(watcher.menu()) == {ALICE[0]: 0, BOB[0]: 1}, "the check mark on Bob")

    # Alice's refresh token revoked: the next refresh marks her as needing sign-in; the icon says so.
    fake.revoke(ALICE[0])
    failed = cli(app_env, "token", "--account", ALICE[0], "--scope", "https://vault.azure.net/.default")
    assert failed.returncode == 3, failed
    attention = eventually(lambda: (i := watcher.item_properties()["IconName"]) != signed_in_icon and i,
                           "the attention icon")
    assert attention != no_account_icon
    (OUT / "tray-menu.json").write_text(json.dumps(watcher.menu(), indent=2))
