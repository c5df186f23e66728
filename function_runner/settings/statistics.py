"""What the workers count for the statistics besides failures: their successes."""

from __future__ import annotations

from function_runner.settings.group import Seconds, SettingsGroup


class StatisticsSettings(SettingsGroup):
    """Success counts: each worker process counts its successful executions in memory and writes them."""

    success_flush_interval: Seconds = 10.0
    """Seconds between two writes of a worker process's success counts (fr_task_counts: one short
    transaction, never on a task's path). A process stopped gracefully writes what it counted; one killed
    loses at most this interval of success counts; while the database is away they are kept in memory and
    added to the next write."""
