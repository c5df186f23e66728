"""OpenAI and Azure OpenAI error shapes, as the openai SDK raises them (status, headers and the body's inner
``error`` object); each row cites where the shape is documented. Migrated from the former
``tests/unit/test_provider_shapes.py`` (same shapes, same sources), with more of each error; Azure OpenAI's
are in :mod:`tests.corpus.providers_openai_azure`."""

from __future__ import annotations

from typing import Any

from error_handling.categories import Reason
from tests.corpus.shape import P, R, Shape, T, V, foreign, sdk_status_error, shapes_of

OPENAI = "https://platform.openai.com/docs/guides/error-codes"
OPENAI_RATE = "https://platform.openai.com/docs/guides/rate-limits"
OPENAI_SDK = "https://github.com/openai/openai-python/blob/main/src/openai/_exceptions.py"

#: The SDK's class for each status (openai._client.OpenAI._make_status_error).
_CLASS_BY_STATUS = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
}


def oai(code: str | None, message: str, type_: str | None = "invalid_request_error", param: str | None = None) -> Any:
    """An OpenAI error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def openai_error(status: int, body: Any, headers: dict[str, str] | None = None) -> BaseException:
    """The openai SDK's status error for ``status`` (InternalServerError for 5xx)."""
    name = _CLASS_BY_STATUS.get(status, "InternalServerError" if status >= 500 else "APIStatusError")
    return sdk_status_error(f"openai.{name}", status, body, headers, url="https://api.openai.com/v1/chat/completions")


def _e(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    return lambda: openai_error(status, body, headers)


def _rate(model: str, org: str, kind: str, limit: int, used: int, wait: str) -> Any:
    return oai(
        "rate_limit_exceeded",
        f"Rate limit reached for {model} in organization {org} on {kind}: Limit {limit}, Used {used}, Requested 1. "
        f"Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
    )


SHAPES: list[Shape] = [
    *shapes_of(
        "openai",
        OPENAI,
        [
            (
                "openai:invalid_api_key",
                _e(401, oai("invalid_api_key", "Incorrect API key provided: sk-abc***xyz.")),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "openai:invalid_api_key",
                _e(401, oai("invalid_api_key", "Incorrect API key provided: sk-proj-***Q2fA.")),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "openai:invalid_organization",
                _e(401, oai("invalid_organization", "You must be a member of an organization to use the API.")),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "openai:unsupported_region",
                _e(
                    403,
                    oai(
                        "unsupported_country_region_territory",
                        "Country, region, or territory not supported",
                        "request_forbidden",
                    ),
                ),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "openai:insufficient_quota",
                _e(
                    429,
                    oai(
                        "insufficient_quota",
                        "You exceeded your current quota, please check your plan and billing details.",
                        "insufficient_quota",
                    ),
                ),
                R,
                Reason.QUOTA_EXCEEDED,
            ),
            (
                "openai:billing_hard_limit",
                _e(400, oai("billing_hard_limit_reached", "Billing hard limit has been reached")),
                R,
                Reason.QUOTA_EXCEEDED,
            ),
            *(
                (
                    "openai:context_length_exceeded",
                    _e(
                        400,
                        oai(
                            "context_length_exceeded",
                            f"This model's maximum context length is {limit} tokens. However, your messages resulted in {got} tokens. Please reduce the length of the messages.",
                            param="messages",
                        ),
                    ),
                    V,
                    Reason.PAYLOAD_TOO_LARGE,
                )
                for limit, got in ((128000, 130512), (8192, 9120))
            ),
            (
                "openai:content_policy",
                _e(400, oai("content_policy_violation", "Your request was rejected as a result of our safety system.")),
                V,
                Reason.CONTENT_POLICY,
            ),
            *(
                ("openai:invalid_value", _e(400, oai(None, message, param=param)), V, Reason.INVALID_INPUT)
                for message, param in (
                    ("Invalid value for 'temperature': expected a number <= 2.", "temperature"),
                    ("Invalid value for 'top_p': expected a number <= 1.", "top_p"),
                )
            ),
            (
                "openai:invalid_image_format",
                _e(
                    400,
                    oai("invalid_image_format", "Invalid image format. Supported formats are png, jpeg, gif, webp."),
                ),
                V,
                Reason.INVALID_INPUT,
            ),
            *(
                (
                    "openai:model_not_found",
                    _e(
                        404,
                        oai("model_not_found", f"The model `{model}` does not exist or you do not have access to it."),
                    ),
                    P,
                    Reason.NOT_FOUND,
                )
                for model in ("gpt-x", "gpt-4o-2024-13-01")
            ),
            (
                "openai:server_error",
                _e(
                    500,
                    oai(
                        None, "The server had an error while processing your request. Sorry about that!", "server_error"
                    ),
                ),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "openai:engine_overloaded",
                _e(503, oai(None, "The engine is currently overloaded, please try again later.", "server_error")),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "openai:slow_down",
                _e(503, oai(None, "Slow Down: please reduce your request rate.", "server_error")),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "openai:bad_gateway_html",
                _e(502, "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
        ],
    ),
    *shapes_of(
        "openai",
        OPENAI_RATE,
        [
            (
                "openai:rate_limit_requests",
                _e(
                    429,
                    _rate("gpt-4o", "org-x", "requests per min (RPM)", 500, 500, "120ms"),
                    {"x-ratelimit-reset-requests": "1s", "x-ratelimit-remaining-requests": "0"},
                ),
                T,
                Reason.RATE_LIMITED,
                1.0,
            ),
            (
                "openai:rate_limit_requests",
                _e(
                    429,
                    _rate("gpt-4o", "org-uOtiSEwvUnroadaOnJJquBEC", "requests per min (RPM)", 3, 3, "20s"),
                    {"x-ratelimit-reset-requests": "20s", "x-ratelimit-remaining-requests": "0"},
                ),
                T,
                Reason.RATE_LIMITED,
                20.0,
            ),
            (
                "openai:rate_limit_tokens",
                _e(
                    429,
                    oai(
                        "rate_limit_exceeded",
                        "Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.",
                        "tokens",
                    ),
                    {"x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-reset-requests": "1.5s"},
                ),
                T,
                Reason.RATE_LIMITED,
                360.0,
            ),
            (
                "openai:rate_limit_retry_after",
                _e(429, oai("rate_limit_exceeded", "Rate limit reached.", "requests"), {"retry-after": "20"}),
                T,
                Reason.RATE_LIMITED,
                20.0,
            ),
            (
                "openai:rate_limit_retry_after",
                _e(429, oai("rate_limit_exceeded", "Rate limit reached.", "requests"), {"retry-after": "3"}),
                T,
                Reason.RATE_LIMITED,
                3.0,
            ),
            (
                "openai:rate_limit_retry_after_ms",
                _e(429, oai("rate_limit_exceeded", "Rate limit reached.", "tokens"), {"retry-after-ms": "1500"}),
                T,
                Reason.RATE_LIMITED,
                1.5,
            ),
        ],
    ),
    *shapes_of(
        "openai",
        OPENAI_SDK,
        [
            (
                "openai:timeout",
                lambda: foreign("openai.APITimeoutError", foreign("openai.APIConnectionError"))("Request timed out."),
                T,
                Reason.TIMEOUT,
            ),
            (
                "openai:connection",
                lambda: foreign("openai.APIConnectionError")("Connection error."),
                T,
                Reason.CONNECTION,
            ),
        ],
    ),
]
