"""What the server pretends to be: where it serves, whom it lets in, and how its answers look on the wire.

The route table speaks OpenAI's `/v1` paths; a flavor maps the paths it serves onto them, refuses what
the real server refuses, and reshapes answers and errors the way that server writes them:

- `openai`: OpenAI's Assistants v2 as the spec describes it (the default).
- `foundry`: an Azure AI Foundry classic-agents project under `/api/projects/<project>`, no `/v1`:
  `api-version` on every call, Entra ID bearer tokens only (see tokens.py), pages `{data, last_id,
  has_more}`, `/files` unpaged, `include[]` as one comma-joined value, errors `{"error": {code,
  message}}`, 429s with `retry-after` and `x-ms-retry-after-ms`. Its corpus holds Foundry's own tools.
- `lookalike`: a self-hosted Assistants server like myla 0.2.40: no vector stores or file routes (404,
  405, 501), message text as a list of `{value}`, a string or `{value}`, timestamps in milliseconds,
  empty step lists, FastAPI's `{"detail": ...}` errors.
- `sunset`: OpenAI since 2026-08-26: the Assistants paths (assistants, threads and all below them) and
  every path without `/v1` are a 404 "Invalid URL"; files, vector stores, chat completions,
  conversations and responses still answer, as they do on OpenAI, where they serve the Responses API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from migrator.sandbox.errors import ApiError
from migrator.sandbox.ids import unit
from migrator.sandbox.routes import ASSISTANTS_PREFIXES

if TYPE_CHECKING:
    from migrator.sandbox.config import SandboxConfig
    from migrator.sandbox.tokens import TokenBook

Obj = dict[str, Any]
Query = dict[str, list[str]]

API_VERSIONS = ("2025-05-01", "2025-05-15-preview", "v1")
# Every path of azure-ai-agents.2025-05-01.json (parameters as {}); a test holds this set to the spec.
FOUNDRY_PATHS = frozenset(
    {
        "/assistants",
        "/assistants/{}",
        "/files",
        "/files/{}",
        "/files/{}/content",
        "/threads",
        "/threads/runs",
        "/threads/{}",
        "/threads/{}/messages",
        "/threads/{}/messages/{}",
        "/threads/{}/runs",
        "/threads/{}/runs/{}",
        "/threads/{}/runs/{}/cancel",
        "/threads/{}/runs/{}/steps",
        "/threads/{}/runs/{}/steps/{}",
        "/threads/{}/runs/{}/submit_tool_outputs",
        "/vector_stores",
        "/vector_stores/{}",
        "/vector_stores/{}/file_batches",
        "/vector_stores/{}/file_batches/{}",
        "/vector_stores/{}/file_batches/{}/cancel",
        "/vector_stores/{}/file_batches/{}/files",
        "/vector_stores/{}/files",
        "/vector_stores/{}/files/{}",
    }
)
FOUNDRY_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    429: "429",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
}
UNAUTHORIZED = "Unauthorized. Access token is missing, invalid, audience is incorrect (https://ai.azure.com), or have expired."
STEPS = "/v1/threads/{thread_id}/runs/{run_id}/steps"


def normalized(template: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", template)


class Flavor:
    """OpenAI's Assistants v2: the route table as it is."""

    name = "openai"
    uses_api_key = True  # the `api_key` knob applies

    def __init__(self, cfg: SandboxConfig, tokens: TokenBook) -> None:
        self.seed = cfg.seed
        self.tokens = tokens

    def base_path(self, cfg: SandboxConfig) -> str:
        return "/v1"

    def inner_path(self, path: str) -> str | None:
        """The route-table path for `path`, or None when this server serves nothing there."""
        return path

    def public(self, template: str) -> str:
        """A route template as this server's clients see it (the key of the request counters)."""
        return template

    def admit(
        self, cfg: SandboxConfig, method: str, path: str, query: Query, headers: Mapping[str, str]
    ) -> None:
        """Refuse the request before anything else looks at it (auth, versions, a shut-down API)."""

    def not_found(self, method: str, path: str) -> ApiError:
        return ApiError(404, f"Invalid URL ({method} {path})")

    def refuse(self, method: str, template: str, path: str) -> None:
        if (method, template) == ("GET", "/v1/threads"):  # OpenAI cannot list threads
            raise self.not_found(method, path)

    def query(self, template: str, query: Query) -> Query:
        return query

    def shape(self, cfg: SandboxConfig, template: str, result: Any) -> Any:
        return result

    def error_body(self, exc: ApiError) -> Any:
        return exc.body()

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        return headers

    def truth(self, truth: Obj) -> Obj:
        return {**truth, "served": True}

    def catalog(self, catalog: Obj) -> Obj:
        bill = catalog["minimum_requests"]
        routes = {
            f"{k.split(' ', 1)[0]} {self.public(k.split(' ', 1)[1])}": v for k, v in bill["by_route"].items()
        }
        return {**catalog, "minimum_requests": {**bill, "by_route": routes}}


class Foundry(Flavor):
    name = "foundry"
    uses_api_key = False

    def __init__(self, cfg: SandboxConfig, tokens: TokenBook) -> None:
        super().__init__(cfg, tokens)
        self.prefix = f"/api/projects/{cfg.project}"

    def base_path(self, cfg: SandboxConfig) -> str:
        return self.prefix

    def inner_path(self, path: str) -> str | None:
        if path == self.prefix or path.startswith(self.prefix + "/"):
            return "/v1" + path[len(self.prefix) :]
        return None

    def public(self, template: str) -> str:
        return self.prefix + template[3:] if template.startswith("/v1") else template

    def admit(
        self, cfg: SandboxConfig, method: str, path: str, query: Query, headers: Mapping[str, str]
    ) -> None:
        if headers.get("api-key") is not None:
            raise ApiError(
                401,
                "Key based authentication is not supported for this endpoint: send a Microsoft Entra ID "
                "bearer token for scope https://ai.azure.com/.default.",
                code="AuthenticationTypeDisabled",
            )
        auth = headers.get("authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        verdict = self.tokens.check(token, cfg.token, cfg.token_ttl_requests) if token else "invalid"
        if verdict == "expired":
            raise ApiError(401, "Lifetime validation failed, the token is expired.", code="Unauthorized")
        if verdict != "ok":
            raise ApiError(401, UNAUTHORIZED, code="Unauthorized")
        if cfg.missing_role:
            action = "Microsoft.CognitiveServices/accounts/AIServices/agents/" + (
                "read" if method == "GET" else "write"
            )
            raise ApiError(
                403,
                f"The principal `sandbox-user` lacks the required data action `{action}` to perform "
                f"`{method} {path}` operation.",
                code="PermissionDenied",
            )
        versions = query.get("api-version") or []
        if not versions or not versions[-1]:
            raise ApiError(
                400,
                "Missing required query parameter: api-version",
                code="MissingApiVersionParameter",
            )
        if versions[-1] not in API_VERSIONS:
            raise ApiError(
                400,
                f"Unsupported api-version '{versions[-1]}'. The supported versions are: {', '.join(API_VERSIONS)}.",
                code="UnsupportedApiVersion",
            )

    def not_found(self, method: str, path: str) -> ApiError:
        return ApiError(404, "Resource not found", code="404")

    def refuse(self, method: str, template: str, path: str) -> None:
        if normalized(template[3:]) not in FOUNDRY_PATHS:
            raise self.not_found(method, path)

    def query(self, template: str, query: Query) -> Query:
        if template == "/v1/files":  # no paging on Foundry's file list: only `purpose` means anything
            return {k: v for k, v in query.items() if k == "purpose"}
        if "include[]" in query:  # collectionFormat csv: one value, comma-joined
            query = {**query, "include[]": [v for raw in query["include[]"] for v in raw.split(",") if v]}
        return query

    def shape(self, cfg: SandboxConfig, template: str, result: Any) -> Any:
        if not (isinstance(result, dict) and result.get("object") == "list" and "has_more" in result):
            return result
        data = result["data"]
        if template == "/v1/files":
            return {"object": "list", "data": data}
        page: Obj = {"data": data}
        if data:
            page["last_id"] = data[-1]["id"]
        elif cfg.null_list_ids:
            page["last_id"] = None
        page["has_more"] = result["has_more"]
        return page

    def error_body(self, exc: ApiError) -> Any:
        message = exc.message
        if exc.status == 429:
            seconds = exc.headers.get("retry-after", "1")
            message = f"Rate limit is exceeded. Try again in {seconds} seconds."
        # Foundry fills `code` on every error; Azure's throttling answers carry the status as the code.
        code = "429" if exc.status == 429 else exc.code or FOUNDRY_CODES.get(exc.status, str(exc.status))
        return {"error": {"code": code, "message": message}}

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        out = {k: v for k, v in headers.items() if not k.startswith("x-ratelimit-")}
        if "retry-after-ms" in out:
            out["x-ms-retry-after-ms"] = out.pop("retry-after-ms")
        return out


class Lookalike(Flavor):
    name = "lookalike"
    # Routes myla 0.2.40 does not have, each answered the way a FastAPI app answers a missing route.
    MISSING = {
        "/v1/files": (405, "Method Not Allowed", {"allow": "POST"}),
        "/v1/files/{file_id}": (501, "Not Implemented", {}),
        "/v1/files/{file_id}/content": (404, "Not Found", {}),
        "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}": (404, "Not Found", {}),
    }

    def not_found(self, method: str, path: str) -> ApiError:
        return ApiError(404, "Not Found")

    def refuse(self, method: str, template: str, path: str) -> None:
        if template.startswith("/v1/vector_stores"):
            raise ApiError(404, "Not Found")
        if method != "GET":  # uploads and thread creation exist; only their reads are missing
            return
        if template == "/v1/threads":
            raise ApiError(405, "Method Not Allowed", headers={"allow": "POST"})
        if template in self.MISSING:
            status, message, headers = self.MISSING[template]
            raise ApiError(status, message, headers=headers)

    def _object(self, obj: Any) -> Any:
        if not isinstance(obj, dict):
            return obj
        out = {k: v * 1000 if k.endswith("_at") and type(v) is int else v for k, v in obj.items()}
        if out.get("object") == "thread.message":
            out["content"] = [self._part(out["id"], p) for p in out["content"]]
        return out

    def _part(self, message_id: str, part: Obj) -> Obj:
        if part["type"] != "text":
            return part
        value = part["text"]["value"]
        coin = unit(self.seed, "lookalike-text", message_id)
        text: Any = [{"value": value}] if coin < 1 / 3 else value if coin < 2 / 3 else {"value": value}
        return {"type": "text", "text": text}

    def shape(self, cfg: SandboxConfig, template: str, result: Any) -> Any:
        if not isinstance(result, dict) or not template.startswith(ASSISTANTS_PREFIXES):
            return result  # chat completions and conversations are the targets, not the look-alike source
        if result.get("object") == "list" and "data" in result:
            if template == STEPS:  # the route exists, and answers nothing even for runs with tools
                return {**result, "data": [], "first_id": None, "last_id": None, "has_more": False}
            return {**result, "data": [self._object(o) for o in result["data"]]}
        return self._object(result)

    def error_body(self, exc: ApiError) -> Any:
        return {"detail": exc.message}

    def truth(self, truth: Obj) -> Obj:
        return {**truth, "served": True, "tool_calls": [], "activities": []}  # steps are never served


class Sunset(Flavor):
    name = "sunset"
    GONE = ("/v1/assistants", "/v1/threads")  # the Assistants API proper; files and stores outlive it

    def admit(
        self, cfg: SandboxConfig, method: str, path: str, query: Query, headers: Mapping[str, str]
    ) -> None:
        if not (path == "/v1" or path.startswith("/v1/")) or path.startswith(self.GONE):
            raise ApiError(404, f"Invalid URL ({method} {path})")

    def truth(self, truth: Obj) -> Obj:
        return {**truth, "served": False}


FLAVOR_CLASSES: dict[str, type[Flavor]] = {f.name: f for f in (Flavor, Foundry, Lookalike, Sunset)}


def make_flavor(cfg: SandboxConfig, tokens: TokenBook) -> Flavor:
    return FLAVOR_CLASSES[cfg.flavor](cfg, tokens)


__all__ = ["API_VERSIONS", "FLAVOR_CLASSES", "FOUNDRY_PATHS", "Flavor", "make_flavor"]
