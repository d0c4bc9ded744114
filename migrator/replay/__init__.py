"""`migrate replay`: prove the migrated sessions work on the target chat-completions provider.

For each chosen assistant turn of each session, the session's prefix before that turn is sent as a
chat-completions request (live, or through Batch API files) and the answer is compared with the
original: accepted or rejected, tool-call parity, text similarity, latency, tokens and cost. Every
request and its answer live in the archive's replay ledger, keyed by the request hash, so a
resumed replay never sends a completed request twice and the report can be rebuilt offline.

    report = replay_live(archive, TargetSettings(base_url=url, api_key=key), ReplayOptions(model="gpt-4.1"))
    report = dry_run(archive, ReplayOptions())                  # build + validate, send nothing
    summary = write_batches(archive, Path("batch"), options)    # Batch API input files
    report = ingest_results(archive, [Path("out.jsonl")], options)
    report = replay_offline(archive, options)                   # the report from the ledger alone
"""

from migrator.replay.batch import BatchSummary, ingest_results, recorded_selection, write_batches
from migrator.replay.client import TargetRefusedError, TargetSettings
from migrator.replay.compare import Comparison, compare, text_similarity
from migrator.replay.dryrun import DryRunReport, dry_run
from migrator.replay.pricing import DEFAULT_PRICES, Price, PriceTable, load_prices
from migrator.replay.report import ReplayReport, render_report
from migrator.replay.requests import ReplayRequest, request_body, request_hash
from migrator.replay.run import ReplayOptions, replay_live, replay_offline

__all__ = [
    "DEFAULT_PRICES",
    "BatchSummary",
    "Comparison",
    "DryRunReport",
    "Price",
    "PriceTable",
    "ReplayOptions",
    "ReplayReport",
    "ReplayRequest",
    "TargetRefusedError",
    "TargetSettings",
    "compare",
    "dry_run",
    "ingest_results",
    "load_prices",
    "recorded_selection",
    "render_report",
    "replay_live",
    "replay_offline",
    "request_body",
    "request_hash",
    "text_similarity",
    "write_batches",
]
