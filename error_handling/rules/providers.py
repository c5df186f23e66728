"""Rules on what providers put in error bodies: error codes, the body's message for codes too generic to
tell, and Google's long quotas. OpenAI, Anthropic, Google and AWS here; Cohere, Mistral, Hugging Face and
the OpenAI-compatible servers (vLLM, Ollama, Groq, Together, OpenRouter, DeepSeek, xAI) answer with the
statuses and body shapes these tables already read, plus the messages below. AWS's own codes, for
botocore's generated classes, are in :mod:`error_handling.rules.providers_aws`.

To support a provider, add its codes to :data:`PROVIDER_ERROR_CODES` (lower-cased), or its messages to
:data:`PROVIDER_MESSAGE_RULES`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import Outcome, Outcomes

#: A rule on the message of a provider's error body: ``(name, pattern, outcome)``.
BodyMessageRule = tuple[str, re.Pattern[str], Outcome]

#: Error codes (or types) providers put in error bodies, compared case-insensitively. They are more
#: specific than the status: OpenAI answers an exhausted quota with 429 ``insufficient_quota``, which
#: must wait on the quota, not be retried as a rate limit.
PROVIDER_ERROR_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        # OpenAI (and Azure OpenAI); Groq and other OpenAI-compatible servers use the same codes
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

#: Messages more specific than the code they come with, tried before the body's codes: Groq answers a
#: request larger than the whole per-minute token limit with 413 and ``rate_limit_exceeded``, but no wait
#: makes it fit.
PROVIDER_PRIORITY_MESSAGE_RULES: tuple[BodyMessageRule, ...] = (
    ("request_too_large_for_limit", re.compile(r"^Request too large for model\b"), Outcomes.TOO_LARGE),
)

#: An input longer than the model takes: OpenAI-style "maximum context length" (also vLLM, DeepSeek),
#: Anthropic's "prompt is too long", Bedrock's "Input is too long" and "expected maxLength: N, actual: M",
#: Cohere's "too many tokens", Hugging Face TGI's "`inputs` tokens + `max_new_tokens` must be <= N".
CONTEXT_TOO_LONG = re.compile(
    r"prompt is too long|input is too long|maximum context length|too many (?:input )?tokens"
    r"|expected maxLength: \d+, actual: \d+|`inputs` tokens \+ `max_new_tokens` must be",
    re.I,
)
#: A model that cannot be invoked as configured: Bedrock's on-demand invocation of a model that needs an
#: inference profile or provisioned throughput. The deployment must change; no retry can help.
ON_DEMAND_UNSUPPORTED = re.compile(
    r"with on-demand throughput isn.t supported|doesn.t support on-demand throughput", re.I
)

#: Rules on the message of a provider's error body, for codes too generic to tell (Anthropic and AWS
#: answer an over-long prompt with the generic ``invalid_request_error`` / ``ValidationException``), or
#: bodies with no code at all (Cohere, DeepSeek, OpenRouter, xAI, Ollama).
PROVIDER_MESSAGE_RULES: tuple[BodyMessageRule, ...] = (
    ("context_too_long", CONTEXT_TOO_LONG, Outcomes.TOO_LARGE),
    (
        "credit_balance_too_low",
        re.compile(
            r"credit balance is too low|^Insufficient Balance$|^Insufficient credits\b|requires more credits"
            r"|used all available credits or reached its monthly spending limit",
            re.I,
        ),
        Outcomes.QUOTA,
    ),
    ("on_demand_unsupported", ON_DEMAND_UNSUPPORTED, Outcomes.CONFIGURATION),
    # Ollama: the model does not fit the server's memory (a 500) until something else is unloaded
    ("model_needs_more_memory", re.compile(r"model requires more system memory"), Outcomes.OUT_OF_MEMORY),
    # Cohere 499: the request was cancelled on the way (the docs say to send it again)
    ("request_cancelled", re.compile(r"^(?:[\w ]+: )?request cancelled\b", re.I), Outcomes.UNAVAILABLE),
)

#: A Google quota that resets daily (or later) is exhausted: waiting on the quota, not a quick retry.
GOOGLE_LONG_QUOTA = re.compile(r"per_?day|perday|per_?month|permonth", re.I)
