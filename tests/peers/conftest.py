"""Fixtures shared by the peer tests."""
import os
import shutil
import subprocess

import pytest

import fake_entra_helpers as fe
import tokentray_helpers as tt


@pytest.fixture
def fake_entra_factory(tmp_path, monkeypatch):
    """Starts fake-entra processes (Alice and Bob as users, plus any extra flags) and stops them
    after the test. `requests` lets REQUESTS_CA_BUNDLE override a session's `verify`, so the
    variable is pointed at the latest fake's CA for the test's duration."""
    started = []

    def start(*args, users=(fe.ALICE, fe.BOB)):
        flags = [f for u, p in users for f in ("--user", f"{u}:{p}")]
        fake = fe.start(tmp_path / f"fake-entra-{len(started)}", *flags, *args)
        started.append(fake)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_path))
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        return fake

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def fake_entra(fake_entra_factory):
    """A fake-entra with Alice and Bob and Entra's default lifetimes, but device-code polling
    every second instead of every five (each test signs in with a device code)."""
    return fake_entra_factory("--device-code-interval", "1")


@pytest.fixture
def shim(tmp_path, fake_entra, monkeypatch):
    """Alice signed in, the `az` shim installed (`tokentray az-shim --install`) and no Azure CLI
    on PATH, this process's environment as `tokentray env` says: (env, shim path)."""
    assert shutil.which("az") is None, "these tests need a machine with no Azure CLI on PATH"
    env = tt.environment(tmp_path / "home", fake_entra)
    tt.sign_in(env, fake_entra)
    before = subprocess.run([tt.BIN, "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert "PATH" not in before, "no PATH line while the shim is not installed"
    installed = subprocess.run([tt.BIN, "az-shim", "--install"], env=env, capture_output=True, text=True,
                               check=True)
    shim_path = tmp_path / "home" / "data" / "bin" / "az"
    assert str(shim_path) in installed.stdout
    lines = subprocess.run([tt.BIN, "env"], env=env, capture_output=True, text=True, check=True).stdout
    for name, value in dict(env, **tt.shell_env(lines)).items():
        monkeypatch.setenv(name, value)
    assert shutil.which("az") == str(shim_path)
    return dict(os.environ), shim_path


@pytest.fixture
def daemon_home(tmp_path, fake_entra):
    """Alice signed in and `tokentray daemon` serving: the environment that points at them."""
    env = tt.environment(tmp_path / "home", fake_entra)
    tt.sign_in(env, fake_entra)
    process = tt.start_daemon(env, tmp_path / "daemon.log")
    yield env
    process.terminate()
    process.wait(timeout=10)
