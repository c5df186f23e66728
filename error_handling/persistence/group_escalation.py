"""The states of error groups that time and traffic change, written down by the dispatchers' groups role.

- :func:`settle`: the changes time alone makes (``new`` and ``regressed`` become ``ongoing`` after the
  new period; an ignored group whose time is up becomes ``ongoing``), which every read already applies
  (:func:`~error_handling.persistence.groups.effective_state`), stored so that filters by state use an
  index.
- :func:`escalate`: a group whose attempts in the last hour are a spike against its own baseline (the
  analysis' spike test, :func:`~error_handling.analytics.is_escalating`) becomes ``escalating``, and an
  escalating group whose last hour has fallen below half of a spike becomes ``ongoing`` again (the gap
  keeps a group at the edge from flapping). Groups ignored until they escalate escalate too; resolved and
  other ignored groups are left alone.

Every update is conditional on the state it read, so dispatchers running it at once, or an operator
changing a group meanwhile, never undo one another.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.analytics import DEFAULT_CONFIG, AnalysisConfig, GroupState, Window, is_escalating, sample_spans
from error_handling.analytics.baseline import baseline_for
from error_handling.analytics.spikes import is_spike
from error_handling.persistence.groups import GROUPS, effective_state
from error_handling.persistence.reads.analysis_inputs import group_series, observed_since
from error_handling.persistence.reads.counts import count_kinds

__all__ = ["ESCALATION_WINDOW", "Escalations", "escalate", "settle"]

#: The window whose attempts are judged against the group's baseline.
ESCALATION_WINDOW: Final = dt.timedelta(hours=1)
#: States in which a group may escalate (and ignored groups marked ``ignore_until_escalating``).
_MAY_ESCALATE: Final = (GroupState.NEW, GroupState.ONGOING, GroupState.REGRESSED)


@dataclasses.dataclass(frozen=True)
class Escalations:
    """What :func:`escalate` changed: the groups that began escalating and those that calmed down."""

    escalated: list[str]
    calmed: list[str]


def settle(session: Session, *, now: dt.datetime, new_period: dt.timedelta) -> int:
    """Store the changes time alone makes to the groups' states; returns how many groups changed."""
    state = effective_state(now, new_period)
    result = session.execute(
        sa.update(GROUPS)
        .where(
            GROUPS.c.state.in_([GroupState.NEW.value, GroupState.REGRESSED.value, GroupState.IGNORED.value]),
            state != GROUPS.c.state,
        )
        .values(
            state=state,
            state_changed_at=now,
            ignore_until=sa.case((GROUPS.c.state == GroupState.IGNORED.value, None), else_=GROUPS.c.ignore_until),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def escalate(
    session: Session, *, now: dt.datetime, new_period: dt.timedelta, config: AnalysisConfig = DEFAULT_CONFIG
) -> Escalations:
    """Mark the groups escalating in the last hour, and calm those no longer (see the module's docstring)."""
    window = Window(now - ESCALATION_WINDOW, now)
    counts: Counter[str] = Counter()
    for _task, _category, _reason, fingerprint, n in count_kinds(session, window.since, window.until):
        counts[fingerprint] += n
    escalating = {
        str(fp)
        for fp in session.execute(
            sa.select(GROUPS.c.fingerprint).where(GROUPS.c.state == GroupState.ESCALATING.value)
        ).scalars()
    }
    waiting = {
        str(fp)
        for fp in session.execute(
            sa.select(GROUPS.c.fingerprint).where(
                GROUPS.c.state == GroupState.IGNORED.value, GROUPS.c.ignore_until_escalating.is_(True)
            )
        ).scalars()
    }
    candidates = {fp for fp, n in counts.items() if n >= config.spike_min_count} | escalating
    observed = observed_since(session)
    spans = sample_spans(since=window.since, until=window.until, observed_since=observed, config=config)
    series = group_series(
        session, candidates, counts=counts, tasks_of={}, window=window, spans=spans, new_period=new_period
    )
    escalated, calmed = [], []
    for group in series:
        if group.state is GroupState.ESCALATING:
            baseline = baseline_for(
                group.history, since=window.since, until=window.until, observed_since=observed, config=config
            )
            if not is_spike(2 * group.count, baseline, config=config):
                calmed.append(group.fingerprint)
        elif (group.state in _MAY_ESCALATE or group.fingerprint in waiting) and is_escalating(
            group, window=window, observed_since=observed, config=config
        ):
            escalated.append(group.fingerprint)
    may_escalate = sa.or_(
        GROUPS.c.state.in_([s.value for s in _MAY_ESCALATE]),
        sa.and_(GROUPS.c.state == GroupState.IGNORED.value, GROUPS.c.ignore_until_escalating.is_(True)),
    )
    _set(session, escalated, GroupState.ESCALATING, now=now, still=may_escalate)
    _set(session, calmed, GroupState.ONGOING, now=now, still=GROUPS.c.state == GroupState.ESCALATING.value)
    return Escalations(escalated=sorted(escalated), calmed=sorted(calmed))


def _set(
    session: Session, fingerprints: list[str], state: GroupState, *, now: dt.datetime, still: sa.ColumnElement[bool]
) -> None:
    """Move these groups to ``state`` if they ``still`` are where they were read."""
    if not fingerprints:
        return
    session.execute(
        sa.update(GROUPS)
        .where(GROUPS.c.fingerprint.in_(fingerprints), still)
        .values(state=state.value, state_changed_at=now, ignore_until=None, ignore_until_escalating=False)
    )
