"""Approval of programs in the real app (`require_approval = true`).

This test process is the program asking: its token request waits while the window shows the
question; "Always allow" lets it through and is kept (`tokentray clients` lists it), "Forget"
under Endpoint makes it ask again, and "Deny" fails its request with the typed error. The same
question as a notification (dunst, its action chosen through `dunstctl context`): "Allow once".
"""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import requests
from selenium.webdriver.common.by import By

from conftest import ALICE, CLI, OUT
from test_window import shot, wait

ME = os.path.realpath(sys.executable)
ARM = "https://management.core.windows.net/"


def ask_in_background(home):
    """Starts this process's token request on a thread; returns (thread, result)."""
    endpoint = json.loads((home / "run" / "endpoint.json").read_text())
    result = {}

    def request():
        result["response"] = requests.get(endpoint["url"] + "/msi/token",
                                          params={"api-version": "2019-08-01", "resource": ARM},
                                          headers={"X-IDENTITY-HEADER": endpoint["secret"]}, timeout=90)
    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    return thread, result


def question(driver):
    found = driver.find_elements(By.CSS_SELECTOR, f'li.approval[data-program="{ME}"]')
    return found[0] if found else None


def answer(driver, choice):
    def attempt(d):
        question(d).find_element(By.CSS_SELECTOR, f'button[data-answer="{choice}"]').click()
        return True
    wait(driver, attempt, f"the {choice} button")


def cli(app_env, *args):
    return subprocess.run([str(CLI), *args], env={**os.environ, **app_env}, capture_output=True,
                          text=True, timeout=60)


def test_a_new_program_waits_for_the_window_and_the_decision_is_kept(launch, fake, home, app_env):
    os.environ["REQUESTS_CA_BUNDLE"] = str(fake.ca_path)
    (home / "config").mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text("require_approval = true\n")
    login = subprocess.Popen([str(CLI), "--json", "login", "--device-code"], env={**os.environ, **app_env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fake.approve_device_code(json.loads(login.stdout.readline())["user_code"], *ALICE)
    assert login.wait(timeout=60) == 0, login.stderr.read()

    driver = launch()
    wait(driver, lambda d: (home / "run" / "endpoint.json").exists(), "the endpoint")
    thread, result = ask_in_background(home)
    wait(driver, question, "the question about this program")
    card = question(driver)
    assert "python" in card.text and "asks for a token" in card.text, card.text
    assert f"pid {os.getpid()}" in card.text, card.text
    assert thread.is_alive(), "the request waits for the answer"
    shot(driver, "20-approval-question")

    answer(driver, "always_allow")
    thread.join(timeout=15)
    response = result["response"]
    assert response.status_code == 200, response.text
    assert response.json()["access_token"].count(".") == 2
    wait(driver, lambda d: question(d) is None, "the question to go")
    kept = json.loads(cli(app_env, "--json", "clients").stdout)
    assert [(c["path"], c["verdict"]) for c in kept["clients"]] == [(ME, "allow")], kept
    # Kept: the next request is served without asking.
    thread, result = ask_in_background(home)
    thread.join(timeout=15)
    assert result["response"].status_code == 200, result["response"].text

    # Listed under Endpoint; "Forget" makes it ask again.
    driver.find_element(By.ID, "tab-endpoint").click()
    listed = f'li.client[data-program="{ME}"][data-verdict="allow"]'
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, listed).is_displayed(), "the allowed program")
    shot(driver, "21-approved-programs")
    driver.find_element(By.CSS_SELECTOR, f'{listed} button.revoke').click()
    wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, listed), "the program to be forgotten")
    assert json.loads(cli(app_env, "--json", "clients").stdout)["clients"] == []

    # Asked again; "Deny" fails the request with the typed error, and is kept.
    driver.find_element(By.ID, "tab-accounts").click()
    thread, result = ask_in_background(home)
    wait(driver, question, "the question, again")
    answer(driver, "deny")
    thread.join(timeout=15)
    refused = result["response"]
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["code"] == "client_denied", body
    assert f"tokentray clients allow {ME}" in body["message"], body
    kept = json.loads(cli(app_env, "--json", "clients").stdout)
    assert [(c["path"], c["verdict"]) for c in kept["clients"]] == [(ME, "deny")], kept


def test_the_notification_answers_allow_once(launch, fake, home, app_env):
    os.environ["REQUESTS_CA_BUNDLE"] = str(fake.ca_path)
    # The first test denied this program; forget that, so it is asked.
    cli(app_env, "clients", "revoke", ME)
    driver = launch()
    wait(driver, lambda d: (home / "run" / "endpoint.json").exists(), "the endpoint")
    notifications = OUT / "notifications.log"
    seen = notifications.read_text().count("to get tokens?")
    thread, result = ask_in_background(home)
    wait(driver, lambda d: notifications.read_text().count("to get tokens?") > seen, "the notification")
    text = notifications.read_text()
    for action in ("allow_once", "Allow once", "always_allow", "Always allow", "deny", "Deny"):
        assert f'"{action}"' in text, text[-2000:]
    (Path(os.environ["XDG_RUNTIME_DIR"]) / "dunst-choice").write_text("allow_once")
    subprocess.run(["dunstctl", "context"], check=True, timeout=10)
    thread.join(timeout=15)
    assert result["response"].status_code == 200, result["response"].text
    wait(driver, lambda d: question(d) is None, "the window's question to go too")
    # Allow once keeps nothing.
    assert json.loads(cli(app_env, "--json", "clients").stdout)["clients"] == []
