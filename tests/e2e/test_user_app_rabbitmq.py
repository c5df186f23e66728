"""A dispatcher started without ``--app`` next to a user's own app on RabbitMQ that declared the
``celery`` queue itself (without function-runner's dead-letter arguments): it publishes the due
retries to the queue it finds instead of dying on ``PRECONDITION_FAILED``; one that may not declare its
queue at all refuses in one line; the API's replays reach that queue too, and so do the CLI's."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import sessionmaker

from api.main import API_PREFIX
from api.main import create_app as create_api
from error_handling.persistence.models import utcnow
from tests.e2e.conftest import on_broker, settings_of
from tests.support import services
from tests.support.api_client import local_client
from tests.support.dead_letter_seed import seed_dead_letter
from tests.support.processes import ROOT, Process, celery_worker_args, cli_args
from tests.support.waiting import wait_until

USER_APP = "tests.e2e.user_app"


@pytest.fixture
def user_env(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A vhost of the test's own as the broker of the user's app and of function-runner's settings."""
    with on_broker(service_env, "rabbitmq", redis_url=service_env["FUNCTION_RUNNER_BROKER_URL"]) as env:
        yield {**env, "FR_TEST_USER_BROKER_URL": env["FUNCTION_RUNNER_BROKER_URL"]}


def test_a_dispatcher_without_app_publishes_retries_to_the_users_own_celery_queue(
    spawn: Callable[..., Process], user_env: dict[str, str], state: redis_lib.Redis
) -> None:
    worker = spawn(celery_worker_args(USER_APP, name="user", concurrency=2), env=user_env, name="worker-user")
    worker.wait_for_log(" ready.", timeout=60)  # it declared the queue "celery", Celery's way
    dispatcher = spawn(cli_args("dispatcher"), env=user_env, name="dispatcher")
    dispatcher.wait_for_log("dispatcher.started", timeout=60)
    publisher = Celery("user_publisher", broker=user_env["FR_TEST_USER_BROKER_URL"])
    try:
        ids = [publisher.send_task("user.flaky").id for _ in range(20)]
    finally:
        publisher.close()

    wait_until(lambda: all(state.get(f"finished:{i}") for i in ids), timeout=90, what="every retried task to succeed")
    assert all(state.get(f"started:{i}") == "2" for i in ids)
    assert dispatcher.alive()
    assert "PRECONDITION_FAILED" not in dispatcher.log()
    assert dispatcher.log().count("dispatcher.queue_as_found") == 1  # said once, in one line


def test_a_dispatcher_that_may_not_declare_its_queue_refuses_in_one_line(user_env: dict[str, str]) -> None:
    vhost = user_env["FUNCTION_RUNNER_BROKER_URL"].rsplit("/", 1)[1]
    services.rabbitmqctl("set_permissions", "-p", vhost, "guest", "^$", ".*", ".*")  # may declare nothing
    done = subprocess.run(
        cli_args("dispatcher", "--once"), env=user_env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "RabbitMQ refused to declare the queue 'celery'" in line and "ACCESS_REFUSED" in line
    assert "Traceback" not in done.stdout + done.stderr


def test_the_api_replays_a_dead_letter_to_the_users_own_celery_queue(
    spawn: Callable[..., Process], user_env: dict[str, str], state: redis_lib.Redis, engine: sa.Engine
) -> None:
    worker = spawn(celery_worker_args(USER_APP, name="user", concurrency=1), env=user_env, name="worker-user")
    worker.wait_for_log(" ready.", timeout=60)  # it declared the queue "celery", Celery's way
    settings = settings_of(user_env)
    letter = seed_dead_letter(
        sessionmaker(engine), "user-count-1", sealer=settings.sealer(), at=utcnow(), task_name="user.count"
    )
    with local_client(create_api(settings)) as api:
        replayed = api.post(f"{API_PREFIX}/dead-letters/{letter}/replay")
        assert replayed.status_code == 202, replayed.text
    new_id = replayed.json()["task_id"]
    wait_until(lambda: state.get(f"finished:{new_id}"), timeout=60, what="the replay to run")


def test_the_cli_replays_a_dead_letter_to_the_users_own_celery_queue(
    spawn: Callable[..., Process], user_env: dict[str, str], state: redis_lib.Redis, engine: sa.Engine
) -> None:
    worker = spawn(celery_worker_args(USER_APP, name="user", concurrency=1), env=user_env, name="worker-user")
    worker.wait_for_log(" ready.", timeout=60)  # it declared the queue "celery", Celery's way
    settings = settings_of(user_env)
    letter = seed_dead_letter(
        sessionmaker(engine), "user-count-2", sealer=settings.sealer(), at=utcnow(), task_name="user.count"
    )
    done = subprocess.run(
        cli_args("dlq", "replay", str(letter), "--json"),
        env=user_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "PRECONDITION_FAILED" not in done.stdout + done.stderr
    new_id = json.loads(done.stdout)["task_id"]
    wait_until(lambda: state.get(f"finished:{new_id}"), timeout=60, what="the replay to run")
