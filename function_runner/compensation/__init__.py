"""Compensation logs: a task records the side effects it made and how to undo them; when it (or a later
task of its Celery chain) fails for good, the undos run newest first, each once, and every outcome is
recorded.

Recording, inside a :class:`~function_runner.wrapper.task.RecoverableTask`::

    @app.task(base=RecoverableTask, bind=True)
    def book(self, order):
        charge = payments.charge(order)                      # the side effect
        self.compensation.record_operation(
            "charge", undo=refund, data={"charge_id": charge.id}
        )
        with self.compensation.operation("reserve", undo=release_stock, data={"sku": order.sku}):
            stock.reserve(order.sku)                         # recorded once the block succeeded

or :func:`record_operation` from any code the task calls. Each step is written durably before the call
returns; a task that records nothing pays nothing. ``undo`` is an importable function (called with the
step's ``data``, and with ``idempotency_key=`` when it accepts that keyword), a Celery signature (its
task's body runs in the compensator, with the signature's arguments), or None for a side effect that
cannot be taken back (recorded, and ``skipped`` when compensating).

Compensating: the terminal outcome (fail fast, dead letter, an operator's discard) makes the recorded
steps of the task's saga (its chain's root id) ``pending`` in the same transaction, and the wrapper then
publishes :data:`COMPENSATE_TASK`. That task claims the saga's newest open step, runs its undo, records
the outcome, and goes on. An undo that fails with a transient error is retried by the compensate task's
own policy (:data:`COMPENSATION_POLICY`); any other failure (unclassified ones included), or retries
exhausted, dead-letters the
compensation as ``compensation_failed`` and marks the steps left ``compensation_failed``: replaying that
dead letter once the cause is fixed reopens them and completes the rollback. A worker killed during an
undo: the message is redelivered and the step is run again (the reason for idempotency keys). The
dispatcher republishes compensations that seem lost (``compensation_sweep_after``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.canvas import Signature

from error_handling.categories import Category, Reason
from error_handling.exceptions import PermanentError
from error_handling.persistence import compensation as steps
from error_handling.persistence.models import StepStatus, utcnow
from error_handling.sealing import seal_secrets, unseal_secrets
from function_runner.events import log_event

if TYPE_CHECKING:
    from function_runner.runtime import Runtime
    from function_runner.wrapper.task import RecoverableTask

__all__ = [
    "COMPENSATE_TASK",
    "COMPENSATION_POLICY",
    "CompensationFailed",
    "Recorder",
    "publish_compensation",
    "record_operation",
    "register_compensator",
    "undo_reference",
]

#: The name of the task that runs a saga's undos.
COMPENSATE_TASK = "function_runner.compensate"
#: The compensate task's own policy: a few quick retries of a transient undo failure.
COMPENSATION_POLICY: dict[str, Any] = {"transient_max_attempts": 3, "unclassified_max_attempts": 1}
#: The reason of an error nothing classified: not retried by the compensator (a refusal, most likely).
UNCLASSIFIED = Reason.UNCLASSIFIED.value
#: How long a compensator's claim on a step holds before another may take it over (it died mid-undo).
CLAIM_LEASE_SECONDS = 300.0

_current: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("function_runner_compensation", default=None)


class CompensationFailed(PermanentError):
    """An undo failed for a reason a retry will not fix: the compensation is dead-lettered."""

    default_reason = "compensation_failed"


def undo_reference(undo: Any) -> tuple[str, Any]:
    """How an undo is stored: ``("callable", {"path": "module:qualname"})``, ``("signature", {...})``, or
    ``("none", {})`` for a step with nothing to undo (recorded for the log, ``skipped`` when compensating).

    Raises:
        TypeError: ``undo`` is neither a Celery signature nor a module-level function that can be
            imported again by its name (a lambda, a closure, a bound method, ...).
    """
    if undo is None:
        return "none", {}
    if isinstance(undo, Signature):
        return "signature", dict(undo)
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
    return "callable", {"path": f"{module}:{qualname}"}


class Recorder:
    """Records the compensation steps of one execution of a task (``task.compensation``)."""

    def __init__(self, task: RecoverableTask, runtime: Runtime) -> None:
        self.task = task
        self.runtime = runtime

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
        runtime = self.runtime

        def seal(value: Any) -> Any:
            return seal_secrets(value, redactor=runtime.redactor, sealer=runtime.sealer)

        request = self.task.request
        sealed_data, sealed_undo = seal(data), seal(reference)
        now = utcnow()
        step = runtime.in_transaction(
            lambda s: (
                steps.record_step(
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


def publish_compensation(app: Celery, saga_id: str) -> bool:
    """Publish the compensate task for a saga; False (logged) if the broker refused: the dispatcher's
    sweep publishes it later."""
    try:
        app.send_task(COMPENSATE_TASK, args=[saga_id])
    except Exception as exc:
        log_event("compensation.publish_failed", level=logging.WARNING, saga=saga_id, error=type(exc).__name__)
        return False
    log_event("compensation.published", saga=saga_id)
    return True


def _run_undo(app: Celery, runtime: Runtime, claim: steps.Claim) -> None:
    reference = unseal_secrets(claim.undo, sealer=runtime.sealer)
    data = unseal_secrets(claim.data, sealer=runtime.sealer)
    if claim.undo_kind == "signature":
        signature = Signature.from_dict(reference, app=app)
        app.tasks[signature.task].run(*signature.args, **signature.kwargs)
        return
    module_name, _, qualname = str(reference["path"]).partition(":")
    undo: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        undo = getattr(undo, part)
    if _accepts(undo, "idempotency_key"):
        undo(data, idempotency_key=claim.idempotency_key)
    else:
        undo(data)


def _accepts(function: Callable[..., Any], keyword: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def register_compensator(app: Celery) -> None:
    """Register :data:`COMPENSATE_TASK` on ``app`` (done by ``install``/``create_app``)."""
    if getattr(app, "_function_runner_compensator", False):
        return
    app._function_runner_compensator = True
    from datetime import timedelta

    from function_runner.wrapper.task import RecoverableTask

    @app.task(  # type: ignore[untyped-decorator]
        shared=False,
        base=RecoverableTask,
        bind=True,
        name=COMPENSATE_TASK,
        recovery_policy=COMPENSATION_POLICY,
        is_compensator=True,
    )
    def compensate(self: RecoverableTask, saga_id: str) -> dict[str, int]:
        """Undo the saga's pending steps, newest first, one at a time; return how many ran."""
        from function_runner.runtime import runtime_for
        from function_runner.wrapper import headers as H

        runtime = runtime_for(app)
        token = f"{self.request.id}:{self.attempt}"
        lease = timedelta(seconds=CLAIM_LEASE_SECONDS)
        if (self.request.headers or {}).get(H.REPLAY_OF) is not None and self.attempt == 1:
            # the replay of a compensation that failed for good: its steps are to be undone again
            reopened = runtime.in_transaction(lambda s: steps.reopen_failed(s, saga_id=saga_id, now=utcnow()))
            log_event("compensation.reopened", saga=saga_id, steps=reopened)
        done = 0
        while True:
            claim = runtime.in_transaction(
                lambda s: steps.claim_next(s, saga_id=saga_id, token=token, now=utcnow(), lease=lease)
            )
            if claim is None:
                break
            if claim.undo_kind == "none":  # nothing to undo: recorded for the log
                runtime.in_transaction(
                    functools.partial(
                        steps.finish_step, step_id=claim.step_id, token=token, status=StepStatus.SKIPPED, now=utcnow()
                    )
                )
                continue
            try:
                _run_undo(app, runtime, claim)
            except Exception as exc:
                error = runtime.redactor.redact_text(f"{type(exc).__name__}: {exc}")[:2000]
                runtime.in_transaction(
                    functools.partial(steps.release_step, step_id=claim.step_id, token=token, error=error, now=utcnow())
                )
                log_event("compensation.undo_failed", level=logging.WARNING, saga=saga_id, step=claim.name, error=error)
                found = runtime.classifier.classify(exc)
                if found.category in (Category.TRANSIENT, Category.RESOURCE) and found.reason != UNCLASSIFIED:
                    raise  # a known passing failure: retried by the compensate task's policy
                raise CompensationFailed(f"undo of step {claim.name!r} failed: {error}") from exc
            runtime.in_transaction(
                functools.partial(
                    steps.finish_step, step_id=claim.step_id, token=token, status=StepStatus.COMPENSATED, now=utcnow()
                )
            )
            log_event("compensation.step_done", saga=saga_id, step=claim.name, task_id=claim.task_id)
            done += 1
        return {"compensated": done}
