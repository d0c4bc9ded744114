"""Every knob of the sandbox, all off by default, checked in one place."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from typing import Any

# What the server pretends to be: OpenAI's Assistants v2 (the default), an Azure AI Foundry classic-agents
# project, a self-hosted look-alike with its quirks, or OpenAI after the 2026-08-26 sunset.
FLAVORS = ("openai", "foundry", "lookalike", "sunset")
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

RATE_KNOBS = (
    "fault_rate",
    "timeout_rate",
    "drop_rate",
    "truncate_rate",
    "invalid_json_rate",
    "empty_page_rate",
    "repeat_cursor_rate",
    "replay_drift",
    "ingest_fail_rate",
)
# Per-request faults share one draw, so together they may not exceed 1.
REQUEST_FAULTS = ("fault_rate", "timeout_rate", "drop_rate", "truncate_rate", "invalid_json_rate")
# Knobs fixed when the server starts: they decide the corpus.
CORPUS_KNOBS = ("threads", "seed", "polite_clock", "flavor", "project")


@dataclass
class SandboxConfig:
    threads: int = 200
    seed: int = 1
    # Each object its own second, instead of one second for a whole turn as the API does.
    polite_clock: bool = False
    api_key: str | None = None  # when set, any other bearer gets 401 invalid_api_key
    latency_ms: float = 0.0  # added before every /v1 answer
    rps_limit: float | None = None  # token bucket; burst is a tenth of a second of the rate
    fault_rate: float = 0.0  # 500/502/503 with an ErrorResponse body
    timeout_rate: float = 0.0  # hang `hang_seconds`, then close without answering
    hang_seconds: float = 3.0
    drop_rate: float = 0.0  # close the connection without a response
    truncate_rate: float = 0.0  # declare the full Content-Length, send half the body, close
    invalid_json_rate: float = 0.0  # 200 with a body that is not JSON
    empty_page_rate: float = 0.0  # fraction of threads whose message list ends with has_more + an empty page
    repeat_cursor_rate: float = 0.0  # fraction of threads whose message list repeats its first page forever
    gone: bool = False  # 410 Gone on every Assistants path (assistants, threads, vector stores, files)
    replay_drift: float = 0.0  # fraction of chat-completion replays answered differently from the corpus
    null_list_ids: bool = False  # empty lists answer first_id/last_id null (like the live API) instead of ""
    # The target side (uploads.py, stores.py): a file attached to a vector store answers `in_progress` to
    # its create and to its first `ingest_polls` reads, and also finishes once `ingest_seconds` (when > 0)
    # have passed; `ingest_fail_rate` of them (seeded by store and file) end `failed` with a last_error.
    ingest_polls: int = 2
    ingest_seconds: float = 0.0
    ingest_fail_rate: float = 0.0
    flavor: str = "openai"  # one of FLAVORS; decides the routes, the wire shapes and (foundry) the corpus
    project: str = "sandbox-project"  # foundry: served under /api/projects/<project>
    token: str | None = None  # foundry: a static bearer token accepted beside the minted ones
    token_ttl_requests: int | None = None  # foundry: every token answers 401 expired after N requests
    missing_role: bool = False  # foundry: the caller lacks "Azure AI User": 403 PermissionDenied

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the knob and the accepted range."""
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"threads must be an integer >= 0, got {self.threads!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.polite_clock, bool):
            raise ValueError(f"polite-clock must be true or false, got {self.polite_clock!r}")
        for name in RATE_KNOBS:
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name.replace('_', '-')} must be a number between 0 and 1, got {value!r}")
        total = sum(getattr(self, n) for n in REQUEST_FAULTS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"the per-request fault rates add up to {total:g}; their sum must be <= 1")
        if not isinstance(self.latency_ms, int | float) or self.latency_ms < 0:
            raise ValueError(f"latency-ms must be >= 0, got {self.latency_ms!r}")
        if (
            not isinstance(self.ingest_polls, int)
            or isinstance(self.ingest_polls, bool)
            or self.ingest_polls < 0
        ):
            raise ValueError(f"ingest-polls must be an integer >= 0, got {self.ingest_polls!r}")
        if (
            not isinstance(self.ingest_seconds, int | float)
            or isinstance(self.ingest_seconds, bool)
            or self.ingest_seconds < 0
        ):
            raise ValueError(f"ingest-seconds must be >= 0, got {self.ingest_seconds!r}")
        if not isinstance(self.hang_seconds, int | float) or self.hang_seconds < 0:
            raise ValueError(f"hang-seconds must be >= 0, got {self.hang_seconds!r}")
        if self.rps_limit is not None and (
            not isinstance(self.rps_limit, int | float)
            or isinstance(self.rps_limit, bool)
            or self.rps_limit <= 0
        ):
            raise ValueError(f"rps-limit must be a number > 0 (or unset), got {self.rps_limit!r}")
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise ValueError("api-key must be a string")
        if self.flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, got {self.flavor!r}")
        if not isinstance(self.project, str) or not PROJECT_NAME.match(self.project):
            raise ValueError(
                f"project must be 1-64 letters, digits, '-' or '_' (starting with a letter or digit), "
                f"got {self.project!r}"
            )
        if self.token is not None and (not isinstance(self.token, str) or not self.token.strip()):
            raise ValueError("token must be a non-empty string")
        ttl = self.token_ttl_requests
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1):
            raise ValueError(f"token-ttl-requests must be an integer >= 1 (or unset), got {ttl!r}")
        if not isinstance(self.missing_role, bool):
            raise ValueError(f"missing-role must be true or false, got {self.missing_role!r}")

    def updated(self, knobs: dict[str, Any]) -> SandboxConfig:
        """A validated copy with `knobs` applied; corpus knobs and unknown names are refused."""
        known = {f.name for f in fields(self)}
        for name in knobs:
            if name not in known:
                raise ValueError(
                    f"unknown knob {name!r}; known knobs: {', '.join(sorted(known - set(CORPUS_KNOBS)))}"
                )
            if name in CORPUS_KNOBS and knobs[name] != getattr(self, name):
                raise ValueError(f"{name} decides the corpus and cannot change while the server runs")
        return dataclasses.replace(self, **knobs)

    def knobs(self) -> dict[str, Any]:
        """The knobs as JSON, without the API key or the token themselves."""
        out = dataclasses.asdict(self)
        out["api_key"] = "set" if self.api_key else None
        out["token"] = "set" if self.token else None
        return out
