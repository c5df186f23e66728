"""schemathesis over the API's OpenAPI schema, on real Postgres and a real Redis broker.

Every operation is called with generated requests (valid and invalid) against a database seeded with
failed attempts and dead letters. Each response must not be a 5xx, its status code must be documented,
and its body must match the documented schema (errors included: the envelope).

The app runs as in production with keys: every request presents one (a write key, and a read key for
a second pass whose mutations must all be refused in the envelope), the schema itself is fetched with the
read key, and changes say ``X-Requested-By`` as a script does. Nothing is bypassed.

Bounded for CI: a fixed number of examples per operation, derandomized so a run is reproducible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.celery_dep import close_celery
from api.main import create_app
from error_handling.categories import Category
from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.sealing import Sealer
from function_runner.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.dead_letter_seed import seed_dead_letter
from tests.support.failures import fail

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
READ_KEY = "fuzz-read-key-0123456789"
WRITE_KEY = "fuzz-write-key-9876543210"
API_KEYS = f"reader=read:{READ_KEY},writer=write:{WRITE_KEY}"
WRITER = {"Authorization": f"Bearer {WRITE_KEY}", "X-Requested-By": "schemathesis"}
READER = {"Authorization": f"Bearer {READ_KEY}", "X-Requested-By": "schemathesis"}


def _seed(pg_url: str) -> None:
    """A few failed attempts (transient and permanent) and dead letters (pending, unreplayable)."""
    engine = make_engine(pg_url)
    try:
        sessions = make_sessionmaker(engine)
        for index in range(3):
            fail(sessions, f"task-{index}", 1, at=NOW - dt.timedelta(minutes=index + 1))
        fail(sessions, "task-0", 2, at=NOW, category=Category.RESOURCE, reason="gpu_busy", message="slow down")
        sealer = Sealer(TEST_KEY)
        for index in range(3):
            seed_dead_letter(
                sessions,
                f"dead-{index}",
                sealer=sealer,
                at=NOW - dt.timedelta(minutes=index),
                kwargs={"password": "pw-fuzz-secret", "n": index},
                replayable=index != 2,
            )
    finally:
        engine.dispose()


@pytest.fixture
def app(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    _seed(pg_url)
    settings_ = Settings(
        database_url=pg_url,
        broker_url=redis_url,
        encryption_key=SecretStr(TEST_KEY),
        data_dir=tmp_path,
        api_keys=SecretStr(API_KEYS),
        replay_allowed_queues=["other"],
    )
    application = create_app(settings_)
    yield application
    close_celery(application)
    engine: sa.Engine | None = getattr(application.state, "engine", None)
    if engine is not None:
        engine.dispose()


#: The schema does not depend on the database: load it once from an app that never connects. Each test
#: then calls its own app, on its own seeded database (``call_and_validate(app=...)``).
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(Settings(encryption_key=SecretStr(TEST_KEY), api_keys=SecretStr(API_KEYS))),
    headers={"Authorization": f"Bearer {READ_KEY}"},
)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any], app: FastAPI) -> None:
    # Every check but positive_data_acceptance: whether a request is semantically valid (an opaque cursor
    # this API issued, an Idempotency-Key not used for another dead letter) cannot be said in a schema,
    # and those refusals are documented 400/422s in the envelope, which the other checks validate.
    case.call_and_validate(app=app, headers=WRITER, excluded_checks=[positive_data_acceptance])


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_a_read_key_conforms_and_changes_nothing(case: schemathesis.Case[Any], app: FastAPI) -> None:
    response = case.call_and_validate(app=app, headers=READER, excluded_checks=[positive_data_acceptance])
    if case.method.upper() not in {"GET", "HEAD", "OPTIONS"} and response.status_code < 400:
        raise AssertionError(f"a read key changed something: {case.method} {case.path} -> {response.status_code}")


def test_the_seeded_rows_conform_to_the_schema(app: FastAPI) -> None:
    """The happy paths on rows that exist (random ids rarely hit them): each response matches its schema."""
    prefix = "/api/v1/errors"

    def call(path: str, method: str, expected: int, **parts: Any) -> Any:
        case = schema[prefix + path][method].Case(**parts)
        response = case.call_and_validate(app=app, headers=WRITER, excluded_checks=[positive_data_acceptance])
        assert response.status_code == expected, response.text
        return response.json()

    listed = call("", "GET", 200, query={"limit": 2})
    assert len(listed["data"]) == 2 and listed["next_cursor"]
    call("", "GET", 200, query={"cursor": listed["next_cursor"], "since": "2000-01-01T00:00:00Z"})
    call("/{attempt_id}", "GET", 200, path_parameters={"attempt_id": listed["data"][0]["id"]})
    call("/task/{task_id}/history", "GET", 200, path_parameters={"task_id": "task-0"})
    call("/task/{task_id}/history", "GET", 200, path_parameters={"task_id": "dead-0"})
    call("/stats", "GET", 200)
    call("/health", "GET", 200)
    letters = call("/dead-letters", "GET", 200, query={"status": "pending"})["data"]
    assert len(letters) == 3
    first, _, unreplayable = (letter["id"] for letter in letters)
    call("/dead-letters/{dead_letter_id}", "GET", 200, path_parameters={"dead_letter_id": first})
    replay = "/dead-letters/{dead_letter_id}/replay"
    call(replay, "POST", 202, path_parameters={"dead_letter_id": first}, headers={"Idempotency-Key": "k1"})
    call(replay, "POST", 202, path_parameters={"dead_letter_id": first}, headers={"Idempotency-Key": "k1"})
    call(replay, "POST", 409, path_parameters={"dead_letter_id": first})
    call(replay, "POST", 202, path_parameters={"dead_letter_id": first}, body={"force": True, "queue": "other"})
    call(replay, "POST", 409, path_parameters={"dead_letter_id": unreplayable})
    discard = "/dead-letters/{dead_letter_id}"
    call(discard, "DELETE", 200, path_parameters={"dead_letter_id": unreplayable}, query={"reason": "cannot be fixed"})
    call(discard, "DELETE", 409, path_parameters={"dead_letter_id": unreplayable}, query={"reason": "again"})
    call("/task/{task_id}/history", "GET", 200, path_parameters={"task_id": "dead-0"})
