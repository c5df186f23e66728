"""Rules on what providers (OpenAI, Anthropic, Google, AWS) put in error bodies: error codes, the
body's message for codes too generic to tell, and Google's long quotas.

To support a provider, add its codes to :data:`PROVIDER_ERROR_CODES` (lower-cased).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import Outcome, Outcomes

#: Error codes (or types) providers put in error bodies, compared case-insensitively. They are more
#: specific than the status: OpenAI answers an exhausted quota with 429 ``insufficient_quota``, which
#: must wait on the quota, not be retried as a rate limit.
PROVIDER_ERROR_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        # OpenAI (and Azure OpenAI)
        "insufficient_quota": Outcomes.QUOTA,
        "billing_hard_limit_reached": Outcomes.QUOTA,
        "context_length_exceeded": Outcomes.TOO_LARGE,
        "content_policy_violation": Outcomes.CONTENT_POLICY,
        "content_filter": Outcomes.CONTENT_POLICY,
        "rate_limit_exceeded": Outcomes.RATE_LIMITED,
        # Anthropic
        "overloaded_error": Outcomes.UNAVAILABLE,
        "rate_limit_error": Outcomes.RATE_LIMITED,
        # Anthropic: billing problems (402)
        "billing_error": Outcomes.QUOTA,
        # Google (Gemini API, Vertex AI): google.rpc status names and ErrorInfo reasons
        "api_key_invalid": Outcomes.AUTH_FAILED,
        "api_key_expired": Outcomes.AUTH_FAILED,
        "failed_precondition": Outcomes.PERMANENT,  # e.g. the free tier is not available here: enable billing
        "deadline_exceeded": Outcomes.TIMEOUT,
        # AWS Bedrock runtime (https://docs.aws.amazon.com/bedrock/latest/APIReference/)
        "servicequotaexceededexception": Outcomes.QUOTA,
        "modelnotreadyexception": Outcomes.UNAVAILABLE,
        "modeltimeoutexception": Outcomes.TIMEOUT,
        "modelerrorexception": Outcomes.UNAVAILABLE,
        "modelstreamerrorexception": Outcomes.UNAVAILABLE,
        "expiredtokenexception": Outcomes.AUTH_FAILED,
        "unrecognizedclientexception": Outcomes.AUTH_FAILED,
        "accessdeniedexception": Outcomes.AUTH_FAILED,
        # AWS (throttling comes as HTTP 400)
        "throttling": Outcomes.RATE_LIMITED,
        "throttlingexception": Outcomes.RATE_LIMITED,
        "toomanyrequestsexception": Outcomes.RATE_LIMITED,
        "requestlimitexceeded": Outcomes.RATE_LIMITED,
        "slowdown": Outcomes.RATE_LIMITED,
        "provisionedthroughputexceededexception": Outcomes.RATE_LIMITED,
    }
)

#: Rules on the message of a provider's error body, for codes too generic to tell (Anthropic and AWS
#: answer an over-long prompt with the generic ``invalid_request_error`` / ``ValidationException``).
PROVIDER_MESSAGE_RULES: tuple[tuple[str, re.Pattern[str], Outcome], ...] = (
    (
        "context_too_long",
        re.compile(r"prompt is too long|input is too long|maximum context length|too many (?:input )?tokens", re.I),
        Outcomes.TOO_LARGE,
    ),
    ("credit_balance_too_low", re.compile(r"credit balance is too low", re.I), Outcomes.QUOTA),
)

#: A Google quota that resets daily (or later) is exhausted: waiting on the quota, not a quick retry.
GOOGLE_LONG_QUOTA = re.compile(r"per_?day|perday|per_?month|permonth", re.I)
