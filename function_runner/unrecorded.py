"""Failures that could not be recorded yet: kept in Redis until the database is back.

When a task fails while the database is unreachable, the wrapper cannot record the failure, so it
does not ack the message: it gives it back to the broker (invariant 1). Without more, the redelivery
would run the body again, and if that run succeeded (the upstream recovered meanwhile) the first
failure would never be recorded. So before giving the message back the wrapper keeps the failure
report it could not write (message and traceback already redacted, payload sealed: the same form the
database gets) in Redis under ``fr:unrecorded:{task_id}:{attempt}``, for seven days. The redelivery
finds it, records it, and follows its decision (retry, wait, fail fast, dead letter) without running
the body again, exactly as if the database had been there the first time.

This needs the Redis the workers share (``redis_url``, or the broker when it is Redis: the connection
of the shared breakers). Without it, the redelivery runs the body again and records what that run does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from typing import Any

from error_handling.categories import Category
from error_handling.classification import Classification
from error_handling.persistence.repository import FailureReport, TaskPayload
from function_runner.events import log_event
from function_runner.runtime import Runtime

__all__ = ["TTL", "decode", "encode", "forget", "keep", "take"]

#: How long an unrecorded failure is kept (seconds): as long as the delivery counters.
TTL = 7 * 24 * 3600


def _key(task_id: str, attempt: int) -> str:
    return f"fr:unrecorded:{task_id}:{attempt}"


def encode(report: FailureReport) -> str:
    """The report as JSON."""
    fields = dataclasses.asdict(report)
    fields["classification"]["category"] = report.classification.category.value
    for name in ("failed_at", "started_at"):
        moment = fields[name]
        fields[name] = moment.isoformat() if moment is not None else None
    return json.dumps(fields, separators=(",", ":"))


def decode(text: str | bytes) -> FailureReport:
    """The report from :func:`encode`'s JSON."""
    fields: dict[str, Any] = json.loads(text)
    classification = fields.pop("classification")
    classification["category"] = Category(classification["category"])
    payload = fields.pop("payload")
    for name in ("failed_at", "started_at"):
        if fields[name] is not None:
            fields[name] = dt.datetime.fromisoformat(fields[name])
    return FailureReport(classification=Classification(**classification), payload=TaskPayload(**payload), **fields)


def _client(runtime: Runtime) -> Any | None:
    try:
        return runtime.breakers.client()
    except RuntimeError:  # no Redis
        return None


def keep(runtime: Runtime, report: FailureReport) -> bool:
    """Keep a failure the database could not take; False if there is nowhere to keep it."""
    client = _client(runtime)
    if client is None:
        return False
    try:
        client.set(_key(report.task_id, report.attempt), encode(report), ex=TTL)
    except Exception as problem:
        log_event("failure.keep_failed", level=logging.WARNING, task_id=report.task_id, error=type(problem).__name__)
        return False
    return True


def take(runtime: Runtime, task_id: str, attempt: int) -> FailureReport | None:
    """The failure kept for ``(task_id, attempt)``, if any (it stays kept until :func:`forget`)."""
    client = _client(runtime)
    if client is None:
        return None
    try:
        text = client.get(_key(task_id, attempt))
    except Exception as problem:
        log_event("failure.lookup_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)
        return None
    if text is None:
        return None
    try:
        return decode(text)
    except (ValueError, TypeError, KeyError) as problem:
        log_event("failure.unreadable", level=logging.ERROR, task_id=task_id, error=type(problem).__name__)
        return None


def forget(runtime: Runtime, task_id: str, attempt: int) -> None:
    """Drop the kept failure once it is recorded (a leftover is harmless: recording it again is a
    duplicate that writes nothing)."""
    client = _client(runtime)
    if client is None:
        return
    try:
        client.delete(_key(task_id, attempt))
    except Exception as problem:
        log_event("failure.forget_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)
