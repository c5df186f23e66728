"""Structured log events: a stable name and fields on the record, secrets redacted (invariant 6)."""

from __future__ import annotations

import logging

import pytest

from error_handling.redaction import REDACTED
from function_runner.events import log_event

# The secrets hold the word "canary"; the names of these constants do not.
PLANTED_KEY = "sk-canary0123456789abcdefCANARY"
PLANTED_PASSWORD = "hunter2-canary-pw"


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "fr_event", None) == name]


def test_the_event_name_and_fields_are_record_attributes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="function_runner")
    log_event("task.failed", level=logging.WARNING, task_id="t-1", attempt=2, category="transient")

    (record,) = _events(caplog, "task.failed")
    assert record.name == "function_runner"
    assert record.levelno == logging.WARNING
    assert record.fr_fields == {"task_id": "t-1", "attempt": 2, "category": "transient"}  # type: ignore[attr-defined]
    assert record.getMessage() == "task.failed task_id=t-1 attempt=2 category=transient"


def test_secret_fields_are_redacted_by_key_name_and_by_pattern(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="function_runner")
    log_event(
        "task.planted",
        api_key=PLANTED_KEY,
        password=PLANTED_PASSWORD,  # no recognisable shape: only its key name gives it away
        message=f"upstream refused key {PLANTED_KEY} with password={PLANTED_PASSWORD}",
        nested={"headers": {"authorization": f"Bearer {PLANTED_KEY}"}, "tokens": 12},
        task_id="t-2",
    )

    (record,) = _events(caplog, "task.planted")
    fields = record.fr_fields  # type: ignore[attr-defined]
    assert fields["api_key"] == REDACTED
    assert fields["password"] == REDACTED
    assert fields["message"] == f"upstream refused key {REDACTED} with password={REDACTED}"
    assert fields["nested"] == {"headers": {"authorization": REDACTED}, "tokens": 12}
    assert fields["task_id"] == "t-2"  # what is not secret is kept
    assert "canary" not in caplog.text
    assert "canary" not in record.getMessage()
    assert "canary" not in repr(fields)


def test_nothing_is_built_when_the_level_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="function_runner")
    log_event("task.recovered", task_id="t-3")
    log_event("task.storage_unavailable", level=logging.ERROR, task_id="t-3")
    assert [r.fr_event for r in caplog.records if hasattr(r, "fr_event")] == ["task.storage_unavailable"]
