"""What Celery's own tools see: secrets out of the result backend, the task events (and so Flower) and
the worker's log; Celery's ``retries`` equal to the attempts the history shows.

Real processes on real Redis: a prefork ``celery worker -E`` with a Redis result backend, a
dispatcher, and for Flower a real ``celery flower``. A canary key is passed as an argument and ends up
in the failures' messages, causes and notes; the tests read everything Celery stored and sent.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery

from tests.e2e.conftest import APP, rows, wait_terminal
from tests.support.processes import Process, celery_worker_args
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.postgres]

#: The secret planted: an OpenAI-shaped key (found by pattern) passed as ``api_key`` (found by name).
CANARY = "sk-canary-5e1f0a9c2b7d4e3f8a61"
#: The part of it any leak, whole or partial, shows.
TELLTALE = "canary"


@pytest.fixture
def backend_env(service_env: dict[str, str], redis_url: str) -> dict[str, str]:
    """The test's environment with a Redis result backend (the test's own database)."""
    return {**service_env, "FUNCTION_RUNNER_RESULT_BACKEND": redis_url}


@pytest.fixture
def start_event_worker(spawn: Callable[..., Process], backend_env: dict[str, str]) -> Callable[[], Process]:
    """Start a real prefork worker that sends task events (``-E``), as Flower needs."""

    def _start() -> Process:
        args = [*celery_worker_args(APP, name="events", concurrency=2), "-E"]
        process = spawn(args, env=backend_env, name="worker-events")
        process.wait_for_log(" ready.", timeout=60)
        return process

    return _start


class EventLog:
    """Every event on the broker's event exchange, captured by a real receiver in a thread."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.events: list[dict[str, Any]] = []
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._capture, daemon=True)

    def _capture(self) -> None:
        with self.app.connection_for_read() as connection:
            self._receiver = self.app.events.Receiver(connection, handlers={"*": self.events.append})
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=10)

    def of(self, task_id: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("uuid") == task_id and e.get("type") == kind]


@pytest.fixture
def event_log(publisher: Celery) -> Iterator[EventLog]:
    log = EventLog(publisher)
    log.start()
    yield log
    log.stop()


def _meta(state: redis_lib.Redis, task_id: str) -> dict[str, Any] | None:
    raw = state.get(f"celery-task-meta-{task_id}")
    return json.loads(raw) if raw else None


def _meta_in(state: redis_lib.Redis, task_id: str, status: str) -> dict[str, Any]:
    """The task's result meta once it is in ``status`` (waits for it)."""

    def found() -> dict[str, Any] | None:
        meta = _meta(state, task_id)
        return meta if meta is not None and meta["status"] == status else None

    meta: dict[str, Any] = wait_until(found, what=f"the {status} state of {task_id} in the result backend")
    return meta


def _stored(state: redis_lib.Redis) -> str:
    """Everything the result backend holds, as text."""
    return "\n".join(str(state.get(key)) for key in state.scan_iter("celery-task-meta-*"))


def _no_canary(where: str, text: str) -> None:
    assert TELLTALE not in text.lower(), f"the canary reached {where}:\n{text[:3000]}"


def test_result_backend_events_and_logs_hold_no_secret_and_retries_count_attempts(
    start_event_worker: Callable[[], Process],
    start_dispatcher: Callable[..., Process],
    publisher: Celery,
    event_log: EventLog,
    state: redis_lib.Redis,
    engine: sa.Engine,
    redis_url: str,
) -> None:
    worker = start_event_worker()
    wait_until(lambda: any(e.get("type") == "worker-heartbeat" for e in event_log.events), what="events")

    # published by an app with function-runner installed, and by a plain Celery app (no install)
    retried = publisher.send_task("e2e.counts_retries", kwargs={"fail_times": 2, "api_key": CANARY}).id
    plain = Celery("plain_producer", broker=redis_url)
    try:
        plain_id = plain.send_task("e2e.counts_retries", args=[0], kwargs={"api_key": CANARY}).id
    finally:
        plain.close()
    terminal = publisher.send_task("e2e.leaks_key", args=[CANARY]).id

    # no dispatcher yet: the first failure stays RETRY in the backend
    assert _meta_in(state, retried, "RETRY")["result"]["exc_type"] == "TransientError"
    failure_meta = _meta_in(state, terminal, "FAILURE")
    # the same type and message shape, the key hidden
    assert failure_meta["result"]["exc_type"] == "PermanentError"
    assert failure_meta["result"]["exc_message"] == ["rejected key [REDACTED]"]
    assert "LeakyClientError: 401 from upstream, Authorization: [REDACTED]" in failure_meta["traceback"]
    assert "called with api_key=[REDACTED]" in failure_meta["traceback"]
    _no_canary("the result backend", _stored(state))

    start_dispatcher()
    wait_until(lambda: state.get(f"succeeded:{retried}"), timeout=60, what="the retried task to succeed")
    wait_until(lambda: state.get(f"succeeded:{plain_id}"), what="the plainly published task to succeed")
    assert wait_terminal(engine, [terminal])[terminal] == "dead_lettered"

    # self.request.retries saw attempt - 1 on each of the three executions, as the history has them
    assert state.lrange(f"retries:{retried}", 0, -1) == ["0", "1", "2"]
    attempts = sorted(r["attempt"] for r in rows(engine, "fr_failed_attempts", task_id=retried))
    assert attempts == [1, 2]

    wait_until(lambda: len(event_log.of(retried, "task-received")) == 3, what="three task-received events")
    assert [e["retries"] for e in event_log.of(retried, "task-received")] == [0, 1, 2]
    wait_until(lambda: event_log.of(terminal, "task-failed"), what="the task-failed event")
    failed = event_log.of(terminal, "task-failed")[0]
    assert failed["exception"].startswith("PermanentError(")
    assert "[REDACTED]" in failed["exception"]
    assert event_log.of(retried, "task-retried"), "no task-retried event"
    assert event_log.of(plain_id, "task-received")[0]["kwargs"] == "{'api_key': '[REDACTED]'}"
    _no_canary("the task events", json.dumps(event_log.events, default=str))
    _no_canary("the result backend", _stored(state))
    _no_canary("the worker's log", worker.log())


def test_flower_shows_no_secret_and_the_retries_the_history_has(
    start_event_worker: Callable[[], Process],
    start_dispatcher: Callable[..., Process],
    publisher: Celery,
    event_log: EventLog,
    state: redis_lib.Redis,
) -> None:
    """Flower's own task state (``flower.events.EventsState``) fed the events a real worker sent, read
    as Flower's ``GET /api/tasks`` reads it (``flower.utils.tasks.iter_tasks`` and ``as_dict``)."""
    from flower.events import EventsState
    from flower.utils.tasks import as_dict, iter_tasks

    start_event_worker()
    start_dispatcher()
    task_id = publisher.send_task("e2e.counts_retries", kwargs={"fail_times": 2, "api_key": CANARY}).id
    wait_until(lambda: state.get(f"succeeded:{task_id}"), timeout=60, what="the task to succeed")
    wait_until(lambda: event_log.of(task_id, "task-succeeded"), what="the task-succeeded event")

    flower = types.SimpleNamespace(state=EventsState(max_tasks_in_memory=1000))
    for event in list(event_log.events):
        flower.state.event(dict(event))
    listed = {tid: as_dict(task) for tid, task in iter_tasks(flower)}
    task = listed[task_id]
    assert task["state"] == "SUCCESS"
    assert task["retries"] == 2  # three executions: attempts 1, 2 and 3
    assert "'api_key': '[REDACTED]'" in task["kwargs"]  # the key named, its value hidden
    _no_canary("Flower's task list", json.dumps(listed, default=str))


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_flower_api_shows_no_secret_and_the_retries_the_history_has(
    spawn: Callable[..., Process],
    start_event_worker: Callable[[], Process],
    start_dispatcher: Callable[..., Process],
    backend_env: dict[str, str],
    publisher: Celery,
    state: redis_lib.Redis,
) -> None:
    """A real ``celery flower`` next to the worker, read through its HTTP API as a user would."""
    port = _free_port()
    flower = spawn(
        [sys.executable, "-m", "celery", "-A", APP, "flower", f"--port={port}", "--address=127.0.0.1"],
        env={**backend_env, "FLOWER_UNAUTHENTICATED_API": "true", "FR_TEST_BROKER_POOL_LIMIT": "20"},
        name="flower",
    )
    base = f"http://127.0.0.1:{port}"

    def flower_up() -> bool:
        if not flower.alive():
            raise AssertionError(f"flower exited:\n{flower.log()[-4000:]}")
        try:
            return httpx.get(f"{base}/api/tasks", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(flower_up, timeout=60, what="Flower's API")
    start_event_worker()
    start_dispatcher()
    task_id = publisher.send_task("e2e.counts_retries", kwargs={"fail_times": 2, "api_key": CANARY}).id
    wait_until(lambda: state.get(f"succeeded:{task_id}"), timeout=60, what="the task to succeed")

    def shown() -> dict[str, Any] | None:
        task: dict[str, Any] | None = httpx.get(f"{base}/api/tasks", timeout=5).json().get(task_id)
        return task if task and task.get("state") == "SUCCESS" else None

    task = wait_until(shown, timeout=30, what="the task's success in Flower's API")
    assert task["retries"] == 2  # three executions: attempts 1, 2 and 3
    assert "'api_key': '[REDACTED]'" in task["kwargs"]
    info = httpx.get(f"{base}/api/task/info/{task_id}", timeout=5)
    assert info.status_code == 200, info.text
    _no_canary("Flower's task list", httpx.get(f"{base}/api/tasks", timeout=5).text)
    _no_canary("Flower's task info", info.text)
    _no_canary("Flower's log", flower.log())
