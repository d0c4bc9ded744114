"""`migrate export --foundry-endpoint` against the sandbox's Foundry flavor over real HTTP: listed threads,
Foundry's pages and tools, Entra ID tokens (static, from azure-identity, refreshed mid-run) and refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from migrator.archive import Archive
from migrator.cli import main
from migrator.export import ExportOptions, run_export
from migrator.http import retry_after_seconds
from migrator.sandbox import SandboxConfig, SandboxServer
from migrator.source import SourceSettings
from migrator.source.entra import EntraTokens

THREADS, SEED = 16, 9  # thread 3 is the long showcase: more than 300 messages, every Foundry tool
CANARY = "sbx-canary-7f3e9d1c2b4a"
COUNTS = (
    "assistants",
    "threads",
    "messages",
    "runs",
    "run_steps",
    "vector_stores",
    "vector_store_files",
    "files",
)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, flavor="foundry")) as srv:
        yield srv


@pytest.fixture
def srv(server: SandboxServer) -> Iterator[SandboxServer]:
    yield server
    server.configure(token=None, token_ttl_requests=None, missing_role=False, rps_limit=None)
    server.reset_stats()


def sessions(path: Path) -> dict[str, dict]:
    with Archive.open(path) as store:
        return {tid: orjson.loads(record) for tid, record in store.sessions.records()}


def counts(path: Path) -> dict[str, int]:
    with Archive.open(path) as store:
        return store.counts()


def export(path: Path, srv: SandboxServer, *args: str) -> int:
    return main(["export", str(path), "--foundry-endpoint", srv.base_url, "--all-threads", *args])


def test_all_threads_with_a_static_token_equals_the_corpus_and_keeps_every_foundry_tool_call(
    srv, tmp_path, capsys, monkeypatch
):
    srv.configure(token=CANARY)
    monkeypatch.setenv("FOUNDRY_TOKEN", CANARY)
    archive = tmp_path / "f.db"
    code = export(archive, srv, "--json")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["failures"] == 0
    got, corpus = counts(archive), srv.corpus_summary()["counts"]
    assert {k: got[k] for k in COUNTS} == {k: corpus[k] for k in COUNTS}
    assert got["threads_done"] == THREADS and got["anomalies"] == 0

    # Every tool call of the source is in its session, as a function call whose arguments and tool
    # message together hold the call's whole payload.
    built = sessions(archive)
    foreign = 0
    for tid in srv.thread_ids():
        messages = built[tid]["messages"]
        answers = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
        calls = {c["id"]: c for m in messages for c in m.get("tool_calls") or ()}
        for call in srv.truth(tid)["tool_calls"]:
            if call["type"] in ("function", "file_search", "code_interpreter"):
                continue
            foreign += 1
            sent = calls[call["id"]]
            assert sent["function"]["name"] == call["type"], sent
            request = json.loads(sent["function"]["arguments"])
            for key, value in call["payload"].items():
                if key in ("output", "outputs", "response_metadata"):
                    shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                    assert (
                        shown in answers[call["id"]]
                        or json.dumps(value, separators=(",", ":"), sort_keys=True) in answers[call["id"]]
                    ), (call, answers[call["id"]])
                else:
                    assert request[key] == value, (key, call)
        names = {t["function"]["name"] for t in built[tid].get("tools") or ()}
        foreign_kinds = {c["type"] for c in srv.truth(tid)["tool_calls"]} - {"function"}
        assert foreign_kinds <= names, (foreign_kinds, names)
    assert foreign >= 12, "the corpus must hold Foundry's own tool calls"

    # The raw step keeps the call verbatim; the token is in no byte of the archive and no output.
    with Archive.open(archive) as store:
        warnings = store.counts()["warnings"]
    assert warnings.get("hosted_tool_emulated", 0) > 0 and "tool_unsupported" not in warnings, warnings
    for part in tmp_path.iterdir():
        assert CANARY.encode() not in part.read_bytes(), part
    assert CANARY not in out.out + out.err


def test_a_rerun_lists_again_adds_new_threads_and_loses_none(srv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOUNDRY_TOKEN", CANARY)
    srv.configure(token=CANARY)
    archive = tmp_path / "f.db"
    with Archive.create(archive) as store:
        store.work.add([("thread_from_an_older_list", {})])
    assert export(archive, srv, "--only", "threads") == 1  # the old thread is gone at the source: missing
    capsys.readouterr()
    work = counts(archive)
    assert (work["threads_done"], work["threads_missing"]) == (THREADS, 1)
    srv.reset_stats()
    assert export(archive, srv, "--only", "threads") == 1
    routes = srv.stats()["by_route"]
    assert any(r.endswith("/threads") for r in routes), routes  # listed again
    assert counts(archive)["threads_done"] == THREADS


class SandboxCredential:
    """A test credential in azure-core's TokenCredential shape: each get_token mints a new sandbox token."""

    def __init__(self, srv: SandboxServer) -> None:
        self.url = srv.root_url + "/_sandbox/token"
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: object) -> SimpleNamespace:
        assert scopes == ("https://ai.azure.com/.default",)
        self.calls += 1
        with urllib.request.urlopen(urllib.request.Request(self.url, method="POST", data=b"")) as answer:
            body = json.loads(answer.read())
        return SimpleNamespace(token=body["access_token"], expires_on=body["expires_on"])


def test_a_token_that_expires_after_n_requests_is_refreshed_and_the_export_completes(srv, tmp_path):
    srv.configure(token_ttl_requests=60)  # more than the 32 requests in flight
    credential = SandboxCredential(srv)
    tokens = EntraTokens(credential=lambda: credential)
    settings = SourceSettings(foundry_endpoint=srv.base_url, tokens=tokens)
    with Archive.create(tmp_path / "f.db") as store:
        summary = run_export(store, None, settings, ExportOptions(all_threads=True))
    assert summary.failures == 0 and summary.threads_done == THREADS, summary
    served = srv.stats()["by_status"]["200"]  # each token serves at most 60 of these
    assert credential.calls >= -(-served // 60) and tokens.refreshes == credential.calls, (
        credential.calls,
        served,
    )
    got, corpus = counts(tmp_path / "f.db"), srv.corpus_summary()["counts"]
    assert {k: got[k] for k in COUNTS} == {k: corpus[k] for k in COUNTS}


def test_default_azure_credential_gets_and_refreshes_tokens_through_a_managed_identity_endpoint(
    srv, tmp_path, capsys, monkeypatch
):
    pytest.importorskip("azure.identity", reason="the [azure] extra; `make install` installs it with [dev]")
    # App Service's managed identity: azure-identity asks IDENTITY_ENDPOINT, here the sandbox's mint.
    monkeypatch.setenv("IDENTITY_ENDPOINT", srv.root_url + "/_sandbox/token")
    monkeypatch.setenv("IDENTITY_HEADER", "sandbox")
    srv.configure(token_ttl_requests=100)
    code = export(tmp_path / "f.db", srv, "--json")
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["failures"] == 0 and summary["threads_done"] == THREADS, summary
    assert "sbx-" not in out.out + out.err  # no token in any output


def test_all_threads_on_a_source_that_cannot_list_threads_exits_2(tmp_path, capsys, sandbox):
    code = main(["export", str(tmp_path / "a.db"), "--base-url", sandbox.base_url, "--all-threads"])
    err = capsys.readouterr().err
    assert code == 2 and "this source cannot list threads" in err and "give --threads FILE" in err, err
    assert "Traceback" not in err


def test_all_threads_after_the_sunset_is_the_sunset(tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=3, flavor="sunset")) as gone:
        code = main(["export", str(tmp_path / "a.db"), "--base-url", gone.base_url, "--all-threads"])
    err = capsys.readouterr().err
    assert code == 3 and "2026-08-26" in err and "cannot list threads" not in err, err


def test_a_missing_role_names_azure_ai_user_and_the_scope(srv, tmp_path, capsys, monkeypatch):
    srv.configure(token=CANARY, missing_role=True)
    monkeypatch.setenv("FOUNDRY_TOKEN", CANARY)
    code = export(tmp_path / "f.db", srv)
    err = capsys.readouterr().err
    assert code == 3 and "Azure AI User" in err and "https://ai.azure.com/.default" in err, err
    assert CANARY not in err


def test_an_unknown_token_is_refused_at_once_naming_the_fix(srv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOUNDRY_TOKEN", CANARY)  # the sandbox was not told this one
    code = export(tmp_path / "f.db", srv)
    err = capsys.readouterr().err
    assert code == 3 and "az login" in err and "FOUNDRY_TOKEN" in err, err
    assert CANARY not in err and srv.stats()["total"] == 1, srv.stats()


def test_a_wrong_api_version_is_one_line_naming_the_default(srv, tmp_path, capsys, monkeypatch):
    srv.configure(token=CANARY)
    monkeypatch.setenv("FOUNDRY_TOKEN", CANARY)
    code = export(tmp_path / "f.db", srv, "--api-version", "2024-02-15-preview")
    err = capsys.readouterr().err
    assert code == 3 and "--api-version 2025-05-01" in err, err


def test_without_azure_identity_the_message_says_how_to_install_it(srv, tmp_path):
    # A fresh interpreter in which azure.identity cannot be imported, as on an install without [azure].
    script = (
        "import sys; sys.modules['azure.identity'] = None\n"
        "from migrator.cli import main\n"
        f"sys.exit(main(['export', {str(tmp_path / 'f.db')!r}, '--foundry-endpoint', {srv.base_url!r}, '--all-threads']))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'migrate-assistants[azure]'" in proc.stderr and "FOUNDRY_TOKEN" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "f.db").exists()


def test_azure_spells_retry_after_ms_its_own_way():
    assert retry_after_seconds({"x-ms-retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "2", "x-ms-retry-after-ms": "250"}) == 0.25


def test_plan_and_verify_against_the_source_read_foundry_too(srv, tmp_path, capsys, monkeypatch):
    srv.configure(token=CANARY)
    monkeypatch.setenv("FOUNDRY_TOKEN", CANARY)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(srv.thread_ids()) + "\n")
    assert main(["plan", "--threads", str(ids), "--foundry-endpoint", srv.base_url, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["sampled"] == THREADS and plan["missing_in_sample"] == 0, plan
    archive = tmp_path / "f.db"
    assert export(archive, srv) == 0
    capsys.readouterr()
    code = main(["verify", str(archive), "--against-source", "--foundry-endpoint", srv.base_url, "--json"])
    out = capsys.readouterr()
    checks = {c["code"]: c for c in json.loads(out.out)["checks"]}
    assert checks["source_fetch_failed"]["status"] == "passed", checks["source_fetch_failed"]
    assert code in (0, 1) and CANARY not in out.out + out.err


def test_a_wrong_project_name_says_check_the_foundry_endpoint(srv, tmp_path, capsys, monkeypatch):
    srv.configure(token=CANARY)
    monkeypatch.setenv("FOUNDRY_TOKEN", CANARY)
    wrong = srv.base_url.replace("sandbox-project", "no-such-project")
    code = main(["export", str(tmp_path / "f.db"), "--foundry-endpoint", wrong, "--all-threads"])
    err = capsys.readouterr().err
    assert code == 3 and "check --foundry-endpoint" in err and "2026-08-26" not in err, err


def test_foundry_429s_are_waited_out_through_x_ms_retry_after_ms(srv, tmp_path, capsys, monkeypatch):
    srv.configure(token=CANARY, rps_limit=30)
    monkeypatch.setenv("FOUNDRY_TOKEN", CANARY)
    code = export(tmp_path / "f.db", srv, "--only", "threads", "--json")
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["failures"] == 0 and summary["threads_done"] == THREADS, summary
    # No x-ratelimit-* headers: the limit is estimated from the answers before the first 429s, so some
    # 429s are the price (5% measured on an idle machine, 10% under heavy load); none costs a thread.
    assert srv.stats()["by_status"].get("429", 0) <= 0.2 * srv.stats()["total"], srv.stats()["by_status"]


def test_no_entra_token_is_one_line_through_the_installed_command(tmp_path):
    """azure-identity logs every credential it tried as a WARNING; before our line that was a dozen
    lines of stderr. Nothing answers the managed identity here (a refused port), no az, no FOUNDRY_TOKEN."""
    pytest.importorskip("azure.identity", reason="the [azure] extra; `make install` installs it with [dev]")
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(tmp_path),
        "IDENTITY_ENDPOINT": f"http://127.0.0.1:{closed}/token",
        "IDENTITY_HEADER": "x",
    }
    migrate = Path(sys.executable).parent / "migrate"
    endpoint = f"http://127.0.0.1:{closed}/api/projects/p"
    result = subprocess.run(
        [str(migrate), "export", str(tmp_path / "f.db"), "--all-threads", "--foundry-endpoint", endpoint],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 3, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: no Entra ID token"), result.stderr
    assert "az login" in lines[0] and "FOUNDRY_TOKEN" in lines[0] and "Traceback" not in result.stderr
