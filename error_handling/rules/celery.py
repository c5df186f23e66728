"""Rules for Celery's own exceptions and billiard's (the prefork pool; ``celery.exceptions`` re-exports
them, so their qualified names are billiard's). Names only: this module imports no library.

The decisions:

- ``Retry`` is control flow: the task asked to run again. Its ``exc``, when given, is classified first
  (a rate limit stays a rate limit), else it is transient like the project's own ``TransientError``;
  either way its countdown (``when``: seconds, or the datetime of the ETA) is the retry hint.
- ``Reject`` holds its reason (an exception, classified first, or a text): with ``requeue=True`` the
  message goes back (transient), without it the task refused the message for good (permanent).
- ``MaxRetriesExceededError`` ends the retries (``retries_exhausted``); a revoked task or a terminated
  one is permanent (an operator's decision).
- ``WorkerLostError``: a pool process that died of ``SIGKILL`` was almost always killed by the kernel's
  OOM killer (a hard time limit is reported as ``TimeLimitExceeded``, and a revoke with terminate as
  ``TaskRevokedError``), so it waits on memory; any other death is transient.
- A task that is not registered, a queue that is not configured, or Celery improperly configured is
  the deployment's mistake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.categories import Category, Reason
from error_handling.rules.outcome import MessageRule, Outcome, Outcomes

_CELERY_ERRORS: Mapping[str, Outcome] = {
    "Retry": Outcomes.UNAVAILABLE,  # TransientError's reason; its exc is classified first
    "Reject": Outcomes.PERMANENT,  # requeue=True is a message rule
    "MaxRetriesExceededError": Outcome(Category.PERMANENT, Reason.RETRIES_EXHAUSTED),
    "TaskRevokedError": Outcomes.PERMANENT,
    "TimeoutError": Outcomes.TIMEOUT,  # AsyncResult.get(timeout=...)
    "NotRegistered": Outcomes.CONFIGURATION,  # a KeyError: listed so it is not a programming error
    "QueueNotFound": Outcomes.CONFIGURATION,  # a KeyError too
    "ImproperlyConfigured": Outcomes.CONFIGURATION,
    "SecurityError": Outcomes.CONFIGURATION,  # message signing: keys, certificates
    "InvalidTaskError": Outcomes.INVALID_INPUT,  # a task message that is not well formed
    "ChordError": Outcomes.PERMANENT,  # a task of the chord failed: the callback cannot run
    "BackendError": Outcomes.UNAVAILABLE,  # the result backend: BackendGetMetaError, BackendStoreError
    "IncompleteStream": Outcomes.CONNECTION,
}

_BILLIARD_ERRORS: Mapping[str, Outcome] = {
    "SoftTimeLimitExceeded": Outcomes.TIMEOUT,
    "TimeLimitExceeded": Outcomes.TIMEOUT,
    "WorkerLostError": Outcomes.UNAVAILABLE,  # SIGKILL is a message rule
    "Terminated": Outcomes.PERMANENT,  # revoked with terminate=True
}

#: Celery's and billiard's exceptions by qualified name (billiard's also under ``celery.exceptions``).
CELERY_EXCEPTION_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        **{f"celery.exceptions.{name}": o for name, o in _CELERY_ERRORS.items()},
        **{
            f"{module}.{name}": o
            for module in ("billiard.exceptions", "celery.exceptions")
            for name, o in _BILLIARD_ERRORS.items()
        },
    }
)

#: Celery's wrappers and the attribute holding the original error (classified first).
CELERY_WRAPPED_ATTRIBUTES: Mapping[str, str] = MappingProxyType(
    {"celery.exceptions.Retry": "exc", "celery.exceptions.Reject": "reason"}
)

#: Exceptions that state their retry hint in an attribute: seconds, or the datetime to retry at (a naive
#: one is UTC, as Celery reads an ETA). It wins over the hint of the error it wraps.
CELERY_HINT_ATTRIBUTES: Mapping[str, str] = MappingProxyType({"celery.exceptions.Retry": "when"})

_WORKER_LOST = frozenset({"billiard.exceptions.WorkerLostError"})

#: Rules on the messages of Celery's and billiard's exceptions.
CELERY_MESSAGE_RULES: tuple[MessageRule, ...] = (
    # billiard: "Worker exited prematurely: signal 9 (SIGKILL) Job: 12."
    MessageRule("worker_killed", re.compile(r"\bsignal 9 \(SIGKILL\)"), Outcomes.OUT_OF_MEMORY, _WORKER_LOST),
    # Reject(reason, requeue) prints its args: "('payload not ready', True)"
    MessageRule(
        "reject_requeue",
        re.compile(r",\s?True\)\Z"),
        Outcomes.UNAVAILABLE,
        frozenset({"celery.exceptions.Reject"}),
    ),
)
