"""A logging TLS proxy between clients and fake-entra: what each client puts on the wire.

The proxy terminates TLS with its own test certificate (clients trust `ca_path`), records every
request (method, path, query, form body, headers) and forwards it unchanged to fake-entra over
TLS verified by the fake's CA. Start the fake with `--public-url <proxy.url>` so that every URL it
gives out (discovery, issuer, device-code page) leads clients back through the proxy.

Records hold secrets of test users (codes, refresh tokens) and live only in the test's memory.
"""
import http.client
import http.server
import ssl
import threading
import urllib.parse

import tokentray_helpers as tt

# Hop-by-hop headers: they describe one connection, not the request, and are not forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade",
              "proxy-connection", "content-length"}


class Request:
    """One recorded request: `method`, `path` (no query), `query` and `form` (name -> value) and
    `headers` (lowercase name -> value)."""

    def __init__(self, method, target, headers, body):
        split = urllib.parse.urlsplit(target)
        self.method = method
        self.path = split.path
        self.query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        self.headers = {k.lower(): v for k, v in headers.items()}
        form = self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        self.form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)) if form else {}

    @property
    def params(self):
        """Query and form parameters together (a request uses one or the other)."""
        return {**self.query, **self.form}

    def __repr__(self):
        return f"{self.method} {self.path} {sorted(self.params)}"


class WireProxy:
    """The proxy: `url` (https://127.0.0.1:PORT), `ca_path`, `requests` (in arrival order).
    Set `upstream` (a fake_entra_helpers.FakeEntra) before the first request."""

    def __init__(self, directory):
        self.requests = []
        self.upstream = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                proxy._forward(self)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server, self.ca_path = tt.https_server(directory, Handler)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"

    def take(self):
        """The requests recorded since the last take (and forgets them)."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def _forward(self, handler):
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self._lock:
            self.requests.append(Request(handler.command, handler.path, handler.headers, body))
        host, port = self.upstream.host.split(":")
        context = ssl.create_default_context(cafile=str(self.upstream.ca_path))
        upstream = http.client.HTTPSConnection(host, int(port), context=context, timeout=60)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream.request(handler.command, handler.path, body=body or None, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        handler.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        upstream.close()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
