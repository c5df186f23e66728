"""Recording compensation steps: a task records the side effects it made and how to undo them.

Inside a :class:`~function_runner.wrapper.task.RecoverableTask`::

    @app.task(base=RecoverableTask, bind=True)
    def book(self, order):
        charge = payments.charge(order)                      # the side effect
        self.compensation.record_operation(
            "charge", undo=refund, data={"charge_id": charge.id}
        )
        with self.compensation.operation("reserve", undo=release_stock, data={"sku": order.sku}):
            stock.reserve(order.sku)                         # recorded once the block succeeded

or :func:`record_operation` from any code the task calls. Each step is durable when the call returns;
a task that records nothing pays nothing. ``undo``: an importable function, a Celery signature, or
None (see :class:`UndoKind`).
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import importlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from celery.canvas import Signature

from error_handling.persistence.compensation import record_step
from error_handling.persistence.models import utcnow
from function_runner.events import log_event

if TYPE_CHECKING:
    from celery.app.task import Context
    from sqlalchemy.orm import Session

__all__ = ["CompensateOn", "Recorder", "UndoKind", "record_operation", "recording", "undo_reference"]


class CompensateOn(enum.StrEnum):
    """When a task's recorded steps are undone (the task option ``compensate_on``; a plain string
    with the same value works too)."""

    #: When the task, or a later task of its chain, fails for good (the default).
    TERMINAL = "terminal"
    #: After every failed attempt of this task as well (its own steps).
    EVERY_FAILURE = "every_failure"


class UndoKind(enum.StrEnum):
    """How a step's undo is stored."""

    #: A module-level function, stored as ``{"path": "module:qualname"}``; called with the step's
    #: data (and ``idempotency_key=`` when it accepts that keyword).
    CALLABLE = "callable"
    #: A Celery signature, stored as its dict; its task's body runs in the compensator.
    SIGNATURE = "signature"
    #: Nothing can undo the side effect: recorded for the log, ``skipped`` when compensating.
    NONE = "none"


_current: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("function_runner_compensation", default=None)


def undo_reference(undo: Any) -> tuple[UndoKind, Any]:
    """How an undo is stored: ``(CALLABLE, {"path": "module:qualname"})``, ``(SIGNATURE, {...})``, or
    ``(NONE, {})``.

    Raises:
        TypeError: ``undo`` is neither a Celery signature nor a module-level function that can be
            imported again by its name (a lambda, a closure, a bound method, ...).
    """
    if undo is None:
        return UndoKind.NONE, {}
    if isinstance(undo, Signature):
        return UndoKind.SIGNATURE, dict(undo)
    module = getattr(undo, "__module__", None)
    qualname = getattr(undo, "__qualname__", None)
    if not callable(undo) or not module or not qualname or "<" in qualname:
        raise TypeError(
            f"undo must be a module-level function or a Celery signature, not {undo!r}: "
            "it is stored by name and called later, maybe by another process"
        )
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        found = None
    if found is not undo:
        raise TypeError(f"undo {module}:{qualname} cannot be imported again by its name")
    return UndoKind.CALLABLE, {"path": f"{module}:{qualname}"}


class RecordingTask(Protocol):
    """What a recorder reads of the running task (a :class:`~function_runner.wrapper.task.RecoverableTask`)."""

    name: str

    @property
    def request(self) -> Context: ...

    @property
    def attempt(self) -> int: ...


class Recorder:
    """Records the compensation steps of one execution of a task (``task.compensation``).

    ``seal`` makes a value storable (secrets redacted and sealed); ``in_transaction`` runs a unit of work
    in one transaction (the runtime's, retried while the database is briefly away).
    """

    def __init__(
        self,
        task: RecordingTask,
        *,
        seal: Callable[[Any], Any],
        in_transaction: Callable[[Callable[[Session], Any]], Any],
    ) -> None:
        self.task = task
        self._seal = seal
        self._in_transaction = in_transaction

    @property
    def saga_id(self) -> str:
        """The saga of this execution: its chain's root id, or its own id."""
        request = self.task.request
        return str(request.root_id or request.id)

    def record_operation(self, name: str, *, undo: Any, data: Any = None, idempotency_key: str | None = None) -> str:
        """Record a side effect this task made and how to undo it; return the step's idempotency key.

        The step is durable when this returns. Recording the same ``idempotency_key`` again (a retried
        attempt redoing the same effect) keeps one step.

        Raises:
            TypeError: ``undo`` cannot be stored (see :func:`undo_reference`).
            StorageUnavailable: the database could not be reached.
        """
        kind, reference = undo_reference(undo)
        request = self.task.request
        sealed_data, sealed_undo = self._seal(data), self._seal(reference)
        now = utcnow()
        step = self._in_transaction(
            lambda s: (
                record_step(
                    s,
                    task_id=str(request.id),
                    saga_id=self.saga_id,
                    task_name=self.task.name,
                    attempt=self.task.attempt,
                    name=name[:255],
                    undo_kind=kind,
                    undo=sealed_undo,
                    data=sealed_data,
                    idempotency_key=idempotency_key,
                    now=now,
                ).idempotency_key
            )
        )
        log_event("compensation.recorded", task_id=request.id, step=name, saga=self.saga_id)
        return str(step)

    @contextlib.contextmanager
    def operation(
        self, name: str, *, undo: Any, data: Any = None, idempotency_key: str | None = None
    ) -> Iterator[None]:
        """Record the step once the block succeeded (a block that raises made no side effect to undo)."""
        undo_reference(undo)  # refuse an undo that cannot be stored before the side effect is made
        yield
        self.record_operation(name, undo=undo, data=data, idempotency_key=idempotency_key)


def record_operation(name: str, *, undo: Any, data: Any = None, idempotency_key: str | None = None) -> str:
    """Record a step of the task running in this context (see :meth:`Recorder.record_operation`).

    Raises:
        RuntimeError: no recoverable task is running here.
    """
    recorder = _current.get()
    if recorder is None:
        raise RuntimeError("record_operation() is only meaningful inside a running RecoverableTask")
    return recorder.record_operation(name, undo=undo, data=data, idempotency_key=idempotency_key)


@contextlib.contextmanager
def recording(recorder: Recorder) -> Iterator[None]:
    """Make ``recorder`` the current one for the block (the wrapper sets it around a task's body)."""
    token = _current.set(recorder)
    try:
        yield
    finally:
        _current.reset(token)
