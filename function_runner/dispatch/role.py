"""What a role of the dispatcher is, and the one place where a role's failure is logged and contained.

A role is a periodic job (publish due runs, monitor gates, run retention, ...) with a ``name``, an
``interval`` and a ``run_once()``; the dispatcher runs a plain list of them::

    Dispatcher.run_forever
      └── for role in roles:  when due  →  run_role(role)  →  role.run_once()  →  busy?
                                              └── failure: logged here, once, for every role

Adding a role is one module (a :class:`Role` subclass) and one line in
:func:`function_runner.dispatch.dispatcher.build_roles`.
"""

from __future__ import annotations

import logging
from typing import ClassVar, TypeVar

from kombu.exceptions import OperationalError as BrokerError

from error_handling.exceptions import StorageUnavailable
from function_runner.events import log_event

__all__ = ["BROKER_ERRORS", "Role", "run_role"]

T = TypeVar("T")

#: The errors of a broker that did not answer: the role's work stays due and is tried again.
BROKER_ERRORS: tuple[type[BaseException], ...] = (BrokerError, ConnectionError, OSError)


class Role:
    """A periodic job of the dispatcher. Subclasses set :attr:`name` and implement :meth:`run_once`."""

    #: The role's name in logs (the ``step`` of ``dispatcher.storage_unavailable``).
    name: ClassVar[str]
    #: Event logged when :meth:`run_once` fails with an error that is neither the database's
    #: unavailability nor the broker's; None: such an error stops the dispatcher (a deployment mistake,
    #: e.g. an unmigrated schema, that the command reports).
    failed_event: ClassVar[str | None] = None
    #: Level of :attr:`failed_event`.
    failed_level: ClassVar[int] = logging.WARNING
    #: Errors logged as ``dispatcher.broker_unavailable`` (the others go to :attr:`failed_event`).
    broker_errors: ClassVar[tuple[type[BaseException], ...]] = BROKER_ERRORS
    #: Whether a failure ends the dispatcher's pass (the roles after it wait for the next one).
    ends_pass_on_failure: ClassVar[bool] = False
    #: Seconds between two runs (0: every pass of the loop).
    interval: float = 0.0

    def run_once(self) -> bool:
        """Do the role's work once; return whether more is waiting now (then the loop does not sleep).

        Raises:
            StorageUnavailable, kombu OperationalError, ConnectionError, OSError: the database or the
                broker did not answer (logged by :func:`run_role`; the work is tried again later).
        """
        raise NotImplementedError

    def stop(self) -> None:
        """Called once when the dispatcher stops (does nothing by default)."""


def run_role(role: Role) -> bool | None:
    """Run ``role`` once, logging and containing its failure. Returns what :meth:`Role.run_once` returned,
    None when it failed.

    Raises:
        Exception: an unexpected error of a role without :attr:`Role.failed_event`.
    """
    try:
        return role.run_once()
    except StorageUnavailable:
        log_event("dispatcher.storage_unavailable", level=logging.WARNING, step=role.name)
    except role.broker_errors as exc:  # nothing was marked: the work stays due
        log_event("dispatcher.broker_unavailable", level=logging.WARNING, step=role.name, error=type(exc).__name__)
    except Exception as exc:
        if role.failed_event is None:
            raise
        # contained: one role's failure must never stop the dispatching of due runs (tried again later)
        log_event(role.failed_event, level=role.failed_level, error=f"{type(exc).__name__}: {exc}")
    return None
