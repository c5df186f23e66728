"""Settings: one validated object, read from ``FUNCTION_RUNNER_*`` environment variables.

Every setting has a default that works with no server at all (the *embedded default*: a SQLite file and
kombu's filesystem transport under ``data_dir``). Production sets at least ``database_url``,
``broker_url`` and ``encryption_key``. The README's settings table lists them all.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from error_handling.exceptions import ConfigurationError
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
#: The largest request body the API reads by default: 1 MiB.
DEFAULT_API_MAX_BODY_BYTES = 1024 * 1024
#: Broker schemes of the embedded default (no server): only with these may the key come from a key file.
EMBEDDED_BROKERS = frozenset({"filesystem", "memory"})
#: The error when a fleet has no key (one line, for workers, dispatchers, the API and the CLI).
MISSING_KEY = (
    "FUNCTION_RUNNER_ENCRYPTION_KEY is not set: it is required when the database or the broker is a server "
    "(every process must seal with the same key); make one with: function-runner keys generate"
)


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
        "values kept for replay. Default: a key file created in data_dir, for the embedded default only "
        "(a database or a broker on a server needs the key set).",
    )
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
        "(function_runner.broker.redis_transport), so a worker killed or a Redis restarted in between loses nothing; "
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
    max_unrecordable_requeues: int = Field(
        default=3,
        ge=0,
        description="How many times a worker gives a message back when the database refuses what it "
        "records about it (not an outage: a value it will not store, a bug of the bookkeeping); the next "
        "refusal dead-letters the task with a minimal record, reason 'unrecordable'. Counted in the "
        "shared Redis; without it the first refusal dead-letters the task.",
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
    replay_allowed_queues: list[str] = Field(
        default_factory=list,
        description="Queues a replay may be sent to besides those the app declares (its default queue, "
        "task_queues, the queues of dict task_routes) and the dead letter's own queue, JSON: "
        '["reprocess", "slow"].',
    )
    replay_edit_max_bytes: int = Field(
        default=262_144,
        ge=1,
        description="The largest replay edit accepted: args or kwargs as canonical JSON, in bytes (UTF-8).",
    )
    replay_edit_max_depth: int = Field(
        default=32,
        ge=1,
        le=90,
        description="The deepest nesting of lists and objects accepted in a replay edit (args or kwargs).",
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="API keys of the error API, comma-separated 'scope:key' or 'NAME=scope:key' entries with "
        "scope read or write (write implies read); NAME is who the key belongs to, as the audit trail shows it. "
        "Unset: the API answers only local clients (the loopback address, no proxy in between).",
    )
    api_allow_open: bool = Field(
        default=False,
        description="With no api_keys: serve every client, remote ones included, without a key (an open API; "
        "list the names it is reached by in api_allowed_hosts). Ignored when api_keys is set.",
    )
    api_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the API answers to (the Host header, any port), comma-separated; '*' for any. "
        "The loopback names localhost, 127.0.0.1 and [::1] are always allowed. Empty: only those when no "
        "api_keys are set, any host when they are.",
    )
    api_max_body_bytes: int = Field(
        default=DEFAULT_API_MAX_BODY_BYTES,
        ge=1,
        description="Largest request body the API reads (bytes); a larger one is refused (413) before it is parsed.",
    )
    api_forwarded_allow_ips: str | None = Field(
        default=None,
        description="Addresses of the reverse proxies whose X-Forwarded-For/-Proto headers `function-runner api` "
        "believes (uvicorn's forwarded_allow_ips, comma-separated, '*' for any). Unset: proxy headers are ignored.",
    )

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_api_keys(value.get_secret_value())
        return value

    @field_validator("api_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):  # from the environment: comma-separated
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @field_validator("api_allowed_hosts")
    @classmethod
    def _check_hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not ALLOWED_HOST.match(host):
                raise ValueError(f"{host!r} is not a host name: write e.g. api.example.com, 10.0.0.5, [::1] or *")
        return [host.lower() for host in value]

    @field_validator("api_forwarded_allow_ips")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

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

    @property
    def embedded(self) -> bool:
        """Whether these settings are the embedded default: a SQLite file and a broker with no server
        (``filesystem://`` or ``memory://``), one machine; only then may the key come from a key file."""
        broker = self.effective_broker_url.partition("://")[0]
        return self.effective_database_url.startswith("sqlite") and broker in EMBEDDED_BROKERS

    def sealer(self) -> Sealer:
        """The sealer for secret values, from ``encryption_key`` or, for the embedded default only, the
        key file in ``data_dir``.

        Raises:
            ConfigurationError: no key is set while the database or the broker is a server (each
                machine would seal with a key of its own, and dead letters sealed on one could not be
                replayed from another), or a key is not a Fernet key.
        """
        configured = self._configured_sealer()
        return configured if configured is not None else Sealer(_key_file(self.data_dir))

    def check_encryption_key(self) -> None:
        """Fail now if :meth:`sealer` would (a process calls it at start); makes no key file.

        Raises:
            ConfigurationError: as :meth:`sealer`.
        """
        self._configured_sealer()

    def _configured_sealer(self) -> Sealer | None:
        """The sealer of ``encryption_key``; None for the embedded default without one (its key file)."""
        if self.encryption_key is not None and self.encryption_key.get_secret_value().strip():
            try:
                return Sealer(self.encryption_key.get_secret_value())
            except ConfigurationError as exc:  # names the key by position, never its text
                raise ConfigurationError(f"invalid FUNCTION_RUNNER_ENCRYPTION_KEY: {exc}") from None
        if not self.embedded:
            raise ConfigurationError(MISSING_KEY)
        return None


#: The scopes an API key may have.
API_SCOPES = ("read", "write")
#: What a key's name may be: letters, digits and ``_ . @ -``, up to 64 characters.
KEY_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: Principals the API gives on its own; no key may be named like them.
RESERVED_KEY_NAMES = frozenset({"local", "open"})
#: A host name, an IPv4 address, a bracketed IPv6 address, or ``*``.
ALLOWED_HOST = re.compile(r"^(\*|[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])$")


@dataclass(frozen=True)
class ApiKey:
    """One API key's grant: its scope and the principal it acts as."""

    #: ``read`` or ``write``.
    scope: str
    #: Who uses the key: its name, or ``key-`` and the first 8 hex digits of the key's SHA-256.
    principal: str


def key_principal(key: str) -> str:
    """The principal of an unnamed key: ``key-`` and the first 8 hex digits of its SHA-256 (never the key)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def parse_api_keys(text: str) -> dict[str, ApiKey]:
    """Parse ``"read:KEY1,alice=write:KEY2"`` into ``{key: ApiKey(scope, principal)}``.

    An entry is ``scope:key`` or ``NAME=scope:key``; the key is everything after the first ``:`` (it may
    hold ``=`` and ``:``).

    Raises:
        ValueError: on an entry without a known scope, with an empty key, or with a name that is not
            allowed (the key is never echoed).
    """
    keys: dict[str, ApiKey] = {}
    for position, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        head, sep, key = entry.partition(":")
        name, has_name, scope = head.rpartition("=")
        name, scope, key = name.strip(), scope.strip(), key.strip()
        if not sep or scope not in API_SCOPES or not key:
            raise ValueError(
                f"API key entry #{position} must look like 'read:<key>', 'write:<key>' or 'NAME=write:<key>'"
            )
        if has_name and (not KEY_NAME.match(name) or name in RESERVED_KEY_NAMES or name.lower().startswith("key-")):
            raise ValueError(
                f"API key entry #{position}: a name is 1 to 64 letters, digits or _ . @ -, and not "
                "'local', 'open' or 'key-...'"
            )
        keys[key] = ApiKey(scope=scope, principal=name if has_name else key_principal(key))
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
