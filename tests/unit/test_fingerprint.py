"""Fingerprints group what is the same error and keep different errors apart (error_handling.fingerprint):
the message parameterised as Sentry does, the first in-app frame, and the response an error carries."""

from __future__ import annotations

import pytest

from error_handling.classifier import classify, classify_http
from error_handling.fingerprint import MAX_FINGERPRINT_CHARS, fingerprint, normalise_message


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("retry 3 of 5", "retry 4 of 7", id="ints"),
        pytest.param("took 1.25 s", "took 30.5 s", id="floats"),
        pytest.param("Limit 20,000 tokens", "Limit 1,000,000 tokens", id="thousands"),
        pytest.param("object at 0x7f3a9c2e1b00", "object at 0x10ab", id="hex-address"),
        pytest.param("digest 3f9a1c7e2b4d6a80", "digest 00a1b2c3d4e5f607", id="hex"),
        pytest.param(
            "task 1b4e28ba-2fa1-11d2-883f-0016d3cca427 failed",
            "task 9f0c1d2e-3a4b-4c5d-8e6f-708192a3b4c5 failed",
            id="uuid",
        ),
        pytest.param("connecting to 10.0.0.7:6379", "connecting to 192.168.1.20:6380", id="ipv4"),
        pytest.param("server at 2001:db8::5 down", "server at fe80::1%eth0 down", id="ipv6"),
        pytest.param("mail to bob@example.com bounced", "mail to a.b+c@mail.example.org bounced", id="email"),
        pytest.param(
            "GET https://api.x.test/v1/items/42?page=2 failed", "GET https://api.x.test/v1/users/7 failed", id="url"
        ),
        pytest.param("cannot open /var/lib/app/part-17.csv", "cannot open /tmp/tmpa8f3/chunk-4.bin", id="path"),
        pytest.param("at 2026-01-01T00:00:00Z", "at 2025-12-31 23:59:59.123+02:00", id="iso-timestamp"),
        pytest.param("stale since 12:30:45", "stale since 01:02:03.5", id="clock-time"),
        pytest.param("Please try again in 6m0s.", "Please try again in 1.5s.", id="go-duration"),
        pytest.param("Please try again in 644ms.", "Please try again in 20s.", id="ms-duration"),
        pytest.param("invalid literal: 'abc'", "invalid literal: 'x y z'", id="single-quoted"),
        pytest.param('column "a" missing', 'column "b_c" missing', id="double-quoted"),
        pytest.param("no rows for user_42", "no rows for user_7731", id="for-identifier"),
        pytest.param("end of task-17 reached", "end of task-9 reached", id="of-identifier"),
        pytest.param(
            "in organization org-XXX on", "in organization org-4BPQ2vglazP9PM7I0T2xn68U on", id="organization"
        ),
        pytest.param("(request ID req_8f3a9c2e1b)", "(request ID req_0d41b7aa93)", id="request-id"),
        pytest.param("request_id=abc123def", "request_id=77aa", id="request-id-key"),
        pytest.param("trace id: 4bf92f3577b34da6", "trace id: 00f067aa0ba902b7", id="trace-id"),
        pytest.param("call call_Xy12ab34Cd56 failed", "call call_9Qw8Er7Ty6Ui failed", id="random-id"),
        pytest.param(
            "Can't retry t[1b4e28ba-2fa1-11d2-883f-0016d3cca427] args:(42,)",
            "Can't retry t[9f0c1d2e-3a4b-4c5d-8e6f-708192a3b4c5] args:(7,)",
            id="celery-task-id",
        ),
        pytest.param("a   b\n\tc", "a b c", id="whitespace"),
    ],
)
def test_what_varies_is_parameterised(one: str, other: str) -> None:
    assert normalise_message(one) == normalise_message(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(
            "gpt-4o-2024-08-06 is currently overloaded",
            "gpt-4o-2024-05-13 is currently overloaded",
            id="model-names-stay",
        ),
        pytest.param(
            "model claude-3-5-sonnet-20241022 overloaded", "model claude-3-opus-20240229 overloaded", id="dated-names"
        ),
        pytest.param("charset utf8mb4 unsupported", "charset latin1 unsupported", id="names-with-digits"),
        pytest.param("missing field name", "missing field email", id="words"),
        pytest.param("signal 9 (SIGKILL)", "signal 15 (SIGTERM)", id="signal-names"),
        pytest.param("No space left on device", "Too many open files", id="different-errors"),
        pytest.param("Please try again in 20s.", "Please try again later.", id="a-wait-or-none"),
    ],
)
def test_what_differs_stays_apart(one: str, other: str) -> None:
    assert normalise_message(one) != normalise_message(other)


def test_names_keep_their_numbers() -> None:
    assert normalise_message("gpt-4o-2024-08-06 is currently overloaded") == "gpt-4o-2024-08-06 is currently overloaded"
    assert normalise_message("req_8f3a9c2e1b7d") == "<id>"
    # a quoted value is a value, whatever it looks like; so is the model a message names as a field
    assert normalise_message("The model `gpt-4o-2024-08-06` does not exist") == "The model `<str>` does not exist"
    assert normalise_message("model: claude-3-5-sonnet-20241022") == "model: <id>"
    assert normalise_message("models/gemini-1.5-pro is not found") == "models/<id> is not found"


def test_only_the_start_of_a_message_is_read() -> None:
    head = "error 42 " * (MAX_FINGERPRINT_CHARS // 9 + 1)
    assert normalise_message(head + "tail one") == normalise_message(head + "x" * 10 * MAX_FINGERPRINT_CHARS)


def _sdk_429(code: str, message: str, *, request_id: str) -> BaseException:
    httpx = pytest.importorskip("httpx")
    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    response = httpx.Response(429, json=body, headers={"x-request-id": request_id}, request=request)
    cls = type("RateLimitError", (Exception,), {"__module__": "openai"})
    exc = cls(f"Error code: 429 - {body!r}")
    exc.response, exc.status_code, exc.body = response, 429, body["error"]  # type: ignore[attr-defined]
    return exc


def test_an_error_with_a_response_is_fingerprinted_by_its_status_code_and_body_message() -> None:
    limit = "Rate limit reached for gpt-4o in organization {org} on tokens per min (TPM): Limit 30000, Used {used}. Please try again in {wait}."
    one = _sdk_429(
        "rate_limit_exceeded",
        limit.format(org="org-AbC123dEf456GhI789", used=29000, wait="2s"),
        request_id="req_1a2b3c4d5e6f",
    )
    same = _sdk_429(
        "rate_limit_exceeded",
        limit.format(org="org-ZyX987wVu654TsR321", used=29500, wait="6m0s"),
        request_id="req_9z8y7x6w5v4u",
    )
    quota = _sdk_429(
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
        request_id="req_1a2b3c4d5e6f",
    )
    assert fingerprint(one) == fingerprint(same) != fingerprint(quota)
    assert classify(one).fingerprint == fingerprint(one)


def test_classify_http_fingerprints_by_status_code_and_message() -> None:
    one = classify_http(
        429, body={"error": {"code": "rate_limit_exceeded", "message": "Limit for org-Ab12Cd34Ef56 hit"}}
    )
    two = classify_http(
        429, body={"error": {"code": "rate_limit_exceeded", "message": "Limit for org-Zz99Yy88Xx77 hit"}}
    )
    other = classify_http(
        429, body={"error": {"code": "insufficient_quota", "message": "Limit for org-Ab12Cd34Ef56 hit"}}
    )
    assert one.fingerprint == two.fingerprint != other.fingerprint
