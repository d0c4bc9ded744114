"""Each knob of the sandbox driven through the real openai SDK: what a client actually sees."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import openai
import pytest
from test_sandbox_support import Raw, quiet, schema_errors, sdk

from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids

THREADS, SEED = 12, 5
DEFAULTS = SandboxConfig(threads=THREADS, seed=SEED, hang_seconds=0.6).knobs()
DEFAULTS.pop("threads"), DEFAULTS.pop("seed"), DEFAULTS.pop("api_key")


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, hang_seconds=0.6)) as srv:
        yield srv


@pytest.fixture
def srv(server: SandboxServer) -> Iterator[SandboxServer]:
    """The module's server with every knob back to its default after each test."""
    yield server
    server.configure(**DEFAULTS, api_key=None)
    server.reset_stats()


@pytest.fixture
def client(srv: SandboxServer) -> Iterator[openai.OpenAI]:
    c = sdk(srv.base_url, timeout=0.3)
    yield c
    c.close()


TID = thread_ids(THREADS, SEED)[0]
LONG = thread_ids(THREADS, SEED)[3]  # the showcase long thread: more than 300 messages


def test_rate_limit_is_a_rate_limit_error_with_openai_headers(srv, client):
    srv.configure(rps_limit=20)  # burst of 2
    with quiet(), pytest.raises(openai.RateLimitError) as info:
        for _ in range(10):
            ok = client.beta.threads.with_raw_response.retrieve(TID)
            assert ok.headers["x-ratelimit-limit-requests"] == "1200"  # sent on successes too
    headers = info.value.response.headers
    assert int(headers["retry-after-ms"]) >= 1 and int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-limit-requests"] == "1200"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("ms")
    assert info.value.code == "rate_limit_exceeded"
    assert srv.stats()["rate_limited"] == 1


def test_server_errors_are_api_status_errors(srv, client):
    srv.configure(fault_rate=1.0)
    statuses = set()
    with quiet():
        for _ in range(12):
            with pytest.raises(openai.InternalServerError) as info:
                client.beta.threads.retrieve(TID)
            statuses.add(info.value.status_code)
            assert not schema_errors("ErrorResponse", info.value.response.json())
    assert statuses == {500, 502, 503}
    status, stats = Raw(srv.port).get("/_sandbox/stats")  # the control plane is never faulted
    assert status == 200 and stats["faults"] == {"server_error": 12} and stats["total"] == 12


def test_a_hang_is_a_timeout(srv, client):
    srv.configure(timeout_rate=1.0, hang_seconds=5.0)
    start = time.monotonic()
    with quiet(), pytest.raises(openai.APITimeoutError):
        client.beta.threads.retrieve(TID)
    assert time.monotonic() - start < srv.config.hang_seconds  # the client gave up; the server still hung
    assert srv.stats()["by_status"] == {"timeout": 1}


@pytest.mark.parametrize("knob", ["drop_rate", "truncate_rate"])
def test_dropped_and_truncated_answers_are_connection_errors(srv, client, knob):
    srv.configure(**{knob: 1.0})
    with quiet(), pytest.raises(openai.APIConnectionError) as info:
        client.beta.threads.retrieve(TID)
    assert not isinstance(info.value, openai.APITimeoutError)
    assert srv.stats()["faults"] == {knob.removesuffix("_rate"): 1}


def test_truncated_body_declares_the_full_length(srv):
    srv.configure(truncate_rate=1.0)
    raw = Raw(srv.port)
    raw.conn.request("GET", f"/v1/threads/{TID}")
    resp = raw.conn.getresponse()
    declared = int(resp.getheader("content-length"))
    with pytest.raises(Exception) as info:  # http.client.IncompleteRead
        resp.read()
    assert type(info.value).__name__ == "IncompleteRead"
    assert len(info.value.partial) == declared // 2


def test_invalid_json_is_a_200_that_does_not_parse(srv, client):
    srv.configure(invalid_json_rate=1.0)
    with quiet():
        raw = client.beta.threads.with_raw_response.retrieve(TID)
        assert raw.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            raw.parse()
        with pytest.raises(json.JSONDecodeError):
            client.beta.threads.retrieve(TID)


def test_empty_page_after_the_last_real_page(srv, client):
    # Pages, not hangs: the fixture's 0.3 s timeout (for the tests of hosts that never answer) timed
    # out a 100-message page of the long thread on a loaded machine.
    client = client.with_options(timeout=10)
    srv.configure(empty_page_rate=1.0)
    with quiet():
        first = client.beta.threads.messages.list(TID, limit=100, order="asc")
        assert first.data and first.has_more is True
        second = client.beta.threads.messages.list(TID, limit=100, order="asc", after=first.data[-1].id)
        assert second.data == [] and second.has_more is True
        # The SDK's own iterator stops there (no item to take a cursor from) and loses nothing.
        assert [m.id for m in client.beta.threads.messages.list(TID, limit=100, order="asc")] == [
            m.id for m in first.data
        ]
        # A long thread pages truthfully until the end, then the same empty page.
        ids, after = [], None
        for _ in range(10):
            page = client.beta.threads.messages.list(
                LONG, limit=100, order="asc", **({"after": after} if after else {})
            )
            if not page.data:
                break
            assert page.has_more is True
            ids += [m.id for m in page.data]
            after = page.data[-1].id
        assert len(ids) == len(set(ids)) > 300 and page.has_more is True


def test_repeating_cursor_answers_the_same_page_forever(srv, client):
    srv.configure(repeat_cursor_rate=1.0)
    with quiet():
        first = client.beta.threads.messages.list(TID, limit=3, order="asc")
        again = client.beta.threads.messages.list(TID, limit=3, order="asc", after=first.data[-1].id)
    assert first.has_more is True and again.has_more is True
    assert [m.id for m in again.data] == [m.id for m in first.data]
    raw = Raw(srv.port)
    _, page = raw.get(f"/v1/threads/{TID}/messages", limit=3)
    _, repeat = raw.get(f"/v1/threads/{TID}/messages", limit=3, after=page["last_id"])
    assert repeat == page and repeat["has_more"] is True  # same last_id: the cursor never advances


def test_fault_threads_are_a_seeded_fraction(srv):
    raw = Raw(srv.port)
    srv.configure(empty_page_rate=0.5)

    def affected() -> set[str]:
        out = set()
        for tid in thread_ids(THREADS, SEED):
            _, page = raw.get(f"/v1/threads/{tid}/messages", limit=100)
            if page["has_more"] and len(page["data"]) < 100:
                out.add(tid)
        return out

    chosen = affected()
    assert 0 < len(chosen) < THREADS and affected() == chosen


def test_wrong_key_is_an_authentication_error(srv):
    srv.configure(api_key="the-right-key")
    with quiet():
        with pytest.raises(openai.AuthenticationError) as info:
            sdk(srv.base_url, key="a-wrong-key").beta.threads.retrieve(TID)
        assert info.value.code == "invalid_api_key"
        assert "a-wrong-key" not in info.value.message  # the key is masked
        assert sdk(srv.base_url, key="the-right-key").beta.threads.retrieve(TID).id == TID


def test_gone_is_410_on_assistants_paths_only(srv, client):
    srv.configure(gone=True)
    with quiet():
        for call in (
            lambda: client.beta.assistants.list(),
            lambda: client.beta.threads.retrieve(TID),
            lambda: client.vector_stores.list(),
            lambda: client.files.list(),
        ):
            with pytest.raises(openai.APIStatusError) as info:
                call()
            assert info.value.status_code == 410 and type(info.value) is openai.APIStatusError
    answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "still there?"}])
    assert answer.choices[0].message.content


def test_assistants_file_download_is_refused(srv, client):
    with quiet():
        store = client.vector_stores.list(order="asc").data[0]
        file_id = client.vector_stores.files.list(store.id).data[0].id
    with pytest.raises(openai.BadRequestError) as info:
        client.files.content(file_id)
    assert info.value.message.endswith("Not allowed to download files of purpose: assistants.")
    assert info.value.body["message"] == "Not allowed to download files of purpose: assistants."
    page = client.vector_stores.files.content(file_id, vector_store_id=store.id)
    assert page.data[0].type == "text" and page.data[0].text


def test_latency_is_added_to_every_api_answer(srv, client):
    srv.configure(latency_ms=1500)
    patient = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0, timeout=10)
    start = time.monotonic()
    with quiet():
        patient.beta.threads.retrieve(TID)
    assert time.monotonic() - start >= 1.5  # a lower bound: load can only make it later
    start = time.monotonic()
    Raw(srv.port).get("/_sandbox/stats")
    assert time.monotonic() - start < 1.5  # the control plane is never delayed


def test_fault_sequence_is_seeded(srv):
    def sequence() -> list[int]:
        raw = Raw(srv.port)
        out = [raw.request("GET", f"/v1/threads/{TID}")[0] for _ in range(40)]
        raw.close()
        return out

    srv.configure(fault_rate=0.4)
    srv.reset_stats()
    first = sequence()
    srv.reset_stats()
    assert sequence() == first and 200 in first and len(set(first)) > 1


def test_bad_knobs_are_refused(srv):
    raw = Raw(srv.port)
    for knobs in (
        {"fault_rate": 1.5},
        {"drop_rate": -0.1},
        {"nope": 1},
        {"threads": 99},
        {"fault_rate": 0.6, "drop_rate": 0.6},
    ):
        status, body = raw.post("/_sandbox/config", knobs)
        assert status == 400 and body["error"]["message"], knobs
    with pytest.raises(ValueError, match="fault-rate"):
        SandboxConfig(fault_rate=2)
    with pytest.raises(ValueError, match="unknown knob"):
        srv.configure(bogus=True)
