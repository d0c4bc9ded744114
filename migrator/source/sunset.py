"""Has the source an Assistants API at all? OpenAI's sunset, a base URL without `/v1`, missing routes.

Since 2026-08-26 OpenAI answers every Assistants path with 404 `Invalid URL (GET /v1/assistants)`, and a
base URL that lacks `/v1` gets the same from any OpenAI-style server. Read one request at a time, such
a 404 looks like a thread that does not exist; it is not, and no thread may be marked `missing` for it.
The rules, by what was asked (`kind`, the request kind of the source client):

- a 404 whose message is `Invalid URL ...` on any request but the thread list, a 404 on the assistants
  collection, a 400 that says the API is deprecated, and 410 Gone: the source has no Assistants API
  there (`NoAssistantsApiError`, exit 3, naming both causes and the ways out);
- a 404, 405 or 501 on a route a self-hosted look-alike may not serve (the vector-store list, run
  steps; 405/501 also on the assistant list, file objects and file content): that route is missing
  (`RouteMissing`), recorded once, and the export goes on. A 404 on one file object or its content
  stays what it was: that file is not there;
- the thread list (`GET /threads`, `--all-threads`) is a collection OpenAI never served, so its 404 is
  decided by asking the assistants collection (see `SourceClient.list_threads`).

So a look-alike whose `/vector_stores` answers 404 while its assistants and threads answer is a source
without vector stores, not the sunset: OpenAI after the sunset still serves `/v1/vector_stores` (they
belong to the Responses API now), and a base URL without `/v1` says `Invalid URL` on it.
"""

from __future__ import annotations

import re

import openai

from migrator.errors import NoAssistantsApiError
from migrator.http import error_body

__all__ = ["OPTIONAL_ROUTES", "RouteMissing", "no_assistants_api", "route_missing", "sunset_error"]

ROUTE_MISSING_STATUS = frozenset({404, 405, 501})
# Request kinds whose route a look-alike may not have, and the statuses that say so. A 404 on one file
# object or its bytes means that file is gone, so only 405/501 say the route is missing there.
OPTIONAL_ROUTES: dict[str, frozenset[int]] = {
    "vector_stores": ROUTE_MISSING_STATUS,
    "run_steps": ROUTE_MISSING_STATUS,
    "threads": ROUTE_MISSING_STATUS,
    "assistants": frozenset({405, 501}),
    "file": frozenset({405, 501}),
    "file_content": frozenset({405, 501}),
}
# What each optional route is, for the one line that records it.
ROUTE_NAMES = {
    "vector_stores": "vector stores",
    "run_steps": "run steps",
    "threads": "a thread list",
    "assistants": "an assistant list",
    "file": "file objects",
    "file_content": "file content",
}
_DEPRECATED = re.compile(
    r"deprecat|has been (shut down|removed|retired|sunset)|no longer (available|supported)", re.I
)


class RouteMissing(Exception):
    """The source does not serve this route (a look-alike's missing optional route): not fatal."""

    def __init__(self, kind: str, detail: str, status_code: int) -> None:
        super().__init__(f"this source does not serve {ROUTE_NAMES.get(kind, kind)} ({detail})")
        self.kind = kind
        self.detail = detail
        self.status_code = status_code


def _message(exc: openai.APIStatusError) -> str:
    message = error_body(exc).get("message")
    return message if isinstance(message, str) else ""


def sunset_error(base_url: str, answer: str, *, foundry: bool = False) -> NoAssistantsApiError:
    """The one message for a source without an Assistants API: both likely causes, every way out."""
    base = base_url.rstrip("/")
    if foundry:  # Foundry's agents are live until 2027-03-31: the endpoint itself is the likely mistake
        return NoAssistantsApiError(
            f"{base} serves no agents ({answer})",
            hint="check --foundry-endpoint: the project endpoint, "
            "https://RESOURCE.services.ai.azure.com/api/projects/PROJECT, without /v1",
        )
    v1 = "" if base.endswith("/v1") else f" (try --base-url {base}/v1)"
    return NoAssistantsApiError(
        f"{base} has no Assistants API ({answer}). Either OpenAI removed it: the Assistants API was shut "
        "down on 2026-08-26, so build the archive from saved JSON (--from-dump DIR), from your own message "
        "log (--from-records FILE or a database URL) or from Azure AI Foundry (--foundry-endpoint URL); or the base URL lacks "
        f"/v1{v1}",
        hint="no thread was marked missing; run the command again with one of those",
    )


def no_assistants_api(
    exc: openai.APIStatusError, kind: str, base_url: str, *, foundry: bool = False
) -> NoAssistantsApiError | None:
    """The sunset (or a base URL without /v1) seen in one answer to a request of `kind`, or None.
    `kind` "any" is a request whose kind is not known (the request path's own refusal rule)."""
    status, message = exc.status_code, _message(exc)
    answer = f"it answered {status}{' Gone' if status == 410 else ''}: {message or exc.message}"[:300]
    gone = (
        (status == 404 and message.startswith("Invalid URL") and kind != "threads")
        or (status == 404 and kind == "assistants")
        or (status == 400 and bool(_DEPRECATED.search(message)))
        or status == 410
    )
    return sunset_error(base_url, answer, foundry=foundry) if gone else None


def route_missing(exc: openai.APIStatusError, kind: str, detail: str) -> RouteMissing | None:
    if exc.status_code in OPTIONAL_ROUTES.get(kind, ()):
        return RouteMissing(kind, detail, exc.status_code)
    return None
