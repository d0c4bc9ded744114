"""Rude hosts for tests: a port nobody listens on, a host that accepts and never answers, and a
tiny look-alike server that serves whatever JSON a test gives it. All on 127.0.0.1."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import orjson

# The console script of this checkout's install, as a user runs it.
MIGRATE = str(Path(sys.executable).with_name("migrate"))


def closed_port() -> int:
    """A port that was free a moment ago and that nothing listens on: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentHost:
    """Accepts TCP connections and never sends a byte (a hung proxy, a wedged server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def wait_for_connection(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.accepted, "nobody connected to the silent host"

    def __enter__(self) -> SilentHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


class FullHost:
    """Listens, but its accept queue is full and it never accepts: a new connection is never made
    (the kernel drops its SYNs), as with an overloaded server or a firewall that drops packets."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._filler = socket.create_connection(("127.0.0.1", self.port))  # the one queue slot

    def __enter__(self) -> FullHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self._filler.close()
        self.sock.close()


Answer = tuple[int, Any]
Route = Answer | Callable[[dict[str, list[str]]], Answer]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is no error
            super().handle_error(request, client_address)


class _QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no access log."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""


def _send(handler: BaseHTTPRequestHandler, status: int, kind: str, data: bytes) -> None:
    handler.send_response(status)
    handler.send_header("content-type", kind)
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class _LocalServer:
    """An HTTP server on a free port of 127.0.0.1, serving from a thread while the `with` lasts."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class LookAlike(_LocalServer):
    """A server with an Assistants-shaped surface of its own: `routes` maps "GET /v1/path" to a
    (status, JSON body) or to a function of the query giving one. Unknown paths answer 404."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.requests: Counter[str] = Counter()
        lookalike = self

        class Handler(_QuietHandler):
            def _answer(self) -> None:
                self.body()
                url = urlsplit(self.path)
                key = f"{self.command} {url.path}"
                lookalike.requests[key] += 1
                route = lookalike.routes.get(key)
                if route is None:
                    status, body = (
                        404,
                        {"error": {"message": f"no route {key}", "type": "invalid_request_error"}},
                    )
                else:
                    status, body = route(parse_qs(url.query)) if callable(route) else route
                _send(self, status, "application/json", orjson.dumps(body))

            do_GET = do_POST = _answer

        super().__init__(Handler)


def page(items: list[dict[str, Any]], *, has_more: bool = False) -> Answer:
    return 200, {
        "object": "list",
        "data": items,
        "first_id": items[0].get("id") if items else None,
        "last_id": items[-1].get("id") if items else None,
        "has_more": has_more,
    }


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`migrate ARGS` through the installed console script, in its own process."""
    keys = {"OPENAI_API_KEY": "sandbox-key", "TARGET_API_KEY": "target-key"}
    return subprocess.Popen(
        [MIGRATE, *args],
        env={**os.environ, **keys, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> tuple[int, str]:
    """(exit code, stderr) of a process that must end by itself; a safety net against a hang."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"still running after {timeout} s: {err.decode()[-2000:]}") from None
    return proc.returncode, err.decode()


Intercept = Callable[[str, str, dict[str, str]], tuple[int, str, bytes] | None]


class Middlebox(_LocalServer):
    """A proxy in front of `upstream` (a base URL ending in /v1) that may answer a request itself:
    `intercept(method, path, headers)` returns (status, content type, body) to answer, or None to
    forward the request unchanged (a CDN's error page, a gateway that echoes what it was sent)."""

    def __init__(self, upstream: str, intercept: Intercept) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.intercepted: Counter[str] = Counter()
        box = self

        class Handler(_QuietHandler):
            def _answer(self) -> None:
                body = self.body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                own = intercept(self.command, urlsplit(self.path).path, headers)
                if own is not None:
                    box.intercepted[urlsplit(self.path).path] += 1
                    status, kind, data = own
                else:
                    conn = http.client.HTTPConnection(box.upstream_host, box.upstream_port, timeout=60)
                    skip = {"host", "content-length", "connection", "accept-encoding"}
                    conn.request(
                        self.command,
                        self.path,
                        body=body,
                        headers={k: v for k, v in headers.items() if k not in skip},
                    )
                    answer = conn.getresponse()
                    status, kind, data = answer.status, answer.getheader("content-type") or "", answer.read()
                    conn.close()
                # The client may have hung up (it refused a body over its limit): so be it.
                with suppress(BrokenPipeError, ConnectionResetError):
                    _send(self, status, kind, data)

            do_GET = do_POST = do_DELETE = _answer

        super().__init__(Handler)
