"""How long recorded history is kept: what the dispatchers' retention runs delete or purge, and how often."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


class RetentionSettings(BaseModel):
    """Retention: each ``*_days`` setting is a maximum age; ``off`` (or empty) keeps rows forever."""

    retention_interval: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds between two retention runs; every dispatcher may run it, one that finds a "
        "run younger than this recorded by another skips its turn.",
    )
    retention_batch_size: int = Field(
        default=1000,
        ge=1,
        le=50_000,
        description="Rows deleted (or dead letters purged) per retention transaction.",
    )
    retention_attempts_days: float | None = Field(
        default=30.0,
        gt=0,
        description="Failed attempts older than this (days) are deleted, except those of tasks not yet "
        "terminal and of open (pending) dead letters. 'off' (or empty): kept forever.",
    )
    retention_counts_days: float | None = Field(
        default=400.0,
        gt=0,
        description="Statistics roll-up rows (fr_error_counts) older than this (days) are deleted. 'off' (or empty): kept forever.",
    )
    retention_breaker_events_days: float | None = Field(
        default=30.0,
        gt=0,
        description="Circuit breaker transitions older than this (days) are deleted, except each service's "
        "latest. 'off' (or empty): kept forever.",
    )
    retention_service_days: float | None = Field(
        default=14.0,
        gt=0,
        description="Service health minutes, service errors and fallback events older than this (days) "
        "are deleted. 'off' (or empty): kept forever.",
    )
    retention_lost_deliveries_days: float | None = Field(
        default=30.0,
        gt=0,
        description="Lost deliveries older than this (days) are deleted, except those of tasks not yet "
        "terminal and of open dead letters. 'off' (or empty): kept forever.",
    )
    retention_purge_replayed_after_days: float | None = Field(
        default=7.0,
        gt=0,
        description="The sealed secrets of dead letters replayed or discarded this long ago (days) are "
        "purged (and their task's); such a letter can no longer be replayed. 'off' (or empty): kept forever.",
    )

    @field_validator(
        "retention_attempts_days",
        "retention_counts_days",
        "retention_breaker_events_days",
        "retention_service_days",
        "retention_lost_deliveries_days",
        "retention_purge_replayed_after_days",
        mode="before",
    )
    @classmethod
    def _blank_is_off(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("", "off", "none") else value
