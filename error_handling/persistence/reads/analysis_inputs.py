"""The analysis's inputs, read from the database: each error group, task, gate and breaker of a window with
the hourly history its baseline needs (:class:`~error_handling.analytics.inputs.AnalysisInputs`).

Counts in the window are exact (partial hours from the attempts, whole hours and days from the roll-up:
:func:`~error_handling.persistence.reads.counts.count_kinds`). Histories are read only for the largest
series of the window (``max_series`` groups and tasks, plus the groups new or regressed in it) and only
for the hours their baseline samples (:func:`~error_handling.analytics.baseline.sample_spans`), so the
cost grows with the window's distinct series, not with the attempts.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.analytics import (
    DEFAULT_CONFIG,
    AnalysisConfig,
    AnalysisInputs,
    BreakerActivity,
    GateWaits,
    GroupSeries,
    GroupState,
    Outcomes,
    RecoveryCounts,
    RecoverySeries,
    TaskSeries,
    Window,
)
from error_handling.analytics.baseline import sample_spans
from error_handling.analytics.providers import service_of
from error_handling.categories import Reason
from error_handling.persistence.groups import GROUPS, effective_state
from error_handling.persistence.models import (
    CircuitBreakerEvent,
    DecisionKind,
    ErrorCount,
    FailedAttempt,
    RunStatus,
    ScheduledRun,
    TaskRecord,
    TaskState,
    aware_utc,
)
from error_handling.persistence.reads.counts import count_kinds
from error_handling.persistence.reads.executions import hourly_successes, success_counts
from error_handling.persistence.rollup import Period, hour_of

#: The most groups and tasks whose history is read (the largest of the window, and for groups also
#: those new or regressed in it): a spike of a smaller one is left to the groups role's escalation.
MAX_SERIES: Final = 50
#: Windows of the same length before the window whose recovery is compared with it.
RECOVERY_WINDOWS: Final = 6
#: A breaker's transition to this state is an open.
_OPEN, _CLOSED = "open", "closed"

Spans = Sequence[tuple[dt.datetime, dt.datetime]]


def analysis_inputs(
    session: Session,
    *,
    since: dt.datetime,
    until: dt.datetime,
    new_period: dt.timedelta,
    config: AnalysisConfig = DEFAULT_CONFIG,
    max_series: int = MAX_SERIES,
) -> AnalysisInputs:
    """Everything the analysis of ``[since, until)`` reads (see the module's docstring)."""
    window = Window(since, until)
    by_group: Counter[str] = Counter()
    by_task: Counter[str] = Counter()
    tasks_of: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for task_name, _category, _reason, fingerprint, n in count_kinds(session, since, until):
        by_group[fingerprint] += n
        by_task[task_name] += n
        tasks_of[fingerprint][task_name] += n
    observed = observed_since(session)
    spans = sample_spans(since=since, until=until, observed_since=observed, config=config)
    return AnalysisInputs(
        window=window,
        groups=_groups(session, by_group, tasks_of, window, spans, new_period=new_period, limit=max_series),
        tasks=_tasks(session, by_task, window, spans, limit=max_series),
        recovery=_recovery(session, window),
        gates=_gates(session, window),
        breakers=_breakers(session, window),
        observed_since=observed,
    )


def observed_since(session: Session) -> dt.datetime | None:
    """The oldest hour of the roll-up: where every history starts."""
    found = session.execute(sa.select(sa.func.min(ErrorCount.bucket)).where(ErrorCount.period == Period.HOUR)).scalar()
    return aware_utc(found) if found is not None else None


def _largest(counts: Counter[str], limit: int) -> list[str]:
    return [key for key, _n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]]


def _hourly(session: Session, column: Any, keys: Iterable[str], spans: Spans) -> dict[str, dict[dt.datetime, int]]:
    """The failed attempts per hour of each of ``keys`` (values of a roll-up ``column``) within ``spans``."""
    wanted = list(keys)
    found: dict[str, dict[dt.datetime, int]] = defaultdict(dict)
    if not wanted or not spans:
        return found
    hours = [(hour_of(a), b) for a, b in spans]
    query = (
        sa.select(column, ErrorCount.bucket, sa.func.sum(ErrorCount.count))
        .where(
            ErrorCount.period == Period.HOUR,
            column.in_(wanted),
            sa.or_(*(sa.and_(ErrorCount.bucket >= a, ErrorCount.bucket < b) for a, b in hours)),
        )
        .group_by(column, ErrorCount.bucket)
    )
    for key, bucket, n in session.connection().execute(query):  # plain rows: no ORM to go through
        found[str(key)][aware_utc(bucket)] = int(n)
    return found


def _groups(
    session: Session,
    counts: Counter[str],
    tasks_of: dict[str, Counter[str]],
    window: Window,
    spans: Spans,
    *,
    new_period: dt.timedelta,
    limit: int,
) -> list[GroupSeries]:
    """The largest groups of the window and those that began or came back in it, with their histories."""
    fresh = sa.select(GROUPS.c.fingerprint).where(
        sa.or_(
            sa.and_(GROUPS.c.first_seen >= window.since, GROUPS.c.first_seen < window.until),
            sa.and_(GROUPS.c.state == GroupState.REGRESSED.value, GROUPS.c.state_changed_at >= window.since),
        )
    )
    wanted = set(_largest(counts, limit)) | {str(fp) for fp in session.execute(fresh.limit(limit)).scalars()}
    return group_series(
        session, wanted, counts=counts, tasks_of=tasks_of, window=window, spans=spans, new_period=new_period
    )


def group_series(
    session: Session,
    fingerprints: Iterable[str],
    *,
    counts: Mapping[str, int],
    tasks_of: Mapping[str, Mapping[str, int]],
    window: Window,
    spans: Spans,
    new_period: dt.timedelta,
) -> list[GroupSeries]:
    """The series of these groups: their rows (state as of the window's end), counts in the window (from
    ``counts``), tasks, and hourly histories within ``spans`` (two queries)."""
    wanted = sorted(set(fingerprints))
    if not wanted:
        return []
    state = effective_state(window.until, new_period).label("effective")
    rows = session.execute(sa.select(GROUPS, state).where(GROUPS.c.fingerprint.in_(wanted))).all()
    histories = _hourly(session, ErrorCount.fingerprint, wanted, spans)
    return [
        GroupSeries(
            fingerprint=row.fingerprint,
            category=row.category,
            reason=row.reason,
            count=counts.get(row.fingerprint, 0),
            history=histories.get(row.fingerprint, {}),
            first_seen=aware_utc(row.first_seen),
            last_seen=aware_utc(row.last_seen),
            exc_type=row.exc_type,
            message=row.title,
            state=GroupState(row.effective),
            resolved_at=aware_utc(row.resolved_at) if row.resolved_at else None,
            regressed_at=aware_utc(row.state_changed_at) if row.effective == GroupState.REGRESSED else None,
            tasks=dict(tasks_of.get(row.fingerprint, {})),
            outcomes=Outcomes(recovered=row.recovered, failed_fast=row.failed_fast, dead_lettered=row.dead_lettered),
            service=service_of(row.exc_type),
        )
        for row in rows
    ]


def _tasks(session: Session, failures: Counter[str], window: Window, spans: Spans, *, limit: int) -> list[TaskSeries]:
    """The tasks that failed or succeeded in the window (the largest by failures), with their histories."""
    successes: Counter[str] = Counter()
    for (task_name, _queue), n in success_counts(session, since=window.since, until=window.until).items():
        successes[task_name] += n
    wanted = _largest(failures, limit) + _largest(Counter({k: 0 for k in successes if k not in failures}), limit)
    histories = _hourly(session, ErrorCount.task_name, wanted, spans)
    succeeded = hourly_successes(session, task_names=wanted, spans=spans)
    result = []
    for name in wanted:
        history = histories.get(name, {})
        executions_history = Counter(succeeded.get(name, {}))
        executions_history.update(history)
        result.append(
            TaskSeries(
                name=name,
                failures=failures.get(name, 0),
                history=history,
                executions=failures.get(name, 0) + successes.get(name, 0),
                executions_history=dict(executions_history),
            )
        )
    return result


def _recovery(session: Session, window: Window) -> RecoverySeries:
    """Retried tasks that ended in the window and in each of the :data:`RECOVERY_WINDOWS` before it (one
    query, a pair of sums per window).

    A task was retried if it succeeded after failing, or was dead-lettered after more than one attempt."""
    spans = [
        (window.until - window.length * (i + 1), window.until - window.length * i) for i in range(RECOVERY_WINDOWS + 1)
    ]
    dead = TaskRecord.state == TaskState.DEAD_LETTERED
    retried = sa.or_(TaskRecord.state == TaskState.SUCCEEDED, sa.and_(dead, TaskRecord.attempts > 1))
    columns = []
    for a, b in spans:
        inside = sa.and_(TaskRecord.terminal_at >= a, TaskRecord.terminal_at < b)
        columns.append(sa.func.sum(sa.case((inside, 1), else_=0)))
        columns.append(sa.func.sum(sa.case((sa.and_(inside, dead), 1), else_=0)))
    row = session.execute(
        sa.select(*columns).where(
            TaskRecord.terminal_at >= spans[-1][0], TaskRecord.terminal_at < window.until, retried
        )
    ).one()
    counts = [
        RecoveryCounts(retried=int(row[2 * i] or 0), dead_lettered=int(row[2 * i + 1] or 0)) for i in range(len(spans))
    ]
    return RecoverySeries(current=counts[0], previous=counts[1:])


def _gates(session: Session, window: Window) -> list[GateWaits]:
    """Per resource gate: the waits that began in the window, and those that timed out in it (found past
    their deadline by a dispatcher, or by the failure that came after it)."""
    started: Counter[str] = Counter()
    timed_out: Counter[str] = Counter()
    attempts = (
        sa.select(FailedAttempt.resource, FailedAttempt.decision, FailedAttempt.decision_reason, sa.func.count())
        .where(
            FailedAttempt.failed_at >= window.since,
            FailedAttempt.failed_at < window.until,
            FailedAttempt.resource.is_not(None),
        )
        .group_by(FailedAttempt.resource, FailedAttempt.decision, FailedAttempt.decision_reason)
    )
    for gate, decision, reason, n in session.execute(attempts):
        if decision == DecisionKind.WAIT:
            started[str(gate)] += int(n)
        elif reason == Reason.RESOURCE_WAIT_TIMEOUT:
            timed_out[str(gate)] += int(n)
    expired = (
        sa.select(ScheduledRun.resource, sa.func.count())
        .where(
            ScheduledRun.status == RunStatus.EXPIRED,
            ScheduledRun.updated_at >= window.since,
            ScheduledRun.updated_at < window.until,
        )
        .group_by(ScheduledRun.resource)
    )
    for gate, n in session.execute(expired):
        timed_out[str(gate)] += int(n)
    return [
        GateWaits(gate=gate, started=started[gate], timed_out=timed_out[gate]) for gate in sorted(started | timed_out)
    ]


def _breakers(session: Session, window: Window) -> list[BreakerActivity]:
    """Per service: its breaker's transitions to open and to closed in the window."""
    event = CircuitBreakerEvent
    query = (
        sa.select(
            event.service,
            sa.func.sum(sa.case((event.to_state == _OPEN, 1), else_=0)),
            sa.func.sum(sa.case((event.to_state == _CLOSED, 1), else_=0)),
        )
        .where(event.at >= window.since, event.at < window.until)
        .group_by(event.service)
    )
    return [
        BreakerActivity(service=str(service), opens=int(opens or 0), closes=int(closes or 0))
        for service, opens, closes in session.execute(query)
    ]
