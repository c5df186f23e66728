"""The provider families of the corpus (tests/corpus/providers_*.py) beyond what test_corpus checks: every
shape that carries an HTTP response reports its status, and the provider rules that only these families
exercise are wired as documented."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from error_handling.classifier import classify
from error_handling.rules import EXCEPTION_RULES, MESSAGE_RULES, PROVIDER_PRIORITY_MESSAGE_RULES, all_outcomes
from error_handling.rules.providers_aws import AWS_ERROR_CODES, AWS_EXCEPTION_RULES
from tests.corpus import ALL_SHAPES, Shape

PROVIDER_FAMILIES = {"openai", "anthropic", "google", "aws", "cohere", "mistral", "huggingface", "openai_compatible"}
PROVIDER_SHAPES = [s for s in ALL_SHAPES if s.family in PROVIDER_FAMILIES]


def _stated_status(exc: BaseException) -> int | None:
    """The status the error carries, read the way its library exposes it; else its cause's (a Text
    Generation Inference error is raised from the HTTP error of its response)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 100 <= status <= 599:
        return status
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        metadata = response.get("ResponseMetadata")
        status = metadata.get("HTTPStatusCode") if isinstance(metadata, Mapping) else None
    else:
        status = getattr(response, "status_code", None)
    if status is None and exc.__cause__ is not None:
        return _stated_status(exc.__cause__)
    return status


def test_the_provider_families_hold_at_least_130_shapes_in_every_family() -> None:
    assert len(PROVIDER_SHAPES) >= 130
    assert {s.family for s in PROVIDER_SHAPES} == PROVIDER_FAMILIES
    assert all(s.group.startswith(f"{s.family}:") for s in PROVIDER_SHAPES)


@pytest.mark.parametrize("shape", PROVIDER_SHAPES, ids=lambda s: s.group)
def test_a_provider_error_reports_the_status_it_carries(shape: Shape) -> None:
    exc = shape.make()
    assert classify(exc).status_code == _stated_status(exc)


def test_every_aws_code_names_a_generated_class_and_a_message_rule() -> None:
    assert set(AWS_EXCEPTION_RULES) == {f"botocore.errorfactory.{code}" for code in AWS_ERROR_CODES}
    assert all(EXCEPTION_RULES[name] == outcome for name, outcome in AWS_EXCEPTION_RULES.items())
    aws_rules = [rule for rule in MESSAGE_RULES if "botocore.exceptions.ClientError" in rule.exceptions]
    for code, outcome in AWS_ERROR_CODES.items():
        message = f"An error occurred ({code[0].lower()}{code[1:]}) when calling the InvokeModel operation: x"
        assert any(r.outcome == outcome and r.pattern.search(message) for r in aws_rules), code


def test_the_priority_body_rules_are_listed_for_completeness() -> None:
    described = {description for description, _ in all_outcomes()}
    assert {f"body_message:{name}" for name, _, _ in PROVIDER_PRIORITY_MESSAGE_RULES} <= described
