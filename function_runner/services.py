"""What the app's services look like to the modules that use them: small protocols, one per need.

The runtime (the composition root) satisfies every one by its shape; a module names the ones it reads
and never imports the runtime. Bigger needs are these combined::

    HasSettings ── settings
    Sealing ────── redactor, sealer
    Transactional ─ in_transaction(work, patience=)
    SharedState ── shared_redis
    HasSessions ── sessions
    Recording = HasSettings + Sealing + Transactional + policy, user_messages   (recording a failure)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from error_handling.messages import UserMessages
    from error_handling.policy import RecoveryPolicy
    from error_handling.redaction import Redactor
    from error_handling.sealing import Sealer
    from function_runner.resilience.shared_redis import SharedRedis
    from function_runner.settings import Settings

__all__ = [
    "HasSessions",
    "HasSettings",
    "InTransaction",
    "Recording",
    "Sealing",
    "SharedState",
    "Transactional",
]

T = TypeVar("T")


class InTransaction(Protocol):
    """Runs ``work`` in one database transaction (``Runtime.in_transaction``), retrying while the
    database is unavailable for up to ``patience`` seconds (0: tried once; None: the setting)."""

    def __call__(self, work: Callable[[Session], T], *, patience: float | None = None) -> T: ...


class HasSettings(Protocol):
    """Anything that carries the settings."""

    @property
    def settings(self) -> Settings: ...


class Sealing(Protocol):
    """The redactor (what is shown) and the sealer (the only copy of a secret, encrypted)."""

    @property
    def redactor(self) -> Redactor: ...
    @property
    def sealer(self) -> Sealer: ...


class Transactional(Protocol):
    """Work in one database transaction."""

    def in_transaction(self, work: Callable[[Session], T], *, patience: float | None = None) -> T:
        """Run ``work`` in one transaction (see :class:`InTransaction`)."""
        ...


class SharedState(Protocol):
    """The shared-state Redis (the delivery counters and the failures kept during an outage)."""

    @property
    def shared_redis(self) -> SharedRedis: ...


class HasSessions(Protocol):
    """The database's session factory, for a transaction the caller holds."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...


class Recording(HasSettings, Sealing, Transactional, Protocol):
    """What recording a failure uses: the policy that decides and the messages users are shown."""

    @property
    def policy(self) -> RecoveryPolicy: ...
    @property
    def user_messages(self) -> UserMessages: ...
