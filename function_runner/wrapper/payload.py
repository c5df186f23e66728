"""What is recorded of a failed execution: its payload (sealed for replay) and its failure report.

::

    args, kwargs, headers ──seal secrets──▶ TaskPayload ──┐
    classification, traceback (redacted) ─────────────────┴─▶ FailureReport

Secrets are sealed (a replay unseals them); values the database refuses (NUL, lone surrogates) are
sealed whole. A payload that cannot be sealed is kept redacted and marked not replayable; the minimal
payload of an unrecordable failure holds only sealed blobs.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from error_handling.classification import Classification
from error_handling.exceptions import FunctionRunnerError
from error_handling.persistence import reports, sanitise
from error_handling.persistence.models import utcnow
from error_handling.sealing import SEALED_KEY, seal_secrets
from function_runner.events import log_event
from function_runner.wrapper import headers as H
from function_runner.wrapper.execution import Execution, int_header

__all__ = ["failure_report", "minimal_payload", "minimal_report", "payload", "replay_headers", "safe_payload"]

#: Delivery options kept with a task so it can be published again the same way.
KEPT_DELIVERY_INFO = ("exchange", "routing_key", "priority")
#: The largest run id a minimal record keeps (a forged header may hold anything).
_MAX_RUN_ID = 2**63


def replay_headers(execution: Execution) -> dict[str, Any]:
    """The message's own headers (function-runner's and the transport's left out)."""
    return {k: v for k, v in execution.headers.items() if k not in H.ALL and k not in H.TRANSPORT}


def payload(execution: Execution) -> reports.TaskPayload:
    """The payload, its secrets sealed.

    Raises:
        FunctionRunnerError, TypeError, ValueError: it could not be sealed.
    """
    request, services = execution.request, execution.services
    args, kwargs = execution.args, execution.kwargs
    delivery = request.delivery_info or {}
    options = {key: delivery[key] for key in KEPT_DELIVERY_INFO if delivery.get(key) not in (None, "")}
    if request.timelimit and any(request.timelimit):
        options["time_limit"], options["soft_time_limit"] = request.timelimit
    custom = replay_headers(execution)

    def seal(value: Any) -> Any:
        return seal_secrets(value, redactor=services.redactor, sealer=services.sealer)

    sealed_args, sealed_kwargs, sealed_headers = seal(list(args)), seal(dict(kwargs)), seal(custom)
    faithful = True
    if sanitise.unstorable([args, kwargs, custom]):  # rare: NUL or lone surrogates, kept for replay
        faithful = _seal_unstorable(sealed_args, list(args), execution)
        faithful = _seal_unstorable(sealed_kwargs, kwargs, execution) and faithful
        faithful = _seal_unstorable(sealed_headers, custom, execution) and faithful
    return reports.TaskPayload(
        task_name=execution.task_name,
        args=sealed_args,
        kwargs=sealed_kwargs,
        options=options,
        headers=sealed_headers,
        queue=delivery.get("routing_key"),
        replayable=faithful and _json_faithful(args, kwargs),
        root_id=request.root_id,
        parent_id=request.parent_id,
        replay_of=int_header(execution.headers, H.REPLAY_OF, default=None),
    )


def safe_payload(execution: Execution) -> reports.TaskPayload:
    """The payload to record; one that cannot be sealed is kept redacted and marked not replayable."""
    try:
        return payload(execution)
    except (FunctionRunnerError, TypeError, ValueError) as problem:
        log_event(
            "task.payload_unsealable", level=logging.ERROR, task_id=execution.request.id, error=type(problem).__name__
        )
        redactor, request = execution.services.redactor, execution.request
        return reports.TaskPayload(
            task_name=execution.task_name,
            args=redactor.redact(list(execution.args)),
            kwargs=redactor.redact(dict(execution.kwargs)),
            options={},
            headers={},
            queue=execution.queue,
            replayable=False,
            root_id=request.root_id,
            parent_id=request.parent_id,
        )


def failure_report(
    execution: Execution, exc: BaseException, classification: Classification, *, started_at: Any
) -> reports.FailureReport:
    """What is recorded about the failure ``exc`` of this execution (its traceback redacted)."""
    return reports.FailureReport(
        task_id=execution.request.id,
        attempt=execution.attempt,
        payload=safe_payload(execution),
        classification=classification,
        traceback=execution.services.redactor.redact_text("".join(traceback.format_exception(exc))),
        failed_at=utcnow(),
        started_at=started_at,
        worker=execution.request.hostname,
        run_id=execution.run_id,
    )


def minimal_payload(execution: Execution) -> reports.TaskPayload:
    """The payload as sealed blobs only (no args in clear), sure to store; not replayable (and empty)
    when it cannot be sealed."""
    sealer = execution.services.sealer
    try:
        return reports.TaskPayload(
            task_name=execution.task_name,
            args={SEALED_KEY: sealer.seal(list(execution.args))},
            kwargs={SEALED_KEY: sealer.seal(dict(execution.kwargs))},
            options={},
            headers={SEALED_KEY: sealer.seal(replay_headers(execution))},
            queue=execution.queue,
            replayable=_json_faithful(execution.args, execution.kwargs),
        )
    except Exception as problem:  # noqa: BLE001 - the last resort of an unrecordable failure: no payload
        log_event(
            "task.payload_unsealable", level=logging.ERROR, task_id=execution.request.id, error=type(problem).__name__
        )
        return reports.TaskPayload(
            task_name=execution.task_name, args=[], kwargs={}, options={}, headers={}, replayable=False
        )


def minimal_report(execution: Execution, classification: Classification) -> reports.FailureReport:
    """A failure report built from values sure to store: the task's name, its id (stored under its
    key), its attempt number within an ``integer`` column, the classification, and the
    :func:`minimal_payload`."""
    run_id = execution.run_id
    return reports.FailureReport(
        task_id=execution.task_id,
        attempt=min(max(execution.attempt, 0), sanitise.MAX_INTEGER),  # a forged attempt header may be anything
        payload=minimal_payload(execution),
        classification=classification,
        traceback=None,
        failed_at=utcnow(),
        worker=execution.request.hostname,
        run_id=run_id if run_id is not None and 0 < run_id < _MAX_RUN_ID else None,
    )


def _seal_unstorable(stored: Any, original: Any, execution: Execution) -> bool:
    """In ``stored`` (``original`` with its secrets sealed, a list or a dict), seal whole each
    top-level item whose original holds a NUL or a lone surrogate (the database refuses them; a
    replay unseals the original). Returns False when something could not be kept faithfully (a key
    holding one, a value that cannot be sealed): the database gets it cleaned, and the task is not
    replayable."""
    if isinstance(stored, list) and isinstance(original, list) and len(stored) == len(original):
        pairs: list[tuple[Any, Any]] = list(enumerate(original))
    elif isinstance(stored, dict) and isinstance(original, dict):
        pairs = list(original.items())
        if any(isinstance(key, str) and sanitise.needs_cleaning(key) for key, _ in pairs):
            return False
    else:
        return not sanitise.unstorable(original)
    faithful = True
    for key, item in pairs:
        if not sanitise.unstorable(item):
            continue
        if isinstance(stored, dict) and key not in stored:
            faithful = False
            continue
        try:
            stored[key] = {SEALED_KEY: execution.services.sealer.seal(item)}
        except (TypeError, ValueError) as problem:
            log_event("task.payload_unsealable", level=logging.WARNING, error=type(problem).__name__)
            faithful = False
    return faithful


def _json_faithful(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether args and kwargs survive a JSON round trip unchanged (tuples aside)."""
    try:
        json.dumps([args, kwargs], allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
