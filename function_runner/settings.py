"""Settings: one validated object, read from ``FUNCTION_RUNNER_*`` environment variables.

Every setting has a default that works with no server at all (the *embedded default*: a SQLite file and
kombu's filesystem transport under ``data_dir``). Production sets at least ``database_url``,
``broker_url`` and ``encryption_key``. The README's settings table lists them all.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
from error_handling.sealing import Sealer, generate_key

#: Name of the key file created under ``data_dir`` when no ``encryption_key`` is set.
KEY_FILE_NAME = "encryption.key"


class Settings(BaseSettings):
    """function-runner's settings. Each field is read from ``FUNCTION_RUNNER_<FIELD NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="FUNCTION_RUNNER_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    data_dir: Path = Field(
        default=Path(".function-runner"),
        description="Where the embedded default keeps its SQLite file, broker folders and key file.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the system of record, e.g. postgresql://user@host/db. "
        "Default: a SQLite file in data_dir.",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL, e.g. redis://localhost:6379/0. Default: kombu's filesystem "
        "transport in data_dir (no server).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for the state workers share: circuit breakers, retry budgets, capacity leases, "
        "delivery counters and failures kept while the database is unreachable. Default: the broker, when "
        "it is Redis. Set it when the broker is RabbitMQ (without it those run per process or in the database).",
    )
    result_backend: str | None = Field(default=None, description="Celery result backend URL (optional).")
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s), comma-separated (first encrypts, all decrypt), sealing secret "
        "values kept for replay. Default: a key file created in data_dir (single machine only).",
    )
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
    dispatcher_interval: float = Field(default=1.0, gt=0, description="Dispatcher poll interval (s).")
    dispatcher_batch_size: int = Field(default=500, ge=1, le=10_000, description="Runs claimed per transaction.")
    gate_check_interval: float = Field(
        default=5.0, gt=0, description="Seconds between two checks of the resource gates by each dispatcher."
    )
    gate_lease_seconds: float = Field(
        default=60.0, gt=1, description="A capacity lease expires this long after its last renewal (its worker died)."
    )
    gate_reservation_seconds: float = Field(
        default=300.0,
        gt=1,
        description="Units reserved for a released wait are given back if the task has not started by then.",
    )
    compensation_sweep_after: float = Field(
        default=30.0,
        gt=0,
        description="Seconds after which the dispatcher republishes a compensation that seems lost (pending "
        "steps nobody touched, e.g. a discard's or a worker that died before publishing).",
    )
    redispatch_after: float = Field(
        default=600.0,
        gt=0,
        description="A dispatched run whose message never started is published again after this (s).",
    )
    reliable_fetch: bool = Field(
        default=True,
        description="On a redis:// broker, workers take a message and hold it as unacked in one atomic step "
        "(function_runner.redis_transport), so a worker killed or a Redis restarted in between loses nothing; "
        "false: kombu's own transport.",
    )
    unrecorded_redeliver_after: float = Field(
        default=600.0,
        gt=0,
        description="A failure kept in Redis during a database outage whose message no delivery has come "
        "back with for this long (s) is published again by the dispatcher, to be recorded (the broker lost "
        "the message the worker gave back); duplicates are harmless.",
    )
    storage_retry_timeout: float = Field(
        default=10.0,
        ge=0,
        description="How long a worker keeps trying to record a failure before it gives the message "
        "back to the broker unacked (s).",
    )
    visibility_timeout: float = Field(
        default=3600.0,
        gt=0,
        description="Redis/SQS transports: seconds before an unacked message of a lost worker is "
        "delivered again. Keep it longer than your longest task.",
    )
    liveness_interval: float = Field(
        default=5.0,
        gt=0,
        description="Reliable Redis transport: seconds between two heartbeats of a worker's consumer, sent "
        "from a thread of the worker's main process (a slow task does not delay them).",
    )
    liveness_timeout: float = Field(
        default=15.0,
        ge=0,
        description="Reliable Redis transport: a worker consumer whose heartbeat is older than this (s) has "
        "lapsed, and a dispatcher puts the messages it held back in their queues (redelivered), so a killed "
        "worker's tasks run again within about this plus 5 s instead of after visibility_timeout. 0: off. "
        "Keep it above twice liveness_interval.",
    )

    @field_validator("liveness_timeout")
    @classmethod
    def _check_liveness_timeout(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("liveness_interval")
        if value and interval is not None and value <= interval:
            raise ValueError(f"liveness_timeout must be 0 (off) or longer than liveness_interval ({interval} s)")
        return value

    queue_type: Literal["classic", "quorum"] = Field(
        default="classic",
        description="RabbitMQ: the type of the queues create_app declares (quorum queues are replicated). "
        "Either way they dead-letter to function-runner's exchange, never silently.",
    )
    broker_delivery_limit: int | None = Field(
        default=None,
        ge=1,
        description="RabbitMQ quorum queues: x-delivery-limit (unset: the broker's default, 20 on RabbitMQ 4). "
        "A message past it is dead-lettered by the broker and collected by the dispatcher.",
    )
    max_lost_deliveries: int = Field(
        default=3,
        ge=1,
        description="After this many deliveries of a task ended without an outcome (its worker process died), "
        "it is dead-lettered as worker_lost instead of being run again.",
    )
    breaker_failure_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A circuit breaker opens when this share of its calls in the window failed.",
    )
    breaker_window: float = Field(default=30.0, gt=0, description="The breakers' sliding window (s).")
    breaker_min_calls: int = Field(
        default=10, ge=1, description="A breaker does not open before this many calls in its window."
    )
    breaker_open_seconds: float = Field(
        default=30.0, gt=0, description="How long an open breaker refuses calls before one probe is let through (s)."
    )
    redact_keys: list[str] = Field(default_factory=list, description="Extra key names whose values are secret.")
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Fallback chains by logical service, JSON: {"chat": ["openai:gpt-4o", '
        '"anthropic:claude", "cache"]}. Each name is a provider registered on the app (or a '
        "degraded result, last).",
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="API keys of the error API, comma-separated 'scope:key' pairs with scope read or write "
        "(write implies read). Unset: the API answers only requests from the loopback address.",
    )

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_api_keys(value.get_secret_value())
        return value

    @field_validator("database_url", "broker_url", "redis_url", "result_backend")
    @classmethod
    def _blank_is_default(cls, value: str | None) -> str | None:
        return value or None

    @property
    def effective_database_url(self) -> str:
        """The database URL, with the embedded SQLite default filled in."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'function-runner.sqlite3').resolve()}"

    @property
    def effective_broker_url(self) -> str:
        """The broker URL, with the embedded filesystem default filled in."""
        return self.broker_url or "filesystem://"

    @property
    def shared_state_url(self) -> str | None:
        """The Redis of the state workers share: ``redis_url``, else the broker when it is Redis."""
        if self.redis_url:
            return self.redis_url
        url = self.effective_broker_url
        return url if url.startswith(("redis://", "rediss://")) else None

    @property
    def broker_folder(self) -> Path:
        """The folder the embedded filesystem broker exchanges messages through."""
        return (self.data_dir / "broker").resolve()

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

    def sealer(self) -> Sealer:
        """The sealer for secret values, from ``encryption_key`` or the key file in ``data_dir``."""
        if self.encryption_key is not None and self.encryption_key.get_secret_value():
            return Sealer(self.encryption_key.get_secret_value())
        return Sealer(_key_file(self.data_dir))


#: The scopes an API key may have.
API_SCOPES = ("read", "write")


def parse_api_keys(text: str) -> dict[str, str]:
    """Parse ``"read:KEY1,write:KEY2"`` into ``{key: scope}``.

    Raises:
        ValueError: on an entry without a known scope or with an empty key (the key is never echoed).
    """
    keys: dict[str, str] = {}
    for position, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        scope, sep, key = entry.partition(":")
        if not sep or scope.strip() not in API_SCOPES or not key.strip():
            raise ValueError(f"API key entry #{position} must look like 'read:<key>' or 'write:<key>'")
        keys[key.strip()] = scope.strip()
    return keys


def _key_file(data_dir: Path) -> str:
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written whole under a private name (mode 0600), then linked into place: no reader ever sees
        # an empty or partial key file, and of two threads or processes racing, the first link wins.
        fd, temp = tempfile.mkstemp(dir=data_dir, prefix=f".{KEY_FILE_NAME}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(generate_key())
            os.link(temp, path)
        except FileExistsError:  # another thread or process created it first
            pass
        else:
            warnings.warn(
                f"FUNCTION_RUNNER_ENCRYPTION_KEY is not set; created {path}. Set the same key on every "
                "machine of a fleet, or dead letters sealed on one cannot be replayed from another.",
                stacklevel=3,
            )
        finally:
            os.unlink(temp)
    return path.read_text().strip()
