#!/usr/bin/env python3
"""Another local user, for the edge tests (run as uid 65534 with `setpriv`, by tests/e2e/edge.rs).

Standard library only: the test feeds it to Debian's /usr/bin/python3 on stdin (`python3 - MODE
ARGS`), so user `nobody` needs no access to the checkout.

  hostile.py request PORT PATH [NAME=VALUE ...]  one GET to 127.0.0.1:PORT (or to the Unix socket
                                                 PORT, when it is a path); prints the status line,
                                                 "closed" if the server closes without answering,
                                                 or "cannot connect: ERROR"
  hostile.py squat PORT                          binds 127.0.0.1:PORT, takes one request, prints the
                                                 X-IDENTITY-HEADER it carried, answers 500
  hostile.py pipeline PORT N SECONDS             N connections that pipeline `GET /v1/status` as
                                                 fast as the server reads and never read an answer;
                                                 prints "holding" once all are sent, holds them
  hostile.py flood PORT SECONDS                  connects and closes as fast as it can; prints the
                                                 number of connections made
"""
import socket
import sys
import time


def request(port, path, *headers):
    try:
        if port.startswith("/"):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(port)
            host = "127.0.0.1"
        else:
            s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
            host = f"127.0.0.1:{port}"
    except OSError as e:
        print(f"cannot connect: {e.strerror}", flush=True)
        return
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [h.replace("=", ": ", 1) for h in headers]
    try:
        # A server that refuses may close before the request is sent (EPIPE) or read (reset).
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = s.recv(4096)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        answer = b""
    print(answer.split(b"\r\n", 1)[0].decode() if answer else "closed", flush=True)


def squat(port):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(port)))
    server.listen(1)
    print("listening", flush=True)
    conn, _ = server.accept()
    head = conn.recv(65536).decode(errors="replace")
    secret = next((line.split(":", 1)[1].strip() for line in head.split("\r\n")
                   if line.lower().startswith("x-identity-header:")), "")
    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    conn.close()
    print(secret, flush=True)


def pipeline(port, n, seconds):
    chunk = f"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode() * 64
    conns = []
    for _ in range(int(n)):
        s = socket.create_connection(("127.0.0.1", int(port)))
        s.setblocking(False)
        conns.append(s)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # until the server stops reading (or 5 s)
        progressed = False
        for s in conns:
            try:
                s.send(chunk)
                progressed = True
            except (BlockingIOError, OSError):
                pass
        if not progressed:
            break
    print("holding", flush=True)
    time.sleep(float(seconds))


def flood(port, seconds):
    end, count = time.monotonic() + float(seconds), 0
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
            count += 1
        except OSError:
            time.sleep(0.001)
    print(count, flush=True)


if __name__ == "__main__":
    {"request": request, "squat": squat, "pipeline": pipeline, "flood": flood}[sys.argv[1]](*sys.argv[2:])
