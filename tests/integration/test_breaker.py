"""Circuit breaker rules, per process (a controlled clock) and shared in real Redis by many threads:
it opens once at the failure ratio, admits exactly one half-open probe, and closes on its success."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib

from error_handling.breaker import BreakerConfig, LocalBreaker, RedisBreaker, Transition

CONFIG = BreakerConfig(failure_ratio=0.5, window=30, min_calls=10, open_seconds=30, probe_lease=30)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_local_breaker_opens_at_the_ratio_with_enough_calls_and_probes_once() -> None:
    clock = Clock()
    breaker = LocalBreaker("openai", CONFIG, clock=clock)
    for i in range(9):  # 9 failures: below the minimum of calls
        assert breaker.allow(f"c{i}").allowed
        assert breaker.record(f"c{i}", success=False) is None
    assert breaker.allow("c9").allowed
    opened = breaker.record("c9", success=False)
    assert opened == Transition("openai", "closed", "open", calls=10, failures=10)
    refused = breaker.allow("c10")
    assert not refused.allowed and refused.retry_after == pytest.approx(30)
    clock.now += 31
    probe = breaker.allow("p1")
    assert probe.allowed and probe.probe and probe.transition == Transition("openai", "open", "half_open")
    assert not breaker.allow("p2").allowed  # one probe at a time
    assert breaker.record("p1", success=True) == Transition("openai", "half_open", "closed")
    assert breaker.allow("after").allowed and breaker.state == "closed"


def test_local_breaker_keeps_closed_below_the_ratio_and_forgets_old_calls() -> None:
    clock = Clock()
    breaker = LocalBreaker("s", CONFIG, clock=clock)
    for i in range(20):
        breaker.record(f"ok{i}", success=True)
    for i in range(15):
        assert breaker.record(f"f{i}", success=False) is None  # 15 of 35: below 0.5
    clock.now += 31  # the window slides past all of them
    for i in range(9):
        assert breaker.record(f"g{i}", success=False) is None
    assert breaker.record("g9", success=False) is not None  # 10 of 10 within the window


def test_a_failed_probe_opens_again_and_a_dead_probe_holder_is_replaced() -> None:
    clock = Clock()
    breaker = LocalBreaker("s", BreakerConfig(min_calls=1, open_seconds=5, probe_lease=10), clock=clock)
    breaker.record("a", success=False)
    clock.now += 6
    assert breaker.allow("p1").probe
    assert breaker.record("p1", success=False) == Transition("s", "half_open", "open")
    clock.now += 6
    assert breaker.allow("p2").probe  # p2 takes the probe and dies
    clock.now += 11
    assert breaker.allow("p3").probe  # its lease ran out: p3 probes instead
    assert breaker.record("p2", success=True) is None  # the late answer of the dead holder is ignored


@pytest.fixture
def client(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url)
    yield client
    client.close()


def test_fifty_callers_failing_at_once_open_the_shared_breaker_exactly_once(client: redis_lib.Redis) -> None:
    service = f"svc-{uuid.uuid4().hex[:6]}"
    start = threading.Barrier(50)

    def call(i: int) -> list[Transition]:
        breaker = RedisBreaker(service, CONFIG, client)  # a breaker object per caller, one shared state
        start.wait()
        seen = []
        for j in range(5):
            token = f"{i}-{j}"
            if breaker.allow(token).allowed and (t := breaker.record(token, success=False)) is not None:
                seen.append(t)
        return seen

    with ThreadPoolExecutor(max_workers=50) as pool:
        transitions = [t for found in pool.map(call, range(50)) for t in found]
    assert [(t.from_state, t.to_state) for t in transitions] == [("closed", "open")]
    assert RedisBreaker(service, CONFIG, client).state() == "open"


def test_half_open_admits_exactly_one_probe_cluster_wide_and_its_success_closes(client: redis_lib.Redis) -> None:
    service = f"svc-{uuid.uuid4().hex[:6]}"
    config = BreakerConfig(min_calls=1, open_seconds=0.2, probe_lease=30)
    breaker = RedisBreaker(service, config, client)
    assert breaker.record("first", success=False) is not None
    refused = breaker.allow("early")
    assert not refused.allowed and 0 < refused.retry_after <= 0.2
    threading.Event().wait(0.3)  # the open period of this breaker (its configuration)
    start = threading.Barrier(40)

    def try_probe(i: int) -> tuple[bool, bool, Transition | None]:
        start.wait()
        admission = RedisBreaker(service, config, client).allow(f"p{i}")
        return admission.allowed, admission.probe, admission.transition

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(try_probe, range(40)))
    probes = [i for i, (allowed, probe, _) in enumerate(results) if allowed]
    assert len(probes) == 1 and results[probes[0]][1]
    assert [t for _, _, t in results if t is not None] == [Transition(service, "open", "half_open")]
    assert breaker.record(f"p{probes[0]}", success=True) == Transition(service, "half_open", "closed")
    assert breaker.allow("after").allowed and breaker.state() == "closed"
