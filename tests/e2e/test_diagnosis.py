"""Diagnosis end to end, in a real worker: a bug is dead-lettered on its first failure (the body ran once),
malformed input fails fast, an exhausted connection pool waits on a resource, and a model that is loading is
retried after the time its provider estimated."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import redis as redis_lib
import sqlalchemy as sa
from celery import Celery

from tests.e2e.conftest import rows, task_state, wait_terminal
from tests.support.processes import Process
from tests.support.waiting import wait_until


def test_a_bug_is_dead_lettered_on_its_first_failure_and_bad_input_fails_fast(
    publisher: Celery, start_worker: Callable[..., Process], engine: sa.Engine, state: redis_lib.Redis
) -> None:
    start_worker()
    bug = publisher.send_task("e2e.summarise_bug").id
    invalid = publisher.send_task("e2e.validate_order", args=[{"quantity": "three"}]).id

    assert wait_terminal(engine, [bug, invalid]) == {bug: "dead_lettered", invalid: "failed_fast"}
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=bug)
    assert (attempt["exc_type"], attempt["category"], attempt["reason"], attempt["decision"]) == (
        "AttributeError",
        "permanent",
        "programming_error",
        "dead_letter",
    )
    assert state.get(f"started:{bug}") == "1"  # one body run: nothing retried
    (letter,) = rows(engine, "fr_dead_letters", task_id=bug)
    assert letter["reason"] == "programming_error"

    (refused,) = rows(engine, "fr_failed_attempts", task_id=invalid)
    assert (refused["category"], refused["reason"], refused["decision"]) == ("validation", "invalid_input", "fail_fast")
    assert state.get(f"started:{invalid}") == "1"


def test_an_exhausted_connection_pool_waits_on_a_resource(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
) -> None:
    start_worker()
    start_dispatcher()
    starved = publisher.send_task("e2e.pool_starved").id
    wait_until(lambda: task_state(engine, starved) == "waiting", what="the starved task to wait")
    wait_until(lambda: int(state.get(f"started:{starved}") or 0) >= 2, what="a re-check of the waiting task")
    attempts = rows(engine, "fr_failed_attempts", task_id=starved)
    assert {(a["category"], a["reason"], a["resource"], a["decision"]) for a in attempts} == {
        ("resource", "pool_exhausted", "connection_pool", "wait")
    }
    assert all("QueuePool limit of size 1 overflow 0 reached" in a["message"] for a in attempts)

    state.set("pool-free", "1")
    assert wait_terminal(engine, [starved]) == {starved: "succeeded"}


def test_a_loading_model_is_retried_after_the_time_its_provider_estimated(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
) -> None:
    start_worker()
    start_dispatcher()
    loading = publisher.send_task("e2e.model_loading", args=[2.5]).id
    assert wait_terminal(engine, [loading]) == {loading: "succeeded"}

    (attempt,) = rows(engine, "fr_failed_attempts", task_id=loading)
    assert (attempt["status_code"], attempt["reason"], attempt["retry_after"], attempt["decision"]) == (
        503,
        "service_unavailable",
        2.5,
        "retry",
    )
    (retry,) = rows(engine, "fr_scheduled_runs", task_id=loading)
    # the test settings cap the backoff at 1 s: the provider's estimate (2.5 s) is the delay
    assert retry["due_at"] - attempt["failed_at"] >= dt.timedelta(seconds=2.5)
    assert state.get(f"started:{loading}") == "2"
