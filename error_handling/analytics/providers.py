"""Which provider an error group concerns, told by its exception's package: the service the quota rule
counts per (:func:`~error_handling.analytics.advice.quota_dominates`).

Only the packages of provider SDKs name a provider; an error of the application's own code, of the
standard library or of a generic HTTP client names none (its group counts for no service).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["PROVIDER_PACKAGES", "service_of"]

#: Top-level packages of provider SDKs, and the service each names.
PROVIDER_PACKAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "openai": "openai",
        "anthropic": "anthropic",
        "google": "google",
        "vertexai": "google",
        "cohere": "cohere",
        "mistralai": "mistral",
        "groq": "groq",
        "together": "together",
        "replicate": "replicate",
        "huggingface_hub": "huggingface",
        "voyageai": "voyage",
        "botocore": "aws",
        "boto3": "aws",
        "azure": "azure",
        "litellm": "litellm",
        "ollama": "ollama",
    }
)


def service_of(exc_type: str | None) -> str | None:
    """The provider named by a qualified exception type (``openai.RateLimitError`` → ``openai``), or None."""
    if not exc_type:
        return None
    return PROVIDER_PACKAGES.get(exc_type.split(".", 1)[0])
