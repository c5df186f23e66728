"""What the wrapper writes for failed executions: each failed attempt with its decision, and what it
means for compensation, for one failure or for several at once (see
:mod:`~function_runner.wrapper.group_commit`).

:func:`record_batch` runs in one transaction: :func:`~error_handling.persistence.failure_recording.record_failures`
for every report, then the compensation each outcome calls for: on a terminal outcome the saga's
recorded steps become pending (one statement for every saga of the batch); with
``compensate_on="every_failure"`` the failing task's own steps after any failure; when the failing
task is itself a compensation (``compensating``) that failed for good, its saga's open steps are marked failed. A wait
on a declared resource gate is postponed to its deadline (the gate's monitor releases it earlier).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from sqlalchemy.orm import Session

from error_handling.persistence import failure_recording, reports, runs
from error_handling.persistence.compensation import fail_open_steps, mark_pending, mark_sagas_pending
from error_handling.policy import DeadLetter, FailFast, RecoveryPolicy, Wait
from function_runner.compensation.recorder import CompensateOn

__all__ = ["FailureRecorded", "FailureToRecord", "record_batch"]


@dataclasses.dataclass(frozen=True)
class FailureToRecord:
    """One failed execution to record, as the wrapper hands it in.

    Attributes:
        report: the failure (classified, redacted, sealed).
        policy: the task's recovery policy.
        saga_id: the saga whose compensation steps a terminal outcome makes pending.
        compensate_on: the task's setting (a :class:`CompensateOn`, or its value as a string).
        compensating: the task is function-runner's own compensate task (a terminal failure marks the
            saga's open steps failed, and compensates nothing).
        gates: the resource gates declared on the app (a wait on one of them is released by its monitor).
    """

    report: reports.FailureReport
    policy: RecoveryPolicy
    saga_id: str
    compensate_on: CompensateOn | str = CompensateOn.TERMINAL
    compensating: bool = False
    gates: Collection[str] = ()


@dataclasses.dataclass(frozen=True)
class FailureRecorded:
    """What recording one failure did: its outcome, and how many compensation steps it made pending."""

    recorded: reports.Recorded
    to_compensate: int = 0


def record_batch(session: Session, items: Sequence[FailureToRecord]) -> list[FailureRecorded]:
    """Record the failures in the caller's transaction; one result per item, in order."""
    outcomes = failure_recording.record_failures(
        session, reports=[i.report for i in items], policy=[i.policy for i in items]
    )
    results = [FailureRecorded(recorded) for recorded in outcomes]
    sagas: dict[str, int] = {}  # saga -> the first item whose terminal outcome makes its steps pending
    for index, (item, recorded) in enumerate(zip(items, outcomes, strict=True)):
        if recorded.duplicate:
            continue
        decision = recorded.decision
        now = item.report.failed_at
        if isinstance(decision, Wait) and recorded.run_id is not None and decision.resource in item.gates:
            runs.postpone_run(session, run_id=recorded.run_id, due_at=decision.deadline)
        terminal = isinstance(decision, FailFast | DeadLetter)
        if item.compensating:
            if terminal:
                fail_open_steps(session, saga_id=item.saga_id, now=now)
        elif terminal:
            sagas.setdefault(item.saga_id, index)
        elif item.compensate_on == CompensateOn.EVERY_FAILURE:
            count = mark_pending(session, saga_id=item.saga_id, now=now, task_id=item.report.task_id)
            results[index] = dataclasses.replace(results[index], to_compensate=count)
    if sagas:
        now = max(items[index].report.failed_at for index in sagas.values())
        pending = mark_sagas_pending(session, saga_ids=sorted(sagas), now=now)
        for saga_id, index in sagas.items():
            results[index] = dataclasses.replace(results[index], to_compensate=pending.get(saga_id, 0))
    return results
