"""Retries and resource waits: the backoff, the attempts allowed per category, how long a task may wait."""

from __future__ import annotations

from pydantic import BaseModel, Field

from error_handling.policy import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_RESOURCE_CHECK_INTERVAL,
    DEFAULT_RESOURCE_WAIT_TIMEOUT,
    DEFAULT_TRANSIENT_MAX_ATTEMPTS,
    DEFAULT_UNCLASSIFIED_MAX_ATTEMPTS,
    FullJitterBackoff,
    RecoveryPolicy,
)


class RetrySettings(BaseModel):
    """The app-wide default recovery policy (a task's own options override it)."""

    retry_base_delay: float = Field(default=DEFAULT_BASE_DELAY, gt=0, description="First backoff step (s).")
    retry_max_delay: float = Field(default=DEFAULT_MAX_DELAY, gt=0, description="Backoff ceiling (s).")
    transient_max_attempts: int = Field(
        default=DEFAULT_TRANSIENT_MAX_ATTEMPTS, ge=1, description="Executions allowed to fail transiently."
    )
    unclassified_max_attempts: int = Field(
        default=DEFAULT_UNCLASSIFIED_MAX_ATTEMPTS, ge=1, description="Executions allowed to fail unclassified."
    )
    resource_wait_timeout: float = Field(
        default=DEFAULT_RESOURCE_WAIT_TIMEOUT, gt=0, description="How long a task may wait for a resource (s)."
    )
    resource_check_interval: float = Field(
        default=DEFAULT_RESOURCE_CHECK_INTERVAL, gt=0, description="How often a waiting task is re-checked (s)."
    )
    max_retry_after: float = Field(default=DEFAULT_MAX_RETRY_AFTER, gt=0, description="Cap on server retry hints (s).")

    def recovery_policy(self) -> RecoveryPolicy:
        """The app-wide default policy these settings describe."""
        return RecoveryPolicy(
            backoff=FullJitterBackoff(base=self.retry_base_delay, max_delay=self.retry_max_delay),
            transient_max_attempts=self.transient_max_attempts,
            unclassified_max_attempts=self.unclassified_max_attempts,
            resource_wait_timeout=self.resource_wait_timeout,
            resource_check_interval=self.resource_check_interval,
            max_retry_after=self.max_retry_after,
        )
