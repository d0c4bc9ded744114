"""The HTTP server: a stdlib ThreadingHTTPServer speaking HTTP/1.1 keep-alive on 127.0.0.1.

Every API request passes, in order: the flavor's admission (API key; Foundry's token, role and
api-version; the sunset's 404), Gone, rate limit, injected fault, latency, route. The flavor
(flavors.py) maps its paths onto the /v1 route table and shapes answers and errors on the way out.
Responses are written with one `sendall` (status line, headers and body together) on a socket with
TCP_NODELAY, so keep-alive requests never wait on Nagle's algorithm and a loopback client gets
several hundred requests a second out of one core. /_sandbox/* is the control plane: never
faulted, throttled or counted.
"""

from __future__ import annotations

import itertools
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from migrator.sandbox.chat import ChatApi
from migrator.sandbox.config import SandboxConfig
from migrator.sandbox.conversations import ConversationsApi
from migrator.sandbox.corpus import Corpus
from migrator.sandbox.errors import ApiError, error_body
from migrator.sandbox.faults import FaultDice
from migrator.sandbox.flavors import make_flavor
from migrator.sandbox.ratelimit import TokenBucket, duration
from migrator.sandbox.routes import ASSISTANTS_PREFIXES, AssistantsApi, Request, Response, Router
from migrator.sandbox.stats import Stats
from migrator.sandbox.target import Target
from migrator.sandbox.tokens import TokenBook

SERVER_ERRORS = {
    500: ("The server had an error while processing your request. Sorry about that!", "server_error"),
    502: ("Bad gateway.", "server_error"),
    503: ("The engine is currently overloaded, please try again later.", "server_error"),
}
NOT_JSON = b"<html><head><title>502 Bad Gateway</title></head><body>upstream hiccup</body></html>\n"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _mask(key: str) -> str:
    return key[:3] + "*" * 6 + key[-4:] if len(key) > 10 else "*" * len(key)


class App:
    """Everything behind the socket: corpus, knobs, counters, limiter and the route table."""

    def __init__(self, config: SandboxConfig) -> None:
        self.cfg = config
        self.corpus = Corpus(
            config.threads, config.seed, polite_clock=config.polite_clock, flavor=config.flavor
        )
        self.tokens = TokenBook()
        self.flavor = make_flavor(config, self.tokens)
        self.stats = Stats()
        self.dice = FaultDice(config.seed)
        self.bucket = TokenBucket(config.rps_limit) if config.rps_limit else None
        self.router = Router()
        AssistantsApi(self.corpus).register(self.router)
        self.chat = ChatApi(self.corpus)
        self.router.add("POST", "/v1/chat/completions", self.chat.create)
        ConversationsApi(config.seed).register(self.router)
        self.target = Target(self.corpus, self.chat, config.seed, self.stats)  # after the corpus's routes
        self.target.register(self.router)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- control plane -------------------------------------------------------------------------
    def configure(self, **knobs: Any) -> dict[str, Any]:
        with self._lock:
            cfg = self.cfg.updated(knobs)
            if cfg.rps_limit != self.cfg.rps_limit:
                self.bucket = TokenBucket(cfg.rps_limit) if cfg.rps_limit else None
            self.cfg = cfg
        return cfg.knobs()

    def reset(self) -> None:
        """Counters to zero, the fault sequence and the rate-limit bucket back to their start."""
        self.stats.reset()
        self.dice.reseed(self.cfg.seed)
        with self._lock:
            self.bucket = TokenBucket(self.cfg.rps_limit) if self.cfg.rps_limit else None

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        route = (method, path.rstrip("/"))
        answer = self.target.control(method, route[1], self.cfg)
        if answer is not None:
            return answer
        if route == ("GET", "/_sandbox/stats"):
            return 200, self.stats.snapshot()
        if route == ("GET", "/_sandbox/corpus"):
            return 200, self.catalog()
        if route in (("POST", "/_sandbox/token"), ("GET", "/_sandbox/token")):
            # GET too: the shape of an App Service managed-identity endpoint (IDENTITY_ENDPOINT), so
            # azure-identity's own DefaultAzureCredential can fetch sandbox tokens unmodified.
            return 200, self.tokens.mint(self.cfg.token_ttl_requests)
        if method == "GET" and path.startswith("/_sandbox/truth/"):
            truth = self.truth(path.removeprefix("/_sandbox/truth/"))
            return (200, truth) if truth is not None else (404, error_body(f"No thread {path[16:]!r}."))
        if route == ("GET", "/_sandbox/config"):
            return 200, self.cfg.knobs()
        if route == ("GET", "/_sandbox/thread_ids"):
            return 200, {"thread_ids": self.corpus.thread_id_list}
        if route == ("POST", "/_sandbox/reset"):
            self.reset()
            return 200, {"reset": True}
        if route == ("POST", "/_sandbox/config"):
            try:
                knobs = orjson.loads(body or b"{}")
                if not isinstance(knobs, dict):
                    raise ValueError("the body must be a JSON object of knobs")
                return 200, self.configure(**knobs)
            except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
                return 400, error_body(str(exc), param="config")
        return 404, error_body(f"Invalid URL ({method} {path})")

    def catalog(self) -> dict[str, Any]:
        return self.flavor.catalog(self.corpus.catalog())

    def truth(self, thread_id: str) -> dict[str, Any] | None:
        index = self.corpus.thread_index(thread_id)
        return None if index is None else self.flavor.truth(self.corpus.truth(index))

    # -- the API -------------------------------------------------------------------------------
    def _gate(
        self,
        cfg: SandboxConfig,
        method: str,
        path: str,
        inner: str,
        query: Any,
        headers: Any,
        out: dict[str, str],
    ) -> None:
        self.flavor.admit(cfg, method, path, query, headers)
        if cfg.api_key is not None and self.flavor.uses_api_key:
            auth = headers.get("authorization") or ""
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else (headers.get("api-key") or "")
            if given != cfg.api_key:
                if not given:
                    message = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                else:
                    message = f"Incorrect API key provided: {_mask(given)}. You can find your API key at https://platform.openai.com/account/api-keys."
                raise ApiError(401, message, code="invalid_api_key")
        if cfg.gone and inner.startswith(ASSISTANTS_PREFIXES):
            raise ApiError(
                410,
                f"The Assistants API has been shut down on this server ({method} {path}). "
                "Move to the Responses API or chat completions.",
                code="gone",
            )
        bucket = self.bucket
        if bucket is not None:
            allowed, wait, limit_headers = bucket.take()
            out.update(limit_headers)
            if not allowed:
                ms = max(1, round(wait * 1000))
                limit = limit_headers["x-ratelimit-limit-requests"]
                raise ApiError(
                    429,
                    f"Rate limit reached for requests on the sandbox: Limit {limit} / min. "
                    f"Please try again in {duration(wait)}.",
                    type="requests",
                    code="rate_limit_exceeded",
                    headers={"retry-after-ms": str(ms), "retry-after": str(max(1, round(wait + 0.4)))},
                )

    def handle(self, h: _Handler) -> None:
        method = h.command
        split = urlsplit(h.path)
        path = split.path
        body = h.read_body()
        if path.startswith("/_sandbox/"):
            status, payload = self.control(method, path, body)
            h.reply(status, orjson.dumps(payload), "application/json", {})
            return
        cfg, flavor = self.cfg, self.flavor
        inner = flavor.inner_path(path)
        template, handler, params = (
            self.router.match(method, inner) if inner is not None else (None, None, {})
        )
        route = f"{method} {flavor.public(template) if template else '<unmatched>'}"
        headers: dict[str, str] = {"x-request-id": f"req_{next(self._ids):012x}"}
        fault: str | None = None
        query = parse_qs(split.query, keep_blank_values=True) if split.query else {}
        try:
            self._gate(cfg, method, path, inner or path, query, h.headers, headers)
            fault, status = self.dice.roll(cfg)
            if fault == "server_error":
                message, kind = SERVER_ERRORS[status]
                raise ApiError(status, message, type=kind)
            if fault in ("timeout", "drop"):
                self.stats.count(route, fault, fault)  # counted now: a hang must show up while it hangs
                if fault == "timeout":
                    time.sleep(cfg.hang_seconds)
                h.close_connection = True
                return
            if cfg.latency_ms:
                time.sleep(cfg.latency_ms / 1000.0)
            if template is None:
                raise flavor.not_found(method, path)
            flavor.refuse(method, template, path)
            if handler is None:
                raise ApiError(405, f"The sandbox does not serve {method} {template} (it is read-only).")
            headers_in = {k.lower(): v for k, v in h.headers.items()}
            inner_query = flavor.query(template, query)
            result = handler(Request(method, inner or path, params, inner_query, body, cfg, headers_in))
            if isinstance(result, Response):
                status, content, ctype = result.status, result.body, result.content_type
                headers.update(result.headers)
            else:
                status, content, ctype = 200, flavor.shape(cfg, template, result), "application/json"
        except ApiError as exc:
            status, content, ctype = exc.status, flavor.error_body(exc), "application/json"
            headers.update(exc.headers)
        except Exception:  # a sandbox bug must still answer, and loudly
            traceback.print_exc(file=sys.stderr)
            status, content, ctype = (
                500,
                flavor.error_body(ApiError(500, "Sandbox internal error.", type="server_error")),
                "application/json",
            )
        headers = flavor.headers(headers)
        data = content if isinstance(content, bytes) else orjson.dumps(content)
        if fault == "invalid_json":
            status, data, ctype = 200, NOT_JSON, "application/json"
        # Counted before the answer leaves: a client that reads its last response and then asks for
        # the stats must find that request in them.
        self.stats.count(route, status, fault)
        if fault == "truncate":
            h.reply(status, data, ctype, headers, send=len(data) // 2)
            h.close_connection = True
        else:
            h.reply(status, data, ctype, headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "migrate-sandbox"
    sys_version = ""
    timeout = 300  # an idle keep-alive connection is closed after five minutes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  quiet: the counters are the log
        pass

    def reply(
        self, status: int, data: bytes, ctype: str, headers: dict[str, str], send: int | None = None
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_reason(status)}",
            f"content-type: {ctype}",
            f"content-length: {len(data)}",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + (data if send is None else data[:send]))
        except OSError:
            self.close_connection = True

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            parts = []
            while (
                True
            ):  # the whole chunked body must be read, or the next request on the connection is garbage
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        self.server.app.handle(self)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-request (timeouts, our own faults) are normal here.
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class SandboxServer:
    """A running sandbox on 127.0.0.1; a context manager, or `serve_forever()` for the CLI."""

    def __init__(self, config: SandboxConfig | None = None, port: int = 0, host: str = "127.0.0.1") -> None:
        self.app = App(config or SandboxConfig())
        self._httpd = _Server((host, port), self.app)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client is given: `/v1` for OpenAI-like flavors, the project endpoint for Foundry."""
        return self.root_url + self.app.flavor.base_path(self.app.cfg)

    @property
    def config(self) -> SandboxConfig:
        return self.app.cfg

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (KeyboardInterrupt propagates after a clean close)."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        return self.app.stats.snapshot()

    def corpus_summary(self) -> dict[str, Any]:
        return self.app.catalog()

    def truth(self, thread_id: str) -> dict[str, Any]:
        """What thread `thread_id` holds (texts, runs, tool calls with payloads), as GET /_sandbox/truth/ID."""
        truth = self.app.truth(thread_id)
        if truth is None:
            raise KeyError(thread_id)
        return truth

    def mint_token(self) -> str:
        """A fresh bearer token for the Foundry flavor, as POST /_sandbox/token."""
        return self.app.tokens.mint(self.app.cfg.token_ttl_requests)["access_token"]

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return self.app.configure(**knobs)

    def reset_stats(self) -> None:
        self.app.reset()

    def thread_ids(self) -> list[str]:
        return list(self.app.corpus.thread_id_list)
