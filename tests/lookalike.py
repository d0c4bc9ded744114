"""A tiny Assistants look-alike on 127.0.0.1 that serves canned bodies byte for byte (no tests here).

The sandbox builds its answers with a JSON encoder, so it cannot send what look-alike servers do:
a lone surrogate escape, an item without an id. This one sends exactly the bytes it is given.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

__all__ = ["serve", "page"]

NOT_FOUND = orjson.dumps({"error": {"message": "No such object.", "type": "invalid_request_error"}})


def page(items: list[Any] | bytes) -> bytes:
    """A whole list in one page (items may be raw JSON text, to send what no encoder would)."""
    data = items if isinstance(items, bytes) else orjson.dumps(items)
    return b'{"object":"list","data":' + data + b',"first_id":null,"last_id":null,"has_more":false}'


@contextmanager
def serve(routes: dict[str, bytes]) -> Iterator[str]:
    """Serve `routes` (path without the query -> body) and yield the base URL to hand the SDK."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            body = routes.get(self.path.split("?", 1)[0])
            self.send_response(200 if body is not None else 404)
            payload = body if body is not None else NOT_FOUND
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        worker.join(5)
