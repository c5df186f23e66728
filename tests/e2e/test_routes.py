"""Each of the four routes end to end: a real worker, a real dispatcher, Redis and Postgres.

And the canary: secrets given to tasks never appear in clear in any table or log line.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery

from error_handling.sealing import Sealer, redacted_view, unseal_secrets
from tests.conftest import TEST_KEY
from tests.e2e.conftest import BROKERS, on_broker, rows, task_state, wait_terminal
from tests.support import services
from tests.support.processes import Process
from tests.support.waiting import wait_until


@pytest.fixture(params=BROKERS)
def service_env(service_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """These tests run with Redis and with RabbitMQ as the broker."""
    with on_broker(service_env, request.param) as env:
        yield env


CANARY_KEY = "sk-canary0123456789abcdefCANARY"
CANARY_PASSWORD = "hunter2-canary-pw-77"


def test_each_route_leaves_its_rows(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    pg_url: str,
) -> None:
    worker = start_worker()
    dispatcher = start_dispatcher()

    flaky = publisher.send_task("e2e.flaky", args=[2], kwargs={"api_key": CANARY_KEY}).id
    gpu = publisher.send_task("e2e.needs_gpu").id
    invalid = publisher.send_task("e2e.validate", args=[-5]).id
    doomed = publisher.send_task(
        "e2e.permanent", kwargs={"password": CANARY_PASSWORD, "note": f"token={CANARY_KEY}"}
    ).id

    # The GPU task parks on the "gpu" gate and keeps waiting while the GPU is busy.
    wait_until(lambda: task_state(engine, gpu) == "waiting", what="the GPU task to wait")
    wait_until(lambda: int(state.get(f"started:{gpu}") or 0) >= 2, what="a re-check of the waiting task")
    assert task_state(engine, gpu) == "waiting"
    state.set("gpu-free", "1")

    states = wait_terminal(engine, [flaky, gpu, invalid, doomed])
    assert states == {flaky: "succeeded", gpu: "succeeded", invalid: "failed_fast", doomed: "dead_lettered"}

    # transient: two failed attempts, each with a scheduled retry that ran; the third start succeeded
    attempts = sorted(rows(engine, "fr_failed_attempts", task_id=flaky), key=lambda r: r["attempt"])
    assert [(a["attempt"], a["category"], a["decision"]) for a in attempts] == [
        (1, "transient", "retry"),
        (2, "transient", "retry"),
    ]
    runs = sorted(rows(engine, "fr_scheduled_runs", task_id=flaky), key=lambda r: r["attempt"])
    assert [(r["kind"], r["attempt"], r["status"]) for r in runs] == [("retry", 2, "done"), ("retry", 3, "done")]
    assert state.get(f"started:{flaky}") == "3"
    assert rows(engine, "fr_dead_letters", task_id=flaky) == []

    # resource: waits on "gpu" recorded, released after the GPU was freed
    gpu_attempts = rows(engine, "fr_failed_attempts", task_id=gpu)
    assert gpu_attempts and all(
        a["category"] == "resource" and a["resource"] == "gpu" and a["decision"] == "wait" for a in gpu_attempts
    )
    gpu_runs = rows(engine, "fr_scheduled_runs", task_id=gpu)
    assert {r["kind"] for r in gpu_runs} == {"resource_wait"}
    assert all(r["status"] == "done" for r in gpu_runs)
    assert len({r["deadline"] for r in gpu_runs}) == 1  # re-waits keep the first deadline
    assert int(state.get(f"started:{gpu}")) == len(gpu_attempts) + 1

    # validation: failed fast with the user's message, no retry, no dead letter
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=invalid)
    assert (attempt["category"], attempt["decision"]) == ("validation", "fail_fast")
    (task,) = rows(engine, "fr_tasks", task_id=invalid)
    assert task["user_message"] == "Amount must be positive."
    assert rows(engine, "fr_scheduled_runs", task_id=invalid) == []
    assert rows(engine, "fr_dead_letters", task_id=invalid) == []
    assert state.get(f"started:{invalid}") == "1"

    # permanent: straight to the dead-letter queue, with a replayable payload whose secrets are sealed
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=doomed)
    assert (attempt["category"], attempt["reason"], attempt["decision"]) == ("permanent", "auth_failed", "dead_letter")
    (letter,) = rows(engine, "fr_dead_letters", task_id=doomed)
    assert (letter["reason"], letter["status"], letter["task_name"], letter["attempts"]) == (
        "auth_failed",
        "pending",
        "e2e.permanent",
        1,
    )
    assert redacted_view(letter["kwargs"])["password"] == "[REDACTED]"
    assert unseal_secrets(letter["kwargs"], sealer=Sealer(TEST_KEY)) == {
        "password": CANARY_PASSWORD,
        "note": f"token={CANARY_KEY}",
    }
    assert state.get(f"started:{doomed}") == "1"

    # The canary never appears in clear: not in any table, not in any log line.
    dump = subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "-h",
            services.PG_HOST,
            "-p",
            str(services.PG_PORT),
            "-U",
            services.PG_USER,
            pg_url.rsplit("/", 1)[1],
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "fr_failed_attempts" in dump and doomed in dump
    for secret in (CANARY_KEY, CANARY_PASSWORD):
        assert secret not in dump
        assert secret not in worker.log()
        assert secret not in dispatcher.log()
    assert "[REDACTED]" in " ".join(a["message"] for a in rows(engine, "fr_failed_attempts", task_id=flaky))
