"""Failures the database refuses, in real ``celery worker`` processes on real Postgres: each ends
recorded (its values sanitised) or dead-lettered as ``unrecordable``, with the body started at most
``max_unrecordable_requeues`` + 1 times; never lost (acked with nothing recorded), never looped."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from error_handling.persistence import sanitise
from error_handling.persistence.reads import histories
from function_runner.app import create_app
from function_runner.runtime import runtime_for
from tests.e2e.conftest import on_broker, replay_until_it_succeeds, rows, settings_of, wait_terminal
from tests.support.processes import Process
from tests.support.waiting import wait_until

#: The limit the workers of these tests run with (the default).
LIMIT = 3

NUL = "abc\x00def"


def _started(state: redis_lib.Redis, task_id: str) -> int:
    return int(state.get(f"started:{task_id}") or 0)


def _replayed_args(api: TestClient, state: redis_lib.Redis, letter_id: int) -> Any:
    """Fix the task, replay the dead letter and return what the replay ran with: ``[how, args, kwargs]``."""
    state.set("refused-fixed", 1)
    new_id = replay_until_it_succeeds(api, state, letter_id)
    return json.loads(state.get(f"args:{new_id}") or "null")


@pytest.mark.parametrize(
    ("how", "args", "kwargs", "state_", "reason"),
    [
        pytest.param("invalid", [NUL], {}, "failed_fast", "invalid_input", id="nul-in-args"),
        pytest.param("invalid", [{"nested": [NUL]}], {"note": NUL}, "failed_fast", "invalid_input", id="nul-nested"),
        pytest.param("invalid", [], {"data": {"k\x00ey": 1}}, "failed_fast", "invalid_input", id="nul-in-key"),
        pytest.param("invalid", [], {"k\x00": 1}, "failed_fast", "invalid_input", id="nul-in-top-level-kwarg-name"),
        pytest.param("invalid", ["\ud800"], {}, "failed_fast", "invalid_input", id="lone-surrogate-in-args"),
        pytest.param("nul_message", [], {}, "failed_fast", "invalid_input", id="nul-in-message"),
        pytest.param("surrogate_message", [], {}, "failed_fast", "invalid_input", id="surrogate-in-message"),
        pytest.param("long_reason", [NUL], {}, "dead_lettered", "r" * 63 + "…", id="long-reason"),
        pytest.param("long_resource", [], {}, "waiting", "resource_unavailable", id="long-resource"),
        pytest.param("unprintable", [], {}, "dead_lettered", "permanent_failure", id="unprintable-exception"),
        pytest.param("invalid", [math.nan, math.inf], {}, "failed_fast", "invalid_input", id="nan-in-args"),
        pytest.param("invalid", [10**40, -(2**70)], {"n": 2**64}, "failed_fast", "invalid_input", id="huge-ints"),
    ],
)
def test_a_failure_with_values_the_database_refuses_is_recorded_sanitised(
    how: str,
    args: list[Any],
    kwargs: dict[str, Any],
    state_: str,
    reason: str,
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
) -> None:
    start_worker(concurrency=1)
    task_id = publisher.send_task("e2e.refused", args=[how, *args], kwargs=kwargs).id

    if state_ == "waiting":
        wait_until(lambda: rows(engine, "fr_failed_attempts", task_id=task_id), timeout=60, what="the attempt")
        (task,) = rows(engine, "fr_tasks", task_id=task_id)
        assert task["state"] == "waiting"
    else:
        assert wait_terminal(engine, [task_id], timeout=60) == {task_id: state_}
    assert _started(state, task_id) == 1  # recorded at once: no give-back, no second run
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=task_id)
    assert attempt["reason"] == reason
    assert "\x00" not in (attempt["message"] + (attempt["traceback"] or ""))
    if how == "nul_message":
        assert "abc\\x00def" in attempt["message"]
    if how == "long_resource":
        assert attempt["resource"] == "s" * 63 + "…"
    if how == "unprintable":
        assert attempt["exc_type"].endswith("_Unprintable") and "unprintable" in attempt["message"]


def test_a_dead_letter_whose_args_held_nul_replays_the_original_args(
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
) -> None:
    start_worker(concurrency=1)
    original = [NUL, {"n\x00": ["\ud800", NUL]}]
    task_id = publisher.send_task("e2e.refused", args=["long_reason", *original], kwargs={"k": NUL}).id

    assert wait_terminal(engine, [task_id], timeout=60) == {task_id: "dead_lettered"}
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    assert letter["replayable"] and "\\u0000" not in json.dumps(letter["args"])

    assert _replayed_args(api, state, letter["id"]) == ["long_reason", original, {"k": NUL}]


def test_lost_deliveries_of_a_task_whose_args_hold_nul_are_counted_and_it_is_dead_lettered_replayable(
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
) -> None:
    start_worker(concurrency=1)
    task_id = publisher.send_task("e2e.refused", args=["die", NUL], kwargs={"note": "\ud800"}).id

    assert wait_terminal(engine, [task_id], timeout=90) == {task_id: "dead_lettered"}
    assert _started(state, task_id) == 3  # the lost-delivery limit, then not run again
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    assert letter["reason"] == "worker_lost" and letter["replayable"]
    assert len(rows(engine, "fr_lost_deliveries", task_id=task_id)) == 3

    assert _replayed_args(api, state, letter["id"]) == ["die", [NUL], {"note": "\ud800"}]


def test_a_very_long_client_chosen_task_id_is_recorded_under_a_stored_key(
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
) -> None:
    start_worker(concurrency=1)
    task_id = "t" * 1000
    publisher.send_task("e2e.refused", args=["long_reason"], task_id=task_id)

    key = sanitise.task_key(task_id)
    assert len(key) <= 255 and key != task_id
    assert wait_terminal(engine, [key], timeout=60) == {key: "dead_lettered"}
    assert _started(state, task_id) == 1
    assert rows(engine, "fr_dead_letters", task_id=key)
    with Session(engine) as session:  # found by the id the client chose
        history = histories.task_history(session, task_id=task_id)
        assert history is not None and history.task is not None and history.task.task_id == key


@pytest.fixture
def refusing_trigger(engine: sa.Engine) -> Iterator[None]:
    """A trigger that makes Postgres refuse any failed attempt whose message or traceback holds
    ``REFUSED-BY-TRIGGER`` (standing for any value the database refuses that sanitising misses)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE FUNCTION fr_test_refuse() RETURNS trigger AS $$ BEGIN "
                "IF NEW.message LIKE '%REFUSED-BY-TRIGGER%' OR NEW.traceback LIKE '%REFUSED-BY-TRIGGER%' THEN "
                "RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22000'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER fr_test_refuse BEFORE INSERT ON fr_failed_attempts "
                "FOR EACH ROW EXECUTE FUNCTION fr_test_refuse()"
            )
        )
    yield
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER fr_test_refuse ON fr_failed_attempts"))
        conn.execute(sa.text("DROP FUNCTION fr_test_refuse()"))


def test_a_failure_the_database_keeps_refusing_is_dead_lettered_as_unrecordable_within_the_limit(
    refusing_trigger: None,
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
) -> None:
    start_worker(concurrency=1)
    task_id = publisher.send_task("e2e.refused", args=["marked", "payload"], kwargs={"api_key": "sk-secret"}).id

    assert wait_terminal(engine, [task_id], timeout=90) == {task_id: "dead_lettered"}
    assert _started(state, task_id) == LIMIT + 1
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    assert (letter["reason"], letter["category"]) == ("unrecordable", "permanent")
    assert "REFUSED-BY-TRIGGER" not in (letter["message"] or "") and "refused" in (letter["message"] or "")
    assert "sk-secret" not in json.dumps([letter["args"], letter["kwargs"]])
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=task_id)
    assert attempt["reason"] == "unrecordable"

    # the minimal record keeps the sealed payload: it replays
    assert _replayed_args(api, state, letter["id"]) == ["marked", ["payload"], {"api_key": "sk-secret"}]


def test_a_retried_task_with_a_very_long_id_records_its_success_under_its_key(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
) -> None:
    start_worker(concurrency=1)
    start_dispatcher()
    task_id = "f" * 1000
    publisher.send_task("e2e.refused", args=["once"], task_id=task_id)

    key = sanitise.task_key(task_id)
    assert wait_terminal(engine, [key], timeout=60) == {key: "succeeded"}
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=key)
    assert attempt["attempt"] == 1


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_without_redis_a_refused_failure_is_dead_lettered_at_the_first_refusal(
    queue_type: str,
    refusing_trigger: None,
    service_env: dict[str, str],
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
) -> None:
    with on_broker(service_env, "rabbitmq", queue_type=queue_type) as env:
        start_worker(env=env, concurrency=1)
        app = create_app(settings_of(env), main="fr_e2e_rabbit_publisher")
        try:
            task_id = app.send_task("e2e.refused", args=["marked"]).id
            assert wait_terminal(engine, [task_id], timeout=90) == {task_id: "dead_lettered"}
        finally:
            runtime_for(app).close()
            app.close()
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    assert letter["reason"] == "unrecordable"
    assert _started(state, task_id) == 1  # nothing counts give-backs without Redis: no second run


def test_an_attempt_number_out_of_the_columns_range_ends_unrecordable_within_the_limit(
    publisher: Celery, start_worker: Callable[..., Process], engine: sa.Engine, state: redis_lib.Redis
) -> None:
    start_worker(concurrency=1)
    task_id = publisher.send_task("e2e.refused", args=["long_reason"], headers={"fr_attempt": 2**40}).id

    assert wait_terminal(engine, [task_id], timeout=90) == {task_id: "dead_lettered"}
    assert _started(state, task_id) == 1  # the redeliveries are refused at their duplicate check, before the body
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    assert letter["reason"] == "unrecordable" and "SQLSTATE 22003" in (letter["message"] or "")
    assert f"{LIMIT + 1} time(s) at duplicate_check" in (letter["message"] or "")
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=task_id)
    assert attempt["attempt"] == sanitise.MAX_INTEGER


def test_a_forged_run_header_out_of_range_ends_unrecordable_without_running(
    publisher: Celery, start_worker: Callable[..., Process], engine: sa.Engine, state: redis_lib.Redis
) -> None:
    start_worker(concurrency=1)
    headers = {"fr_run": 2**70, "fr_token": "t" * 500}
    task_id = publisher.send_task("e2e.refused", args=["long_reason"], headers=headers).id

    assert wait_terminal(engine, [task_id], timeout=90) == {task_id: "dead_lettered"}
    assert _started(state, task_id) == 0  # every delivery was refused at its claim, before the body
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    assert letter["reason"] == "unrecordable" and f"{LIMIT + 1} time(s) at claim" in (letter["message"] or "")
