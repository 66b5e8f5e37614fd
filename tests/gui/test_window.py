"""The real tokentray app, driven through its window over WebDriver, against fake-entra.

Alice signs in with a device code (the test approves on /devicelogin as her phone would), Bob
with the browser flow ($BROWSER drives headless Chromium), Bob becomes the default and the
endpoint serves his token, Alice signs out, and after a restart the window shows what was left.
Each screen is saved under target/test-output/gui.
"""
import json
import os
import re
import subprocess
import time
from pathlib import Path

import requests
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ALICE, APP, BOB, CLI, OUT, ROOT, fe
from tokentray_helpers import enable_socket  # tests/peers, on the path by conftest


def wait(driver, condition, what, timeout=30):
    """Waits for `condition(driver)` to be truthy; on timeout saves a screenshot."""
    # The window re-renders on every change event: elements found a moment ago may be gone.
    waiter = WebDriverWait(driver, timeout, poll_frequency=0.1,
                           ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))
    try:
        return waiter.until(condition)
    except TimeoutException:
        driver.save_screenshot(str(OUT / f"failed-{re.sub(r'[^a-z]+', '-', what)}.png"))
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def press(driver, username, action):
    """Clicks an account's button; retried while a re-render replaces the card."""
    def attempt(d):
        account(d, username).find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]').click()
        return True
    wait(driver, attempt, f"{action} of {username}")


def shot(driver, name):
    driver.save_screenshot(str(OUT / f"{name}.png"))


def account(driver, username):
    found = driver.find_elements(By.CSS_SELECTOR, f'li.account[data-username="{username}"]')
    return found[0] if found else None


# Read in one script, so a re-render in between cannot leave a stale element behind.
def usernames(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('li.account')].map(e => e.dataset.username)")


def default_of(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('li.account')]"
        ".filter(e => e.querySelector('.default-marker')).map(e => e.dataset.username)")


def endpoint_token(home, session=requests, resource="https://management.core.windows.net/"):
    """A token from the running app's endpoint, as azure-identity's managed identity asks."""
    endpoint = json.loads((home / "run" / "endpoint.json").read_text())
    r = session.get(endpoint["url"] + "/msi/token",
                     params={"api-version": "2019-08-01", "resource": resource},
                     headers={"X-IDENTITY-HEADER": endpoint["secret"]}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def arm(fake, token, what):
    """fake-entra's ARM answer to `GET /<what>` for `token` (tenants or subscriptions)."""
    r = requests.get(f"{fake.url}/{what}", params={"api-version": "2022-12-01"},
                     headers={"Authorization": "Bearer " + token}, verify=str(fake.ca_path), timeout=10)
    r.raise_for_status()
    return r.json()["value"]


def test_sign_in_switch_sign_out_and_restart(launch, fake, home, app_env):
    os.environ["REQUESTS_CA_BUNDLE"] = str(fake.ca_path)
    driver = launch()
    wait(driver, lambda d: d.find_element(By.ID, "no-accounts").is_displayed(), "the empty state")
    shot(driver, "01-no-accounts")

    # tokentray.socket holds the app's port, so the first sign-in offers the session environment.
    socket_units = enable_socket(os.environ["XDG_CONFIG_HOME"], app_env["TOKENTRAY_PORT"])

    # Alice: device code through the window; the test plays her phone.
    driver.find_element(By.ID, "sign-in-device").click()
    code = wait(driver, lambda d: re.fullmatch(r"[A-Z0-9-]{6,}", d.find_element(By.ID, "user-code").text.strip()),
                "the user code").group(0)
    assert driver.find_element(By.ID, "verification-link").text.strip()
    copy = driver.find_element(By.ID, "copy-user-code")
    copy.click()
    live = driver.find_element(By.ID, "sign-in-live")  # for screen readers: not displayed
    wait(driver, lambda d: copy.text == "Copied" and "Code copied" in live.get_attribute("textContent"),
         "the code copied")
    wait(driver, lambda d: copy.text == "Copy code", "the button's label back", timeout=5)
    shot(driver, "02-device-code")
    fake.approve_device_code(code, *ALICE)
    wait(driver, lambda d: account(d, ALICE[0]), "Alice's account")
    wait(driver, lambda d: not d.find_element(By.ID, "sign-in-dialog").is_displayed(), "the dialog to close")
    def countdown(d):
        return d.execute_script(
            "return document.querySelector(`li.account[data-username='${arguments[0]}'] tr.token .expires-in`)"
            "?.textContent.trim() ?? ''", ALICE[0])

    first = countdown(driver)
    assert re.match(r"^(59|60)m", first), first
    wait(driver, lambda d: countdown(d) != first, "the countdown to move", timeout=5)
    assert default_of(driver) == [ALICE[0]], "the first account is the default"
    shot(driver, "03-signed-in")
    # It offers to let every app use tokentray; taken, the session environment is installed.
    offer = wait(driver, lambda d: d.find_element(By.ID, "every-app-offer"), "the offer")
    wait(driver, lambda d: offer.is_displayed(), "the offer shown")
    shot(driver, "03a-every-app-offer")
    driver.find_element(By.ID, "every-app-yes").click()
    written = Path(os.environ["XDG_CONFIG_HOME"]) / "environment.d" / "60-tokentray.conf"
    wait(driver, lambda d: written.exists() and not offer.is_displayed(), "the session environment")
    assert f"127.0.0.1:{app_env['TOKENTRAY_PORT']}/msi/token" in written.read_text()
    written.unlink()
    for unit in socket_units:
        unit.unlink()
    # The first sign-in switched start at login on: an XDG autostart entry for the tray app.
    autostart = Path(os.environ["XDG_CONFIG_HOME"]) / "autostart" / "tokentray.desktop"
    assert f'Exec="{APP}"' in autostart.read_text()

    # Bob: the browser flow ($BROWSER runs headless Chromium, which signs in as Bob).
    driver.find_element(By.ID, "sign-in-browser").click()
    wait(driver, lambda d: d.find_element(By.ID, "browser-waiting").is_displayed(), "waiting for the browser")
    shot(driver, "04-browser-waiting")
    wait(driver, lambda d: account(d, BOB[0]), "Bob's account", timeout=90)
    wait(driver, lambda d: not d.find_element(By.ID, "sign-in-dialog").is_displayed(), "the dialog to close")
    assert not driver.find_element(By.ID, "every-app-offer").is_displayed(), "offered once"
    assert default_of(driver) == [ALICE[0]]
    shot(driver, "05-two-accounts")

    # Switch: Bob becomes the default, and the endpoint serves his token.
    assert fe.jwt_claims(endpoint_token(home))["upn"] == ALICE[0]
    press(driver, BOB[0], "make-default")
    wait(driver, lambda d: default_of(d) == [BOB[0]], "Bob to be the default")
    # Kept alive as SDK clients do: the app names the client by its open connection.
    with requests.Session() as sdk_like:
        bob_token = endpoint_token(home, sdk_like)
        assert fe.jwt_claims(bob_token)["upn"] == BOB[0]
        wait(driver, lambda d: f"pid {os.getpid()}" in account(d, BOB[0]).find_element(
            By.CSS_SELECTOR, "tr.token .last-served").text, "Bob's token served to this test's process")

    # Tenants by name and Bob's subscriptions, which the app listed from ARM with his cached
    # token after the sign-in; the expected values are ARM's own answers to that token.
    tenants = {t["tenantId"]: t["displayName"] for t in arm(fake, bob_token, "tenants")}
    subscriptions = sorted(s["subscriptionId"] for s in arm(fake, bob_token, "subscriptions"))
    assert tenants and subscriptions, "fake-entra's ARM lists Bob's tenant and subscriptions"
    bob_tenant = fe.jwt_claims(bob_token)["tid"]
    wait(driver, lambda d: account(d, BOB[0]).find_elements(By.CSS_SELECTOR, ".account-head .tenant-name"),
         "Bob's tenant by name")
    card = account(driver, BOB[0])
    named = card.find_element(By.CSS_SELECTOR, ".account-head .tenant-name")
    assert (named.text, named.get_attribute("title")) == (tenants[bob_tenant], bob_tenant), named.text
    # Each token row too: Bob's tokens of `organizations` are his home tenant's.
    rows = [(r.text, r.get_attribute("title")) for r in card.find_elements(By.CSS_SELECTOR, "tr.token td.tenant > *")]
    assert rows and all(row == (tenants[bob_tenant], bob_tenant) for row in rows), rows
    listed = card.find_element(By.CSS_SELECTOR, "details.subscriptions")
    assert f"Subscriptions ({len(subscriptions)})" in listed.find_element(By.TAG_NAME, "summary").text
    ids = driver.execute_script(
        "return [...arguments[0].querySelectorAll('.subscription-id')].map((e) => e.textContent)", listed)
    assert sorted(ids) == subscriptions, ids
    shot(driver, "05b-tenant-and-subscriptions")

    # Sign out Alice, after confirming.
    press(driver, ALICE[0], "sign-out")
    wait(driver, lambda d: d.find_element(By.ID, "confirm-dialog").is_displayed(), "the confirmation")
    assert ALICE[0] in driver.find_element(By.ID, "confirm-text").text
    shot(driver, "06-confirm-sign-out")
    driver.find_element(By.ID, "confirm-ok").click()
    wait(driver, lambda d: usernames(d) == [BOB[0]], "Alice to be gone")
    shot(driver, "07-after-sign-out")

    # The endpoint and settings screens.
    driver.find_element(By.ID, "tab-endpoint").click()
    wait(driver, lambda d: "running" in d.find_element(By.ID, "endpoint-status").text.lower(), "a running endpoint")
    served = wait(driver, lambda d: re.search(r"\d+", d.find_element(By.ID, "endpoint-served").text), "the count")
    assert int(served.group(0)) >= 2, "two tokens were served"
    env_lines = driver.find_element(By.ID, "env-lines").text
    assert "IDENTITY_ENDPOINT" in env_lines and json.loads((home / "run" / "endpoint.json").read_text())["secret"] not in env_lines
    shot(driver, "08-endpoint")
    # Activity: what was served, newest first, naming this process; the filter narrows it.
    driver.find_element(By.ID, "tab-activity").click()
    rows = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#activity-rows tr"), "the activity")
    cells = [c.text for c in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[1].endswith(f"(pid {os.getpid()})") and cells[2] == BOB[0] and cells[4] == "/msi/token", cells
    assert any(r.find_elements(By.TAG_NAME, "td")[2].text == ALICE[0] for r in rows), "Alice's token too"
    shot(driver, "08b-activity")
    driver.find_element(By.ID, "activity-filter").send_keys("alice")
    wait(driver, lambda d: all(ALICE[0] in r.text for r in d.find_elements(By.CSS_SELECTOR, "#activity-rows tr")),
         "the filter")
    driver.find_element(By.ID, "activity-filter").send_keys("-nobody")
    wait(driver, lambda d: d.find_element(By.ID, "no-activity").is_displayed(), "nothing matching")
    assert "alice-nobody" in driver.find_element(By.ID, "no-activity").text
    driver.find_element(By.ID, "tab-settings").click()
    wait(driver, lambda d: "secret-service" in d.find_element(By.ID, "store-backend").text, "the store in use")
    assert driver.find_element(By.ID, "set-authority").get_attribute("disabled") is not None, \
        "TOKENTRAY_AUTHORITY fixes the authority"
    assert driver.find_element(By.ID, "set-start-at-login").is_selected()
    shot(driver, "09-settings")

    # Restart: the state is as left.
    driver.quit()
    driver = launch()
    wait(driver, lambda d: usernames(d) == [BOB[0]], "Bob after the restart")
    assert default_of(driver) == [BOB[0]]
    wait(driver, lambda d: account(d, BOB[0]).find_elements(By.CSS_SELECTOR, "tr.token .expires-in"),
         "Bob's token")
    shot(driver, "10-after-restart")

    # Notifications went out, and none carried a token.
    log = (OUT / "notifications.log").read_text(errors="replace")
    assert "Device code: " + code in log, log[-2000:]
    assert f"{BOB[0]} is signed in" in log
    assert bob_token not in log and "eyJ" not in log


def test_second_start_focuses_the_first_and_exits(launch, app_env):
    driver = launch()
    wait(driver, lambda d: d.find_element(By.ID, "tab-accounts").is_displayed(), "the window")
    started = time.monotonic()
    # `tokentray` without a subcommand starts the app (tokentray-app, next to it), which hands
    # over to the running one and exits.
    second = subprocess.run([str(CLI)], env={**os.environ, **app_env}, capture_output=True, timeout=30)
    assert second.returncode == 0, second.stderr
    assert time.monotonic() - started < 10
    # The first instance is unaffected and still answers.
    assert driver.find_element(By.ID, "tab-accounts").is_displayed()


def test_the_app_follows_a_running_daemon_and_takes_over_when_it_stops(launch, home, app_env):
    endpoint = home / "run" / "endpoint.json"
    log = open(OUT / "daemon.log", "w")
    daemon = subprocess.Popen([str(CLI), "daemon"], env={**os.environ, **app_env}, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while not (endpoint.exists() and json.loads(endpoint.read_text())["pid"] == daemon.pid):
            assert time.monotonic() < deadline and daemon.poll() is None, "the daemon did not start"
            time.sleep(0.05)
        driver = launch()
        driver.find_element(By.ID, "tab-endpoint").click()
        status = lambda d: d.find_element(By.ID, "endpoint-status").text  # noqa: E731
        wait(driver, lambda d: f"served by tokentray daemon (pid {daemon.pid})" in status(d),
             "the window to show the daemon serving")
        shot(driver, "12-endpoint-daemon")
        assert json.loads(endpoint.read_text())["pid"] == daemon.pid, "no second endpoint"
        assert fe.jwt_claims(endpoint_token(home))["upn"] == BOB[0]
    finally:
        daemon.terminate()
        assert daemon.wait(timeout=10) == 0
    # The app serves from now on.
    deadline = time.monotonic() + 15
    while not (endpoint.exists() and json.loads(endpoint.read_text())["pid"] != daemon.pid):
        assert time.monotonic() < deadline, "the app did not take over"
        time.sleep(0.1)
    wait(driver, lambda d: "running" in status(d).lower() and "daemon" not in status(d), "the app's endpoint")
    assert fe.jwt_claims(endpoint_token(home))["upn"] == BOB[0]


def cli(app_env, *args, **kwargs):
    """`tokentray ARGS` as another process, with the app's environment."""
    return subprocess.run([str(CLI), *args], env={**os.environ, **app_env}, capture_output=True,
                          text=True, timeout=60, **kwargs)


def test_the_window_follows_other_processes_and_shows_an_outage(launch, fake, home, app_env):
    os.environ["REQUESTS_CA_BUNDLE"] = str(fake.ca_path)
    driver = launch()
    wait(driver, lambda d: d.find_element(By.ID, "tab-accounts").is_displayed(), "the window")
    before = usernames(driver)
    assert ALICE[0] not in before, before

    # A device-code sign-in in a terminal: the window shows Alice without being touched.
    login = subprocess.Popen([str(CLI), "--json", "login", "--device-code"], env={**os.environ, **app_env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code = json.loads(login.stdout.readline())["user_code"]
    fake.approve_device_code(code, *ALICE)
    assert login.wait(timeout=60) == 0, login.stderr.read()
    signed_in = time.monotonic()
    wait(driver, lambda d: account(d, ALICE[0]), "Alice, signed in by another process", timeout=5)
    assert time.monotonic() - signed_in < 3, "seen within a second or so (3 s for a loaded machine)"

    # A switch in the terminal moves the default marker.
    assert cli(app_env, "switch", ALICE[0]).returncode == 0
    wait(driver, lambda d: default_of(d) == [ALICE[0]], "Alice to be the default", timeout=5)
    shot(driver, "11-after-terminal-login-and-switch")

    # Graph's Conditional Access asks for a step-up: the tool gets Entra's claims challenge, and
    # the card says what it waits for, with "Sign in again…" (which signs in for exactly that).
    endpoint = json.loads((home / "run" / "endpoint.json").read_text())
    status, body = fake.control("POST", "policy", {"resource": "https://graph.microsoft.com",
                                                  "policy": "mfa"})
    assert status == 201, body
    r = requests.get(endpoint["url"] + "/v1/token", params={"scope": "https://graph.microsoft.com/.default"},
                     headers={"Authorization": "Bearer " + endpoint["secret"]}, timeout=30)
    assert r.status_code == 401 and "capolids" in r.json()["claims"], r.text
    wait(driver, lambda d: account(d, ALICE[0]).find_elements(By.CSS_SELECTOR, ".sign-in-for"),
         "Alice's card to say what waits for a sign-in", timeout=5)
    card = account(driver, ALICE[0])
    assert "https://graph.microsoft.com/.default" in card.find_element(By.CSS_SELECTOR, ".sign-in-for").text
    assert card.find_element(By.CSS_SELECTOR, 'button[data-action="sign-in-again"]').is_displayed()
    shot(driver, "11a-waiting-for-a-step-up")
    # Pressed, the browser signs Alice in (her login_hint) for Graph with Entra's claims: the
    # card no longer waits, and the tool gets the token the policy now lets through.
    browser_log = OUT / "browser.log"
    logged_before = browser_log.read_text() if browser_log.exists() else ""
    card.find_element(By.CSS_SELECTOR, 'button[data-action="sign-in-again"]').click()
    wait(driver, lambda d: not account(d, ALICE[0]).find_elements(By.CSS_SELECTOR, ".sign-in-for"),
         "the step-up to be answered", timeout=90)
    r = requests.get(endpoint["url"] + "/v1/token", params={"scope": "https://graph.microsoft.com/.default"},
                     headers={"Authorization": "Bearer " + endpoint["secret"]}, timeout=30)
    assert r.status_code == 200, r.text
    assert default_of(driver) == [ALICE[0]] and usernames(driver).count(ALICE[0]) == 1
    opened = browser_log.read_text().removeprefix(logged_before)
    assert "capolids" in opened and "signing in as " + ALICE[0] in opened, opened

    # Entra ID answers 503: a tool asking for an uncached resource fails, and the card says so,
    # with when the next try is and what Entra said behind "Details".
    fake.queue_fault({"endpoint": "token", "count": 1000, "fault": {"kind": "status", "status": 503}})
    endpoint = json.loads((home / "run" / "endpoint.json").read_text())
    r = requests.get(endpoint["url"] + "/msi/token",
                     params={"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
                     headers={"X-IDENTITY-HEADER": endpoint["secret"]}, timeout=30)
    assert r.status_code == 503, r.text
    wait(driver, lambda d: account(d, ALICE[0]).get_attribute("data-health") == "retrying",
         "Alice's card to show the outage", timeout=5)
    card = account(driver, ALICE[0])
    line = card.find_element(By.CSS_SELECTOR, ".health-summary").text
    assert re.search(r"Can't reach Entra ID, retrying at .+ \(try 2\)", line), line
    assert "still served" in line, line
    card.find_element(By.CSS_SELECTOR, ".health-details summary").click()
    details = card.find_element(By.CSS_SELECTOR, ".health-details p")
    wait(driver, lambda d: details.is_displayed(), "the details")
    assert "unavailable" in details.text.lower(), details.text
    shot(driver, "12-outage")
    # The terminal sees the same health: `tokentray accounts` asks the running app.
    listed = cli(app_env, "accounts")
    assert "can't reach Entra ID, retrying at" in listed.stdout, listed.stdout + listed.stderr
    fake.control("DELETE", "faults")

    # A sign-out in the terminal removes the card.
    assert cli(app_env, "logout", ALICE[0]).returncode == 0
    wait(driver, lambda d: ALICE[0] not in usernames(d), "Alice to be gone", timeout=5)


# An app registration of the user's own (not in the Microsoft family).
OWN_CLIENT_ID = "6b7e2f0a-3c1d-4e5f-8a9b-0c1d2e3f4a5b"


def test_settings_save_what_changed_and_show_what_waits_for_a_restart(launch, home, app_env):
    """Authority, port and store are fixed by TOKENTRAY_* here: shown, locked, never written."""
    config = home / "config" / "config.toml"
    config.unlink(missing_ok=True)
    driver = launch()
    try:
        driver.find_element(By.ID, "tab-settings").click()
        tenant = wait(driver, lambda d: d.find_element(By.ID, "set-tenant"), "the settings")
        wait(driver, lambda d: tenant.get_attribute("value") == "organizations", "the saved tenant")
        assert driver.find_element(By.ID, "set-port").get_attribute("value") == app_env["TOKENTRAY_PORT"]

        def save():
            driver.find_element(By.ID, "save-settings").click()

        # A tenant that cannot be one is refused under its input, and nothing is written.
        tenant.clear()
        tenant.send_keys("contoso corp!")
        save()
        error = driver.find_element(By.ID, "err-tenant")
        wait(driver, lambda d: error.is_displayed(), "the tenant's error")
        assert "domain" in error.text and tenant.get_attribute("aria-invalid") == "true", error.text
        assert not config.exists(), "nothing saved"
        shot(driver, "13-settings-bad-tenant")

        # Fixed, saved: only the tenant is written; it waits for a restart, and the field keeps it.
        tenant.clear()
        tenant.send_keys("contoso.example")
        save()
        wait(driver, lambda d: not error.is_displayed(), "the error to clear")
        wait(driver, lambda d: config.exists(), "the config file")
        assert config.read_text().strip() == 'tenant = "contoso.example"', config.read_text()
        pending = wait(driver, lambda d: d.find_element(By.ID, "pending-tenant"), "the pending hint")
        wait(driver, lambda d: pending.is_displayed(), "the pending hint")
        assert tenant.get_attribute("value") == "contoso.example"
        assert "start tokentray again" in driver.find_element(By.ID, "status").text
        assert not driver.find_element(By.ID, "error").is_displayed()

        # An own app registration: a redirect range that is not one is refused under its input;
        # the client id and the range are saved with the second save.
        ports = driver.find_element(By.ID, "set-redirect-ports")
        ports.send_keys("53199-53100")
        save()
        ports_error = driver.find_element(By.ID, "err-redirect_ports")
        wait(driver, lambda d: ports_error.is_displayed(), "the redirect ports' error")
        assert "53100-53199" in ports_error.text, ports_error.text
        assert "redirect" not in config.read_text(), "nothing saved"
        ports.clear()
        ports.send_keys("53100-53199")
        client = driver.find_element(By.ID, "set-client-id")
        client.clear()
        client.send_keys(OWN_CLIENT_ID)

        # A second save keeps the first: the running tenant is not written back over it.
        driver.find_element(By.ID, "set-require-approval").click()
        save()
        wait(driver, lambda d: "require_approval = true" in config.read_text(), "the second save")
        assert 'tenant = "contoso.example"' in config.read_text(), config.read_text()
        assert f'client_id = "{OWN_CLIENT_ID}"' in config.read_text(), config.read_text()
        assert 'redirect_ports = "53100-53199"' in config.read_text(), config.read_text()
        for key in ("client_id", "redirect_ports"):
            hint = wait(driver, lambda d: d.find_element(By.ID, f"pending-{key}"), "the pending hint")
            wait(driver, lambda d: hint.is_displayed(), f"{key} waits for a restart")
        wait(driver, lambda d: not ports_error.is_displayed(), "the redirect ports' error to clear")
        for locked in ("authority", "port", "store"):
            assert not any(line.startswith(f"{locked} =") for line in config.read_text().splitlines()), \
                f"{locked} is fixed by the environment"
        shot(driver, "14-settings-pending")

        # After a restart the saved values run: nothing waits any more.
        driver.quit()
        driver = launch()
        driver.find_element(By.ID, "tab-settings").click()
        tenant = wait(driver, lambda d: d.find_element(By.ID, "set-tenant"), "the settings")
        wait(driver, lambda d: tenant.get_attribute("value") == "contoso.example", "the saved tenant")
        assert driver.find_element(By.ID, "set-require-approval").is_selected()
        assert driver.find_element(By.ID, "set-client-id").get_attribute("value") == OWN_CLIENT_ID
        assert driver.find_element(By.ID, "set-redirect-ports").get_attribute("value") == "53100-53199"
        assert all(not e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, ".pending-hint"))
    finally:
        config.unlink(missing_ok=True)


def test_let_every_app_use_tokentray(launch, app_env):
    """The Settings switch is `tokentray env --install`: refused under the box while no
    tokentray.socket holds the port, then installed (what systemd's generator reads) and removed."""
    config = Path(os.environ["XDG_CONFIG_HOME"])
    written = config / "environment.d" / "60-tokentray.conf"
    units = config / "systemd" / "user"
    driver = launch()
    try:
        driver.find_element(By.ID, "tab-settings").click()
        box = wait(driver, lambda d: d.find_element(By.ID, "set-every-app"), "the switch")
        blocked = driver.find_element(By.ID, "blocked-every_app")
        wait(driver, lambda d: blocked.is_displayed(), "why it cannot be on yet")
        assert "tokentray.socket is not enabled" in blocked.text, blocked.text
        assert not box.is_selected()
        box.click()
        driver.find_element(By.ID, "save-settings").click()
        error = driver.find_element(By.ID, "err-every_app")
        wait(driver, lambda d: error.is_displayed(), "the refusal under the switch")
        assert "systemctl --user enable" in error.text, error.text
        assert not written.exists()
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        shot(driver, "17-every-app-refused")

        enable_socket(os.environ["XDG_CONFIG_HOME"], app_env["TOKENTRAY_PORT"])
        driver.find_element(By.ID, "save-settings").click()
        wait(driver, lambda d: written.exists(), "the session environment")
        assert written.stat().st_mode & 0o777 == 0o600
        generated = subprocess.run(["/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator"],
                                   capture_output=True, text=True, check=True).stdout
        assert f"IDENTITY_ENDPOINT=http://127.0.0.1:{app_env['TOKENTRAY_PORT']}/msi/token" in generated
        wait(driver, lambda d: not error.is_displayed() and not blocked.is_displayed(), "no refusal left")
        assert box.is_selected()

        box.click()
        driver.find_element(By.ID, "save-settings").click()
        wait(driver, lambda d: not written.exists(), "the session environment removed")
        assert not box.is_selected()
    finally:
        written.unlink(missing_ok=True)
        for unit in (units / "sockets.target.wants" / "tokentray.socket", units / "tokentray.socket"):
            unit.unlink(missing_ok=True)
