"""An error group's provider is told by its exception's package: provider SDKs name one, other code none."""

from __future__ import annotations

import pytest

from error_handling.analytics import service_of


@pytest.mark.parametrize(
    ("exc_type", "service"),
    [
        ("openai.RateLimitError", "openai"),
        ("anthropic.APIStatusError", "anthropic"),
        ("google.api_core.exceptions.ResourceExhausted", "google"),
        ("botocore.exceptions.ClientError", "aws"),
        ("mistralai.models.SDKError", "mistral"),
        ("builtins.TimeoutError", None),
        ("httpx.HTTPStatusError", None),
        ("myapp.errors.QuotaError", None),
        ("RuntimeError", None),
        ("", None),
        (None, None),
    ],
)
def test_the_provider_of_an_exception_type(exc_type: str | None, service: str | None) -> None:
    assert service_of(exc_type) == service
