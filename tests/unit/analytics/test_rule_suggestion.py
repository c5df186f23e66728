"""The rule suggested for an unclassified group is valid Python that builds a working ``Rule``."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from error_handling import Category, Rule
from error_handling.analytics import suggested_rule
from error_handling.analytics.rule_suggestion import guessed_category, guessed_reason, message_pattern
from error_handling.classifier import Classifier


def built(code: str) -> Rule:
    rule = eval(code, {"Rule": Rule, "Category": Category})  # the suggestion is meant to be pasted as code
    assert isinstance(rule, Rule)
    return rule


class GatewayHiccupError(Exception):
    """An app's own error type."""


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_an_apps_type_is_matched_by_type_alone() -> None:
    code = suggested_rule(qualified(GatewayHiccupError), "gateway 17 hiccupped")
    assert "message=" not in code
    rule = built(code)
    result = Classifier([rule]).classify(GatewayHiccupError("gateway 99 hiccupped"))
    assert (result.reason, result.category) == ("gateway_hiccup", Category.PERMANENT)


def test_a_builtin_type_is_matched_by_message_with_digits_generalised() -> None:
    code = suggested_rule("RuntimeError", "job 1234 failed: upstream said (code=77) [REDACTED] *again*")
    assert 'exception="RuntimeError"' in code and r"\d+" in code
    classifier = Classifier([built(code)])
    same = classifier.classify(RuntimeError("job 98 failed: upstream said (code=5) sk-live-xyz *again*"))
    assert same.reason == "job_failed_upstream"
    other = classifier.classify(RuntimeError("something else entirely"))
    assert other.reason != "job_failed_upstream"


def test_quotes_and_backslashes_make_a_valid_literal() -> None:
    message = 'path "C:\\temp\\x" is 3 levels deep\\'
    rule = built(suggested_rule(None, message))
    assert rule.message is not None and re.search(rule.message, message)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("upstream timed out", Category.TRANSIENT),
        ("field 'x' is required", Category.VALIDATION),
        ("boom", Category.PERMANENT),
    ],
)
def test_the_category_is_guessed_from_the_words(text: str, category: Category) -> None:
    assert guessed_category(None, text) is category


def test_the_reason_is_the_types_name_in_snake_case() -> None:
    assert guessed_reason("acme.HTTPGatewayTimeoutError", "") == "http_gateway_timeout"
    assert guessed_reason("Exception", "Disk quota gone 5") == "disk_quota_gone"
    assert guessed_reason(None, "123") == "custom"


@settings(max_examples=200, deadline=None)
@given(message=st.text(max_size=150))
def test_any_message_gives_a_rule_that_matches_it(message: str) -> None:
    rule = built(suggested_rule("RuntimeError", message))
    first_line = message.splitlines()[0] if message else ""
    assert rule.message is not None and re.search(rule.message, first_line)
    assert re.fullmatch(r"\^.*", message_pattern(message), re.S)
