"""`tokentray git-credential` as the credential helper of the real git.

A small HTTPS server plays Azure Repos: git's own `git http-backend` behind basic authentication
that lets in only the Azure DevOps token fake-entra issued to the account the organisation
should use (Alice by default, Bob for the `fabrikam` organisation, as `[git.accounts]` says).
`tokentray git-credential --install` puts the helper into a throwaway `~/.gitconfig` for the
server's host only; the real git then clones from both organisations with no prompt, other hosts
and plain http get nothing from the helper, and `--uninstall` leaves the file as it was.
"""
import base64
import http.server
import os
import subprocess

import pytest

import fake_entra_helpers as fe
import tokentray_helpers as tt

AZURE_DEVOPS = "499b84ac-1321-427f-aa17-267ca6975798"


class Repos(http.server.BaseHTTPRequestHandler):
    """git http-backend for `root`, behind basic auth: organisation -> (username, token)."""
    root = None
    allowed = {}
    seen = []

    def handle_git(self):
        path, _, query = self.path.partition("?")
        organisation = path.strip("/").split("/")[0]
        expected = type(self).allowed.get(organisation)
        auth = self.headers.get("Authorization", "")
        given = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth.startswith("Basic ") else None
        type(self).seen.append((organisation, given.split(":")[0] if given else None))
        if given is None or expected is None or given != f"{expected[0]}:{expected[1]}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="Azure Repos (test)"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = dict(os.environ, GIT_PROJECT_ROOT=str(type(self).root), GIT_HTTP_EXPORT_ALL="1",
                   PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)),
                   REMOTE_USER=expected[0], REMOTE_ADDR="127.0.0.1",
                   HTTP_GIT_PROTOCOL=self.headers.get("Git-Protocol", ""))
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                             check=True).stdout
        head, _, content = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = handle_git

    def log_message(self, *args):
        pass


def git(env, *args, check=True, cwd=None):
    p = subprocess.run(["git", *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert p.returncode == 0 or not check, p.stderr
    return p


@pytest.fixture
def repos(tmp_path, fake_entra):
    """Alice and Bob signed in (Alice the default), two organisations' repos served:
    (env with a throwaway HOME, server's host)."""
    root = tmp_path / "srv"
    plain = dict(os.environ, HOME=str(tmp_path / "user"), GIT_CONFIG_NOSYSTEM="1",
                 GIT_TERMINAL_PROMPT="0", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example",
                 GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example")
    (tmp_path / "user").mkdir()
    plain.pop("GIT_ASKPASS", None)
    plain.pop("SSH_ASKPASS", None)
    seed = tmp_path / "seed"
    git(plain, "init", "-q", "-b", "main", str(seed))
    (seed / "README").write_text("hello from Azure Repos\n")
    git(plain, "add", "README", cwd=seed)
    git(plain, "commit", "-q", "-m", "first", cwd=seed)
    for organisation in ("contoso", "fabrikam"):
        bare = root / organisation / "web" / "_git" / "web"
        git(plain, "clone", "-q", "--bare", str(seed), str(bare))

    server, cert = tt.https_server(tmp_path / "repos", Repos)
    host = f"127.0.0.1:{server.server_address[1]}"
    home = tmp_path / "home"
    (home / "config").mkdir(mode=0o700, parents=True)
    (home / "config" / "config.toml").write_text(
        f'[git]\nhosts = ["{host}", "*.visualstudio.com"]\n[git.accounts]\nfabrikam = "{fe.BOB[0]}"\n')
    env = tt.environment(home, fake_entra, **{k: v for k, v in plain.items() if k not in os.environ
                                              or os.environ[k] != v})
    env["GIT_SSL_CAINFO"] = str(cert)
    env.pop("GIT_ASKPASS", None)
    tt.sign_in(env, fake_entra, fe.ALICE)
    tt.sign_in(env, fake_entra, fe.BOB)
    subprocess.run([tt.BIN, "switch", fe.ALICE[0]], env=env, check=True, capture_output=True)

    def token(user):
        return subprocess.run([tt.BIN, "token", "--account", user, "--scope", f"{AZURE_DEVOPS}/.default",
                               "--format", "raw"], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    Repos.root, Repos.seen = root, []
    Repos.allowed = {"contoso": (fe.ALICE[0], token(fe.ALICE[0])), "fabrikam": (fe.BOB[0], token(fe.BOB[0]))}
    yield env, host
    server.shutdown()


def test_git_clones_from_azure_repos_with_the_organisation_s_account(repos, tmp_path):
    env, host = repos
    before = git(env, "clone", "-q", f"https://{host}/contoso/web/_git/web", str(tmp_path / "no"),
                 check=False)
    assert before.returncode != 0, "without the helper git has no credentials"

    installed = subprocess.run([tt.BIN, "git-credential", "--install"], env=env, capture_output=True,
                               text=True, check=True)
    assert f"https://{host}" in installed.stdout
    gitconfig = (tmp_path / "user" / ".gitconfig").read_text()
    assert f'[credential "https://{host}"]' in gitconfig and "git-credential" in gitconfig, gitconfig
    again = subprocess.run([tt.BIN, "git-credential", "--install"], env=env, capture_output=True, text=True)
    assert again.returncode == 0
    assert (tmp_path / "user" / ".gitconfig").read_text() == gitconfig, "installing twice adds nothing"

    Repos.seen = []
    for organisation, user in (("contoso", fe.ALICE[0]), ("fabrikam", fe.BOB[0])):
        clone = tmp_path / f"clone-{organisation}"
        git(env, "clone", "-q", f"https://{host}/{organisation}/web/_git/web", str(clone))
        assert (clone / "README").read_text() == "hello from Azure Repos\n"
        assert (organisation, user) in Repos.seen

    subprocess.run([tt.BIN, "git-credential", "--uninstall"], env=env, check=True, capture_output=True)
    after = (tmp_path / "user" / ".gitconfig").read_text()
    assert "tokentray" not in after and "useHttpPath" not in after, after
    denied = git(env, "clone", "-q", f"https://{host}/contoso/web/_git/web", str(tmp_path / "no2"),
                 check=False)
    assert denied.returncode != 0


def helper(env, request):
    return subprocess.run([tt.BIN, "git-credential", "get"], env=env, input=request,
                          capture_output=True, text=True, timeout=60)


def test_other_hosts_and_plain_http_get_nothing(repos):
    env, host = repos
    other = helper(env, "protocol=https\nhost=github.com\npath=o/r.git\n\n")
    assert other.returncode == 0 and other.stdout == "" and other.stderr == ""
    plain = helper(env, f"protocol=http\nhost={host}\npath=contoso/web/_git/web\n\n")
    assert plain.returncode == 0 and plain.stdout == ""
    assert "https" in plain.stderr
    for action in ("store", "erase", "some-future-action"):
        p = subprocess.run([tt.BIN, "git-credential", action], env=env, input=f"protocol=https\nhost={host}\n\n",
                           capture_output=True, text=True, timeout=60)
        assert (p.returncode, p.stdout) == (0, ""), p.stderr


def test_the_answer_is_what_git_reads_and_the_subdomain_names_the_organisation(repos):
    env, host = repos
    answer = helper(env, "protocol=https\nhost=fabrikam.visualstudio.com\npath=web/_git/web\n\n")
    assert answer.returncode == 0, answer.stderr
    fields = dict(line.split("=", 1) for line in answer.stdout.splitlines())
    assert set(fields) == {"username", "password", "password_expiry_utc"}
    assert fields["username"] == fe.BOB[0]
    assert abs(fe.jwt_claims(fields["password"])["exp"] - int(fields["password_expiry_utc"])) <= 2
    assert Repos.allowed["fabrikam"][1] == fields["password"]
    default = helper(env, f"protocol=https\nhost={host}\n\n")
    assert dict(line.split("=", 1) for line in default.stdout.splitlines())["username"] == fe.ALICE[0]
