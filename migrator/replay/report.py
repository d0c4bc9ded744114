"""The replay report: acceptance, tool-call parity, text similarity, latency, tokens and cost.

Built one request at a time from the request (what was sent, the original answer) and its ledger
row (what came back), so the same archive gives the same report whether the answers came from a
live replay, from Batch API result files, or from the ledger alone, offline. Only figures a run
cannot reproduce (latency, what this run sent) differ, and they sit apart (`latency_ms`, `run`).

    acceptance = accepted / (accepted + rejected)          the provider's verdicts
    parity     = tool-call turns answered with the same calls and arguments / tool-call turns
    similarity = mean (and median) text similarity of text turns (see compare.py)
"""

from __future__ import annotations

import statistics
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from migrator.archive import ReplayRow
from migrator.errors import ExitCode
from migrator.replay.compare import answer_of, compare, reply_message
from migrator.replay.pricing import PriceTable
from migrator.replay.requests import BuildProblem, ReplayRequest
from migrator.replay.responses import StoreBinding

__all__ = ["ReplayReport", "render_report"]

EXAMPLES = 20  # examples kept per kind; the counts go on
_ERROR_KINDS = 100  # distinct rejection messages counted; more are lumped together


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


@dataclass
class ReplayReport:
    archive: str
    model: str | None
    turns: str
    min_accept: float = 1.0
    min_parity: float = 0.0
    prices: PriceTable = field(default_factory=PriceTable)
    sessions: int = 0
    sessions_without_turn: int = 0
    problems: int = 0
    problem_examples: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    done: int = 0
    rejected: int = 0
    failed: int = 0
    pending: int = 0
    tool_turns: int = 0
    parity_equal: int = 0
    names_equal: int = 0
    tool_answered_with_text: int = 0
    text_turns: int = 0
    text_answered_with_tools: int = 0
    similarities: array = field(default_factory=lambda: array("d"))
    latencies: array = field(default_factory=lambda: array("d"))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_models: set[str] = field(default_factory=set)
    rejection_kinds: Counter[str] = field(default_factory=Counter)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    unmatched_results: int = 0  # batch results no request of this selection claims
    unfinished: list[str] = field(default_factory=list)  # threads not done: left out unless included
    include_unfinished: bool = False
    run: dict[str, Any] = field(default_factory=dict)  # what this invocation did (not reproducible)
    api: str = "chat"  # chat | responses
    # responses: sessions that used file_search, bound to rebuilt stores or left emulated
    search_bound: int = 0
    search_unbound: int = 0
    unbound_stores: set[str] = field(default_factory=set)

    # -- accumulation ----------------------------------------------------------------------------

    def add_session(self, turns: int) -> None:
        self.sessions += 1
        if not turns:
            self.sessions_without_turn += 1

    def add_binding(self, binding: StoreBinding) -> None:
        """A file_search session: bound to rebuilt stores (native file_search) or not (emulated)."""
        if binding.target and not binding.unbound:
            self.search_bound += 1
        else:
            self.search_unbound += 1
            self.unbound_stores.update(binding.unbound)

    def warnings(self) -> list[str]:
        """What the user should know that does not fail the replay."""
        if not self.search_unbound:
            return []
        stores = ", ".join(sorted(self.unbound_stores)) or "none named by its assistant or thread"
        return [
            f"retrieval was not bound for {self.search_unbound:,} file_search session(s): no rebuilt vector "
            f"store for {stores}; their file_search stays an emulated function (run `migrate import ARCHIVE "
            "--to vector-stores` first to bind the native tool)"
        ]

    def add_problem(self, problem: BuildProblem) -> None:
        self.problems += 1
        if len(self.problem_examples) < EXAMPLES:
            self.problem_examples.append(
                {"thread_id": problem.thread_id, "code": problem.code, "detail": problem.detail}
            )

    def add(self, request: ReplayRequest, row: ReplayRow | None) -> None:
        """One selected request and its ledger row (None or unfinished: no answer yet)."""
        self.requests += 1
        state = row.state if row is not None else None
        if row is None or state not in ("done", "rejected", "failed"):
            self.pending += 1
        elif state == "failed":
            self.failed += 1
        elif state == "rejected":
            self.rejected += 1
            self._rejection(request, row)
        else:
            self.done += 1
            self._answer(request, row)

    def _rejection(self, request: ReplayRequest, row: ReplayRow) -> None:
        kind = (row.error or f"{row.status_code}")[:200]
        if kind in self.rejection_kinds or len(self.rejection_kinds) < _ERROR_KINDS:
            self.rejection_kinds[kind] += 1
        else:
            self.rejection_kinds["(other messages)"] += 1
        if len(self.rejections) < EXAMPLES:
            self.rejections.append(
                {
                    "thread_id": request.thread_id,
                    "turn": request.turn,
                    "request_hash": request.request_hash,
                    "status_code": row.status_code,
                    "error": row.error,
                }
            )

    def _answer(self, request: ReplayRequest, row: ReplayRow) -> None:
        try:
            body = orjson.loads(row.response or b"{}")
        except orjson.JSONDecodeError:
            body = {}
        reply = reply_message(body)
        result = compare(request.expected, reply)
        if result.kind == "tool_calls":
            self.tool_turns += 1
            self.parity_equal += bool(result.parity)
            self.names_equal += bool(result.names_equal)
            self.tool_answered_with_text += result.kind_mismatch
            if not result.parity and len(self.mismatches) < EXAMPLES:
                want, got = answer_of(request.expected), answer_of(reply)
                self.mismatches.append(
                    {
                        "thread_id": request.thread_id,
                        "turn": request.turn,
                        "expected": [{"name": n, "arguments": a} for n, a in want.calls],
                        "got": [{"name": n, "arguments": a} for n, a in got.calls],
                    }
                )
        else:
            self.text_turns += 1
            self.text_answered_with_tools += result.kind_mismatch
            self.similarities.append(result.similarity or 0.0)
        if row.latency_ms is not None:
            self.latencies.append(row.latency_ms)
        prompt, completion = row.prompt_tokens or 0, row.completion_tokens or 0
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        cost = self.prices.cost(request.model, prompt, completion)
        if cost is None:
            self.unpriced_models.add(request.model)
        else:
            self.cost_usd += cost

    # -- verdict -----------------------------------------------------------------------------------

    @property
    def acceptance(self) -> float | None:
        return _rate(self.done, self.done + self.rejected)

    @property
    def parity(self) -> float | None:
        return _rate(self.parity_equal, self.tool_turns)

    def reasons(self) -> list[str]:
        """Why the replay needs attention (empty: it passed)."""
        out = []
        if self.acceptance is not None and self.acceptance < self.min_accept:
            out.append(f"acceptance {self.acceptance:.2%} < --min-accept {self.min_accept:.2%}")
        if self.parity is not None and self.parity < self.min_parity:
            out.append(f"tool-call parity {self.parity:.2%} < --min-parity {self.min_parity:.2%}")
        if self.failed or self.pending:
            out.append(
                f"{self.failed + self.pending:,} request(s) have no answer yet "
                "(run the same command again to resume)"
            )
        if self.problems:
            out.append(f"{self.problems:,} session(s) could not be turned into requests")
        if self.unfinished and not self.include_unfinished:
            shown = ", ".join(self.unfinished[:5]) + (" …" if len(self.unfinished) > 5 else "")
            out.append(
                f"{len(self.unfinished):,} thread(s) not done were left out ({shown}; "
                "--include-unfinished sends their last session)"
            )
        return out

    def exit_code(self) -> ExitCode:
        return ExitCode.ATTENTION if self.reasons() else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        """The `--json` document."""
        sims = list(self.similarities)
        lat = list(self.latencies)
        return {
            "archive": self.archive,
            "api": self.api,
            "model": self.model,
            "turns": self.turns,
            "file_search": {
                "bound_sessions": self.search_bound,
                "unbound_sessions": self.search_unbound,
                "unbound_stores": sorted(self.unbound_stores),
            },
            "warnings": self.warnings(),
            "sessions": {
                "selected": self.sessions,
                "without_assistant_turn": self.sessions_without_turn,
                "unbuildable": self.problems,
                "unbuildable_examples": self.problem_examples,
                "unfinished": self.unfinished,
                "unfinished_included": self.include_unfinished,
            },
            "requests": {
                "selected": self.requests,
                "accepted": self.done,
                "rejected": self.rejected,
                "failed": self.failed,
                "pending": self.pending,
            },
            "acceptance": self.acceptance,
            "parity": {
                "tool_call_turns": self.tool_turns,
                "equal": self.parity_equal,
                "names_equal": self.names_equal,
                "answered_with_text": self.tool_answered_with_text,
                "rate": self.parity,
            },
            "text": {
                "turns": self.text_turns,
                "similarity_mean": round(statistics.fmean(sims), 6) if sims else None,
                "similarity_median": round(statistics.median(sims), 6) if sims else None,
                "identical": sum(1 for s in sims if s >= 1.0),
                "answered_with_tools": self.text_answered_with_tools,
            },
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "estimated_cost_usd": round(self.cost_usd, 6),
                "unpriced_models": sorted(self.unpriced_models),
            },
            "rejections": {
                "by_message": dict(self.rejection_kinds.most_common(20)),
                "examples": self.rejections,
            },
            "parity_mismatches": self.mismatches,
            "unmatched_results": self.unmatched_results,
            "thresholds": {"min_accept": self.min_accept, "min_parity": self.min_parity},
            "needs_attention": self.reasons(),
            "exit_code": int(self.exit_code()),
            # Not reproducible across runs: how long answers took, and what this invocation did.
            "latency_ms": {
                "count": len(lat),
                "p50": round(_percentile(lat, 0.5), 1),
                "p95": round(_percentile(lat, 0.95), 1),
                "max": round(max(lat), 1),
            }
            if lat
            else None,
            "run": self.run,
        }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def render_report(report: ReplayReport, console: Console, *, examples: int = 5) -> None:
    """The terminal summary."""
    doc = report.to_dict()
    table = Table(
        title=f"migrate replay {report.archive} → {report.model or 'session models'}", title_justify="left"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    req = doc["requests"]
    rows = [
        ("sessions", f"{report.sessions:,}"),
        ("requests (turns: " + report.turns + ")", f"{report.requests:,}"),
        ("accepted", f"{req['accepted']:,}"),
        ("rejected", f"{req['rejected']:,}"),
        ("no answer (failed / pending)", f"{req['failed']:,} / {req['pending']:,}"),
        ("acceptance", _pct(report.acceptance)),
        ("tool-call parity", f"{_pct(report.parity)} of {report.tool_turns:,} tool-call turns"),
        ("same tool names", f"{_pct(_rate(report.names_equal, report.tool_turns))}"),
        (
            "text similarity (mean / median)",
            f"{doc['text']['similarity_mean'] if doc['text']['similarity_mean'] is not None else '—'} / "
            f"{doc['text']['similarity_median'] if doc['text']['similarity_median'] is not None else '—'}"
            f" over {report.text_turns:,} text turns",
        ),
        ("tokens (prompt / completion)", f"{report.prompt_tokens:,} / {report.completion_tokens:,}"),
        (
            "estimated cost",
            f"${report.cost_usd:,.4f}" + (" (some models unpriced)" if report.unpriced_models else ""),
        ),
    ]
    if doc["latency_ms"]:
        lat = doc["latency_ms"]
        rows.append(("latency p50 / p95 / max", f"{lat['p50']:,} / {lat['p95']:,} / {lat['max']:,} ms"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for message, n in report.rejection_kinds.most_common(examples):
        console.print(f"  rejected ×{n:,}: {message}", markup=False, highlight=False, soft_wrap=True)
    for m in report.mismatches[:examples]:
        want = ", ".join(c["name"] for c in m["expected"]) or "(text)"
        got = ", ".join(c["name"] for c in m["got"]) or "(text)"
        console.print(
            f"  parity {m['thread_id']} turn {m['turn']}: expected {want}; got {got}",
            markup=False,
            soft_wrap=True,
        )
    for p in report.problem_examples[:examples]:
        console.print(
            f"  unbuildable {p['thread_id']}: {p['code']}: {p['detail']}", markup=False, soft_wrap=True
        )
    if report.run:
        console.print(
            "this run: "
            + ", ".join(f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k.replace('_', ' ')} {v}"
                        for k, v in report.run.items()),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )  # fmt: skip
    for warning in report.warnings():
        console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    reasons = report.reasons()
    if reasons:
        console.print("[red]needs attention[/]: " + "; ".join(reasons), highlight=False)
    else:
        console.print("[green]passed[/]", highlight=False)
