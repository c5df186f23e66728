"""How long recorded history is kept: what the dispatchers' retention runs delete or purge, and how often."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from function_runner.settings.group import Seconds, SettingsGroup


def _blank_is_off(value: object) -> object:
    """``off``, ``none`` or empty (any case, as the environment gives it) means no limit."""
    return None if isinstance(value, str) and value.strip().lower() in ("", "off", "none") else value


#: A maximum age in days, or None (``off``, ``none`` or empty): kept forever.
MaxAgeDays = Annotated[Annotated[float, Field(gt=0)] | None, BeforeValidator(_blank_is_off)]


class RetentionSettings(SettingsGroup):
    """Retention: each ``*_days`` setting is a maximum age; ``off`` (or empty) keeps rows forever."""

    retention_interval: Seconds = 3600.0
    """Seconds between two retention runs; every dispatcher may run it, one that finds a run younger than this
    recorded by another skips its turn."""
    retention_batch_size: Annotated[int, Field(ge=1, le=50_000)] = 1000
    """Rows deleted (or dead letters purged) per retention transaction."""
    retention_attempts_days: MaxAgeDays = 30.0
    """Failed attempts older than this (days) are deleted, except those of tasks not yet terminal and of open
    (pending) dead letters. 'off' (or empty): kept forever."""
    retention_counts_days: MaxAgeDays = 400.0
    """Statistics roll-up rows (fr_error_counts) older than this (days) are deleted. 'off' (or empty): kept
    forever."""
    retention_success_minutes_days: MaxAgeDays = 8.0
    """Minute rows of the success counts (fr_task_counts) older than this (days) are deleted; their hour and
    day rows are kept. A window's partial hours older than this are no longer counted. 'off' (or empty): kept
    forever."""
    retention_breaker_events_days: MaxAgeDays = 30.0
    """Circuit breaker transitions older than this (days) are deleted, except each service's latest. 'off' (or
    empty): kept forever."""
    retention_service_days: MaxAgeDays = 14.0
    """Service health minutes, service errors and fallback events older than this (days) are deleted. 'off' (or
    empty): kept forever."""
    retention_lost_deliveries_days: MaxAgeDays = 30.0
    """Lost deliveries older than this (days) are deleted, except those of tasks not yet terminal and of open
    dead letters. 'off' (or empty): kept forever."""
    retention_purge_replayed_after_days: MaxAgeDays = 7.0
    """The sealed secrets of dead letters replayed or discarded this long ago (days) are purged (and their
    task's); such a letter can no longer be replayed. 'off' (or empty): kept forever."""
