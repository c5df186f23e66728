"""Where function-runner keeps things: the database, the broker, the shared Redis, and the key that seals
secrets.

With nothing set, everything lives under ``data_dir`` (the *embedded default*: a SQLite file, kombu's
filesystem transport and a key file, no server). A database or broker on a server needs the key set::

    encryption_key set ──────────────► Sealer(the key)
    unset, embedded default ─────────► Sealer(data_dir/encryption.key, made once)
    unset, a server ─────────────────► ConfigurationError(MISSING_KEY)
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from pydantic import SecretStr, field_validator

from error_handling.exceptions import ConfigurationError
from error_handling.sealing import Sealer, generate_key
from function_runner.settings.group import SettingsGroup

#: Name of the key file created under ``data_dir`` when no ``encryption_key`` is set.
KEY_FILE_NAME = "encryption.key"
#: Broker schemes of the embedded default (no server): only with these may the key come from a key file.
EMBEDDED_BROKERS = frozenset({"filesystem", "memory"})
#: The error when a fleet has no key (one line, for workers, dispatchers, the API and the CLI).
MISSING_KEY = (
    "FUNCTION_RUNNER_ENCRYPTION_KEY is not set: it is required when the database or the broker is a server "
    "(every process must seal with the same key); make one with: function-runner keys generate"
)


class StorageSettings(SettingsGroup):
    """The database, the broker, the shared Redis, the result backend and the encryption key."""

    data_dir: Path = Path(".function-runner")
    """Where the embedded default keeps its SQLite file, broker folders and key file."""
    database_url: str | None = None
    """SQLAlchemy URL of the system of record, e.g. postgresql://user@host/db. Default: a SQLite file in
    data_dir."""
    broker_url: str | None = None
    """Celery broker URL, e.g. redis://localhost:6379/0. Default: kombu's filesystem transport in data_dir (no
    server)."""
    redis_url: str | None = None
    """Redis for the state workers share: circuit breakers, retry budgets, capacity leases, delivery counters
    and failures kept while the database is unreachable. Default: the broker, when it is Redis. Set it when the
    broker is RabbitMQ (without it those run per process or in the database)."""
    result_backend: str | None = None
    """Celery result backend URL (optional)."""
    encryption_key: SecretStr | None = None
    """Fernet key(s), comma-separated (first encrypts, all decrypt), sealing secret values kept for replay.
    Default: a key file created in data_dir, for the embedded default only (a database or a broker on a server
    needs the key set)."""

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
