"""Azure OpenAI error shapes (family ``openai``): the openai SDK's classes with Azure's bodies and headers.
Migrated from the former ``tests/unit/test_provider_shapes.py`` (same shapes, same sources)."""

from __future__ import annotations

from typing import Any

from error_handling.categories import Reason
from tests.corpus.providers_openai import openai_error
from tests.corpus.shape import P, Shape, T, V, shapes_of

AZURE = "https://learn.microsoft.com/azure/ai-services/openai/reference"
AZURE_FILTER = "https://learn.microsoft.com/azure/ai-services/openai/concepts/content-filter"
AZURE_QUOTA = "https://learn.microsoft.com/azure/ai-services/openai/quotas-limits"


def _e(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    return lambda: openai_error(status, body, headers)


SHAPES: list[Shape] = [
    *shapes_of(
        "openai",
        AZURE_FILTER,
        [
            (
                "openai:azure_content_filter",
                _e(
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
                ),
                V,
                Reason.CONTENT_POLICY,
            ),
        ],
    ),
    *shapes_of(
        "openai",
        AZURE_QUOTA,
        [
            (
                "openai:azure_token_rate",
                _e(
                    429,
                    {
                        "error": {
                            "code": "429",
                            "message": f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {wait} seconds.",
                        }
                    },
                    {"retry-after": str(wait), "retry-after-ms": str(wait * 1000)},
                ),
                T,
                Reason.RATE_LIMITED,
                float(wait),
            )
            for wait in (6, 41)
        ],
    ),
    *shapes_of(
        "openai",
        AZURE,
        [
            (
                "openai:azure_invalid_key",
                _e(
                    401,
                    {
                        "error": {
                            "code": "401",
                            "message": "Access denied due to invalid subscription key or wrong API endpoint.",
                        }
                    },
                ),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "openai:azure_deployment_not_found",
                _e(
                    404,
                    {
                        "error": {
                            "code": "DeploymentNotFound",
                            "message": "The API deployment for this resource does not exist.",
                        }
                    },
                ),
                P,
                Reason.NOT_FOUND,
            ),
            (
                "openai:context_length_exceeded_short",  # Azure's one-sentence wording: another message
                _e(
                    400,
                    {
                        "error": {
                            "message": "This model's maximum context length is 8192 tokens.",
                            "type": "invalid_request_error",
                            "param": "messages",
                            "code": "context_length_exceeded",
                        }
                    },
                ),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            ),
            (
                "openai:azure_key_auth_disabled",
                _e(
                    403,
                    {
                        "error": {
                            "code": "AuthenticationTypeDisabled",
                            "message": "Key based authentication is disabled for this resource.",
                        }
                    },
                ),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "openai:azure_internal",
                _e(
                    500,
                    {
                        "error": {
                            "code": "InternalServerError",
                            "message": "The server had an error processing your request.",
                        }
                    },
                ),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "openai:azure_unavailable",
                _e(
                    503,
                    {
                        "error": {
                            "code": "ServiceUnavailable",
                            "message": "The service is temporarily unable to process your request. Please try again later.",
                        }
                    },
                ),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
        ],
    ),
]
