"""The chaos suite's rules catch what they name (``tests/chaos/checks.py``): each is fed a record that
breaks it, and a faithful one."""

from __future__ import annotations

from tests.chaos import checks
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
