"""Anthropic and Google (Gemini API, Vertex AI) error shapes: Anthropic's as its SDK raises them, Google's as
the google-genai SDK raises them (``google.genai.errors.ClientError`` / ``ServerError`` with the response).
Each row cites where the shape is documented; migrated from the former ``tests/unit/test_provider_shapes.py``
(same shapes, same sources), with more of each error."""

from __future__ import annotations

from typing import Any

from error_handling.categories import Reason
from tests.corpus.shape import P, R, Shape, T, V, foreign, response, sdk_status_error, shapes_of, with_attrs

ANTHROPIC = "https://docs.anthropic.com/en/api/errors"
ANTHROPIC_RATE = "https://docs.anthropic.com/en/api/rate-limits"
GEMINI = "https://ai.google.dev/gemini-api/docs/troubleshooting"
GOOGLE_ERRORS = "https://cloud.google.com/apis/design/errors"
VERTEX = "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429"

#: The anthropic SDK's class for each status (anthropic._client.Anthropic._make_status_error).
_ANTHROPIC_CLASS = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    413: "RequestTooLargeError",
    429: "RateLimitError",
    503: "ServiceUnavailableError",
    504: "DeadlineExceededError",
    529: "OverloadedError",
}


def ant(type_: str, message: str) -> Any:
    """An Anthropic error body."""
    return {"type": "error", "error": {"type": type_, "message": message}}


def _ant(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    name = _ANTHROPIC_CLASS.get(status, "InternalServerError" if status >= 500 else "APIStatusError")
    return lambda: sdk_status_error(
        f"anthropic.{name}", status, body, headers, url="https://api.anthropic.com/v1/messages"
    )


def goog(code: int, status: str, message: str, *details: dict[str, Any]) -> Any:
    """A Google API error body."""
    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        body["details"] = list(details)
    return {"error": body}


def genai_error(code: int, body: Any) -> BaseException:
    """google-genai's ``ClientError`` (4xx) or ``ServerError`` (5xx): message ``"<code> <STATUS>. <body>"``,
    with ``code``, ``status``, ``message``, ``details`` and the response."""
    base = foreign("google.genai.errors.APIError")
    cls = foreign(f"google.genai.errors.{'ClientError' if code < 500 else 'ServerError'}", base)
    error = body["error"]
    exc = cls(f"{code} {error['status']}. {body}")
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    return with_attrs(
        exc,
        code=code,
        status=error["status"],
        message=error["message"],
        details=body,
        response=response(code, body, url=url),
    )


def _g(code: int, body: Any) -> Any:
    return lambda: genai_error(code, body)


def _quota(quota_id: str, metric: str, delay: str) -> tuple[dict[str, Any], ...]:
    return (
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": metric, "quotaId": quota_id}],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
    )


_QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details."
_FREE_TIER = "generativelanguage.googleapis.com/generate_content_free_tier_requests"

SHAPES: list[Shape] = [
    *shapes_of(
        "anthropic",
        ANTHROPIC,
        [
            (
                "anthropic:roles_must_alternate",
                _ant(
                    400, ant("invalid_request_error", 'messages: roles must alternate between "user" and "assistant"')
                ),
                V,
                Reason.INVALID_INPUT,
            ),
            *(
                (
                    "anthropic:prompt_too_long",
                    _ant(400, ant("invalid_request_error", f"prompt is too long: {got} tokens > {limit} maximum")),
                    V,
                    Reason.PAYLOAD_TOO_LARGE,
                )
                for got, limit in ((210432, 200000), (201877, 200000))
            ),
            (
                "anthropic:credit_balance_too_low",
                _ant(
                    400,
                    ant(
                        "invalid_request_error",
                        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
                    ),
                ),
                R,
                Reason.QUOTA_EXCEEDED,
            ),
            (
                "anthropic:invalid_api_key",
                _ant(401, ant("authentication_error", "invalid x-api-key")),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "anthropic:billing_error",
                _ant(402, ant("billing_error", "There is an issue with your payment method.")),
                R,
                Reason.QUOTA_EXCEEDED,
            ),
            (
                "anthropic:permission_error",
                _ant(
                    403, ant("permission_error", "Your API key does not have permission to use the specified resource.")
                ),
                P,
                Reason.AUTH_FAILED,
            ),
            *(
                ("anthropic:model_not_found", _ant(404, ant("not_found_error", f"model: {model}")), P, Reason.NOT_FOUND)
                for model in ("claude-x", "claude-3-5-sonnet-20990101")
            ),
            (
                "anthropic:request_too_large",
                _ant(413, ant("request_too_large", "Request exceeds the maximum allowed number of bytes.")),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            ),
            (
                "anthropic:api_error",
                _ant(500, ant("api_error", "Internal server error")),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            ("anthropic:timeout_error", _ant(504, ant("timeout_error", "Request timed out")), T, Reason.TIMEOUT),
            ("anthropic:overloaded", _ant(529, ant("overloaded_error", "Overloaded")), T, Reason.SERVICE_UNAVAILABLE),
        ],
    ),
    *shapes_of(
        "anthropic",
        ANTHROPIC_RATE,
        [
            (
                "anthropic:rate_limit",
                _ant(
                    429,
                    ant("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
                    {"retry-after": str(wait), "anthropic-ratelimit-requests-remaining": "0"},
                ),
                T,
                Reason.RATE_LIMITED,
                float(wait),
            )
            for wait in (30, 7)
        ],
    ),
    # --- Google Gemini API and Vertex AI --------------------------------------------------------------
    *shapes_of(
        "google",
        GEMINI,
        [
            (
                "google:invalid_argument",
                _g(400, goog(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")),
                V,
                Reason.INVALID_INPUT,
            ),
            (
                "google:api_key_invalid",
                _g(
                    400,
                    goog(
                        400,
                        "INVALID_ARGUMENT",
                        "API key not valid. Please pass a valid API key.",
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        },
                    ),
                ),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "google:free_tier_unavailable",
                _g(
                    400,
                    goog(
                        400,
                        "FAILED_PRECONDITION",
                        "Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.",
                    ),
                ),
                P,
                Reason.PERMANENT_FAILURE,
            ),
            (
                "google:permission_denied",
                _g(403, goog(403, "PERMISSION_DENIED", "Your API key doesn't have the required permissions.")),
                P,
                Reason.AUTH_FAILED,
            ),
            *(
                (
                    "google:model_not_found",
                    _g(404, goog(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta.")),
                    P,
                    Reason.NOT_FOUND,
                )
                for model in ("gemini-x", "gemini-1.0-pro-002")
            ),
            *(
                (
                    "google:rate_limit_per_minute",
                    _g(
                        429,
                        goog(
                            429,
                            "RESOURCE_EXHAUSTED",
                            _QUOTA_MESSAGE,
                            *_quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", _FREE_TIER, f"{delay}s"),
                        ),
                    ),
                    T,
                    Reason.RATE_LIMITED,
                    float(delay),
                )
                for delay in (31, 9)
            ),
            (
                "google:daily_quota",
                _g(
                    429,
                    goog(
                        429,
                        "RESOURCE_EXHAUSTED",
                        _QUOTA_MESSAGE,
                        *_quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier", _FREE_TIER, "2s"),
                    ),
                ),
                R,
                Reason.QUOTA_EXCEEDED,
                2.0,
            ),
            (
                "google:internal",
                _g(500, goog(500, "INTERNAL", "An internal error has occurred.")),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "google:overloaded",
                _g(503, goog(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "google:deadline_exceeded",
                _g(504, goog(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")),
                T,
                Reason.TIMEOUT,
            ),
        ],
    ),
    *shapes_of(
        "google",
        VERTEX,
        [
            (
                "google:vertex_quota_per_minute",
                _g(
                    429,
                    goog(
                        429,
                        "RESOURCE_EXHAUSTED",
                        "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model with base model: gemini-1.5-pro.",
                    ),
                ),
                T,
                Reason.RATE_LIMITED,
            ),
        ],
    ),
    *shapes_of(
        "google",
        GOOGLE_ERRORS,
        [
            (
                "google:vertex_permission_denied",
                _g(
                    403,
                    goog(
                        403,
                        "PERMISSION_DENIED",
                        "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/p/locations/us-central1/publishers/google/models/gemini-pro'.",
                    ),
                ),
                P,
                Reason.AUTH_FAILED,
            ),
        ],
    ),
]
