"""Fallback chains against local fake providers (real HTTP servers on loopback, called with httpx):
a 429 with a retry hint moves the call to the next provider in the same attempt and the first is not
called again until its hint has passed; a validation error never moves on; a degraded result ends the
chain, marked degraded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from error_handling.sealing import generate_key
from function_runner.resilience.fallbacks import AllProvidersFailed, Provider
from function_runner.runtime import Runtime
from function_runner.settings import Settings
from tests.support.fake_provider import FakeProvider
from tests.support.waiting import wait_until


@pytest.fixture
def runtime(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        database_url=pg_url, broker_url=redis_url, encryption_key=SecretStr(generate_key()), data_dir=tmp_path
    )
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


def rate_limited(retry_after: str) -> FakeProvider:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    return FakeProvider(429, body, {"retry-after": retry_after})


def test_a_429_moves_the_call_to_the_next_provider_and_cools_the_first_until_its_hint(
    runtime: Runtime, providers: list[FakeProvider]
) -> None:
    first, second = rate_limited("30"), FakeProvider(200, {"answer": "from b"})
    providers += [first, second]
    chain = runtime.fallbacks.chain("chat", [Provider("fake-a", first.ask), Provider("fake-b", second.ask)])

    result = chain.call("hello")
    assert (result.value, result.provider, result.degraded) == ("from b", "fake-b", False)
    assert result.passed_over == (("fake-a", "rate_limited"),)
    again = chain.call("hello again")
    assert again.provider == "fake-b" and again.passed_over[0][1].startswith("cooling down")
    assert (first.calls, second.calls) == (1, 2)  # the first is not called again within its hint


def test_the_first_provider_is_called_again_once_its_hint_passed(
    runtime: Runtime, providers: list[FakeProvider]
) -> None:
    first, second = rate_limited("1"), FakeProvider(200, {"answer": "b"})
    providers += [first, second]
    chain = runtime.fallbacks.chain("chat", [Provider("fake-c", first.ask), Provider("fake-d", second.ask)])
    chain.call("x")
    first.status, first.body, first.headers = 200, {"answer": "a"}, {}  # it recovers
    wait_until(lambda: chain.call("y").provider == "fake-c", timeout=10, what="the first provider to be used again")
    assert first.calls == 2


def test_a_validation_error_does_not_move_on_and_the_degraded_result_ends_the_chain(
    runtime: Runtime, providers: list[FakeProvider]
) -> None:
    invalid = FakeProvider(
        400, {"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error", "code": None}}
    )
    down = FakeProvider(503, {"error": {"message": "overloaded", "type": "server_error"}})
    spare = FakeProvider(200, {"answer": "spare"})
    providers += [invalid, down, spare]
    chain = runtime.fallbacks.chain("chat", [Provider("fake-e", invalid.ask), Provider("fake-f", spare.ask)])
    with pytest.raises(httpx.HTTPStatusError):
        chain.call("bad request")
    assert spare.calls == 0

    cached = runtime.fallbacks.chain(
        "chat", [Provider("fake-g", down.ask)], degraded=lambda prompt: f"cached answer to {prompt}"
    )
    result = cached.call("q")
    assert (result.value, result.provider, result.degraded) == ("cached answer to q", None, True)
    bare = runtime.fallbacks.chain("chat", [Provider("fake-h", down.ask)])
    with pytest.raises(AllProvidersFailed) as failed:
        bare.call("q")
    assert "fake-h: service_unavailable" in str(failed.value)


def test_a_chain_declared_in_the_settings(
    pg_url: str, redis_url: str, tmp_path: Path, providers: list[FakeProvider]
) -> None:
    from error_handling.exceptions import ConfigurationError

    down, up = rate_limited("5"), FakeProvider(200, {"answer": "second"})
    providers += [down, up]
    settings = Settings(
        database_url=pg_url,
        broker_url=redis_url,
        encryption_key=SecretStr(generate_key()),
        data_dir=tmp_path,
        fallbacks={"chat": ["fake-x", "fake-y", "cache"], "broken": ["cache", "fake-x"]},
    )
    runtime = Runtime(settings)
    registered = {"fake-x": down.ask, "fake-y": up.ask}
    chat = runtime.fallbacks.from_settings("chat", providers=registered, degraded={"cache": lambda p: "cached"})
    assert chat.call("q").provider == "fake-y"
    with pytest.raises(ConfigurationError, match="last link"):
        runtime.fallbacks.from_settings("broken", providers=registered, degraded={"cache": lambda p: "cached"})
    with pytest.raises(ConfigurationError, match="no fallback chain"):
        runtime.fallbacks.from_settings("search", providers=registered)
    runtime.close()
