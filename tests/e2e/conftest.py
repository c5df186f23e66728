"""End-to-end fixtures: real ``celery worker`` and ``function-runner dispatcher`` processes on real
Redis and Postgres, a publisher, and readers of the rows they leave."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.main import create_app as create_api
from error_handling.persistence.db import make_engine
from error_handling.persistence.models import TERMINAL_STATES, TaskRecord
from function_runner.app import create_app
from function_runner.runtime import runtime_for
from function_runner.settings import Settings
from tests.support import services
from tests.support.api_client import local_client
from tests.support.processes import Process, celery_worker_args, cli_args
from tests.support.waiting import wait_until

APP = "tests.e2e.tasks_app"


def settings_of(env: dict[str, str]) -> Settings:
    """The settings the processes of the test read from ``env`` (every ``FUNCTION_RUNNER_*`` variable)."""
    prefix = "FUNCTION_RUNNER_"
    return Settings(**{key[len(prefix) :].lower(): value for key, value in env.items() if key.startswith(prefix)})


#: The brokers the route tests run on (a module's ``service_env`` made with :func:`on_broker`).
BROKERS = ["redis", "rabbitmq"]


@contextlib.contextmanager
def on_broker(env: dict[str, str], broker: str, **settings: str) -> Iterator[dict[str, str]]:
    """``env`` with ``broker`` as the broker: the test's Redis database as it is, or a RabbitMQ vhost of
    the test's own (deleted afterwards; ``settings``: more ``FUNCTION_RUNNER_*`` values by lower-case
    name). The tasks' ground truth stays in Redis either way."""
    if broker == "redis":
        yield env
        return
    with services.rabbitmq_vhost() as vhost:
        url = f"amqp://guest:guest@{services.RABBIT_HOST}:{services.RABBIT_PORT}/{vhost}"
        yield {
            **env,
            "FUNCTION_RUNNER_BROKER_URL": url,
            **{f"FUNCTION_RUNNER_{name.upper()}": value for name, value in settings.items()},
        }


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    """An engine on the test's database, for assertions."""
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    """A session for reading what the processes wrote (expire_on_commit keeps reads fresh)."""
    with Session(engine) as s:
        yield s


@pytest.fixture
def state(redis_url: str) -> Iterator[redis_lib.Redis]:
    """The tasks' ground truth in Redis."""
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def publisher(service_env: dict[str, str]) -> Iterator[Celery]:
    """A Celery app on the test's broker, to send tasks by name."""
    app = create_app(settings_of(service_env), main="fr_e2e_publisher")
    yield app
    runtime_for(app).close()
    app.close()


@pytest.fixture
def api(service_env: dict[str, str]) -> Iterator[TestClient]:
    """The error API on the test's database and broker (its lifespan closes what it opened)."""
    with local_client(create_api(settings_of(service_env))) as client:
        yield client


@pytest.fixture
def start_worker(spawn: Callable[..., Process], service_env: dict[str, str]) -> Callable[..., Process]:
    """Start a real prefork ``celery worker`` on the e2e app and wait until it is ready."""
    counter = iter(range(100))

    def _start(*, env: dict[str, str] | None = None, concurrency: int = 2, pool: str = "prefork") -> Process:
        name = f"w{next(counter)}"
        process = spawn(
            celery_worker_args(APP, name=name, pool=pool, concurrency=concurrency),
            env=env or service_env,
            name=f"worker-{name}",
        )
        process.wait_for_log(" ready.", timeout=60)
        return process

    return _start


@pytest.fixture
def start_dispatcher(spawn: Callable[..., Process], service_env: dict[str, str]) -> Callable[..., Process]:
    """Start a real ``function-runner dispatcher`` process and wait until it runs."""

    def _start(*, env: dict[str, str] | None = None) -> Process:
        process = spawn(cli_args("dispatcher", "--app", APP), env=env or service_env, name="dispatcher")
        process.wait_for_log("dispatcher.started", timeout=60)
        return process

    return _start


def task_state(engine: sa.Engine, task_id: str) -> str | None:
    """The recorded state of a task, or None if it has no row."""
    with Session(engine) as s:
        task = s.get(TaskRecord, task_id)
        return task.state.value if task else None


def wait_terminal(engine: sa.Engine, task_ids: list[str], *, timeout: float = 60.0) -> dict[str, str]:
    """Wait until every task has a terminal state; return them."""

    def done() -> dict[str, str] | None:
        states = {tid: task_state(engine, tid) for tid in task_ids}
        terminal = {s.value for s in TERMINAL_STATES}
        return states if all(v in terminal for v in states.values()) else None

    result: dict[str, str] = wait_until(done, timeout=timeout, what=f"terminal states of {task_ids}")
    return result


def rows(engine: sa.Engine, table: str, **where: Any) -> list[dict[str, Any]]:
    """All rows of a table matching ``where``, as dicts."""
    query = f"SELECT * FROM {table}"
    if where:
        query += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(query), where)]


def replay_until_it_succeeds(api: TestClient, state: redis_lib.Redis, letter_id: int) -> str:
    """Replay a dead letter through the API; wait until the new task says it succeeded; its id."""
    from api.main import API_PREFIX

    replayed = api.post(f"{API_PREFIX}/dead-letters/{letter_id}/replay")
    assert replayed.status_code == 202, replayed.text
    new_id = str(replayed.json()["task_id"])
    wait_until(lambda: state.get(f"succeeded:{new_id}"), timeout=60, what="the replay to succeed")
    return new_id
