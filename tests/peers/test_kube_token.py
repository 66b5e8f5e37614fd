"""`tokentray kube-token` as the exec credential plugin of the real kubectl and of the Python
`kubernetes` client.

A small HTTPS server plays an AKS API server with Entra ID integration: it answers only a bearer
token that fake-entra issued for the AKS server application to Alice, and is the very token
tokentray holds for it. kubectl and the Python client, each given a kubeconfig shaped like the
one `az aks get-credentials` plus `kubelogin convert-kubeconfig` writes, but running
`tokentray kube-token` instead of kubelogin, run the plugin through their own exec machinery
(KUBERNETES_EXEC_INFO in, ExecCredential out) and are let in.
"""
import base64
import datetime
import json
import re
import shutil
import subprocess

import pytest

import fake_entra_helpers as fe
import tokentray_helpers as tt

AKS_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
NAMESPACES = {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
              "items": [{"metadata": {"name": "default"}}]}
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


class ApiServer(tt.JsonHandler):
    """Lets in only the bearer token in `expected`; records each token presented in `seen`."""
    expected = None
    seen = []

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        type(self).seen.append(token)
        if token is None or token != type(self).expected:
            body, status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "reason": "Unauthorized", "code": 401}, 401
        elif self.path.split("?")[0] == "/api/v1/namespaces":
            body, status = NAMESPACES, 200
        else:
            body, status = {"kind": "Status", "status": "Failure", "code": 404}, 404
        self.send_json(status, body)


@pytest.fixture
def cluster(tmp_path, fake_entra):
    """Alice signed in; the API server expects her AKS token: (env, server URL, CA, token)."""
    env = tt.environment(tmp_path / "home", fake_entra)
    tt.sign_in(env, fake_entra)
    token = subprocess.run([tt.BIN, "token", "--scope", f"{AKS_SERVER_ID}/.default", "--format", "raw"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    claims = fe.jwt_claims(token)
    assert claims["aud"] in (AKS_SERVER_ID, f"api://{AKS_SERVER_ID}"), claims
    assert claims["upn"] == fe.ALICE[0] or claims.get("preferred_username") == fe.ALICE[0], claims
    ApiServer.expected, ApiServer.seen = token, []
    server, cert = tt.https_server(tmp_path / "apiserver", ApiServer)
    yield env, f"https://127.0.0.1:{server.server_address[1]}", cert, token
    server.shutdown()


def kubeconfig(path, server, cert, api_version, *args):
    """What `az aks get-credentials` and `kubelogin convert-kubeconfig` write, with tokentray as
    the exec command (JSON is YAML)."""
    user = {"exec": {"apiVersion": api_version, "command": tt.BIN,
                     "args": ["kube-token", "--server-id", AKS_SERVER_ID, *args],
                     "env": None, "provideClusterInfo": False, "interactiveMode": "IfAvailable",
                     "installHint": "install tokentray"}}
    config = {"apiVersion": "v1", "kind": "Config", "preferences": {},
              "clusters": [{"name": "aks", "cluster": {
                  "server": server,
                  "certificate-authority-data": base64.b64encode(cert.read_bytes()).decode()}}],
              "users": [{"name": "clusterUser_rg_aks", "user": user}],
              "contexts": [{"name": "aks", "context": {"cluster": "aks", "user": "clusterUser_rg_aks"}}],
              "current-context": "aks"}
    path.write_text(json.dumps(config))
    return path


def kubectl_speaks_v1():
    """client.authentication.k8s.io/v1 came with Kubernetes 1.22."""
    out = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True,
                         text=True, check=True).stdout
    minor = json.loads(out)["clientVersion"]["minor"]
    return int(re.match(r"\d+", minor).group()) >= 22


@pytest.mark.parametrize("api_version", [V1BETA1, V1])
def test_kubectl_gets_in_with_the_token_kube_token_prints(cluster, tmp_path, api_version):
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is missing: make test installs Debian's kubernetes-client")
    if api_version == V1 and not kubectl_speaks_v1():
        pytest.skip("this kubectl predates client.authentication.k8s.io/v1")
    env, server, cert, token = cluster
    config = kubeconfig(tmp_path / "kubeconfig", server, cert, api_version)
    got = subprocess.run(["kubectl", "--kubeconfig", str(config), "get", "--raw", "/api/v1/namespaces"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == NAMESPACES
    assert ApiServer.seen and set(ApiServer.seen) == {token}


def test_the_python_kubernetes_client_gets_in_too(cluster, tmp_path, monkeypatch):
    from kubernetes import client, config as kube_config

    env, server, cert, token = cluster
    for name in ("TOKENTRAY_HOME", "TOKENTRAY_AUTHORITY", "TOKENTRAY_CA_FILE", "TOKENTRAY_PORT"):
        monkeypatch.setenv(name, env[name])
    path = kubeconfig(tmp_path / "kubeconfig", server, cert, V1BETA1)
    kube_config.load_kube_config(config_file=str(path))
    names = [ns.metadata.name for ns in client.CoreV1Api().list_namespace().items]
    assert names == ["default"]
    assert set(ApiServer.seen) == {token}


def test_the_exec_credential_answers_in_the_version_asked_with_the_token_s_expiry(cluster):
    env, _, _, token = cluster
    exp = fe.jwt_claims(token)["exp"]
    for version in (V1, V1BETA1):
        info = json.dumps({"kind": "ExecCredential", "apiVersion": version, "spec": {"interactive": False}})
        out = subprocess.run([tt.BIN, "kube-token"], env=dict(env, KUBERNETES_EXEC_INFO=info),
                             capture_output=True, text=True, check=True).stdout
        credential = json.loads(out)
        assert credential["kind"] == "ExecCredential" and credential["apiVersion"] == version
        assert credential["status"]["token"] == token
        stamp = credential["status"]["expirationTimestamp"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp
        # The cache records expiry from `expires_in` at arrival, which can be a second off `exp`.
        assert abs(datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - exp) <= 2


def test_an_account_that_is_not_signed_in_is_refused_with_the_reason_kubectl_shows(cluster, tmp_path):
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is missing: make test installs Debian's kubernetes-client")
    env, server, cert, _ = cluster
    config = kubeconfig(tmp_path / "kubeconfig", server, cert, V1BETA1, "--account", "carol@contoso.example")
    got = subprocess.run(["kubectl", "--kubeconfig", str(config), "get", "--raw", "/api/v1/namespaces"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert got.returncode != 0
    assert "carol@contoso.example" in got.stderr, got.stderr
    assert ApiServer.seen == [], "no request reached the server without a token"
    unknown = json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1alpha1"})
    refused = subprocess.run([tt.BIN, "kube-token"], env=dict(env, KUBERNETES_EXEC_INFO=unknown),
                             capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "users[].user.exec.apiVersion" in refused.stderr, refused.stderr


AZ_AKS_KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: aks
contexts:
- context:
    cluster: aks
    user: clusterUser_rg_aks
  name: aks
current-context: aks
kind: Config
preferences: {{}}
users:
- name: clusterUser_rg_aks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - get-token
      - --environment
      - AzurePublicCloud
      - --server-id
      - {server_id}
      - --client-id
      - 80faf920-1908-4b52-b5ef-a8e7bedfc67a
      - --tenant-id
      - {tenant}
      - --login
      - devicecode
      command: kubelogin
      env: null
      installHint: install kubelogin
      provideClusterInfo: false
"""


def test_kubeconfig_convert_turns_az_s_kubelogin_user_into_one_kubectl_gets_in_with(cluster, tmp_path):
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is missing: make test installs Debian's kubernetes-client")
    env, server, cert, token = cluster
    tenant = fe.jwt_claims(token)["tid"]
    path = tmp_path / "kube" / "config"
    path.parent.mkdir()
    original = AZ_AKS_KUBECONFIG.format(ca=base64.b64encode(cert.read_bytes()).decode(), server=server,
                                        server_id=AKS_SERVER_ID, tenant=tenant)
    path.write_text(original)
    before = subprocess.run(["kubectl", "--kubeconfig", str(path), "get", "--raw", "/api/v1/namespaces"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert before.returncode != 0, "kubelogin is not installed here"
    ApiServer.seen = []

    converted = subprocess.run([tt.BIN, "kubeconfig", "convert"], env=dict(env, KUBECONFIG=str(path)),
                               capture_output=True, text=True, timeout=60)
    assert converted.returncode == 0, converted.stderr
    assert "clusterUser_rg_aks: kubelogin (devicecode) ->" in converted.stdout
    assert f"--tenant {tenant}" in converted.stdout
    backups = list(path.parent.glob("config.tokentray-backup-*"))
    assert len(backups) == 1 and backups[0].read_text() == original
    assert oct(path.stat().st_mode & 0o777) == "0o600"

    got = subprocess.run(["kubectl", "--kubeconfig", str(path), "get", "--raw", "/api/v1/namespaces"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert set(ApiServer.seen) == {token}
    again = subprocess.run([tt.BIN, "kubeconfig", "convert", "--kubeconfig", str(path)], env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing changed" in again.stderr
    assert len(list(path.parent.glob("config.tokentray-backup-*"))) == 1
