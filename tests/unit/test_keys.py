"""The key rule (no key made up per process outside the embedded default), re-sealing under the newest
key, purging, and the retention settings."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from api.main import create_app as create_api
from error_handling.categories import Category
from error_handling.exceptions import ConfigurationError, StorageUnavailable
from error_handling.persistence.models import FailedAttempt, RetentionRun
from error_handling.redaction import REDACTED, Redactor
from error_handling.sealing import (
    LITERAL_KEY,
    SEALED_KEY,
    Sealer,
    generate_key,
    is_sealed,
    purge_secrets,
    redacted_view,
    reseal_secrets,
    seal_secrets,
    unseal_secrets,
)
from function_runner.app import create_app
from function_runner.dispatch.dispatcher import Dispatcher
from function_runner.dispatch.retention import RetentionRole
from function_runner.migrate import upgrade
from function_runner.runtime import runtime_for
from function_runner.settings import Settings
from function_runner.settings.storage import KEY_FILE_NAME, MISSING_KEY
from tests.support.failures import fail

KEY_A, KEY_B = generate_key(), generate_key()
STORED = {"password": "pw-1", "nested": [{"api_key": "sk-abcdefghijklmnopqrstuvwx"}], "$sealed": "user data", "n": 1}
SERVER_URLS = [
    {"database_url": "postgresql://db.example/fr"},
    {"broker_url": "redis://broker.example:6379/0"},
    {"broker_url": "amqp://guest@rabbit.example//"},
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [k for k in os.environ if k.startswith("FUNCTION_RUNNER_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def sealed(value: object, key: str) -> object:
    return seal_secrets(value, redactor=Redactor(), sealer=Sealer(key))


# --- the key rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize("urls", SERVER_URLS, ids=["postgres", "redis-broker", "rabbitmq"])
@pytest.mark.parametrize("key", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_a_server_without_a_key_is_a_configuration_error_and_no_key_file_is_made(
    tmp_path: Path, urls: dict[str, str], key: str | None
) -> None:
    settings = Settings(data_dir=tmp_path / "data", encryption_key=key, **urls)
    assert not settings.embedded
    for check in (settings.check_encryption_key, settings.sealer):
        with pytest.raises(ConfigurationError) as caught:
            check()
        assert str(caught.value) == MISSING_KEY
    assert not (tmp_path / "data" / KEY_FILE_NAME).exists()


@pytest.mark.parametrize("broker", [None, "memory://"])
def test_the_embedded_default_keeps_its_key_file(tmp_path: Path, broker: str | None) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}", broker_url=broker
    )
    assert settings.embedded
    settings.check_encryption_key()  # the check at start passes and makes nothing
    assert not (tmp_path / "data" / KEY_FILE_NAME).exists()
    with pytest.warns(UserWarning, match="is not set"):
        sealer = settings.sealer()
    assert Sealer((tmp_path / "data" / KEY_FILE_NAME).read_text()).unseal(sealer.seal("x")) == "x"


@pytest.mark.parametrize("key", ["not-a-key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,short"])
def test_a_malformed_key_is_refused_without_echoing_it(tmp_path: Path, key: str) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://db.example/fr", encryption_key=key)
    with pytest.raises(
        ConfigurationError, match=r"^invalid FUNCTION_RUNNER_ENCRYPTION_KEY: encryption key #"
    ) as caught:
        settings.sealer()
    assert key.split(",")[-1] not in str(caught.value)


def test_the_api_and_the_dispatcher_refuse_to_be_created_without_a_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://db.example/fr", broker_url="memory://")
    with pytest.raises(ConfigurationError, match="FUNCTION_RUNNER_ENCRYPTION_KEY is not set"):
        create_api(settings)
    app: Celery = create_app(settings, main="fr_unit_nokey")
    try:
        with pytest.raises(ConfigurationError, match="FUNCTION_RUNNER_ENCRYPTION_KEY is not set"):
            Dispatcher(app)
    finally:
        app.close()


# --- re-sealing and purging ---------------------------------------------------------------------------


def test_reseal_moves_every_value_to_the_first_key_and_a_second_pass_changes_nothing() -> None:
    stored = sealed(STORED, KEY_A)
    both = Sealer(f"{KEY_B},{KEY_A}")
    first = reseal_secrets(stored, sealer=both)
    assert (first.rotated, first.current, first.unopened) == (2, 0, 0)
    assert unseal_secrets(first.value, sealer=Sealer(KEY_B)) == STORED  # B alone opens it now
    assert first.value[LITERAL_KEY]["n"] == 1  # the escape of the user's own "$sealed" key is kept
    second = reseal_secrets(first.value, sealer=both)
    assert (second.rotated, second.current, second.unopened) == (0, 2, 0)
    assert second.value == first.value


def test_reseal_counts_and_keeps_what_no_configured_key_opens() -> None:
    stray = generate_key()
    stored = {"a": sealed({"password": "pw-a"}, KEY_A), "z": sealed({"password": "pw-z"}, stray)}
    result = reseal_secrets(stored, sealer=Sealer(f"{KEY_B},{KEY_A}"))
    assert (result.rotated, result.unopened) == (1, 1)
    assert result.value["z"] == stored["z"]  # kept as it was, not dropped
    assert Sealer(stray).unseal(result.value["z"]["password"][SEALED_KEY]) == "pw-z"


def test_purge_replaces_each_sealed_value_and_keeps_the_rest() -> None:
    purged = purge_secrets(sealed(STORED, KEY_A))
    assert "gAAAAA" not in json.dumps(purged)  # no Fernet token is left
    assert not any(is_sealed(v) for v in purged[LITERAL_KEY].values())
    assert redacted_view(purged) == {
        "password": REDACTED,
        "nested": [{"api_key": REDACTED}],
        "$sealed": "user data",
        "n": 1,
    }


# --- retention settings ---------------------------------------------------------------------------------


def test_retention_defaults_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (
        settings.retention_attempts_days,
        settings.retention_counts_days,
        settings.retention_breaker_events_days,
        settings.retention_service_days,
        settings.retention_lost_deliveries_days,
        settings.retention_purge_replayed_after_days,
        settings.retention_interval,
        settings.retention_batch_size,
    ) == (30.0, 400.0, 30.0, 14.0, 30.0, 7.0, 3600.0, 1000)
    monkeypatch.setenv("FUNCTION_RUNNER_RETENTION_ATTEMPTS_DAYS", "off")
    monkeypatch.setenv("FUNCTION_RUNNER_RETENTION_COUNTS_DAYS", "")
    monkeypatch.setenv("FUNCTION_RUNNER_RETENTION_SERVICE_DAYS", "2.5")
    changed = Settings()
    assert changed.retention_attempts_days is None
    assert changed.retention_counts_days is None
    assert changed.retention_service_days == 2.5


def test_retention_on_sqlite_deletes_settled_attempts_and_keeps_a_retrying_task(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'retention.sqlite3'}"
    upgrade(url)
    app = create_app(
        Settings(data_dir=tmp_path, database_url=url, broker_url="memory://", encryption_key=KEY_A),
        main="fr_unit_retention",
    )
    runtime = runtime_for(app)
    try:
        now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
        old = now - dt.timedelta(days=31)
        fail(runtime.sessions, "settled", 1, at=old, category=Category.VALIDATION, reason="invalid_input")
        fail(runtime.sessions, "retrying", 1, at=old)
        totals = RetentionRole(
            in_transaction=runtime.in_transaction, settings=runtime.settings, runner="dispatcher@unit:1"
        ).run(now=now)
        assert totals is not None and totals.finished
        assert totals.deleted == {"fr_failed_attempts": 1}
        with runtime.sessions() as s:
            assert [a.task_id for a in s.query(FailedAttempt)] == ["retrying"]
    finally:
        runtime.close()
        app.close()


def test_a_run_interrupted_by_a_database_outage_resumes_where_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'outage.sqlite3'}"
    upgrade(url)
    settings = Settings(
        data_dir=tmp_path, database_url=url, broker_url="memory://", encryption_key=KEY_A, retention_batch_size=1
    )
    app = create_app(settings, main="fr_unit_retention_outage")
    runtime = runtime_for(app)
    try:
        now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
        for index in range(3):
            fail(runtime.sessions, f"settled-{index}", 1, at=now - dt.timedelta(days=31), category=Category.VALIDATION)
        real = runtime.in_transaction
        calls = {"n": 0}

        def flaky(work: Any, **kw: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 3:  # start, first batch, then the database goes away
                raise StorageUnavailable("database unreachable")
            return real(work, **kw)

        monkeypatch.setattr(runtime, "in_transaction", flaky)
        role = RetentionRole(
            in_transaction=runtime.in_transaction, settings=runtime.settings, runner="dispatcher@unit:1"
        )
        with pytest.raises(StorageUnavailable):
            role.step(now=now, budget=float("inf"))
        totals = role.step(now=now, budget=float("inf"))  # the next pass resumes the same run
        assert totals is not None and totals.finished
        assert totals.deleted == {"fr_failed_attempts": 3}
        with runtime.sessions() as s:
            assert s.query(RetentionRun).count() == 1
    finally:
        runtime.close()
        app.close()


#: JSON columns that hold no sealed value: delivery options, a replay job's filter, figures, the audit's
#: redacted detail.
UNSEALED_JSON = {
    ("fr_tasks", "options"),
    ("fr_dead_letters", "options"),
    ("fr_replay_jobs", "filter"),
    ("fr_retention_runs", "deleted"),
    ("fr_audit_events", "detail"),
    ("ai_service_health", "latency_histogram"),
    ("ai_fallback_events", "passed_over"),
}


def test_keys_rotate_covers_every_json_column_that_may_hold_a_sealed_value() -> None:
    """A table added with a payload column must be added to ``rekey.SEALED_COLUMNS`` (or above)."""
    import sqlalchemy as sa

    from error_handling.persistence.models import Base
    from error_handling.persistence.rekey import SEALED_COLUMNS

    json_columns = {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, sa.JSON)
    }
    rotated = {(target.name, column.name) for target in SEALED_COLUMNS for column in target.columns}
    assert json_columns == rotated | UNSEALED_JSON
