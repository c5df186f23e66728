"""The built-in classification rules, as data tables, one module per thing an error shows.

Each table maps it to an :class:`~error_handling.rules.outcome.Outcome` (category, reason, and for
``resource`` optionally the gate to wait on). Foreign exceptions are named by qualified class name,
so no module here imports a library. In the order the classifier consults them::

    exception_types   WRAPPED_EXCEPTION_ATTRIBUTES   wrapped original classified first
    providers         PROVIDER_ERROR_CODES, ...      error codes / messages in a provider's body
    providers_aws     AWS_ERROR_CODES                botocore's generated classes (in the exception and
                                                     message tables)
    http_statuses     HTTP_STATUS_RULES, ..._CLASS_  the status, then its class (4xx, 5xx)
    codes             CODE_RULES                     a code the error carries (SQLSTATE, reply code)
                      (brokers: REDIS_REPLY_CODES, AMQP_REPLY_CODES)
    messages          MESSAGE_RULES (scoped)         ┐
    exception_types   EXCEPTION_RULES, ERRNO_RULES   ┘ the walk along the MRO
    messages          MESSAGE_RULES (unscoped)       after the walk found nothing
                                                     ... then the same along the cause and context
    deterministic     DETERMINISTIC_RULES            last: bugs, missing modules, malformed input

New rules are new rows, or a new module listed in :func:`all_outcomes`.
"""

from __future__ import annotations

from error_handling.rules.brokers import AMQP_REPLY_CODES, REDIS_REPLY_CODES
from error_handling.rules.celery import CELERY_HINT_ATTRIBUTES
from error_handling.rules.codes import CODE_RULES
from error_handling.rules.databases import database_outcomes
from error_handling.rules.deterministic import DETERMINISTIC_RULES, HTML_DOCUMENT, NETWORK_CLIENT_MODULES
from error_handling.rules.exception_types import (
    ERRNO_BY_NUMBER,
    ERRNO_EXCEPTION,
    ERRNO_RULES,
    EXCEPTION_RULES,
    WRAPPED_EXCEPTION_ATTRIBUTES,
)
from error_handling.rules.http_statuses import HTTP_STATUS_CLASS_RULES, HTTP_STATUS_RULES
from error_handling.rules.messages import MESSAGE_RULES, MESSAGE_RULES_BY_EXCEPTION, UNSCOPED_MESSAGE_RULES
from error_handling.rules.outcome import UNCLASSIFIED, CodeRule, MessageRule, Outcome, Outcomes
from error_handling.rules.providers import (
    GOOGLE_LONG_QUOTA,
    PROVIDER_ERROR_CODES,
    PROVIDER_MESSAGE_RULES,
    PROVIDER_PRIORITY_MESSAGE_RULES,
)

__all__ = [
    "AMQP_REPLY_CODES",
    "CELERY_HINT_ATTRIBUTES",
    "CODE_RULES",
    "DETERMINISTIC_RULES",
    "ERRNO_BY_NUMBER",
    "ERRNO_EXCEPTION",
    "ERRNO_RULES",
    "EXCEPTION_RULES",
    "GOOGLE_LONG_QUOTA",
    "HTML_DOCUMENT",
    "HTTP_STATUS_CLASS_RULES",
    "HTTP_STATUS_RULES",
    "MESSAGE_RULES",
    "MESSAGE_RULES_BY_EXCEPTION",
    "NETWORK_CLIENT_MODULES",
    "PROVIDER_ERROR_CODES",
    "PROVIDER_MESSAGE_RULES",
    "PROVIDER_PRIORITY_MESSAGE_RULES",
    "REDIS_REPLY_CODES",
    "UNCLASSIFIED",
    "UNSCOPED_MESSAGE_RULES",
    "WRAPPED_EXCEPTION_ATTRIBUTES",
    "CodeRule",
    "MessageRule",
    "Outcome",
    "Outcomes",
    "all_outcomes",
    "database_outcomes",
]


def all_outcomes() -> list[tuple[str, Outcome]]:
    """Return every built-in rule as ``(description, outcome)``, for completeness checks and docs."""
    return [
        *((f"exception:{name}", o) for name, o in EXCEPTION_RULES.items()),
        *((f"errno:{name}", o) for name, o in ERRNO_RULES.items()),
        *((f"exception:{name}", o) for name, o in DETERMINISTIC_RULES.items()),
        *((f"http:{status}", o) for status, o in HTTP_STATUS_RULES.items()),
        *((f"http:{digit}xx", o) for digit, o in HTTP_STATUS_CLASS_RULES.items()),
        *((f"body:{code}", o) for code, o in PROVIDER_ERROR_CODES.items()),
        *((f"body_message:{name}", o) for name, _, o in (*PROVIDER_PRIORITY_MESSAGE_RULES, *PROVIDER_MESSAGE_RULES)),
        ("google_quota:per_day", Outcomes.QUOTA),
        *database_outcomes(),
        *((f"message:{rule.name}", rule.outcome) for rule in MESSAGE_RULES),
        *((f"redis:{code}", o) for code, o in REDIS_REPLY_CODES.items()),
        *((f"amqp:{code}", o) for code, o in AMQP_REPLY_CODES.items()),
    ]
