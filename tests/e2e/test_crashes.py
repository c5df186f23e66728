"""Nothing is lost: workers SIGKILLed mid-task, the database unreachable when a task fails, and a
scheduled retry that outlives every worker and the dispatcher."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery

from tests.e2e.conftest import BROKERS, on_broker, rows, task_state, wait_terminal
from tests.support import services
from tests.support.processes import Process
from tests.support.proxy import CuttableProxy
from tests.support.waiting import wait_until


@pytest.fixture(params=BROKERS)
def service_env(service_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """These tests run with Redis and with RabbitMQ as the broker (then with the test's Redis as the
    Redis the workers share: a failure during a database outage is kept there)."""
    with on_broker(service_env, request.param, redis_url=service_env["FUNCTION_RUNNER_BROKER_URL"]) as env:
        yield env


def test_pool_process_killed_mid_task_runs_again_and_ends_once(
    publisher: Celery, start_worker: Callable[..., Process], engine: sa.Engine, state: redis_lib.Redis
) -> None:
    worker = start_worker(concurrency=1)
    task_id = publisher.send_task("e2e.slow_then", args=["permanent"]).id
    pid = int(wait_until(lambda: state.get(f"running:{task_id}"), what="the task to start"))
    assert pid in worker.children()
    os.kill(pid, signal.SIGKILL)

    assert wait_terminal(engine, [task_id]) == {task_id: "dead_lettered"}
    assert state.get(f"started:{task_id}") == "2"  # ran again after the kill, not lost
    assert len(rows(engine, "fr_failed_attempts", task_id=task_id)) == 1
    assert len(rows(engine, "fr_dead_letters", task_id=task_id)) == 1


def test_whole_worker_killed_mid_task_is_redelivered_to_a_new_worker(
    publisher: Celery, start_worker: Callable[..., Process], engine: sa.Engine, state: redis_lib.Redis
) -> None:
    first = start_worker(concurrency=1)
    task_id = publisher.send_task("e2e.slow_then", args=["permanent"]).id
    wait_until(lambda: state.get(f"running:{task_id}"), what="the task to start")
    first.kill()  # the main process and its pool, at once: nothing gets to ack or reject

    start_worker(concurrency=1)  # restores the unacked message once its visibility timeout passes
    assert wait_terminal(engine, [task_id], timeout=90) == {task_id: "dead_lettered"}
    assert state.get(f"started:{task_id}") == "2"
    assert len(rows(engine, "fr_dead_letters", task_id=task_id)) == 1


@pytest.fixture
def pg_proxy() -> Iterator[CuttableProxy]:
    """A proxy in front of the real Postgres that the test can cut."""
    proxy = CuttableProxy(services.PG_HOST, services.PG_PORT)
    yield proxy
    proxy.close()


def through_proxy(service_env: dict[str, str], proxy: CuttableProxy) -> dict[str, str]:
    """The environment with the test's database reached through ``proxy``."""
    database = service_env["FUNCTION_RUNNER_DATABASE_URL"].rsplit("/", 1)[1]
    url = f"postgresql+psycopg://{services.PG_USER}@127.0.0.1:{proxy.port}/{database}"
    return {**service_env, "FUNCTION_RUNNER_DATABASE_URL": url}


def test_database_unreachable_when_a_task_fails_message_is_not_acked(
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    service_env: dict[str, str],
    pg_proxy: CuttableProxy,
) -> None:
    env = through_proxy(service_env, pg_proxy)
    worker = start_worker(env=env, concurrency=1)
    pg_proxy.block()

    task_id = publisher.send_task("e2e.permanent", kwargs={"note": "db down"}).id
    # The failure cannot be recorded: the message goes back to the broker, unacked, again and again.
    # A redelivery is not run while the database cannot say whether its failure was recorded.
    wait_until(
        lambda: worker.log().count(f"[{task_id}] received") >= 3,
        timeout=60,
        what="redeliveries while the database is down",
    )
    assert "task.storage_unavailable" in worker.log()
    assert state.get(f"started:{task_id}") == "1"
    assert rows(engine, "fr_failed_attempts", task_id=task_id) == []

    pg_proxy.unblock()
    assert wait_terminal(engine, [task_id]) == {task_id: "dead_lettered"}
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=task_id)  # recorded exactly once
    assert (attempt["attempt"], attempt["reason"]) == (1, "auth_failed")
    assert "credentials revoked (db down)" in attempt["message"]
    assert len(rows(engine, "fr_dead_letters", task_id=task_id)) == 1
    # the failure kept while the database was away was recorded; the body did not run again
    assert state.get(f"started:{task_id}") == "1"
    assert "task.recording_kept_failure" in worker.log()


def test_a_failure_during_a_database_outage_is_recorded_even_if_a_rerun_would_succeed(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    service_env: dict[str, str],
    pg_proxy: CuttableProxy,
) -> None:
    """The chaos suite found it: a task failed while Postgres was down, its redelivery (the database
    back, the upstream recovered) succeeded, and the first failure was never recorded. Now the failure
    is kept in Redis, recorded by the redelivery, and its decision (a retry) carried out."""
    env = through_proxy(service_env, pg_proxy)
    worker = start_worker(env=env, concurrency=1)
    start_dispatcher()
    pg_proxy.block()

    task_id = publisher.send_task("e2e.transient_once_then_ok", args=[0.1]).id
    wait_until(lambda: "task.storage_unavailable" in worker.log(), timeout=60, what="the failure not recorded")
    pg_proxy.unblock()

    assert wait_terminal(engine, [task_id]) == {task_id: "succeeded"}
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=task_id)
    assert (attempt["attempt"], attempt["reason"], attempt["decision"]) == (1, "rate_limited", "retry")
    (run,) = rows(engine, "fr_scheduled_runs", task_id=task_id)
    assert (run["kind"], run["attempt"], run["status"]) == ("retry", 2, "done")
    assert state.get(f"started:{task_id}") == "2"  # the failed start and the retry; no rerun of attempt 1


def lose_every_message(app: Celery) -> None:
    """The broker loses every message of the test's queue, queued or held for a worker (what a Redis
    broker restarted without persistence, or kombu's Redis transport dropping a popped message, does)."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        channel.queue_purge("celery")
        if connection.transport.driver_type == "redis":
            channel.client.delete(channel.unacked_key, channel.unacked_index_key)
            assert channel.client.llen("celery") == 0
        else:
            assert channel.queue_declare("celery", passive=True).message_count == 0


def kept(state: redis_lib.Redis, task_id: str, attempt: int) -> bool:
    """Whether a failure of this attempt is kept in the shared Redis (and indexed for the dispatcher)."""
    member = f"{task_id}:{attempt}"
    return bool(state.exists(f"fr:unrecorded:{member}")) and state.zscore("fr:unrecorded:seen", member) is not None


def test_a_kept_failure_whose_message_the_broker_lost_is_recorded(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    service_env: dict[str, str],
    pg_proxy: CuttableProxy,
) -> None:
    """A fresh-clone CI run of the chaos suite found it: a task failed while Postgres was down, its
    failure was kept in Redis and the message given back, and the broker lost that message; nothing came
    back to record the failure. Now the dispatcher publishes a copy once no delivery has been seen for
    ``unrecorded_redeliver_after``, and the copy records the kept failure without running the body."""
    worker = start_worker(env=through_proxy(service_env, pg_proxy), concurrency=1)
    pg_proxy.block()
    task_id = publisher.send_task("e2e.permanent", kwargs={"note": "lost message"}).id
    wait_until(lambda: kept(state, task_id, 1), timeout=60, what="the failure kept in Redis")
    worker.stop()
    lose_every_message(publisher)
    pg_proxy.unblock()

    start_worker(concurrency=1)
    dispatcher = start_dispatcher(env={**service_env, "FUNCTION_RUNNER_UNRECORDED_REDELIVER_AFTER": "1"})
    assert wait_terminal(engine, [task_id]) == {task_id: "dead_lettered"}
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=task_id)  # recorded exactly once
    assert (attempt["attempt"], attempt["reason"], attempt["decision"]) == (1, "auth_failed", "dead_letter")
    assert "credentials revoked (lost message)" in attempt["message"]
    assert len(rows(engine, "fr_dead_letters", task_id=task_id)) == 1
    assert state.get(f"started:{task_id}") == "1"  # the copy recorded the failure; the body did not run again
    assert "dispatcher.kept_failure_redelivered" in dispatcher.log()
    wait_until(lambda: not kept(state, task_id, 1), what="the kept failure forgotten")
    assert state.zcard("fr:unrecorded:seen") == 0


def test_a_kept_failure_of_a_scheduled_run_whose_message_the_broker_lost_is_recorded(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    service_env: dict[str, str],
    pg_proxy: CuttableProxy,
) -> None:
    """The same for the failure of a retry published by the dispatcher: the copy carries the run's
    dispatch token, claims the run again and records the failure; the run is done, not left running."""
    worker = start_worker(env=through_proxy(service_env, pg_proxy), concurrency=1)
    first = start_dispatcher()
    task_id = publisher.send_task("e2e.retried_then_held").id
    wait_until(lambda: state.get(f"running:{task_id}"), timeout=60, what="attempt 2 to start")
    first.stop()
    pg_proxy.block()
    state.set(f"go:{task_id}", 1)  # attempt 2 fails while the database is away
    wait_until(lambda: kept(state, task_id, 2), timeout=60, what="the failure kept in Redis")
    worker.stop()
    lose_every_message(publisher)
    pg_proxy.unblock()

    start_worker(concurrency=1)
    start_dispatcher(env={**service_env, "FUNCTION_RUNNER_UNRECORDED_REDELIVER_AFTER": "1"})
    assert wait_terminal(engine, [task_id]) == {task_id: "dead_lettered"}
    attempts = rows(engine, "fr_failed_attempts", task_id=task_id)
    assert sorted((a["attempt"], a["reason"], a["decision"]) for a in attempts) == [
        (1, "service_unavailable", "retry"),
        (2, "not_found", "dead_letter"),
    ]
    (run,) = rows(engine, "fr_scheduled_runs", task_id=task_id)
    assert (run["attempt"], run["status"]) == (2, "done")
    assert state.get(f"started:{task_id}") == "2"
    wait_until(lambda: not kept(state, task_id, 2), what="the kept failure forgotten")


def test_scheduled_retry_survives_restart_of_every_worker_and_the_dispatcher(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
) -> None:
    worker = start_worker()
    dispatcher = start_dispatcher()
    task_id = publisher.send_task("e2e.transient_once_then_ok", args=[3.0]).id
    wait_until(lambda: rows(engine, "fr_scheduled_runs", task_id=task_id), what="the scheduled retry row")
    worker.kill()
    dispatcher.kill()

    (run,) = rows(engine, "fr_scheduled_runs", task_id=task_id)
    assert (run["kind"], run["status"], run["attempt"]) == ("retry", "pending", 2)
    assert task_state(engine, task_id) == "retrying"

    start_worker()
    start_dispatcher()
    assert wait_terminal(engine, [task_id]) == {task_id: "succeeded"}
    assert state.get(f"started:{task_id}") == "2"
    (run,) = rows(engine, "fr_scheduled_runs", task_id=task_id)
    assert run["status"] == "done"
