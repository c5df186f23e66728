"""Service health: every call made through a breaker (``breakers.guard`` or a task's ``breaker=``) is
counted per service and minute, with a latency histogram, and every failed call is kept with its
classification. Each process buffers what it saw and writes it at most every ``flush_every`` seconds
(one short transaction: rows of ``ai_service_health`` and ``ai_service_errors``), so a call costs no
database round trip of its own. What a process had not written yet when it died is lost: this is
telemetry, not the system of record of failures.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from error_handling.classification import Classification
from error_handling.exceptions import StorageUnavailable
from error_handling.persistence.models import utcnow
from error_handling.persistence.service_health import CallCounts, FailedCall, add_health
from function_runner.events import log_event

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["HISTOGRAM_BOUNDS_MS", "ServiceHealthRecorder", "bucket_of"]

#: Upper bounds of the latency buckets, in milliseconds (the last one catches everything slower).
HISTOGRAM_BOUNDS_MS: tuple[int, ...] = (
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10_000,
    30_000,
    60_000,
    3_600_000,
)
#: At most this many failed calls are buffered between two writes (more are counted, not kept).
MAX_BUFFERED_ERRORS = 1000


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket (its upper bound) of a latency."""
    for bound in HISTOGRAM_BOUNDS_MS:
        if latency_ms <= bound:
            return bound
    return HISTOGRAM_BOUNDS_MS[-1]


class ServiceHealthRecorder:
    """Buffers the calls this process made and writes them every ``flush_every`` seconds.

    Args:
        redact: hides secrets in a failed call's message.
        write: runs work in one transaction, once (no retry).
        flush_every: seconds between two writes.
    """

    def __init__(
        self,
        *,
        redact: Callable[[str], str],
        write: Callable[[Callable[[Session], None]], None],
        flush_every: float = 10.0,
    ) -> None:
        self.redact = redact
        self.write = write
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, dt.datetime], CallCounts] = {}
        self._errors: list[FailedCall] = []
        self._last_flush = time.monotonic()
        self.actor = f"{socket.gethostname()}:{os.getpid()}"

    def observe(
        self, service: str, *, latency_ms: float, ok: bool, classification: Classification | None = None
    ) -> None:
        """Count one call; write the buffer if it is due."""
        now = utcnow()
        minute = now.replace(second=0, microsecond=0)
        with self._lock:
            entry = self._counts.setdefault((service, minute), CallCounts())
            entry.calls += 1
            entry.failures += 0 if ok else 1
            bucket = str(bucket_of(latency_ms))
            entry.histogram[bucket] = entry.histogram.get(bucket, 0) + 1
            if not ok and classification is not None and len(self._errors) < MAX_BUFFERED_ERRORS:
                self._errors.append(
                    FailedCall(
                        service=service,
                        category=classification.category.value,
                        reason=classification.reason,
                        status_code=classification.status_code,
                        message=self.redact(classification.message)[:2000],
                        latency_ms=latency_ms,
                        at=now,
                    )
                )
            due = time.monotonic() - self._last_flush >= self.flush_every
        if due:
            self.flush()

    def flush(self) -> None:
        """Write what was buffered (dropped, and logged, if the database cannot be reached)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            errors, self._errors = self._errors, []
            self._last_flush = time.monotonic()
        if not counts and not errors:
            return
        try:
            self.write(lambda s: add_health(s, counts=counts, errors=errors, actor=self.actor))
        except (StorageUnavailable, SQLAlchemyError) as exc:
            log_event("service_health.not_written", level=logging.WARNING, error=type(exc).__name__)
