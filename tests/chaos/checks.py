"""The chaos suite's verdict: what function-runner recorded, compared with the tasks' own ground truth.

Pure functions over two snapshots (:class:`Truth`, read from the ground-truth Redis, and
:class:`Record`, read from Postgres), so the rules themselves are unit-tested
(``tests/unit/test_chaos_checks.py``). Each rule returns the violations it found, one line each.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping

#: Terminal states of ``fr_tasks``.
TERMINAL = frozenset({"succeeded", "failed_fast", "dead_lettered", "discarded"})
#: What each kind of task must end as when nothing interferes (a task may also end ``dead_lettered``
#: as ``worker_lost`` when its worker was killed under it too often: a legitimate end, replayable).
EXPECTED = {
    "success": "succeeded",
    "transient": "succeeded",
    "resource": "succeeded",
    "validation": "failed_fast",
    "permanent": "dead_lettered",
}


@dataclasses.dataclass(frozen=True)
class Planned:
    """A task the suite published: its id, kind, and whether it charged a payment."""

    task_id: str
    kind: str
    pays: bool = False
    batch: str = ""


@dataclasses.dataclass
class Truth:
    """What the task bodies and the payment service really did (from the ground-truth Redis)."""

    ok: set[str] = dataclasses.field(default_factory=set)
    raised: dict[str, set[int]] = dataclasses.field(default_factory=dict)
    starts: dict[str, int] = dataclasses.field(default_factory=dict)
    refunds: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Record:
    """What function-runner recorded (from Postgres)."""

    states: dict[str, str] = dataclasses.field(default_factory=dict)
    #: ``(task_id, attempt, reason)`` of every failed attempt row.
    attempts: list[tuple[str, int, str]] = dataclasses.field(default_factory=list)
    #: ``task_id -> (reason, has payload)`` of every dead letter.
    letters: dict[str, tuple[str, bool]] = dataclasses.field(default_factory=dict)
    #: task ids of dead letters, one entry per row (duplicates would be a broken unique constraint).
    letter_rows: list[str] = dataclasses.field(default_factory=list)
    #: ``(task_id, attempt)`` of every lost delivery (its worker died before the attempt's outcome was known).
    lost_deliveries: set[tuple[str, int]] = dataclasses.field(default_factory=set)
    #: ``task_id -> statuses`` of the compensation steps each task recorded.
    steps: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def outcome(task_id: str, truth: Truth, record: Record) -> str | None:
    """The task's terminal outcome as recorded, or None while it has none. A task that succeeded at its
    first attempt has no row (the wrapper writes nothing on success): its body's word counts."""
    state = record.states.get(task_id)
    if state is None:
        return "succeeded" if task_id in truth.ok else None
    return state if state in TERMINAL else None


def lost(planned: Iterable[Planned], truth: Truth, record: Record) -> list[str]:
    """Tasks with no terminal outcome."""
    return [
        f"{p.task_id} ({p.kind}) has no terminal outcome" for p in planned if outcome(p.task_id, truth, record) is None
    ]


def two_terminal_states(planned: Iterable[Planned], truth: Truth, record: Record) -> list[str]:
    """Tasks whose body succeeded but that were recorded as failed for good (or the other way round),
    more than one dead letter for one task, or an end their kind cannot have."""
    found = []
    for p in planned:
        end = outcome(p.task_id, truth, record)
        if end is None:
            continue
        if p.task_id in truth.ok and end != "succeeded":
            found.append(f"{p.task_id} ({p.kind}) succeeded in its body but is recorded {end}")
        elif end == "succeeded" and p.task_id not in truth.ok:
            found.append(f"{p.task_id} ({p.kind}) is recorded succeeded but its body never succeeded")
        worker_lost = record.letters.get(p.task_id, ("", True))[0] == "worker_lost"
        if end != EXPECTED[p.kind] and not (p.kind == "permanent" and end == "succeeded") and not worker_lost:
            found.append(f"{p.task_id} ({p.kind}) ended {end}, expected {EXPECTED[p.kind]}")
    found += [f"{task_id} has {n} dead letters" for task_id, n in Counter(record.letter_rows).items() if n > 1]
    return found


def attempts_recorded_once(planned: Iterable[Planned], truth: Truth, record: Record) -> list[str]:
    """Every attempt in which a body raised is recorded exactly once, as a failed attempt, or as a lost
    delivery when its worker died before the failure could be recorded (the process died with it); no
    attempt is recorded as failed that never raised, but for the deliveries a killed worker lost
    (``worker_lost``)."""
    rows = Counter((task_id, attempt) for task_id, attempt, _ in record.attempts)
    found = [f"{task_id} attempt {attempt} recorded {n} times" for (task_id, attempt), n in rows.items() if n > 1]
    by_task: dict[str, set[int]] = {}
    lost_only: dict[str, set[int]] = {}
    for task_id, attempt, reason in record.attempts:
        (lost_only if reason == "worker_lost" else by_task).setdefault(task_id, set()).add(attempt)
    lost_attempts: dict[str, set[int]] = {}
    for task_id, attempt in record.lost_deliveries:
        lost_attempts.setdefault(task_id, set()).add(attempt)
    for p in planned:
        raised = truth.raised.get(p.task_id, set())
        recorded = by_task.get(p.task_id, set())
        lost_ones = lost_only.get(p.task_id, set()) | lost_attempts.get(p.task_id, set())
        missing = raised - recorded - lost_ones
        if missing:
            found.append(f"{p.task_id} ({p.kind}): attempts {sorted(missing)} raised but not recorded")
        if recorded - raised:
            found.append(f"{p.task_id} ({p.kind}): attempts {sorted(recorded - raised)} recorded but never raised")
    return found


def side_effects_once(planned: Iterable[Planned], truth: Truth, record: Record) -> list[str]:
    """A task that charged and failed for good is refunded exactly once (the undo's idempotency key is
    the charge's, however often the undo ran); one that succeeded is never refunded; each charge is one
    compensation step however often the task ran."""
    found = []
    for p in planned:
        if not p.pays:
            continue
        refunds = truth.refunds.get(p.task_id, 0)
        end = outcome(p.task_id, truth, record)
        steps = record.steps.get(p.task_id, [])
        if len(steps) > 1:
            found.append(f"{p.task_id}: {len(steps)} compensation steps for one charge")
        if refunds > 1:
            found.append(f"{p.task_id}: refunded {refunds} times")
        if end == "succeeded" and refunds:
            found.append(f"{p.task_id}: succeeded but was refunded")
        if end in {"failed_fast", "dead_lettered"} and steps and refunds != 1:
            found.append(f"{p.task_id} ({end}): refunded {refunds} times, expected once (steps: {steps})")
    return found


def payloads_kept(record: Record) -> list[str]:
    """Every dead letter keeps the payload it would be replayed with."""
    return [
        f"dead letter of {task_id} ({reason}) has no payload"
        for task_id, (reason, ok) in record.letters.items()
        if not ok
    ]


def violations(planned: Iterable[Planned], truth: Truth, record: Record) -> dict[str, list[str]]:
    """Every rule's violations, by rule."""
    tasks = list(planned)
    return {
        "lost": lost(tasks, truth, record),
        "two terminal states": two_terminal_states(tasks, truth, record),
        "failed attempts recorded once": attempts_recorded_once(tasks, truth, record),
        "side effects applied once": side_effects_once(tasks, truth, record),
        "dead letters with their payload": payloads_kept(record),
    }


def summary(found: Mapping[str, list[str]], *, show: int = 10) -> str:
    """The violations, a few of each rule."""
    lines = []
    for rule, items in found.items():
        if items:
            lines.append(f"{rule}: {len(items)}")
            lines += [f"  {item}" for item in items[:show]]
    return "\n".join(lines)
