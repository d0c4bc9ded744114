"""The request path's rules, one at a time, without a network: when a host is given up, and that
no wait outlives the probe or a stop."""

from __future__ import annotations

import asyncio

import pytest
from hosts import LookAlike, SilentHost, closed_port

from migrator.errors import Interrupted, SourceRefusedError, UnreachableError
from migrator.http import (
    DEAD_AFTER_FAILURES,
    DEAD_AFTER_SECONDS,
    HostHealth,
    RequestPath,
    Stop,
    host_of,
    json_object,
)
from migrator.source.client import REFUSALS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_host_that_never_answered_is_given_up_after_ten_failures_or_a_minute():
    clock = Clock()
    health = HostHealth(clock)
    assert not any(health.failure(clock.now) for _ in range(DEAD_AFTER_FAILURES - 1))
    assert health.failure(clock.now)
    silent = HostHealth(clock)
    sent = clock.now
    clock.now += DEAD_AFTER_SECONDS  # one request that waited a whole minute for nothing
    assert silent.failure(sent)


def test_a_host_that_answered_is_given_up_only_on_repeated_failures_for_a_minute():
    clock = Clock()
    health = HostHealth(clock)
    health.answer()
    sent = clock.now
    clock.now += 2 * DEAD_AFTER_SECONDS
    assert not health.failure(sent)  # one slow request that timed out proves little
    assert health.failure(clock.now)  # a second failure, a minute and more after the first was sent
    health.answer()
    assert health.streak == 0 and not health.failure(clock.now)
    # Many quick failures are not enough: the host had answered a moment ago.
    assert not any(health.failure(clock.now) for _ in range(50))


def test_the_host_named_never_carries_credentials():
    assert host_of("http://user:secret@127.0.0.1:9/v1") == "127.0.0.1:9"
    assert host_of("https://api.example.com/v1") == "api.example.com"
    assert host_of("http://[::1]:8080/v1") == "[::1]:8080"


def _path(base_url: str, stop: Stop | None = None) -> tuple[RequestPath, object]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=30)
    path = RequestPath(str(client.base_url), flag="--base-url", refusals=REFUSALS, stop=stop)
    return path, client


def test_a_probe_that_fails_to_connect_releases_everyone_and_the_host_is_given_up():
    async def scenario() -> list[BaseException]:
        path, client = _path(f"http://127.0.0.1:{closed_port()}/v1")
        try:
            calls = [path.send(lambda: client.models.with_raw_response.list()) for _ in range(12)]
            return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)
        finally:
            await client.close()

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, UnreachableError) for o in outcomes), outcomes
    assert "connection refused" in str(outcomes[0])


def test_a_stop_ends_every_wait_even_on_a_host_that_never_answers():
    async def scenario() -> tuple[list[BaseException], float]:
        stop = Stop()
        with SilentHost() as host:
            path, client = _path(host.base_url, stop)
            try:
                calls = [
                    asyncio.ensure_future(path.send(lambda: client.models.with_raw_response.list()))
                    for _ in range(5)
                ]
                await asyncio.sleep(0.5)  # the probe is on the wire, the others wait for it
                loop = asyncio.get_running_loop()
                began = loop.time()
                stop.set()
                outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)
                return outcomes, loop.time() - began
            finally:
                await client.close()

    outcomes, _ = asyncio.run(scenario())
    assert all(isinstance(o, Interrupted) for o in outcomes), outcomes
    assert sorted(o.sent for o in outcomes) == [False] * 4 + [True]  # only the probe had gone out


def test_a_refusal_ends_every_request_of_the_run():
    refused = (401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
    with LookAlike({"GET /v1/models": refused}) as host:

        async def scenario() -> list[BaseException]:
            path, client = _path(host.base_url)
            try:
                calls = [path.send(lambda: client.models.with_raw_response.list()) for _ in range(6)]
                return await asyncio.gather(*calls, return_exceptions=True)
            finally:
                await client.close()

        outcomes = asyncio.run(scenario())
        asked = host.requests["GET /v1/models"]
    assert all(isinstance(o, SourceRefusedError) for o in outcomes), outcomes
    assert asked == 1  # the others heard it without asking


def test_json_object_refuses_what_is_not_one_object():
    assert json_object(b'{"a": 1}') == {"a": 1}
    for body in (b"<html>", b"[1]", b'"x"'):
        with pytest.raises(Exception, match="not"):
            json_object(body)
