"""The sanitiser: values Postgres refuses made storable (pure functions), and the repository writing
them on SQLite and on a real Postgres."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.categories import Category
from error_handling.classification import Classification
from error_handling.persistence import failure_recording, reports, sanitise
from error_handling.persistence.db import transaction
from error_handling.persistence.models import DeadLetterRecord, FailedAttempt, LostDelivery, TaskRecord
from error_handling.persistence.reads import histories
from error_handling.policy import DeadLetter, RecoveryPolicy
from error_handling.redaction import Redactor

ATTEMPTS: sa.Table = FailedAttempt.__table__  # type: ignore[assignment]
TASKS: sa.Table = TaskRecord.__table__  # type: ignore[assignment]
LETTERS: sa.Table = DeadLetterRecord.__table__  # type: ignore[assignment]
LOST: sa.Table = LostDelivery.__table__  # type: ignore[assignment]


def test_nul_becomes_visible_text_and_lone_surrogates_the_replacement_character() -> None:
    assert sanitise.clean_text("abc\x00def") == "abc\\x00def"
    assert sanitise.clean_text("a\ud800b\udfffc") == "a\ufffdb\ufffdc"
    assert sanitise.clean_text("\U0001f600 fine") == "\U0001f600 fine"  # a surrogate pair is not lone
    text = "nothing to do"
    assert sanitise.clean_text(text) is text


def test_a_cleaned_string_encodes_as_utf8_and_holds_no_nul() -> None:
    cleaned = sanitise.clean_text("x\x00\ud800\udc00y")
    cleaned.encode("utf-8")
    assert "\x00" not in cleaned


def test_bounded_columns_are_clamped_to_the_models_lengths() -> None:
    reason_length = ATTEMPTS.c.reason.type.length  # type: ignore[attr-defined]
    resource_length = ATTEMPTS.c.resource.type.length  # type: ignore[attr-defined]
    row = sanitise.row(ATTEMPTS, {"reason": "r" * 500, "resource": "s" * 500, "worker": "w" * 300})
    assert len(row["reason"]) == reason_length and row["reason"].endswith("…")
    assert len(row["resource"]) == resource_length
    assert len(row["worker"]) == ATTEMPTS.c.worker.type.length  # type: ignore[attr-defined]


def test_messages_and_tracebacks_are_cut_to_their_documented_limits() -> None:
    row = sanitise.row(ATTEMPTS, {"message": "m" * 100_000, "traceback": "t" * 200_000})
    assert len(row["message"]) == sanitise.MESSAGE_LIMIT and "characters cut" in row["message"]
    assert len(row["traceback"]) == sanitise.TRACEBACK_LIMIT and row["traceback"].startswith("t" * 1000)
    assert sanitise.cut("short", 10) == "short"


def test_a_secret_redacted_before_the_cut_leaves_no_part_of_itself() -> None:
    secret = "sk-" + "a1B2c3D4" * 8
    message = "x" * (sanitise.MESSAGE_LIMIT - 20) + f" key={secret}"
    stored = sanitise.row(ATTEMPTS, {"message": Redactor().redact_text(message)})["message"]
    assert "sk-" not in stored and "a1B2c3D4" not in stored


def test_json_columns_lose_nul_surrogates_non_finite_floats_and_huge_integers() -> None:
    value = {"k\x00": ["\ud800", math.nan, math.inf, -math.inf, 10**5000, 2**70, {"n": "a\x00"}], 1: object()}
    stored = sanitise.json_value(value)
    assert stored == {
        "k\\x00": ["\ufffd", "NaN", "Infinity", "-Infinity", "<integer of 16610 bits>", 2**70, {"n": "a\\x00"}],
        "1": "<object>",
    }
    json.dumps(stored, allow_nan=False).encode("utf-8")  # what json_populate_recordset gets


def test_a_value_with_nothing_to_clean_is_returned_as_it_is() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": "d"}}
    assert sanitise.json_value(value) is value
    row = {"task_id": "t", "message": "ok", "args": value}
    assert sanitise.row(ATTEMPTS, row) is row


def test_numbers_out_of_range_become_null_where_the_column_allows_it() -> None:
    row = sanitise.row(ATTEMPTS, {"status_code": 10**12, "retry_after": math.inf, "attempt": 10**12})
    assert row["status_code"] is None and row["retry_after"] is None
    assert row["attempt"] == 10**12  # not nullable: kept (refused, then dead-lettered as unrecordable)
    assert sanitise.row(LOST, {"pid": 2**40})["pid"] is None


def test_a_long_or_unstorable_task_id_gets_a_stable_distinct_key_that_is_its_own_key() -> None:
    long_id = "t" * 1000
    key = sanitise.task_key(long_id)
    assert len(key) <= sanitise.TASK_ID_LENGTH and key.startswith("t" * 100)
    assert sanitise.task_key(long_id) == key  # a redelivery finds its record
    assert sanitise.task_key("t" * 999 + "u") != key
    assert sanitise.task_key(key) == key
    assert "\x00" not in sanitise.task_key("a\x00b") and sanitise.task_key("a\x00b") != sanitise.task_key("a\\x00b")
    assert sanitise.task_key("ordinary-id") == "ordinary-id"
    assert sanitise.row(TASKS, {"task_id": long_id, "root_id": long_id})["root_id"] == key


def test_unstorable_finds_nul_and_surrogates_in_values_and_keys() -> None:
    assert sanitise.unstorable(["a", {"b": ("c", "d\x00")}])
    assert sanitise.unstorable({"k\ud800": 1})
    assert not sanitise.unstorable(["a", {"b": 1.5}, math.nan])


def test_every_text_column_of_a_dead_letter_is_covered() -> None:
    row = sanitise.row(LETTERS, {"message": "\x00", "exc_type": "E\x00", "reason": "x" * 100, "args": ["\x00"]})
    assert "\x00" not in json.dumps(row, default=str)


# -- the repository writes refused values sanitised, on SQLite and on a real Postgres ---------------

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def _report(task_id: str, *, category: Category = Category.PERMANENT, **changes: Any) -> reports.FailureReport:
    fields: dict[str, Any] = {
        "category": category,
        "reason": "permanent_failure",
        "fingerprint": "f" * 16,
        "message": "boom",
        "exc_type": "builtins.Exception",
    }
    fields |= {k: v for k, v in changes.items() if k not in ("args", "kwargs", "traceback", "worker", "task_name")}
    return reports.FailureReport(
        task_id=task_id,
        attempt=1,
        payload=reports.TaskPayload(
            task_name=changes.get("task_name", "app.task"),
            args=changes.get("args", [1]),
            kwargs=changes.get("kwargs", {}),
            options={},
            headers={},
        ),
        classification=Classification(**fields),
        traceback=changes.get("traceback", "tb"),
        failed_at=NOW,
        worker=changes.get("worker", "w1"),
    )


REFUSED: dict[str, dict[str, Any]] = {
    "nul-in-args": {"args": ["a\x00b", {"n": ["\x00"]}], "kwargs": {"k\x00": "v\x00"}},
    "surrogate-in-args": {"args": ["\ud800"], "kwargs": {"\udfff": 1}},
    "non-finite-and-huge-numbers": {"args": [math.nan, math.inf, 10**5000]},
    "nul-in-message-and-traceback": {"message": "a\x00b", "traceback": "tb\x00", "user_message": "u\x00"},
    "surrogate-in-message": {"message": "a\ud800b", "exc_type": "E\ud800"},
    "long-reason": {"reason": "r" * 300},
    "long-names": {"task_name": "n" * 300, "worker": "w" * 300, "exc_type": "e" * 300, "rule": "x" * 300},
    "huge-status-and-infinite-retry-after": {"status_code": 10**12, "retry_after": math.inf},
    "huge-message": {"message": "m" * 1_000_000, "traceback": "t" * 1_000_000},
}


@pytest.mark.parametrize("values", REFUSED.values(), ids=REFUSED.keys())
def test_the_repository_stores_values_postgres_refuses(sessions: sessionmaker[Session], values: dict[str, Any]) -> None:
    with transaction(sessions) as s:
        (recorded,) = failure_recording.record_failures(s, reports=[_report("t-1", **values)], policy=RecoveryPolicy())
    assert isinstance(recorded.decision, DeadLetter)
    with transaction(sessions) as s:
        attempt = s.execute(sa.select(FailedAttempt)).scalar_one()
        letter = s.execute(sa.select(DeadLetterRecord)).scalar_one()
        task = s.get(TaskRecord, "t-1")
        assert task is not None
        stored = json.dumps([attempt.message, attempt.traceback, letter.args, letter.kwargs, task.args])
    assert "\\u0000" not in stored and "\\ud8" not in stored
    assert len(attempt.message) <= sanitise.MESSAGE_LIMIT
    assert attempt.status_code is None or attempt.status_code < 2**31


def test_a_long_task_id_is_recorded_under_its_key_and_found_again(sessions: sessionmaker[Session]) -> None:
    task_id = "t" * 1000
    report = _report(task_id, category=Category.TRANSIENT, reason="timeout")
    with transaction(sessions) as s:
        (first,) = failure_recording.record_failures(s, reports=[report], policy=RecoveryPolicy())
    with transaction(sessions) as s:
        (again,) = failure_recording.record_failures(s, reports=[report], policy=RecoveryPolicy())  # a redelivery
        assert failure_recording.recorded_attempts(s, [(task_id, 1)]) == {(task_id, 1)}
        assert failure_recording.record_success(s, task_id=task_id, run_id=None, now=NOW)
    assert first.run_id is not None and again.duplicate
    with transaction(sessions) as s:
        history = histories.task_history(s, task_id=task_id)
        assert history is not None
        task, attempts, runs = history.task, history.attempts, history.runs
        assert task is not None and task.task_id == sanitise.task_key(task_id) and task.state.value == "succeeded"
        assert len(attempts) == 1 and len(runs) == 1
