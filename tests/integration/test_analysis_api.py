"""``GET /analysis`` and ``function-runner analyze`` on real Postgres: the design's document (totals, error
rate, distribution, trend, anomalies and recommendations with evidence, summaries), a new group seen as
such, read keys allowed, and bad windows refused in the error envelope."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from api.celery_dep import close_celery
from api.main import API_PREFIX, create_app
from error_handling.categories import Category
from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.persistence.task_counts import add_successes
from function_runner.cli.main import app as cli
from function_runner.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.api_client import bearer, local_client
from tests.support.failures import fail

URL = f"{API_PREFIX}/analysis"
READ_KEY = "sk-analysis-read-0123456789abcdef"


@pytest.fixture
def sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def app_settings(pg_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=pg_url,
        broker_url=redis_url,
        encryption_key=TEST_KEY,
        data_dir=tmp_path,
        api_keys=SecretStr(f"viewer=read:{READ_KEY}"),
    )


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    app = create_app(app_settings)
    with local_client(app, headers=bearer(READ_KEY)) as test_client:
        yield test_client
    close_celery(app)
    engine = getattr(app.state, "engine", None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> dt.datetime:
    """In the last minutes: 30 failures of a brand-new group and 5 of another, 65 successes; an hour ago, 10
    failures. Returns now."""
    now = dt.datetime.now(dt.UTC)
    for i in range(30):
        fail(sessions, f"new-{i}", 1, at=now - dt.timedelta(seconds=10 + i), fingerprint="a" * 16, task_name="app.chat")
    for i in range(5):
        fail(
            sessions,
            f"bad-{i}",
            1,
            at=now - dt.timedelta(seconds=40 + i),
            category=Category.VALIDATION,
            reason="invalid_input",
            fingerprint="b" * 16,
            task_name="app.chat",
        )
    for i in range(10):
        fail(sessions, f"old-{i}", 1, at=now - dt.timedelta(minutes=62, seconds=i), fingerprint="c" * 16)
    with sessions.begin() as session:
        add_successes(session, {(now - dt.timedelta(minutes=1), "app.chat", "celery"): 65})
    return now


def test_the_analysis_of_the_last_minutes(client: TestClient, seeded: dt.datetime) -> None:
    response = client.get(URL, params={"window_minutes": 5})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window_minutes"] == 5
    assert body["total_errors"] == 35
    assert body["executions"] == 100
    assert body["error_rate"] == pytest.approx(0.35)
    assert body["error_distribution"] == {"transient": 30, "validation": 5}
    assert set(body["trend"]) == {"previous", "day_ago", "week_ago"}
    assert body["trend"]["previous"]["total_errors"] == 0
    new_groups = [a for a in body["anomalies"] if a["kind"] == "new_group"]
    assert {a["subject"] for a in new_groups} == {"a" * 16, "b" * 16}
    assert all(a["evidence"] for a in body["anomalies"])
    rate = next(a for a in body["anomalies"] if a["kind"] == "error_rate")
    assert rate["subject"] == "app.chat"
    assert body["recovery"]["retries_scheduled"] == 30
    assert body["circuit_breakers"] == {"opens": 0, "closes": 0, "by_service": {}}
    assert body["self_healing"] is None


def test_the_hour_before_is_the_previous_window_of_an_hour(client: TestClient, seeded: dt.datetime) -> None:
    body = client.get(URL, params={"window_minutes": 60}).json()
    assert body["total_errors"] == 35
    assert body["trend"]["previous"]["total_errors"] == 10
    assert body["trend"]["previous"]["change"] == pytest.approx((35 - 10) / 10)


@pytest.mark.parametrize("window", ["0", "10081", "five", "1.5"])
def test_a_bad_window_is_refused_in_the_envelope(client: TestClient, window: str) -> None:
    response = client.get(URL, params={"window_minutes": window})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "window_minutes"


def test_the_command_prints_the_same_document(
    app_settings: Settings, seeded: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUNCTION_RUNNER_DATABASE_URL", app_settings.database_url or "")
    monkeypatch.setenv("FUNCTION_RUNNER_ENCRYPTION_KEY", TEST_KEY)
    result = CliRunner().invoke(cli, ["analyze", "--window-minutes", "5", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert (document["total_errors"], document["executions"]) == (35, 100)
    text = CliRunner().invoke(cli, ["analyze", "-w", "5"])
    assert text.exit_code == 0, text.output
    assert "35 errors in 100 executions (error rate 35.00%)" in text.output
    assert "new_group" in text.output
    refused = CliRunner().invoke(cli, ["analyze", "--window-minutes", "0"])
    assert refused.exit_code == 2
