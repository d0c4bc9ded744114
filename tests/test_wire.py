"""The wire client bounds every body, declared or chunked, and tells when a request went out."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from migrator.http.wire import BodyTooLarge, WireState, wire_client, wire_state

BODY = b"x" * 50_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        if self.path == "/chunked":
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for start in range(0, len(BODY), 10_000):
                part = BODY[start : start + 10_000]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("content-length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def _get(url: str, limit: int) -> tuple[bytes | BaseException, WireState]:
    state = WireState()
    token = wire_state.set(state)
    try:
        async with wire_client(limit) as client:
            try:
                response = await client.get(url)
                return response.content, state
            except BodyTooLarge as exc:
                return exc, state
    finally:
        wire_state.reset(token)


@pytest.mark.parametrize("path", ["/declared", "/chunked"])
def test_a_body_over_the_limit_is_refused_whether_declared_or_chunked(server: str, path: str) -> None:
    outcome, state = asyncio.run(_get(server + path, 20_000))
    assert isinstance(outcome, BodyTooLarge)
    assert state.traced and state.sent


@pytest.mark.parametrize("path", ["/declared", "/chunked"])
def test_a_body_within_the_limit_is_read_whole_and_the_request_counts_as_sent(server: str, path: str) -> None:
    outcome, state = asyncio.run(_get(server + path, len(BODY)))
    assert outcome == BODY
    assert state.traced and state.sent


def test_a_request_that_never_connected_was_never_sent() -> None:
    async def refused() -> WireState:
        state = WireState()
        token = wire_state.set(state)
        try:
            async with wire_client(1000) as client:
                with pytest.raises(Exception):  # noqa: B017  httpx2's ConnectError, whatever its module
                    await client.get("http://127.0.0.1:9/")
        finally:
            wire_state.reset(token)
        return state

    state = asyncio.run(refused())
    assert state.traced and not state.sent
