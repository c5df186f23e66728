"""The chaos suite's rules catch what they name (``tests/chaos/checks.py``): each is fed a record that
breaks it, and a faithful one; and its reader of the broker's append-only file (``broker_log.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chaos import broker_log, checks
from tests.chaos.checks import Planned, Record, Truth

TASKS = [
    Planned("ok1", "success"),
    Planned("tr1", "transient", pays=True),
    Planned("va1", "validation", pays=True),
    Planned("pe1", "permanent", batch="B"),
]


def faithful() -> tuple[Truth, Record]:
    truth = Truth(
        ok={"ok1", "tr1"},
        raised={"tr1": {1}, "va1": {1}, "pe1": {1}},
        starts={"ok1": 1, "tr1": 2, "va1": 1, "pe1": 1},
        refunds={"va1": 1},
    )
    record = Record(
        states={"tr1": "succeeded", "va1": "failed_fast", "pe1": "dead_lettered"},
        attempts=[("tr1", 1, "service_unavailable"), ("va1", 1, "invalid_input"), ("pe1", 1, "not_found")],
        letters={"pe1": ("not_found", True)},
        letter_rows=["pe1"],
        steps={"tr1": ["recorded"], "va1": ["compensated"]},
    )
    return truth, record


def test_a_faithful_record_breaks_no_rule() -> None:
    truth, record = faithful()
    assert not any(checks.violations(TASKS, truth, record).values())


def test_a_task_with_no_end_is_lost() -> None:
    truth, record = faithful()
    truth.ok.discard("ok1")  # no row, and its body never said it succeeded
    assert checks.lost(TASKS, truth, record) == ["ok1 (success) has no terminal outcome"]
    record.states["va1"] = "retrying"
    assert len(checks.lost(TASKS, truth, record)) == 2


def test_success_in_the_body_and_a_failed_record_are_two_terminal_states() -> None:
    truth, record = faithful()
    truth.ok.add("pe1")
    assert checks.two_terminal_states(TASKS, truth, record) == [
        "pe1 (permanent) succeeded in its body but is recorded dead_lettered"
    ]
    truth, record = faithful()
    record.letter_rows.append("pe1")
    assert checks.two_terminal_states(TASKS, truth, record) == ["pe1 has 2 dead letters"]


def test_a_worker_lost_dead_letter_is_a_legitimate_end_for_any_kind() -> None:
    truth, record = faithful()
    truth.ok.discard("ok1")
    record.states["ok1"] = "dead_lettered"
    record.letters["ok1"] = ("worker_lost", True)
    assert checks.two_terminal_states(TASKS, truth, record) == []
    record.letters["ok1"] = ("not_found", True)
    assert checks.two_terminal_states(TASKS, truth, record) == ["ok1 (success) ended dead_lettered, expected succeeded"]


def test_failed_attempts_must_match_the_raises_once_each() -> None:
    truth, record = faithful()
    record.attempts.append(("tr1", 1, "service_unavailable"))
    assert checks.attempts_recorded_once(TASKS, truth, record) == ["tr1 attempt 1 recorded 2 times"]

    truth, record = faithful()
    truth.raised["tr1"] = {1, 2}
    assert checks.attempts_recorded_once(TASKS, truth, record) == [
        "tr1 (transient): attempts [2] raised but not recorded"
    ]
    record.lost_deliveries.add(("tr1", 2))  # its worker died before it could record the failure
    assert checks.attempts_recorded_once(TASKS, truth, record) == []

    truth, record = faithful()
    record.attempts.append(("ok1", 1, "connection"))
    assert checks.attempts_recorded_once(TASKS, truth, record) == [
        "ok1 (success): attempts [1] recorded but never raised"
    ]


def test_a_charge_is_refunded_once_and_only_when_the_task_failed_for_good() -> None:
    truth, record = faithful()
    truth.refunds["va1"] = 2
    assert checks.side_effects_once(TASKS, truth, record)[0] == "va1: refunded 2 times"
    truth.refunds["va1"] = 0
    assert checks.side_effects_once(TASKS, truth, record) == [
        "va1 (failed_fast): refunded 0 times, expected once (steps: ['compensated'])"
    ]
    truth, record = faithful()
    truth.refunds["tr1"] = 1
    assert checks.side_effects_once(TASKS, truth, record) == ["tr1: succeeded but was refunded"]
    truth, record = faithful()
    record.steps["tr1"] = ["recorded", "recorded"]
    assert checks.side_effects_once(TASKS, truth, record) == ["tr1: 2 compensation steps for one charge"]


def test_a_dead_letter_without_its_payload_is_reported() -> None:
    _, record = faithful()
    record.letters["pe1"] = ("not_found", False)
    assert checks.payloads_kept(record) == ["dead letter of pe1 (not_found) has no payload"]


def _resp(*args: bytes | str) -> bytes:
    parts = [a.encode() if isinstance(a, str) else a for a in args]
    return f"*{len(parts)}\r\n".encode() + b"".join(f"${len(p)}\r\n".encode() + p + b"\r\n" for p in parts)


def _kombu(task_id: str) -> bytes:
    return json.dumps(
        {"body": "e30=", "headers": {"id": task_id}, "properties": {"delivery_tag": f"tag-{task_id}"}}
    ).encode()


def test_the_broker_log_names_messages_popped_and_never_held_as_unacked(tmp_path: Path) -> None:
    log = b"".join(
        [
            _resp("SELECT", "0"),
            _resp("LPUSH", "celery", _kombu("held")),
            _resp("LPUSH", "celery", _kombu("dropped")),
            _resp("LPUSH", "celery", _kombu("given-back")),
            _resp("LPUSH", "celery", _kombu("waiting")),
            _resp("RPOP", "celery"),  # held: stored as unacked right after
            _resp("MULTI"),
            _resp("ZADD", "unacked_index", "1.0", "tag-held"),
            _resp("HSET", "unacked", "tag-held", b"[...]"),
            _resp("EXEC"),
            _resp("RPOP", "celery"),  # dropped: Redis restarts before the consumer stores it
            _resp("SELECT", "1"),
            _resp("LPUSH", "celery", b"not a message"),  # another db's list of the same name
            _resp("SELECT", "0"),
            _resp("RPOP", "celery"),  # given back: pushed to the queue again (a restore)
            _resp("RPUSH", "celery", _kombu("given-back")),
            _resp("LPUSH", "priority", _kombu("reliable")),
            _resp("MULTI"),  # the reliable transport's script, as Redis logs its effects
            _resp("RPOP", "priority"),
            _resp("ZADD", "unacked_index", "2.0", "tag-reliable"),
            _resp("HSET", "unacked", "tag-reliable", b"[...]"),
            _resp("EXEC"),
        ]
    )
    assert broker_log.taken_never_held(log) == {"dropped"}

    directory = tmp_path / "appendonlydir"
    directory.mkdir()
    (directory / "appendonly.aof.1.base.rdb").write_bytes(b"REDIS0010")
    (directory / "appendonly.aof.1.incr.aof").write_bytes(log[: len(log) // 2])
    (directory / "appendonly.aof.2.incr.aof").write_bytes(log[len(log) // 2 :])
    (directory / "appendonly.aof.manifest").write_text(
        "file appendonly.aof.1.base.rdb seq 1 type b\n"
        "file appendonly.aof.2.incr.aof seq 2 type i\n"
        "file appendonly.aof.1.incr.aof seq 1 type i\n"
    )
    assert broker_log.log_of(directory) == log


def test_a_broken_broker_log_is_an_error_not_an_empty_answer() -> None:
    with pytest.raises(ValueError, match="not a command"):
        broker_log.taken_never_held(b"+OK\r\n")
