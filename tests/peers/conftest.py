"""Fixtures shared by the peer tests."""
import pytest

import fake_entra_helpers as fe


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
