"""fake-entra against azure-identity's DeviceCodeCredential (MSAL underneath, azure-core's
transport on top), approving on /devicelogin from the prompt callback."""
import threading
import time

from azure.identity import DeviceCodeCredential

import fake_entra_helpers as fe
from fake_entra_helpers import ALICE, ARM, AZURE_CLI, DEVICE_GRANT


def test_device_code_credential_gets_a_token(fake_entra_factory):
    fake = fake_entra_factory("--device-code-interval", "1")
    prompts = []
    approvals = []

    def prompt(verification_uri, user_code, expires_on):
        prompts.append((verification_uri, user_code, expires_on))
        approver = threading.Timer(0.5, lambda: approvals.append(
            fake.approve_device_code(user_code, *ALICE)))
        approver.start()

    credential = DeviceCodeCredential(
        client_id=AZURE_CLI,
        authority=fake.host,  # host:port; azure-identity adds https://
        tenant_id="organizations",
        disable_instance_discovery=True,
        prompt_callback=prompt,
        timeout=30,
    )
    token = credential.get_token(ARM)

    assert len(prompts) == 1 and len(approvals) == 1
    assert prompts[0][0] == fake.url + "/devicelogin"
    claims = fe.jwt_claims(token.token)
    alice = fake.users()[ALICE[0]]
    assert claims["aud"] == "https://management.core.windows.net/"
    assert claims["oid"] == alice["oid"] and claims["tid"] == alice["tenant_id"]
    assert claims["scp"] == "user_impersonation"
    assert token.expires_on > time.time() + 3000
    endpoints = [(e["endpoint"], e["grant_type"]) for e in fake.log()]
    assert ("devicecode", None) in endpoints
    assert endpoints.count(("token", DEVICE_GRANT)) >= 1
    assert all(e["client_id"] == AZURE_CLI for e in fake.log() if e["client_id"])
