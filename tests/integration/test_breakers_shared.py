"""Circuit breakers as tasks use them, on real Redis and Postgres: 50 processes failing at once record
exactly one OPEN transition; an open breaker refuses with the time left; Redis cut off mid-run: calls
go on through per-process breakers, and the shared state is used again once it is back; the API lists,
resets and force-opens breakers."""

from __future__ import annotations

import functools
import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import sqlalchemy as sa
from pydantic import SecretStr

from api.main import API_PREFIX
from api.main import create_app as create_api
from error_handling.breaker import BreakerConfig
from error_handling.exceptions import TransientError, ValidationError
from error_handling.sealing import generate_key
from function_runner.resilience.breakers import CircuitOpenError
from function_runner.runtime import Runtime
from function_runner.settings import Settings
from tests.support import services
from tests.support.api_client import local_client
from tests.support.proxy import CuttableProxy
from tests.support.waiting import wait_until

KEY = generate_key()


def make_runtime(pg_url: str, broker_url: str, tmp_path: Path, **config: float) -> Runtime:
    settings = Settings(database_url=pg_url, broker_url=broker_url, encryption_key=SecretStr(KEY), data_dir=tmp_path)
    runtime = Runtime(settings)
    if config:
        runtime.breakers.config = BreakerConfig(**config)  # type: ignore[arg-type]
    return runtime


def events(pg_url: str, service: str) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    sa.text(
                        "SELECT from_state, to_state, cause FROM circuit_breaker_events WHERE service = :s ORDER BY id"
                    ),
                    {"s": service},
                )
            ]
    finally:
        engine.dispose()


def fail_through_breaker(pg_url: str, redis_url: str, tmp_path: str, start: object, results: object) -> None:
    """One process: five calls to a failing service through its breaker; puts how many were refused."""
    runtime = make_runtime(pg_url, redis_url, Path(tmp_path))
    start.wait()  # type: ignore[attr-defined]
    refused = 0
    for _ in range(5):
        try:
            with runtime.breakers.guard("flaky-llm"):
                raise TransientError("upstream 503", reason="service_unavailable")
        except CircuitOpenError:
            refused += 1
        except TransientError:
            pass
    runtime.close()
    results.put(refused)  # type: ignore[attr-defined]


def probe_through_breaker(
    probes: object, release: object, pg_url: str, redis_url: str, tmp_path: str, start: object, results: object
) -> None:
    """One process: one call through the breaker; the call (if admitted) counts itself and stays in
    flight until the test has heard from every other process, then succeeds."""
    runtime = make_runtime(pg_url, redis_url, Path(tmp_path))
    start.wait()  # type: ignore[attr-defined]
    try:
        with runtime.breakers.guard("flaky-llm"):
            with probes.get_lock():  # type: ignore[attr-defined]
                probes.value += 1  # type: ignore[attr-defined]
            results.put("probing")  # type: ignore[attr-defined]
            release.wait(120)  # type: ignore[attr-defined]
        results.put("called")  # type: ignore[attr-defined]
    except CircuitOpenError:
        results.put("refused")  # type: ignore[attr-defined]
    runtime.close()


def run_processes(count: int, target: Any, *args: Any) -> list[Any]:
    """Run ``count`` forked processes released together; collect one result from each."""
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(count), context.Queue()
    processes = [context.Process(target=target, args=(*args, start, results)) for _ in range(count)]
    for process in processes:
        process.start()
    found = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return found


def test_fifty_processes_open_the_breaker_once_then_exactly_one_probes_and_closes_it(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    refused = run_processes(50, fail_through_breaker, pg_url, redis_url, str(tmp_path))
    assert sum(refused) > 0  # once open, the other processes' calls were not made
    assert events(pg_url, "flaky-llm") == [("closed", "open", "failure_ratio")]

    client = redis_lib.Redis.from_url(redis_url)
    client.hset("fr:breaker:flaky-llm", "until", "0")  # the open period is over
    client.close()
    context = multiprocessing.get_context("fork")
    probes, release = context.Value("i", 0), context.Event()
    start, results = context.Barrier(50), context.Queue()
    target = functools.partial(probe_through_breaker, probes, release)
    processes = [
        context.Process(target=target, args=(pg_url, redis_url, str(tmp_path), start, results)) for _ in range(50)
    ]
    for process in processes:
        process.start()
    answers = [results.get(timeout=120) for _ in processes]  # every process has asked; the probe is in flight
    release.set()  # now the probe succeeds
    answers.append(results.get(timeout=120))
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert (answers.count("probing"), answers.count("refused"), answers[-1]) == (1, 49, "called")
    assert probes.value == 1  # exactly one probe ran, cluster-wide
    assert events(pg_url, "flaky-llm") == [
        ("closed", "open", "failure_ratio"),
        ("open", "half_open", "timeout"),
        ("half_open", "closed", "probe"),
    ]


def test_an_open_breaker_refuses_with_the_time_left_and_a_client_error_is_not_a_failure(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(pg_url, redis_url, tmp_path, min_calls=3, open_seconds=60)
    for _ in range(5):  # the service answered: a validation error is the caller's, not the service's
        with pytest.raises(ValidationError), runtime.breakers.guard("svc"):
            raise ValidationError("prompt too long")
    assert runtime.breakers.state("svc") == "closed"
    for _ in range(3):
        with pytest.raises(TransientError), runtime.breakers.guard("svc2"):
            raise TransientError("timeout", reason="timeout")
    with pytest.raises(CircuitOpenError) as refused, runtime.breakers.guard("svc2"):
        pytest.fail("the call must not be made")
    assert 0 < refused.value.retry_after <= 60 and refused.value.reason == "circuit_open"
    runtime.close()


@pytest.fixture
def redis_proxy() -> Iterator[CuttableProxy]:
    proxy = CuttableProxy(services.REDIS_HOST, services.REDIS_PORT)
    yield proxy
    proxy.close()


def test_redis_cut_off_mid_run_falls_back_to_per_process_breakers_then_shares_again(
    pg_url: str, redis_url: str, redis_proxy: CuttableProxy, tmp_path: Path
) -> None:
    db = redis_url.rsplit("/", 1)[1]
    runtime = make_runtime(pg_url, f"redis://127.0.0.1:{redis_proxy.port}/{db}", tmp_path, min_calls=4)
    with runtime.breakers.guard("svc"):
        pass
    assert runtime.breakers.degraded() == set()

    redis_proxy.block()  # Redis unreachable
    ok = 0
    for _ in range(3):
        with runtime.breakers.guard("svc"):
            ok += 1  # calls keep flowing
    assert ok == 3 and runtime.breakers.degraded() == {"svc"}
    for _ in range(4):  # a storm is still bounded: the per-process breaker opens
        with pytest.raises(TransientError), runtime.breakers.guard("svc"):
            raise TransientError("503", reason="service_unavailable")
    with pytest.raises(CircuitOpenError), runtime.breakers.guard("svc"):
        pass
    assert ("closed", "open", "local") in events(pg_url, "svc")

    redis_proxy.unblock()  # back: the shared state (closed) is used again
    with runtime.breakers.guard("svc"):
        pass
    assert runtime.breakers.degraded() == set()
    runtime.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[services.PrivateRedis]:
    server = services.PrivateRedis(str(tmp_path))
    yield server
    server.close()


def test_redis_stopped_mid_run_calls_flow_through_per_process_breakers_and_restarted_shared_state_resumes(
    pg_url: str, private_redis: services.PrivateRedis, tmp_path: Path
) -> None:
    runtime = make_runtime(pg_url, private_redis.url, tmp_path, min_calls=4, open_seconds=300)
    settings = runtime.settings
    for _ in range(2):
        with runtime.breakers.guard("svc"):
            pass
    assert runtime.breakers.degraded() == set()

    private_redis.stop()  # mid-run: the Redis server is gone
    made = 0
    for _ in range(20):
        with runtime.breakers.guard("svc"):
            made += 1  # calls keep flowing, never blocked
    assert made == 20 and runtime.breakers.degraded() == {"svc"}
    with local_client(create_api(settings)) as api:
        assert api.get(f"{API_PREFIX}/health").json()["breakers"] == "per_process"
    failed = 0
    for _ in range(40):  # a storm is bounded: the per-process breaker opens at half of its window failed
        try:
            with runtime.breakers.guard("svc"):
                failed += 1
                raise TransientError("503", reason="service_unavailable")
        except TransientError:
            pass
    assert failed == 20 and ("closed", "open", "local") in events(pg_url, "svc")  # 20 of 40 calls failed

    private_redis.start()  # restarted (empty: it keeps nothing on disk)
    wait_until(lambda: runtime.breakers.state("svc") == "closed", timeout=30, what="the shared state to answer")
    with runtime.breakers.guard("svc"):  # the shared breaker (closed) decides again, not the open local one
        pass
    assert runtime.breakers.degraded() == set()
    with local_client(create_api(settings)) as api:
        assert api.get(f"{API_PREFIX}/health").json()["breakers"] == "shared"
    for _ in range(4):  # and it is shared: failures open it in Redis, seen by another process's runtime
        with pytest.raises(TransientError), runtime.breakers.guard("svc"):
            raise TransientError("503", reason="service_unavailable")
    other = make_runtime(pg_url, private_redis.url, tmp_path, min_calls=4, open_seconds=300)
    assert other.breakers.state("svc") == "open"
    other.close()
    runtime.close()


def test_the_api_lists_resets_and_force_opens_breakers(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=pg_url, broker_url=redis_url, encryption_key=SecretStr(KEY), data_dir=tmp_path)
    with local_client(create_api(settings)) as api:
        base = f"{API_PREFIX}/circuit-breakers"
        opened = api.post(f"{base}/openai/open", params={"seconds": 120})
        assert opened.status_code == 200, opened.text
        assert opened.json()["state"] == "open"
        assert opened.json()["last_transition"]["cause"] == "forced_open"
        listed = api.get(base).json()["data"]
        assert [(b["service"], b["state"]) for b in listed] == [("openai", "open")]
        reset = api.post(f"{base}/openai/reset")
        assert reset.status_code == 200 and reset.json()["state"] == "closed"
        assert reset.json()["last_transition"]["cause"] == "reset"
        bad = api.post(f"{base}/not a service/reset")
        assert bad.status_code == 422 and bad.json()["error"]["param"] == "service"
        assert api.post(f"{base}/x/open", params={"seconds": 0}).status_code == 422
    assert events(pg_url, "openai") == [("closed", "open", "forced_open"), ("open", "closed", "reset")]


def test_a_task_declaring_a_breaker_is_not_run_while_it_is_open_and_retries_when_it_may_close(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    from function_runner.app import create_app
    from function_runner.runtime import runtime_for
    from function_runner.wrapper.task import RecoverableTask

    settings = Settings(database_url=pg_url, broker_url=redis_url, encryption_key=SecretStr(KEY), data_dir=tmp_path)
    app = create_app(settings, main="fr_breaker_task")
    ran = []

    @app.task(base=RecoverableTask, name="unit.summarise", breaker="llm")
    def summarise() -> str:
        ran.append(1)
        return "ok"

    runtime = runtime_for(app)
    runtime.breakers.force_open("llm", seconds=45, actor="test")
    summarise.apply(task_id="sum-1")
    assert ran == []  # the call was not made
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        reason, retry_after, delay = conn.execute(
            sa.text("SELECT reason, retry_after, delay FROM fr_failed_attempts WHERE task_id = 'sum-1'")
        ).one()
    engine.dispose()
    assert reason == "circuit_open" and 40 < retry_after <= 45 and delay >= retry_after - 1
    runtime.breakers.reset("llm", actor="test")
    assert summarise.apply(task_id="sum-2").get() == "ok" and ran == [1]
    runtime.close()


def test_at_full_failure_of_a_fake_provider_the_retry_budget_keeps_retries_under_a_tenth_of_the_calls(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    from function_runner.app import create_app
    from function_runner.runtime import runtime_for
    from function_runner.wrapper.task import RecoverableTask

    settings = Settings(database_url=pg_url, broker_url=redis_url, encryption_key=SecretStr(KEY), data_dir=tmp_path)
    app = create_app(settings, main="fr_budget_task")

    from tests.support.fake_provider import FakeProvider

    down = FakeProvider(503, {"error": {"message": "The engine is currently overloaded", "type": "server_error"}})

    @app.task(base=RecoverableTask, name="unit.always_503", retry_budget="down-llm")
    def always_503() -> None:
        down.ask("hello")  # a real HTTP call to a local provider that answers 503 every time

    @app.task(base=RecoverableTask, name="unit.fine", retry_budget="down-llm")
    def fine() -> str:
        return "ok"

    for i in range(50):  # fifty calls, every one failing
        always_503.apply(task_id=f"c{i}")
    engine = sa.create_engine(pg_url)

    def decisions() -> list[tuple[str, str | None]]:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(sa.text("SELECT decision, decision_reason FROM fr_failed_attempts ORDER BY id"))
            ]

    found = decisions()
    retries = [d for d in found if d[0] == "retry"]
    assert len(found) == 50 and len(retries) <= 5  # at most a tenth of the calls
    assert found[-1] == ("dead_letter", "retry_budget_exhausted")  # the failure took its next route
    for _ in range(70):  # the service recovers: successes refill the bucket (0.1 token each)
        fine.apply()
    always_503.apply(task_id="after-recovery")
    assert decisions()[-1][0] == "retry"
    assert down.calls == 51  # every call reached the provider; the refused retries were never made
    down.close()
    engine.dispose()
    runtime_for(app).close()


def test_calls_through_breakers_show_in_the_health_endpoint_per_service(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(pg_url, redis_url, tmp_path)
    for i in range(10):
        try:
            with runtime.breakers.guard("embedder"):
                if i in (3, 7):
                    raise TransientError(
                        "upstream 503 for key sk-live-0123456789abcdefghij", reason="service_unavailable"
                    )
                threading.Event().wait(0.12 if i == 9 else 0)  # one slow call
        except TransientError:
            pass
    with pytest.raises(ValidationError), runtime.breakers.guard("embedder"):  # the service answered
        raise ValidationError("input too short")
    runtime.health.flush()
    runtime.close()

    settings = Settings(database_url=pg_url, broker_url=redis_url, encryption_key=SecretStr(KEY), data_dir=tmp_path)
    with local_client(create_api(settings)) as api:
        health = api.get(f"{API_PREFIX}/health")
    assert health.status_code == 200
    (service,) = health.json()["services"]
    assert (service["service"], service["calls"], service["failures"]) == ("embedder", 11, 2)
    assert service["success_rate"] == pytest.approx(9 / 11)
    assert service["errors_by_reason"] == {"service_unavailable": 2}
    assert service["last_error_reason"] == "service_unavailable"
    assert "sk-live-0123456789abcdefghij" not in health.text
    assert service["p50_ms"] <= 50 and service["p99_ms"] >= 100  # the slow call is in the tail


def test_with_rabbitmq_as_broker_redis_url_makes_breakers_budgets_and_health_shared(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    """The broker is RabbitMQ (never contacted here); ``redis_url`` names the Redis the workers share."""
    amqp = "amqp://guest:guest@127.0.0.1:5672//"
    settings = Settings(
        database_url=pg_url, broker_url=amqp, redis_url=redis_url, encryption_key=SecretStr(KEY), data_dir=tmp_path
    )
    one, other = Runtime(settings), Runtime(settings)
    alone = make_runtime(pg_url, amqp, tmp_path)
    try:
        one.breakers.force_open("rabbit-llm", seconds=60, actor="test")
        assert other.breakers.shared("rabbit-llm") is not None
        assert other.breakers.state("rabbit-llm") == "open"  # seen by another process's runtime
        assert alone.breakers.shared("rabbit-llm") is None  # without redis_url: per process only
        assert redis_lib.Redis.from_url(redis_url).keys("*rabbit-llm*")  # the state lives in that Redis
        with local_client(create_api(settings)) as api:
            assert api.get(f"{API_PREFIX}/health").json()["breakers"] == "shared"
    finally:
        for runtime in (one, other, alone):
            runtime.close()
