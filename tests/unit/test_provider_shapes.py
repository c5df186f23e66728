"""Real AI/LLM provider error shapes (status, headers, body as the providers document them), each
classified through the response object a real client library raises: httpx's ``HTTPStatusError`` for
the HTTP APIs (the openai and anthropic SDKs are built on httpx), botocore's ``ClientError`` shape for
AWS Bedrock. Each row cites where the shape is documented."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from error_handling.categories import Category, Reason
from error_handling.classifier import classify

T, R, V, P = Category.TRANSIENT, Category.RESOURCE, Category.VALIDATION, Category.PERMANENT

OPENAI = "https://platform.openai.com/docs/guides/error-codes"
OPENAI_RATE = "https://platform.openai.com/docs/guides/rate-limits"
AZURE = "https://learn.microsoft.com/azure/ai-services/openai/reference"
AZURE_FILTER = "https://learn.microsoft.com/azure/ai-services/openai/concepts/content-filter"
AZURE_QUOTA = "https://learn.microsoft.com/azure/ai-services/openai/quotas-limits"
ANTHROPIC = "https://docs.anthropic.com/en/api/errors"
ANTHROPIC_RATE = "https://docs.anthropic.com/en/api/rate-limits"
GEMINI = "https://ai.google.dev/gemini-api/docs/troubleshooting"
GOOGLE_ERRORS = "https://cloud.google.com/apis/design/errors"
VERTEX = "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429"
BEDROCK = "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html"
BEDROCK_COMMON = "https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html"


@dataclasses.dataclass(frozen=True)
class Shape:
    id: str
    source: str
    status: int
    body: Any
    category: Category
    reason: Reason
    retry_after: float | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    aws: bool = False


def oai(code: str | None, message: str, type_: str = "invalid_request_error", param: str | None = None) -> Any:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def ant(type_: str, message: str) -> Any:
    return {"type": "error", "error": {"type": type_, "message": message}}


def goog(code: int, status: str, message: str, *details: dict[str, Any]) -> Any:
    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        body["details"] = list(details)
    return {"error": body}


def aws(code: str, message: str) -> Any:
    return {"Error": {"Code": code, "Message": message}}


SHAPES: list[Shape] = [
    # --- OpenAI -------------------------------------------------------------------------------------
    Shape(
        "openai-401-invalid-key",
        OPENAI,
        401,
        oai("invalid_api_key", "Incorrect API key provided: sk-abc***xyz."),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "openai-401-org",
        OPENAI,
        401,
        oai("invalid_organization", "You must be a member of an organization to use the API."),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "openai-403-region",
        OPENAI,
        403,
        oai("unsupported_country_region_territory", "Country, region, or territory not supported", "request_forbidden"),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "openai-429-rate-requests",
        OPENAI_RATE,
        429,
        oai(
            "rate_limit_exceeded",
            "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.",
            "requests",
        ),
        T,
        Reason.RATE_LIMITED,
        1.0,
        {"x-ratelimit-reset-requests": "1s", "x-ratelimit-remaining-requests": "0"},
    ),
    Shape(
        "openai-429-rate-tokens",
        OPENAI_RATE,
        429,
        oai(
            "rate_limit_exceeded",
            "Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.",
            "tokens",
        ),
        T,
        Reason.RATE_LIMITED,
        360.0,
        {"x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-reset-requests": "1.5s"},
    ),
    Shape(
        "openai-429-retry-after",
        OPENAI_RATE,
        429,
        oai("rate_limit_exceeded", "Rate limit reached.", "requests"),
        T,
        Reason.RATE_LIMITED,
        20.0,
        {"retry-after": "20"},
    ),
    Shape(
        "openai-429-retry-after-ms",
        OPENAI_RATE,
        429,
        oai("rate_limit_exceeded", "Rate limit reached.", "tokens"),
        T,
        Reason.RATE_LIMITED,
        1.5,
        {"retry-after-ms": "1500"},
    ),
    Shape(
        "openai-429-insufficient-quota",
        OPENAI,
        429,
        oai(
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
        ),
        R,
        Reason.QUOTA_EXCEEDED,
    ),
    Shape(
        "openai-400-billing-hard-limit",
        OPENAI,
        400,
        oai("billing_hard_limit_reached", "Billing hard limit has been reached", "invalid_request_error"),
        R,
        Reason.QUOTA_EXCEEDED,
    ),
    Shape(
        "openai-400-context-length",
        OPENAI,
        400,
        oai(
            "context_length_exceeded",
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens.",
            param="messages",
        ),
        V,
        Reason.PAYLOAD_TOO_LARGE,
    ),
    Shape(
        "openai-400-content-policy",
        OPENAI,
        400,
        oai("content_policy_violation", "Your request was rejected as a result of our safety system."),
        V,
        Reason.CONTENT_POLICY,
    ),
    Shape(
        "openai-400-invalid-param",
        OPENAI,
        400,
        oai(None, "Invalid value for 'temperature': expected a number <= 2.", param="temperature"),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "openai-400-invalid-image",
        OPENAI,
        400,
        oai("invalid_image_format", "Invalid image format. Supported formats are png, jpeg, gif, webp."),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "openai-404-model",
        OPENAI,
        404,
        oai("model_not_found", "The model `gpt-x` does not exist or you do not have access to it."),
        P,
        Reason.NOT_FOUND,
    ),
    Shape(
        "openai-500-server",
        OPENAI,
        500,
        oai(None, "The server had an error while processing your request. Sorry about that!", "server_error"),
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    Shape(
        "openai-503-overloaded",
        OPENAI,
        503,
        oai(None, "The engine is currently overloaded, please try again later.", "server_error"),
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    Shape(
        "openai-503-slow-down",
        OPENAI,
        503,
        oai(None, "Slow Down: please reduce your request rate.", "server_error"),
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    Shape(
        "openai-502-html",
        OPENAI,
        502,
        "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>",
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    # --- Azure OpenAI -------------------------------------------------------------------------------
    Shape(
        "azure-400-content-filter",
        AZURE_FILTER,
        400,
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
                },
            }
        },
        V,
        Reason.CONTENT_POLICY,
    ),
    Shape(
        "azure-429-token-rate",
        AZURE_QUOTA,
        429,
        {
            "error": {
                "code": "429",
                "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds.",
            }
        },
        T,
        Reason.RATE_LIMITED,
        6.0,
        {"retry-after": "6", "retry-after-ms": "6000"},
    ),
    Shape(
        "azure-401-key",
        AZURE,
        401,
        {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}},
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "azure-404-deployment",
        AZURE,
        404,
        {"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}},
        P,
        Reason.NOT_FOUND,
    ),
    Shape(
        "azure-400-context",
        AZURE,
        400,
        {
            "error": {
                "message": "This model's maximum context length is 8192 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        V,
        Reason.PAYLOAD_TOO_LARGE,
    ),
    Shape(
        "azure-403-network",
        AZURE,
        403,
        {
            "error": {
                "code": "AuthenticationTypeDisabled",
                "message": "Key based authentication is disabled for this resource.",
            }
        },
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "azure-500",
        AZURE,
        500,
        {"error": {"code": "InternalServerError", "message": "The server had an error processing your request."}},
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    Shape(
        "azure-503",
        AZURE,
        503,
        {
            "error": {
                "code": "ServiceUnavailable",
                "message": "The service is temporarily unable to process your request. Please try again later.",
            }
        },
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    # --- Anthropic ----------------------------------------------------------------------------------
    Shape(
        "anthropic-400-invalid",
        ANTHROPIC,
        400,
        ant("invalid_request_error", 'messages: roles must alternate between "user" and "assistant"'),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "anthropic-400-prompt-too-long",
        ANTHROPIC,
        400,
        ant("invalid_request_error", "prompt is too long: 210432 tokens > 200000 maximum"),
        V,
        Reason.PAYLOAD_TOO_LARGE,
    ),
    Shape(
        "anthropic-400-credit",
        ANTHROPIC,
        400,
        ant(
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        ),
        R,
        Reason.QUOTA_EXCEEDED,
    ),
    Shape("anthropic-401", ANTHROPIC, 401, ant("authentication_error", "invalid x-api-key"), P, Reason.AUTH_FAILED),
    Shape(
        "anthropic-402-billing",
        ANTHROPIC,
        402,
        ant("billing_error", "There is an issue with your payment method."),
        R,
        Reason.QUOTA_EXCEEDED,
    ),
    Shape(
        "anthropic-403",
        ANTHROPIC,
        403,
        ant("permission_error", "Your API key does not have permission to use the specified resource."),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape("anthropic-404", ANTHROPIC, 404, ant("not_found_error", "model: claude-x"), P, Reason.NOT_FOUND),
    Shape(
        "anthropic-413",
        ANTHROPIC,
        413,
        ant("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        V,
        Reason.PAYLOAD_TOO_LARGE,
    ),
    Shape(
        "anthropic-429",
        ANTHROPIC_RATE,
        429,
        ant("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        T,
        Reason.RATE_LIMITED,
        30.0,
        {"retry-after": "30", "anthropic-ratelimit-requests-remaining": "0"},
    ),
    Shape("anthropic-500", ANTHROPIC, 500, ant("api_error", "Internal server error"), T, Reason.SERVICE_UNAVAILABLE),
    Shape("anthropic-504-timeout", ANTHROPIC, 504, ant("timeout_error", "Request timed out"), T, Reason.TIMEOUT),
    Shape("anthropic-529", ANTHROPIC, 529, ant("overloaded_error", "Overloaded"), T, Reason.SERVICE_UNAVAILABLE),
    # --- Google Gemini API and Vertex AI --------------------------------------------------------------
    Shape(
        "gemini-400-invalid-argument",
        GEMINI,
        400,
        goog(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "gemini-400-api-key",
        GEMINI,
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
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "gemini-400-precondition",
        GEMINI,
        400,
        goog(
            400,
            "FAILED_PRECONDITION",
            "Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.",
        ),
        P,
        Reason.PERMANENT_FAILURE,
    ),
    Shape(
        "gemini-403-permission",
        GEMINI,
        403,
        goog(403, "PERMISSION_DENIED", "Your API key doesn't have the required permissions."),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "gemini-404",
        GEMINI,
        404,
        goog(404, "NOT_FOUND", "models/gemini-x is not found for API version v1beta."),
        P,
        Reason.NOT_FOUND,
    ),
    Shape(
        "gemini-429-rate",
        GEMINI,
        429,
        goog(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"},
        ),
        T,
        Reason.RATE_LIMITED,
        31.0,
    ),
    Shape(
        "gemini-429-daily-quota",
        GEMINI,
        429,
        goog(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"},
        ),
        R,
        Reason.QUOTA_EXCEEDED,
        2.0,
    ),
    Shape(
        "gemini-500",
        GEMINI,
        500,
        goog(500, "INTERNAL", "An internal error has occurred."),
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    Shape(
        "gemini-503-overloaded",
        GEMINI,
        503,
        goog(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    Shape(
        "gemini-504",
        GEMINI,
        504,
        goog(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        T,
        Reason.TIMEOUT,
    ),
    Shape(
        "vertex-429-per-minute",
        VERTEX,
        429,
        goog(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model with base model: gemini-1.5-pro.",
        ),
        T,
        Reason.RATE_LIMITED,
    ),
    Shape(
        "vertex-403-permission",
        GOOGLE_ERRORS,
        403,
        goog(
            403,
            "PERMISSION_DENIED",
            "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/p/locations/us-central1/publishers/google/models/gemini-pro'.",
        ),
        P,
        Reason.AUTH_FAILED,
    ),
    # --- AWS Bedrock (botocore ClientError) -----------------------------------------------------------
    Shape(
        "bedrock-throttling",
        BEDROCK,
        429,
        aws("ThrottlingException", "Too many requests, please wait before trying again."),
        T,
        Reason.RATE_LIMITED,
        aws=True,
    ),
    Shape(
        "bedrock-service-quota",
        BEDROCK,
        400,
        aws("ServiceQuotaExceededException", "Your request exceeds the service quota for your account."),
        R,
        Reason.QUOTA_EXCEEDED,
        aws=True,
    ),
    Shape(
        "bedrock-validation",
        BEDROCK,
        400,
        aws("ValidationException", "Malformed input request: #: required key [messages] not found"),
        V,
        Reason.INVALID_INPUT,
        aws=True,
    ),
    Shape(
        "bedrock-input-too-long",
        BEDROCK,
        400,
        aws("ValidationException", "Input is too long for requested model."),
        V,
        Reason.PAYLOAD_TOO_LARGE,
        aws=True,
    ),
    Shape(
        "bedrock-access-denied",
        BEDROCK,
        403,
        aws("AccessDeniedException", "You don't have access to the model with the specified model ID."),
        P,
        Reason.AUTH_FAILED,
        aws=True,
    ),
    Shape(
        "bedrock-not-found",
        BEDROCK,
        404,
        aws("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."),
        P,
        Reason.NOT_FOUND,
        aws=True,
    ),
    Shape(
        "bedrock-model-not-ready",
        BEDROCK,
        429,
        aws("ModelNotReadyException", "Model is not ready to serve inference requests."),
        T,
        Reason.SERVICE_UNAVAILABLE,
        aws=True,
    ),
    Shape(
        "bedrock-model-timeout",
        BEDROCK,
        408,
        aws("ModelTimeoutException", "Model has timed out in processing the request."),
        T,
        Reason.TIMEOUT,
        aws=True,
    ),
    Shape(
        "bedrock-model-error",
        BEDROCK,
        424,
        aws("ModelErrorException", "The model returned an error while processing the request."),
        T,
        Reason.SERVICE_UNAVAILABLE,
        aws=True,
    ),
    Shape(
        "bedrock-unavailable",
        BEDROCK,
        503,
        aws("ServiceUnavailableException", "The service isn't currently available."),
        T,
        Reason.SERVICE_UNAVAILABLE,
        aws=True,
    ),
    Shape(
        "bedrock-internal",
        BEDROCK,
        500,
        aws("InternalServerException", "An internal server error occurred."),
        T,
        Reason.SERVICE_UNAVAILABLE,
        aws=True,
    ),
    Shape(
        "bedrock-unrecognized-client",
        BEDROCK_COMMON,
        403,
        aws("UnrecognizedClientException", "The security token included in the request is invalid."),
        P,
        Reason.AUTH_FAILED,
        aws=True,
    ),
    Shape(
        "bedrock-expired-token",
        BEDROCK_COMMON,
        400,
        aws("ExpiredTokenException", "The security token included in the request is expired"),
        P,
        Reason.AUTH_FAILED,
        aws=True,
    ),
]


def _httpx_error(shape: Shape) -> BaseException:
    request = httpx.Request("POST", "https://api.provider.test/v1/generate")
    kwargs: dict[str, Any] = {"headers": shape.headers, "request": request}
    if isinstance(shape.body, str):
        kwargs["text"] = shape.body
    else:
        kwargs["json"] = shape.body
    response = httpx.Response(shape.status, **kwargs)
    response.read()
    return httpx.HTTPStatusError(f"Error response {shape.status}", request=request, response=response)


def _client_error(shape: Shape) -> BaseException:
    """botocore's ``ClientError`` shape: ``response`` is the parsed error dict with its metadata."""
    cls = type("ClientError", (Exception,), {"__module__": "botocore.exceptions"})
    exc = cls(f"An error occurred ({shape.body['Error']['Code']}) when calling the InvokeModel operation")
    exc.response = {  # type: ignore[attr-defined]
        **shape.body,
        "ResponseMetadata": {"HTTPStatusCode": shape.status, "HTTPHeaders": dict(shape.headers)},
    }
    return exc


def test_the_table_holds_at_least_sixty_documented_shapes() -> None:
    assert len(SHAPES) >= 60
    assert len({s.id for s in SHAPES}) == len(SHAPES)
    assert all(s.source.startswith("https://") for s in SHAPES)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.id for s in SHAPES])
def test_provider_shape_is_classified_as_documented(shape: Shape) -> None:
    c = classify(_client_error(shape) if shape.aws else _httpx_error(shape))
    assert (c.category, c.reason) == (shape.category, shape.reason.value), c.rule
    assert c.retry_after == shape.retry_after
    assert c.status_code == shape.status
