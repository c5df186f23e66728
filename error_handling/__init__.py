"""function-runner's broker-agnostic core: classify failures, decide what to do, redact, persist.

This package imports neither Celery nor FastAPI. Its public API:

- :func:`classify` / :func:`classify_http` and :class:`Classifier` turn an exception, or an HTTP
  status with headers and body, into a :class:`Classification`;
- :func:`decide` turns a classification into a decision (:class:`Retry`, :class:`Wait`,
  :class:`FailFast`, :class:`DeadLetter`) under a :class:`RecoveryPolicy`;
- the exception tree task code raises to say how a failure should be handled
  (:class:`TransientError`, :class:`ResourceError`, :class:`ValidationError`, :class:`PermanentError`);
- :class:`Redactor` and :class:`Sealer` keep secrets out of logs and storage.
"""

from __future__ import annotations

from error_handling.categories import Category, Reason
from error_handling.classification import Classification, Rule
from error_handling.classifier import Classifier, classify, classify_http
from error_handling.exceptions import (
    ConfigurationError,
    FunctionRunnerError,
    PermanentError,
    RecoverableError,
    ResourceError,
    StorageError,
    StorageUnavailable,
    TransientError,
    ValidationError,
    WorkerLost,
)
from error_handling.fingerprint import fingerprint
from error_handling.policy import (
    Backoff,
    ConstantBackoff,
    DeadLetter,
    Decision,
    FailFast,
    FullJitterBackoff,
    RecoveryPolicy,
    Retry,
    Wait,
    decide,
    get_backoff,
)
from error_handling.redaction import Redactor
from error_handling.sealing import Sealer

__all__ = [
    "Backoff",
    "Category",
    "Classification",
    "Classifier",
    "ConfigurationError",
    "ConstantBackoff",
    "DeadLetter",
    "Decision",
    "FailFast",
    "FullJitterBackoff",
    "FunctionRunnerError",
    "PermanentError",
    "Reason",
    "RecoverableError",
    "RecoveryPolicy",
    "Redactor",
    "ResourceError",
    "Retry",
    "Rule",
    "Sealer",
    "StorageError",
    "StorageUnavailable",
    "TransientError",
    "ValidationError",
    "Wait",
    "WorkerLost",
    "classify",
    "classify_http",
    "decide",
    "fingerprint",
    "get_backoff",
]
