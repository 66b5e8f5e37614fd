"""Running tokentray itself from the peer tests: its environment for a throwaway home pointed at a
fake-entra, a device-code sign-in, and a daemon; the token it holds; `az` and the Node.js
AzureCliCredential as the az shim's clients run them."""
import datetime
import http.server
import ipaddress
import json
import os
import ssl
import subprocess
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import fake_entra_helpers as fe

ROOT = Path(__file__).resolve().parents[2]
BIN = os.path.abspath(os.environ.get("TOKENTRAY_BIN", ROOT / "target" / "debug" / "tokentray"))


def environment(home, fake, port="0", **extra):
    """The variables that point tokentray at `home` and `fake` (its authority and its ARM, and at
    `port`), on top of ours."""
    env = dict(os.environ, TOKENTRAY_HOME=str(home), TOKENTRAY_AUTHORITY=fake.url,
               TOKENTRAY_CA_FILE=str(fake.ca_path), TOKENTRAY_PORT=str(port),
               TOKENTRAY_ARM_ENDPOINT=fake.url)
    env.update(extra)
    env.pop("TOKENTRAY_STORE", None)
    return env


def sign_in(env, fake, user=fe.ALICE):
    """`tokentray login --device-code` for `user`, approved at `fake` as the user would."""
    login = subprocess.Popen([BIN, "--json", "login", "--device-code"], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    shown = json.loads(login.stdout.readline())
    fake.approve_device_code(shown["user_code"], *user)
    _, err = login.communicate(timeout=60)
    assert login.returncode == 0, err


def enable_socket(config_home, port):
    """tokentray.socket on `port` (instead of the packaged 42117), enabled as `systemctl --user
    enable` leaves it in the unit directory under `config_home` (XDG_CONFIG_HOME); returns the
    two files it wrote, for removing them."""
    units = Path(config_home) / "systemd" / "user"
    (units / "sockets.target.wants").mkdir(parents=True, exist_ok=True)
    packaged = (ROOT / "src-tauri" / "packaging" / "tokentray.socket").read_text()
    (units / "tokentray.socket").write_text(packaged.replace("42117", str(port)))
    (units / "sockets.target.wants" / "tokentray.socket").symlink_to(units / "tokentray.socket")
    return [units / "sockets.target.wants" / "tokentray.socket", units / "tokentray.socket"]


def held(env, scope, *args):
    """The token tokentray holds for `scope` (`tokentray token --scope S --format raw`)."""
    return subprocess.run([BIN, "token", "--scope", scope, "--format", "raw", *args], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()


def shell_env(lines):
    """The variables `tokentray env` prints, as a dict (PATH with its "$PATH" expanded)."""
    env = {}
    for line in lines.splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        env[name] = value.replace(':"$PATH"', ":" + os.environ["PATH"]).replace("'", "")
    return env


def env_for(env, tools):
    """The variables `tokentray env --for TOOLS` prints, as a dict."""
    lines = subprocess.run([BIN, "env", "--for", tools], env=env, capture_output=True, text=True,
                           check=True).stdout
    return shell_env(lines)


def az(*args, env=None):
    """`az ARGS` as found on PATH (the shim when it is first), no stdin."""
    return subprocess.run(["az", *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


NODE_DIR = ROOT / "tests" / "peers" / "node"


def node_azure_cli_credential(scope, tenant=None, env=None):
    """`node azure_cli_credential.mjs SCOPE [TENANT]`: @azure/identity's AzureCliCredential
    (tests/peers/node, installed by `make venv`) getting a token from the `az` on env's PATH."""
    assert (NODE_DIR / "node_modules" / "@azure" / "identity").is_dir(), \
        "no tests/peers/node/node_modules: run `make venv` (npm ci --prefix tests/peers/node)"
    return subprocess.run(["node", str(NODE_DIR / "azure_cli_credential.mjs"), scope,
                           *([tenant] if tenant else [])], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def stand_in_az(bin_dir, token):
    """A stand-in `az` in `bin_dir` that answers `az account get-access-token` as az does (its
    JSON, `expires_on` an hour from now) with `token`: the credential after managed identity in
    DefaultAzureCredential's chain (AzureCliCredential), for telling that the chain reached it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    expires = int(time.time()) + 3600
    answer = json.dumps({"accessToken": token, "expiresOn": time.strftime(
        "%Y-%m-%d %H:%M:%S.000000", time.localtime(expires)), "expires_on": expires,
        "subscription": "s", "tenant": "t", "tokenType": "Bearer"})
    az = bin_dir / "az"
    az.write_text(f"#!/bin/sh\ncat <<'JSON'\n{answer}\nJSON\n")
    az.chmod(0o755)


def default_azure_credential(scope, env, language):
    """The real DefaultAzureCredential in `language` ("python": azure-identity; "node":
    @azure/identity) getting a token for `scope` in `env`: (token or None, seconds getToken
    took, the error's text)."""
    if language == "python":
        code = ("import json, sys, time\nfrom azure.identity import DefaultAzureCredential as C\n"
                "t = time.perf_counter()\n"
                "try: token, error = C().get_token(sys.argv[1]).token, ''\n"
                "except Exception as e: token, error = None, f'{type(e).__name__}: {e}'\n"
                "print(json.dumps({'token': token, 'seconds': time.perf_counter() - t, 'error': error}))")
        args = [str(ROOT / ".venv" / "bin" / "python"), "-c", code, scope]
    else:
        args = ["node", str(NODE_DIR / "default_azure_credential.mjs"), scope]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    lines = p.stdout.strip().splitlines()
    got = json.loads(lines[-1]) if lines else {}
    return got.get("token"), got.get("seconds"), got.get("error") or p.stderr[-3000:]


def start_daemon(env, log):
    """`tokentray daemon`, once its endpoint.json is written (stderr to `log`)."""
    process = subprocess.Popen([BIN, "daemon"], env=env, stderr=open(log, "w"))
    endpoint = Path(env["TOKENTRAY_HOME"]) / "run" / "endpoint.json"
    for _ in range(200):
        if endpoint.exists():
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the daemon wrote no {endpoint}: {log.read_text()}")


def logged(log, line):
    """The text of `log` once it holds `line` (the audit writes off the request path), or after 5 s."""
    for _ in range(100):
        text = log.read_text()
        if line in text:
            return text
        time.sleep(0.05)
    return text


def server_certificate(directory):
    """A test CA and a certificate it issued for 127.0.0.1 and localhost, as PEM files in
    `directory`: (CA certificate, server certificate, server key). Clients trust the CA (rustls,
    which tokentray uses, refuses a CA certificate as a server's own)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tokentray test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def https_server(directory, handler):
    """A threaded HTTPS server on a free 127.0.0.1 port with `handler` (an
    http.server.BaseHTTPRequestHandler class), serving in a daemon thread: (server, the CA
    certificate clients trust). Stop it with server.shutdown()."""
    ca, cert, key = server_certificate(directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, ca


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """A request handler of the test servers: JSON answers, no request log on stderr."""

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def az_login(az, fake, user, env):
    """Signs the real Azure CLI `az` in to `fake` as `user` with a device code, as a person would:
    a cloud registered for fake-entra (no endpoint discovery; ARM is fake-entra's too), MSAL's
    instance discovery off (it would ask login.microsoftonline.com), fake-entra's CA trusted.
    `env` must set AZURE_CONFIG_DIR; returns it with what az needs from now on."""
    env = dict(env, REQUESTS_CA_BUNDLE=str(fake.ca_path), AZURE_CORE_INSTANCE_DISCOVERY="false",
               AZURE_CORE_COLLECT_TELEMETRY="false")
    run = lambda *args: subprocess.run([str(az), *args], env=env, capture_output=True, text=True,
                                       check=True, timeout=120, stdin=subprocess.DEVNULL)
    run("cloud", "register", "--name", "FakeEntra", "--skip-endpoint-discovery",
        "--endpoint-active-directory", fake.url, "--endpoint-resource-manager", fake.url + "/",
        "--endpoint-active-directory-resource-id", "https://management.core.windows.net/",
        "--endpoint-management", "https://management.core.windows.net/")
    run("cloud", "set", "--name", "FakeEntra")
    login = subprocess.Popen([str(az), "login", "--use-device-code", "-o", "none"], env=env,
                             text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
    prompt = login.stderr.readline()
    code = prompt.split(" enter the code ")[1].split()[0]
    fake.approve_device_code(code, *user)
    _, err = login.communicate(timeout=120)
    assert login.returncode == 0, prompt + err
    return env
