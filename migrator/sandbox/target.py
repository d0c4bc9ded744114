"""The sandbox as a migration target: uploads, created vector stores and /v1/responses, plus their
test-only control routes. Everything is in memory, beside the read corpus, behind one `register`.

Control routes (never faulted, throttled or counted, like the rest of /_sandbox/):
- `GET /_sandbox/state`: the uploaded files (with their sha256) and the created vector stores with
  their files, as they are now (reading the state moves no ingestion on), and the stored responses;
- `GET /_sandbox/uploads`: the uploads, without bytes;
- `GET /_sandbox/uploads/{file_id}`: one upload as received: the filename untouched and the bytes in
  `content_base64`, so a test can compare sha256 and check that no uploaded filename carries a path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from migrator.sandbox.errors import error_body
from migrator.sandbox.responses import ROUTE, ResponsesApi
from migrator.sandbox.stores import Stores
from migrator.sandbox.uploads import Uploads

if TYPE_CHECKING:
    from migrator.sandbox.chat import ChatApi
    from migrator.sandbox.config import SandboxConfig
    from migrator.sandbox.corpus import Corpus
    from migrator.sandbox.routes import Router
    from migrator.sandbox.stats import Stats

UPLOAD_PREFIX = "/_sandbox/uploads/"


class Target:
    def __init__(self, corpus: Corpus, chat: ChatApi, seed: int, stats: Stats) -> None:
        self.uploads = Uploads(corpus, seed, stats)
        self.stores = Stores(corpus, self.uploads, seed, stats)
        self.responses = ResponsesApi(chat, self.uploads, self.stores, seed, stats)

    def register(self, router: Router) -> None:
        """Registered after the corpus's routes: the file and store routes fall back to those."""
        self.uploads.register(router)
        self.stores.register(router)
        router.add("POST", ROUTE.split(" ", 1)[1], self.responses.create)

    def control(self, method: str, path: str, cfg: SandboxConfig) -> tuple[int, Any] | None:
        """The answer to a control route of the target, or None when the path is not one of them."""
        if method != "GET":
            return None
        if path == "/_sandbox/state":
            return 200, {
                "files": [self.uploads.summary(up) for up in self.uploads.uploads()],
                "vector_stores": self.stores.state(cfg),
                "responses_stored": self.responses.stored(),
            }
        if path == "/_sandbox/uploads":
            return 200, {"data": [self.uploads.summary(up) for up in self.uploads.uploads()]}
        if path.startswith(UPLOAD_PREFIX):
            fid = path[len(UPLOAD_PREFIX) :]
            record = self.uploads.record(fid)
            if record is None:
                return 404, error_body(f"No upload with id '{fid}' on this sandbox.", param="file_id")
            return 200, record
        return None
