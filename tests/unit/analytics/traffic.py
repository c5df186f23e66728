"""A generated week of error traffic: hourly counts with a daily pattern for a few hundred groups over a
few tasks, Poisson noise from a seeded ``random.Random``; and the injections the acceptance test adds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
from collections import Counter
from collections.abc import Iterable

from error_handling.analytics import AnalysisInputs, GroupSeries, GroupState, TaskSeries, Window

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
#: A Monday, the start of the generated history.
START = dt.datetime(2025, 3, 3, tzinfo=UTC)
#: Days of history before the window.
DAYS = 7


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; a rounded normal for large means)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, product, k = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        k += 1
    return k


def daily(hour: int) -> float:
    """The daily pattern: quiet at night (0.2x at 3:00), busy in the afternoon (1.8x at 15:00)."""
    return 1 + 0.8 * math.sin(2 * math.pi * (hour - 9) / 24)


@dataclasses.dataclass(frozen=True)
class Week:
    """A generated fleet: its window, groups and tasks."""

    window: Window
    groups: list[GroupSeries]
    tasks: list[TaskSeries]

    def inputs(self) -> AnalysisInputs:
        """The analysis' inputs (the history starts at :data:`START`)."""
        return AnalysisInputs(window=self.window, groups=self.groups, tasks=self.tasks, observed_since=START)


def window_at(hour_of_day: int, *, days: int = DAYS) -> Window:
    """The one-hour window at ``hour_of_day`` after ``days`` days of history."""
    since = START + dt.timedelta(days=days, hours=hour_of_day)
    return Window(since, since + HOUR)


def generate(seed: int, *, groups: int = 300, tasks: int = 20, hour_of_day: int = 0, days: int = DAYS) -> Week:
    """A clean week: every group existed before the history starts, none resolved, no spike."""
    rng = random.Random(seed)
    window = window_at(hour_of_day, days=days)
    hours = int((window.since - START) / HOUR)
    series = []
    for index in range(groups):
        rate = 0.05 * math.exp(rng.uniform(0, math.log(400)))  # 0.05 to 20 errors per hour, heavy-tailed
        task = f"tasks.t{rng.randrange(tasks)}"
        history = {START + h * HOUR: n for h in range(hours) if (n := poisson(rng, rate * daily(h % 24)))}
        count = poisson(rng, rate * daily(hour_of_day))
        series.append(
            GroupSeries(
                fingerprint=f"g{index:04d}",
                category="transient",
                reason="timeout",
                count=count,
                history=history,
                first_seen=START - dt.timedelta(days=30),
                last_seen=window.since + HOUR / 2 if count else max(history, default=START),
                exc_type="TimeoutError",
                message="timed out",
                tasks={task: count},
            )
        )
    return Week(window, series, tasks_of(series, window=window, rng=rng))


def tasks_of(groups: Iterable[GroupSeries], *, window: Window, rng: random.Random) -> list[TaskSeries]:
    """The tasks' series: their groups' failures summed, and executions at about 3,000 an hour (daily pattern)."""
    failures: dict[str, Counter[dt.datetime]] = {}
    in_window: Counter[str] = Counter()
    for group in groups:
        (task,) = group.tasks
        failures.setdefault(task, Counter()).update(group.history)
        in_window[task] += group.count
    hours = int((window.since - START) / HOUR)
    result = []
    for task in sorted(failures):
        executions = {START + h * HOUR: poisson(rng, 3000 * daily(h % 24)) for h in range(hours)}
        result.append(
            TaskSeries(
                name=task,
                failures=in_window[task],
                history=dict(failures[task]),
                executions=poisson(rng, 3000 * daily(window.since.hour)),
                executions_history=executions,
            )
        )
    return result


def with_groups(week: Week, groups: list[GroupSeries]) -> Week:
    """The same week with other groups (the tasks recomputed from them)."""
    return Week(week.window, groups, tasks_of(groups, window=week.window, rng=random.Random(0)))


def resolved(group: GroupSeries, *, at: dt.datetime) -> GroupSeries:
    """``group`` marked resolved at ``at``: no error after it."""
    history = {hour: n for hour, n in group.history.items() if hour < at}
    return dataclasses.replace(
        group,
        state=GroupState.RESOLVED,
        resolved_at=at,
        history=history,
        count=0,
        tasks=dict.fromkeys(group.tasks, 0),
        last_seen=max(history),
    )
