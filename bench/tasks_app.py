"""The Celery app the worker benchmarks run: the same work once as a plain Celery task and once through
:class:`~function_runner.wrapper.task.RecoverableTask`, on one app (same broker, same settings: acks late,
prefetch 1, JSON), so the difference is the wrapper alone.

Every ``bench.*`` task is routed to the queue :data:`QUEUE` by the app's configuration, so a message
the dispatcher publishes again (a retry) goes where the first one went.

Settings come from the environment (``FUNCTION_RUNNER_*``), like any function-runner worker; the
benchmark's own knobs are ``FR_BENCH_STATE_URL`` (the Redis the tasks count their starts in) and
``FR_BENCH_DELAY`` (the retry delay of the fail-once tasks, seconds).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import redis
from celery import signals

from bench._support import QUEUE, RAN, RETRIED, SUCCEEDED
from error_handling.exceptions import PermanentError, TransientError, ValidationError
from function_runner.app import create_app
from function_runner.settings import Settings
from function_runner.wrapper.task import RecoverableTask

app = create_app(Settings(), main="fr_bench")
app.conf.update(
    worker_send_task_events=False,
    worker_hijack_root_logger=False,
    task_routes={"bench.*": {"queue": QUEUE}},
)

_state: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _state
    if _state is None:
        _state = redis.Redis.from_url(os.environ["FR_BENCH_STATE_URL"])
    return _state


def _starts(task_id: str) -> int:
    """Count a start of ``task_id`` in the benchmark's Redis (the fail-twice tasks need their count)."""
    return int(_redis().incr(f"fr_bench:starts:{task_id}"))


def _delay() -> float:
    return float(os.environ.get("FR_BENCH_DELAY", "3600"))


def _task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``app.task(**options)``, typed (Celery's decorator is not)."""
    decorator: Callable[[Callable[..., Any]], Any] = app.task(**options)
    return decorator


def _fail(kind: str) -> None:
    """Raise the error of ``kind``: the same exception for the plain and the recoverable task."""
    if kind == "validation":
        raise ValidationError("invalid input: field 'amount' must be positive", reason="invalid_input")
    if kind == "permanent":
        raise PermanentError("account 4711 was closed", reason="not_found")
    raise TransientError("upstream 503", reason="service_unavailable", retry_after=_delay())


# -- success path: no-ops ----------------------------------------------------------------------------


@_task(name="bench.plain_noop")
def plain_noop() -> None:
    """Nothing, as a plain Celery task."""


@_task(base=RecoverableTask, name="bench.recoverable_noop")
def recoverable_noop() -> None:
    """Nothing, through the error-classifying wrapper."""


_ran = 0
_ran_lock = threading.Lock()


def _count_noop(sender: Any = None, **_: Any) -> None:
    """After a no-op ran (both kinds): counted in this process's memory."""
    global _ran
    if getattr(sender, "name", "").endswith("_noop"):
        with _ran_lock:
            _ran += 1


def _add_count(**_: Any) -> None:
    """At a worker process's shutdown: add what it counted to :data:`~bench._support.RAN`, once."""
    global _ran
    with _ran_lock:
        ran, _ran = _ran, 0
    if ran:
        _redis().incrby(RAN, ran)


signals.task_postrun.connect(_count_noop, weak=False, dispatch_uid="bench.count_noop")
signals.worker_process_shutdown.connect(_add_count, weak=False, dispatch_uid="bench.add_count_child")
signals.worker_shutdown.connect(_add_count, weak=False, dispatch_uid="bench.add_count_main")


# -- failure path: fail twice, then succeed ----------------------------------------------------------


@_task(
    bind=True,
    name="bench.plain_fail_twice",
    autoretry_for=(TransientError,),
    retry_kwargs={"countdown": 0, "max_retries": 5},
)
def plain_fail_twice(self: Any) -> str:
    """Fails twice, then succeeds: Celery's ``autoretry_for`` republishes it at once (records nothing)."""
    if _starts(str(self.request.id)) <= 2:
        raise TransientError("upstream 503", reason="service_unavailable")
    _redis().incr(SUCCEEDED)
    return "ok"


@_task(bind=True, base=RecoverableTask, name="bench.recoverable_fail_twice")
def recoverable_fail_twice(self: RecoverableTask) -> str:
    """Fails twice, then succeeds: every failed attempt recorded in Postgres, each retry a row the
    dispatcher publishes (policy delays set to ~0 by the benchmark)."""
    if _starts(str(self.request.id)) <= 2:
        raise TransientError("upstream 503", reason="service_unavailable")
    _redis().incr(SUCCEEDED)
    return "ok"


# -- memory: fail once, retry in an hour -------------------------------------------------------------


@_task(
    bind=True,
    name="bench.plain_fail_once",
    autoretry_for=(TransientError,),
    retry_kwargs={"countdown": _delay(), "max_retries": 5},
)
def plain_fail_once(self: Any) -> str:
    """Fails on its first run; Celery's ``autoretry_for`` retries it with ``countdown=FR_BENCH_DELAY``
    (an ETA message, which the worker fetches at once and holds in memory until it is due)."""
    if self.request.retries == 0:
        raise TransientError("upstream 503", reason="service_unavailable")
    return "ok"


@_task(bind=True, base=RecoverableTask, name="bench.recoverable_fail_once")
def recoverable_fail_once(self: RecoverableTask) -> str:
    """Fails on its first run with a retry hint of ``FR_BENCH_DELAY``: a scheduled run in Postgres, due
    then (the policy's delays are set to the same value)."""
    if self.attempt == 1:
        raise TransientError("upstream 503", reason="service_unavailable", retry_after=_delay())
    return "ok"


def _count_retry(sender: Any = None, **_: Any) -> None:
    """After Celery published the retry of a plain fail-once task (the memory benchmark waits for all)."""
    if getattr(sender, "name", None) == "bench.plain_fail_once":
        _redis().incr(RETRIED)


signals.task_retry.connect(_count_retry, weak=False, dispatch_uid="bench.count_retry")


# -- recording: fail every time ----------------------------------------------------------------------


@_task(name="bench.plain_fail")
def plain_fail(kind: str) -> None:
    """Raises the error of ``kind`` (``validation``, ``permanent``, ``transient``); Celery logs it, acks
    the message and records nothing (no result backend)."""
    _fail(kind)


@_task(base=RecoverableTask, name="bench.recoverable_fail")
def recoverable_fail(kind: str) -> None:
    """Raises the error of ``kind``; the wrapper records the failed attempt and its decision (fail
    fast, dead letter, or a retry due in ``FR_BENCH_DELAY`` seconds) before the ack."""
    _fail(kind)
