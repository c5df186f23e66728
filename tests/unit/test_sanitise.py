"""The sanitiser: values Postgres refuses made storable, pure functions (no database)."""

from __future__ import annotations

import json
import math

import sqlalchemy as sa

from error_handling.persistence import sanitise
from error_handling.persistence.models import DeadLetterRecord, FailedAttempt, LostDelivery, TaskRecord
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
