"""The error-classifying task wrapper: ``@app.task(base=RecoverableTask)`` or ``@function_runner.task``.

One execution is a short sequence of steps, each in its own module::

    claim ──▶ hold gates ──▶ run ──▶ (failed?) classify ──▶ record ──▶ carry out
    claim       leases        guards      classify, payload   record      outcome
    poison                                                    refusals

On success a first attempt costs nothing: no database round trip. On an exception the failed attempt
is recorded with its decision in one transaction before Celery acks the message (retry or wait: a row
the dispatcher publishes when due, state ``RETRY``; fail fast or dead letter: the exception re-raised,
state ``FAILURE``). No error of the wrapper's own bookkeeping reaches Celery as the task's outcome: an
outage gives the message back, a refusal is counted and dead-lettered past a limit (``refusals``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, NoReturn

from celery import Task, shared_task
from celery.exceptions import Ignore, Reject, Retry

from error_handling.classification import Rule
from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import reports
from error_handling.persistence.models import utcnow
from error_handling.policy import RecoveryPolicy
from error_handling.sealing import seal_secrets
from function_runner.compensation.publish import publish_compensation
from function_runner.compensation.recorder import CompensateOn, Recorder, recording
from function_runner.runtime import Runtime, runtime_for
from function_runner.wrapper import claim, guards, leases, outcome, payload, poison, refusals, start_marks, unrecorded
from function_runner.wrapper import logs as _logs  # noqa: F401  (redacts Celery's log lines in workers)
from function_runner.wrapper.classify import classify, policy_of
from function_runner.wrapper.execution import Execution, attempt_of
from function_runner.wrapper.failures import FailureToRecord
from function_runner.wrapper.record import record, record_success
from function_runner.wrapper.redacted_errors import redacted_error
from function_runner.wrapper.services import Services

__all__ = ["CONTROL_FLOW", "RecoverableTask", "requested_retry", "task"]

#: Exceptions that steer Celery itself; the wrapper never classifies them.
CONTROL_FLOW: tuple[type[BaseException], ...] = (Retry, Ignore, Reject)


class RecoverableTask(Task):  # type: ignore[misc]
    """A Celery task whose failures are classified, recorded and routed.

    Class attributes (set them as task options: ``@app.task(base=RecoverableTask, recovery_policy=...)``):
        recovery_policy: a :class:`~error_handling.policy.RecoveryPolicy`, or a dict of overrides of the
            app's policy (``{"transient_max_attempts": 3}``).
        recovery_rules: classifier rules for this task, evaluated before the app's and the built-ins.
        breaker: a service name: the body runs through its circuit breaker (an open breaker schedules a
            retry at the time it may close, without running the body).
        retry_budget: a service name: transient failures draw on its cluster-wide retry budget, and
            are dead-lettered as ``retry_budget_exhausted`` when it is empty (default: ``breaker``).
        resources: units of the app's capacity gates the body needs (``{"gpu": 1}``): taken before it
            runs, or the task is parked on the gate (reason ``capacity_exhausted``).
        compensate_on: a :class:`~function_runner.compensation.recorder.CompensateOn` or its value:
            ``"terminal"`` (default): the recorded compensation steps are undone when the task (or a
            later task of its chain) fails for good; ``"every_failure"``: after every failed attempt too.
        max_lost_deliveries: after this many deliveries of one attempt ended without an outcome (its
            worker process died: a crash, a kill, an OOM kill, a hard time limit), the task is not run
            again but dead-lettered as ``worker_lost`` (default: the ``max_lost_deliveries`` setting, 3).
    """

    acks_late = True
    reject_on_worker_lost = True
    #: A hard time limit kills the pool process: the message goes back and the loss is counted like
    #: any other death of the process (Celery would ack it and lose the task).
    acks_on_timeout = False
    Request = "function_runner.wrapper.deliveries:RecoverableRequest"
    max_lost_deliveries: ClassVar[int | None] = None
    recovery_policy: ClassVar[RecoveryPolicy | dict[str, Any] | None] = None
    recovery_rules: ClassVar[Sequence[Rule]] = ()
    compensate_on: ClassVar[CompensateOn | str] = CompensateOn.TERMINAL
    resources: ClassVar[dict[str, int]] = {}
    breaker: ClassVar[str | None] = None
    retry_budget: ClassVar[str | None] = None

    @property
    def services(self) -> Runtime:
        """The app's runtime (attached from the environment on first use): the one place a task, its
        worker-side request and the compensate task find the app's services."""
        return runtime_for(self.app)

    @property
    def compensation(self) -> Recorder:
        """Records this execution's compensation steps: ``self.compensation.record_operation(...)``."""
        return _recorder(self, self.services)

    @property
    def attempt(self) -> int:
        """The attempt number of the current execution: 1 for the first, 2 for the first retry, ..."""
        return attempt_of(self.request)

    def retry(self, *args: Any, **options: Any) -> NoReturn:
        """Celery's ``self.retry()``, recorded and scheduled as a row (:func:`requested_retry`)."""
        if self.request.called_directly:
            super().retry(*args, **options)
        raise requested_retry(self, *args, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly:
            return self.run(*args, **kwargs)
        services = self.services
        execution = Execution.of(services, request, task_name=self.name, args=args, kwargs=kwargs)
        put_back = start_marks.start_mark(execution.task_id, execution.attempt)
        try:
            try:
                return self._execute(execution, put_back)
            except CONTROL_FLOW:
                raise
            except Exception as bug:  # noqa: BLE001 - the outermost boundary: a bookkeeping bug is not the outcome
                self._refused(dataclasses.replace(execution, run_id=None), bug, step="wrapper")
        except outcome.Verdict as verdict:
            error, traceback_ = verdict.error, verdict.traceback
        finally:
            start_marks.end_mark()
        # raised out of every handler, so Celery's copy of the traceback has this frame and the body's,
        # not the wrapper's; Celery stores, sends and logs what it gets: a redacted copy of the same type
        raise redacted_error(error, services.redactor).with_traceback(traceback_)

    def _execute(self, execution: Execution, put_back: list[int]) -> Any:
        """The steps: claim (runs, duplicates, lost deliveries), then hold gates and run the body."""
        with self._bookkeeping(execution, "claim"):
            claim.claim_run(execution)
        if claim.may_be_duplicate(execution):
            kept = claim.kept_failure(execution)
            if kept is not None:  # it failed while the database was away: record that, don't run it again
                with self._bookkeeping(execution, "record_kept_failure"):
                    self._conclude(execution, unrecorded.UnrecordedFailure.of(kept.classification), kept, kept=True)
            with self._bookkeeping(execution, "duplicate_check"):
                claim.skip_duplicate(execution)
        lost = 0
        if put_back or execution.redelivered:
            with self._bookkeeping(execution, "redelivery"):
                losses = poison.record_losses(execution, put_back=put_back, limit=self.max_lost_deliveries)
            if losses.poison is not None:
                self._on_failure(execution, losses.poison, started_at=None)
            lost = losses.count
        result = self._run_body(execution)
        guards.succeeded(execution, self._budget)
        if execution.run_id is not None or lost:
            record_success(execution)
        return result

    def _run_body(self, execution: Execution) -> Any:
        """Hold the gates and run the body through its breaker; a failure goes on to :meth:`_on_failure`."""
        started_at = utcnow()
        services = execution.services
        try:
            with (
                recording(_recorder(self, services)),
                leases.holding_gates(execution, self.resources),
                guards.breaker_guard(services, self.breaker),
            ):
                return self.run(*execution.args, **execution.kwargs)
        except Retry as requested:  # the body's own self.retry(): a failure like any other, its countdown the hint
            self._on_failure(execution, requested, started_at=started_at)
        except CONTROL_FLOW:
            raise
        except StorageUnavailable as db_exc:  # our own records (a compensation step, a gate) could not be written
            outcome.requeue(execution, step="body", why=f"the task's records could not be written: {db_exc}")
        except Exception as exc:  # noqa: BLE001 - the outermost boundary: every failure of the body is classified
            self._on_failure(execution, exc, started_at=started_at)

    def _on_failure(self, execution: Execution, exc: Exception, *, started_at: dt.datetime | None) -> NoReturn:
        """Classify the failure and build its report, then :meth:`_conclude`."""
        services = execution.services
        try:
            classification = classify(services, exc, rules=self.recovery_rules)
            report = payload.failure_report(execution, exc, classification, started_at=started_at)
            allowed = guards.retry_allowed(services, self._budget, classification)
            if allowed is not None:
                report = dataclasses.replace(report, retry_allowed=allowed)
        except Exception as bug:  # noqa: BLE001 - building the report failed: never ack a failure nobody recorded
            self._refused(execution, bug, step="report", exc=exc)
        self._conclude(execution, exc, report)

    def _conclude(
        self,
        execution: Execution,
        exc: Exception,
        report: reports.FailureReport,
        *,
        kept: bool = False,
        minimal: bool = False,
    ) -> NoReturn:
        """Record the failure with its decision, start its compensation if it calls for one, and carry
        the decision out (always raises). ``kept``: the report was kept in Redis during an outage;
        ``minimal``: it is a refusal's minimal record (refused too: the message goes back, loudly)."""
        policy = policy_of(execution.services, self.recovery_policy, task_name=self.name)
        try:
            item = self._to_record(execution, report, policy)
            recorded = record(execution, item, keep=not (kept or minimal))
        except CONTROL_FLOW:
            raise
        except Exception as bug:  # noqa: BLE001 - recording failed: never ack a failure nobody recorded
            if minimal:
                refusals.not_recorded(execution, bug, step=None, attempt=report.attempt)
            self._refused(dataclasses.replace(execution, run_id=report.run_id), bug, step="record_failure", exc=exc)
        if kept or minimal:
            unrecorded.forget(execution.services, execution.task_id, report.attempt)
        if recorded.to_compensate:
            publish_compensation(self.app, item.saga_id)
        outcome.carry_out(recorded.recorded.decision, exc)

    def _to_record(
        self, execution: Execution, report: reports.FailureReport, policy: RecoveryPolicy
    ) -> FailureToRecord:
        """What recording this failure needs: the saga whose steps a terminal outcome makes pending."""
        saga_id, gates = str(execution.request.root_id or execution.request.id), execution.services.gates
        return FailureToRecord(report, policy, saga_id=saga_id, compensate_on=self.compensate_on, gates=gates)

    @contextlib.contextmanager
    def _bookkeeping(self, execution: Execution, step: str) -> Iterator[None]:
        """Run a bookkeeping step: an outage gives the message back; any other error of the step is a
        refusal (:meth:`_refused`), never the task's outcome. Celery's control flow and verdicts pass."""
        try:
            yield
        except CONTROL_FLOW:
            raise
        except StorageUnavailable as exc:
            outcome.requeue(execution, step=step, why=f"the task's records could not be written: {exc}")
        except Exception as error:  # noqa: BLE001 - any other failure of bookkeeping is a refusal
            self._refused(execution, error, step=step)

    def _refused(self, execution: Execution, error: Exception, *, step: str, exc: Exception | None = None) -> NoReturn:
        """A record of this delivery was refused (``error``, at ``step``): given back while the count
        allows, else dead-lettered with a minimal record (``exc``: the body's exception, if it failed).
        If even that fails for an unexpected reason, the message is given back, loudly."""
        try:
            failure = refusals.past_limit(execution, error, step=step)
            report = refusals.unrecordable_report(execution, failure)
            self._conclude(execution, exc or failure, report, minimal=True)
        except CONTROL_FLOW:
            raise
        except Exception as bug:  # noqa: BLE001 - the last resort: never ack a failure nobody recorded
            refusals.not_recorded(execution, bug, step=step)

    @property
    def _budget(self) -> str | None:  # the service whose retry budget this task draws on
        return self.retry_budget or self.breaker


def requested_retry(
    task: Task,
    args: Any = None,
    kwargs: Any = None,
    exc: BaseException | None = None,
    throw: bool = True,
    eta: dt.datetime | None = None,
    countdown: float | None = None,
    max_retries: int | None = None,
    **options: Any,
) -> Retry:
    """The ``Retry`` a body's ``self.retry()`` raises in a :class:`RecoverableTask` (Celery's arguments),
    which the wrapper records like any failure and schedules as a row the dispatcher publishes (never a
    broker ETA message): ``exc`` (if given) is classified and decides the route, the retry comes no sooner
    than ``countdown`` seconds or ``eta`` (default: the task's ``default_retry_delay``), and the task's
    recovery policy counts the attempts (``max_retries`` and ``throw`` are not used).

    Raises:
        TypeError: new ``args``, ``kwargs`` or options were given (a bug: the retry runs the recorded
            arguments; the dead letter can be replayed with edits).
    """
    given = sorted(name for name, value in {"args": args, "kwargs": kwargs, **options}.items() if value is not None)
    if given:
        raise TypeError(f"RecoverableTask.retry() runs the recorded arguments again: it takes no {', '.join(given)}")
    when = eta if eta is not None else (countdown if countdown is not None else float(task.default_retry_delay))
    requested = Retry(f"retry requested: {exc!r}" if exc is not None else "retry requested", exc=exc, when=when)
    if exc is not None:  # Celery keeps a stand-in for an exception it cannot pickle; the original is classified
        requested.exc = exc
    return requested


def task(*args: Any, **options: Any) -> Any:
    """Declare a recoverable task on the current app, like Celery's ``shared_task``.

    ``@function_runner.task`` or ``@function_runner.task(recovery_policy={...}, name=...)``. Any Celery
    task option works; ``base`` defaults to :class:`RecoverableTask`.
    """
    options.setdefault("base", RecoverableTask)
    return shared_task(*args, **options)


def _recorder(task: RecoverableTask, services: Services) -> Recorder:
    """The compensation recorder of ``task``'s current execution, sealing and writing through ``services``."""
    return Recorder(
        task,
        seal=lambda value: seal_secrets(value, redactor=services.redactor, sealer=services.sealer),
        in_transaction=services.in_transaction,
    )
