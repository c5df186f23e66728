"""Public schemas of error groups: what ``/groups`` (and ``function-runner groups --json``) shows and accepts.

Built from :mod:`error_handling.persistence.reads.groups` and
:mod:`error_handling.persistence.reads.group_detail` by the ``*_public`` functions below.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.params import AwareDatetime
from api.schemas.dead_letters import MAX_DISCARD_REASON, MAX_REPLAY_RATE, MAX_SAMPLE_SIZE, NO_NUL, DeadLetterPublic
from api.schemas.errors import AttemptPublic
from error_handling.persistence.group_states import SETTABLE, GroupChange
from error_handling.persistence.models import GroupState
from error_handling.persistence.reads.group_detail import GroupDetail
from error_handling.persistence.reads.groups import GroupFilter, GroupPage, GroupSort, GroupSummary
from error_handling.persistence.reads.window_counts import Resolution

__all__ = [
    "GroupDeadLettersRequest",
    "GroupDetailPublic",
    "GroupPublic",
    "GroupQuery",
    "GroupUpdate",
    "GroupsPublic",
    "LatestAttemptPublic",
    "OutcomeSharesPublic",
    "TrendBucketPublic",
    "group_detail_public",
    "group_public",
    "groups_public",
]

#: A text filter: not empty, at most 255 characters, no NUL.
_Text = Annotated[str | None, Field(default=None, min_length=1, max_length=255, pattern=NO_NUL)]


class GroupPublic(BaseModel):
    """An error group (one fingerprint): when it was seen, how often, how its tasks ended, its state."""

    fingerprint: str
    title: str = Field(description="The exception type and (redacted) message of its first attempt.")
    exc_type: str | None
    category: str = Field(description="The category of its latest attempt.")
    reason: str = Field(description="The reason code of its latest attempt.")
    task_name: str = Field(description="The task of its first attempt.")
    state: GroupState = Field(description="Its state now (time-only changes applied).")
    state_changed_at: dt.datetime
    first_seen: dt.datetime
    last_seen: dt.datetime
    times_seen: int = Field(description="Every attempt ever recorded in the group.")
    recovered: int = Field(description="Tasks whose last failure was in the group and that then succeeded.")
    failed_fast: int
    dead_lettered: int
    regressions: int = Field(description="How many times it came back after being resolved.")
    resolved_at: dt.datetime | None
    ignore_until: dt.datetime | None
    ignore_until_escalating: bool
    count: int = Field(description="Attempts in the window.")
    previous_count: int = Field(description="Attempts in the window of the same length just before it.")
    growth: int = Field(description="count - previous_count.")


class GroupsPublic(BaseModel):
    """A page of error groups in the requested order, and the window their counts cover."""

    data: list[GroupPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` (with the same sort) for the next page.")
    since: dt.datetime
    until: dt.datetime


class TrendBucketPublic(BaseModel):
    """Attempts in one hour or day of the window (those at the two ends cover only the window's part)."""

    start: dt.datetime
    count: int


class LatestAttemptPublic(AttemptPublic):
    """The group's newest attempt, with its redacted traceback."""

    traceback: str | None = Field(description="The traceback, redacted.")


class OutcomeSharesPublic(BaseModel):
    """How the group's attempts ended, each a share of ``times_seen``."""

    recovered: float
    failed_fast: float
    dead_lettered: float


class GroupDetailPublic(BaseModel):
    """An error group with its trend, tasks and queues in the window, its latest attempts and dead letters."""

    group: GroupPublic
    since: dt.datetime
    until: dt.datetime
    resolution: Resolution = Field(description="The trend's buckets: hour (windows up to 3 days) or day.")
    trend: list[TrendBucketPublic]
    tasks: dict[str, int] = Field(description="Attempts in the window per task, largest first.")
    queues: dict[str, int] = Field(description="Attempts in the window per queue ('' unknown), largest first.")
    samples: list[AttemptPublic] = Field(description="Its latest attempts, newest first.")
    latest: LatestAttemptPublic | None
    pending_dead_letters: int
    dead_letters: list[DeadLetterPublic] = Field(description="Its newest dead letters, in any state.")
    shares: OutcomeSharesPublic


class GroupQuery(BaseModel):
    """The filters and order of ``GET /groups`` as query parameters (the title search is spelled ``q``)."""

    state: GroupState | None = Field(default=None, description="Its state now.")
    category: _Text = Field(default=None, description="Category of its latest attempt.")
    reason: _Text = Field(default=None, description="Reason code of its latest attempt.")
    task_name: _Text = Field(default=None, description="Groups that ever failed in this task.")
    queue: _Text = Field(default=None, description="Groups that ever failed in this queue.")
    search: _Text = Field(default=None, alias="q", description="Case-insensitive text in the title.")
    since: AwareDatetime | None = Field(default=None, description="Counts from (default: 24 h before until).")
    until: AwareDatetime | None = Field(default=None, description="Counts until (default: now).")
    sort: GroupSort = Field(default=GroupSort.LAST_SEEN, description="Largest first.")

    def to_filter(self) -> GroupFilter:
        """The reads' filter."""
        values = self.model_dump(exclude={"sort"})
        return GroupFilter(**{name: value for name, value in values.items()})


class GroupUpdate(BaseModel):
    """An operator's change of a group: resolve it, ignore it (with a condition), or set it ongoing."""

    model_config = ConfigDict(extra="forbid")

    state: GroupState = Field(description="resolved, ignored or ongoing (unresolve, unignore).")
    ignore_until: AwareDatetime | None = Field(
        default=None, description="With ignored: it becomes ongoing again at this time (in the future)."
    )
    ignore_until_escalating: bool = Field(
        default=False, strict=True, description="With ignored: it becomes escalating when its volume escalates."
    )

    @model_validator(mode="after")
    def _settable(self) -> GroupUpdate:
        if self.state not in SETTABLE:
            raise ValueError(f"state must be one of {', '.join(state.value for state in SETTABLE)}")
        if (self.ignore_until is not None or self.ignore_until_escalating) and self.state is not GroupState.IGNORED:
            raise ValueError("ignore_until and ignore_until_escalating go with state 'ignored' only")
        return self

    def to_change(self) -> GroupChange:
        """The persistence's change (its time in UTC)."""
        until = self.ignore_until.astimezone(dt.UTC) if self.ignore_until else None
        return GroupChange(self.state, ignore_until=until, ignore_until_escalating=self.ignore_until_escalating)


class GroupDeadLettersRequest(BaseModel):
    """Replay or discard the group's pending dead letters as a job (a dry run: the count and a sample)."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=False, strict=True, description="Return the count and a sample; change nothing.")
    rate_per_second: float | None = Field(
        default=None, gt=0, le=MAX_REPLAY_RATE, strict=True, description="Replay: publishes per second at most."
    )
    reason: str | None = Field(
        default=None, min_length=1, max_length=MAX_DISCARD_REASON, pattern=NO_NUL, description="Discard: why."
    )
    sample_size: int = Field(default=10, strict=True, ge=0, le=MAX_SAMPLE_SIZE, description="A dry run's sample.")


def group_public(summary: GroupSummary) -> GroupPublic:
    """The public form of a group."""
    return GroupPublic(**dataclasses.asdict(summary), growth=summary.growth)


def groups_public(page: GroupPage) -> GroupsPublic:
    """The public form of a page of groups."""
    return GroupsPublic(
        data=[group_public(item) for item in page.items],
        next_cursor=page.next_cursor,
        since=page.since,
        until=page.until,
    )


def group_detail_public(detail: GroupDetail) -> GroupDetailPublic:
    """The public form of a group's detail."""
    latest: Any = None
    if detail.latest is not None:
        latest = LatestAttemptPublic.model_validate(detail.latest, from_attributes=True)
    return GroupDetailPublic(
        group=group_public(detail.group),
        since=detail.since,
        until=detail.until,
        resolution=detail.resolution,
        trend=[TrendBucketPublic(start=start, count=count) for start, count in detail.trend],
        tasks=detail.tasks,
        queues=detail.queues,
        samples=[AttemptPublic.model_validate(row._asdict()) for row in detail.samples],
        latest=latest,
        pending_dead_letters=detail.pending_dead_letters,
        dead_letters=[DeadLetterPublic.from_record(letter) for letter in detail.dead_letters],
        shares=OutcomeSharesPublic(**dataclasses.asdict(detail.shares)),
    )
