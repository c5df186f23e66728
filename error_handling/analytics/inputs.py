"""What the analysis reads: plain values the database layer builds from its roll-ups (hourly counts),
one per error group, task, gate and breaker, for one window.

Every time is an aware UTC ``datetime``; an hourly history maps the start of a UTC hour to a count and
may omit the hours without any (they count as 0 inside the observed span, see
:func:`~error_handling.analytics.baseline.baseline_for`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from typing import Any

#: An hourly history: start of a UTC hour -> count in that hour.
Hourly = Mapping[dt.datetime, int]


class GroupState(enum.StrEnum):
    """Where an error group (one fingerprint) stands (stored in ``fr_error_groups.state``).

    Traffic moves a group between the first four; an operator sets the last two (and may set a group back
    to ``ongoing``)::

        first attempt ──► new ──(new period over)──► ongoing ◄──► escalating (volume well above baseline)
        resolved ──(seen again)──► regressed ──(new period over)──► ongoing
        ignored ──(until passed, or it escalates when ignored until escalating)──► ongoing / escalating
    """

    #: First seen within the new period (``groups_new_period``).
    NEW = "new"
    #: Seen before the new period and occurring at its usual volume.
    ONGOING = "ongoing"
    #: Occurring well above its own baseline (set by the dispatchers' groups role).
    ESCALATING = "escalating"
    #: Seen again after an operator resolved it (stays so for the new period).
    REGRESSED = "regressed"
    #: Marked resolved by an operator; its next attempt makes it ``regressed``.
    RESOLVED = "resolved"
    #: Muted by an operator (forever, until a time, or until it escalates): no anomaly is reported about it.
    IGNORED = "ignored"


@dataclasses.dataclass(frozen=True)
class Window:
    """The window analysed, ``[since, until)``."""

    since: dt.datetime
    until: dt.datetime

    @property
    def length(self) -> dt.timedelta:
        """How long the window is."""
        return self.until - self.since

    @property
    def hours(self) -> float:
        """Its length in hours."""
        return self.length / dt.timedelta(hours=1)

    def contains(self, moment: dt.datetime | None) -> bool:
        """Whether ``moment`` falls in the window."""
        return moment is not None and self.since <= moment < self.until

    def evidence(self) -> dict[str, Any]:
        """The window as JSON-able evidence."""
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "minutes": self.hours * 60}


@dataclasses.dataclass(frozen=True)
class Outcomes:
    """How a group's failures in the window ended, counted per failed task."""

    #: Retried (or released from a wait) and then succeeded.
    recovered: int = 0
    #: Failed fast (validation): no retry.
    failed_fast: int = 0
    #: Dead-lettered (retries exhausted, a wait timed out, permanent).
    dead_lettered: int = 0


@dataclasses.dataclass(frozen=True)
class GroupSeries:
    """One error group (a fingerprint) over the window and its history."""

    #: The group's fingerprint.
    fingerprint: str
    #: Its category (a :class:`~error_handling.categories.Category` value).
    category: str
    #: Its reason code.
    reason: str
    #: Failed attempts in the window.
    count: int
    #: Failed attempts per hour (the window's hours may be included: they are not used as baseline).
    history: Hourly
    #: Its first and last occurrence ever.
    first_seen: dt.datetime
    last_seen: dt.datetime
    #: The exception's qualified type name and a (redacted) sample message.
    exc_type: str | None = None
    message: str = ""
    #: The group's state before this analysis.
    state: GroupState = GroupState.ONGOING
    #: When it was last marked resolved, and when it came back after that (if the groups role saw it).
    resolved_at: dt.datetime | None = None
    regressed_at: dt.datetime | None = None
    #: Failed attempts in the window per task name.
    tasks: Mapping[str, int] = dataclasses.field(default_factory=dict)
    #: How its failed tasks ended in the window.
    outcomes: Outcomes = Outcomes()
    #: The provider or service it concerns, when known (a breaker's or fallback provider's name).
    service: str | None = None


@dataclasses.dataclass(frozen=True)
class TaskSeries:
    """One task name over the window and its history."""

    #: The task's name.
    name: str
    #: Failed attempts in the window.
    failures: int
    #: Failed attempts per hour.
    history: Hourly
    #: Executions in the window and per hour, when counted (None: the error rate is not judged).
    executions: int | None = None
    executions_history: Hourly | None = None
    #: The newest version of the task seen (a worker's or the task's own), and the time of its first
    #: attempt, when known.
    version: str | None = None
    version_first_seen: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class RecoveryCounts:
    """Retried tasks that finished in one window, and how many of them ended dead-lettered."""

    retried: int
    dead_lettered: int

    @property
    def share(self) -> float:
        """The share dead-lettered (0 without retried tasks)."""
        return self.dead_lettered / self.retried if self.retried else 0.0


@dataclasses.dataclass(frozen=True)
class RecoverySeries:
    """Recovery in the window and in the windows of the same length before it (newest first)."""

    current: RecoveryCounts
    previous: Sequence[RecoveryCounts] = ()


@dataclasses.dataclass(frozen=True)
class GateWaits:
    """One resource gate's waits in the window."""

    #: The gate's name.
    gate: str
    #: Waits that started, and waits that ended by timing out (``resource_wait_timeout``).
    started: int
    timed_out: int
    #: Its capacity and the wait timeout in seconds, when known (quoted in recommendations).
    capacity: int | None = None
    timeout_seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class BreakerActivity:
    """One service's circuit breaker in the window."""

    #: The service (the breaker's name).
    service: str
    #: Transitions to open, and back to closed, in the window.
    opens: int
    closes: int = 0
    #: The breaker's sliding window in seconds, when known (quoted in recommendations).
    window_seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class AnalysisInputs:
    """Everything one analysis reads."""

    #: The window analysed.
    window: Window
    #: The error groups with a failure in the window or in the baseline's history.
    groups: Sequence[GroupSeries] = ()
    #: The tasks with a failure (or executions) in the window or in the history.
    tasks: Sequence[TaskSeries] = ()
    #: Recovery counts, when read.
    recovery: RecoverySeries | None = None
    #: Resource gates and breakers with activity in the window.
    gates: Sequence[GateWaits] = ()
    breakers: Sequence[BreakerActivity] = ()
    #: The start of the recorded history (the roll-up's oldest hour); None: each series' oldest hour.
    observed_since: dt.datetime | None = None
