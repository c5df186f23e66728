"""Retry hints and HTTP details read from headers, bodies and errors (error_handling.http)."""

from __future__ import annotations

import email.message
import email.utils
from typing import Any

import pytest

from error_handling.http import (
    MAX_PROSE_CHARS,
    HttpDetails,
    body_error_codes,
    body_field_hint,
    body_message,
    decode_body,
    http_details,
    iter_headers,
    parse_duration,
    parse_retry_after,
    prose_retry_hint,
    stated_retry_hint,
)

#: A fixed "now" (2026-01-01T00:00:00Z) so dates and epoch resets are deterministic.
NOW = 1767225600.0


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


class ItemsOnly:
    """A header container with only ``items()`` (like requests' CaseInsensitiveDict seen by duck typing)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


class ExplodingHeaders:
    """A header container that fails while read."""

    def items(self) -> list[tuple[str, str]]:
        raise RuntimeError("headers not available")


def message_headers(**values: str) -> email.message.Message:
    message = email.message.Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "120"}, 120.0, id="retry-after-seconds"),
        pytest.param({"Retry-After": "1.5"}, 1.5, id="retry-after-fractional"),
        pytest.param({"Retry-After": "0"}, 0.0, id="retry-after-zero"),
        pytest.param({"Retry-After": http_date(NOW + 90)}, 90.0, id="retry-after-http-date"),
        pytest.param({"Retry-After": "Thu, 01 Jan 2026 00:01:00 -0000"}, 60.0, id="retry-after-date-no-zone"),
        pytest.param({"Retry-After": http_date(NOW - 90)}, None, id="retry-after-date-in-past-ignored"),
        pytest.param({"retry-after-ms": "1500"}, 1.5, id="retry-after-ms"),
        pytest.param({"x-ratelimit-reset-requests": "6m0s"}, 360.0, id="openai-duration-minutes"),
        pytest.param({"x-ratelimit-reset-tokens": "1.5s"}, 1.5, id="openai-duration-seconds"),
        pytest.param({"x-ratelimit-reset-tokens": "20ms"}, 0.02, id="openai-duration-ms"),
        pytest.param({"x-ratelimit-reset-requests": "1h2m3s"}, 3723.0, id="openai-duration-compound"),
        pytest.param({"x-ratelimit-reset": "30"}, 30.0, id="reset-plain-seconds"),
        pytest.param({"x-ratelimit-reset": str(int(NOW + 45))}, 45.0, id="reset-epoch-seconds"),
        pytest.param({"x-ratelimit-reset": str(int((NOW + 45) * 1000))}, 45.0, id="reset-epoch-milliseconds"),
        pytest.param({"x-ratelimit-reset": str(int(NOW - 45))}, None, id="reset-epoch-in-past-ignored"),
        pytest.param({"ratelimit-reset": "12"}, 12.0, id="ietf-ratelimit-reset"),
        pytest.param({"RETRY-AFTER": "7"}, 7.0, id="name-upper-case"),
        pytest.param({"X-RateLimit-Reset-Tokens": "2s"}, 2.0, id="name-mixed-case"),
        pytest.param(
            {"retry-after": "1", "retry-after-ms": "2500", "x-ratelimit-reset-tokens": "6m0s"},
            360.0,
            id="several-hints-largest-wins",
        ),
        pytest.param({"retry-after": "soon", "retry-after-ms": "800"}, 0.8, id="garbage-ignored-valid-kept"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
        pytest.param({"Retry-After": "-5"}, None, id="negative"),
        pytest.param({"Retry-After": "inf"}, None, id="infinite"),
        pytest.param({"Retry-After": "nan"}, None, id="nan"),
        pytest.param({"x-ratelimit-reset-tokens": "6 minutes"}, None, id="unknown-duration-form"),
        pytest.param({"x-ratelimit-reset-tokens": "5x"}, None, id="unknown-duration-unit"),
        pytest.param({"Content-Type": "application/json"}, None, id="no-hint-header"),
        pytest.param({}, None, id="empty"),
        pytest.param(None, None, id="none"),
        pytest.param([("Retry-After", "3"), ("retry-after", "9")], 9.0, id="pairs-repeated-header"),
        pytest.param([(b"retry-after", b"4")], 4.0, id="bytes-pairs"),
        pytest.param(ItemsOnly([("Retry-After", "11")]), 11.0, id="items-only-object"),
        pytest.param(message_headers(Retry_After="13"), 13.0, id="email-message"),
        pytest.param(ExplodingHeaders(), None, id="container-that-raises"),
        pytest.param("Retry-After: 5", None, id="a-string-is-not-headers"),
    ],
)
def test_parse_retry_after(headers: Any, expected: float | None) -> None:
    result = parse_retry_after(headers, now=NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_parse_retry_after_reads_httpx_headers() -> None:
    httpx = pytest.importorskip("httpx")
    headers = httpx.Headers({"Retry-After": "21", "x-ratelimit-reset-tokens": "1m"})
    assert parse_retry_after(headers, now=NOW) == pytest.approx(60.0)


def test_parse_retry_after_defaults_to_the_current_time() -> None:
    import time

    hint = parse_retry_after({"Retry-After": http_date(time.time() + 3600)})
    assert hint is not None
    assert 3500 < hint <= 3600


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6m0s", 360.0),
        ("1.5s", 1.5),
        ("20ms", 0.02),
        ("1h2m3s", 3723.0),
        ("250us", 0.00025),
        ("500ns", 5e-7),
        ("30", 30.0),
        ("0.25", 0.25),
        (" 2s ", 2.0),
        ("", None),
        ("s", None),
        ("1d", None),
        ("-3s", None),
        ("1m30", None),
    ],
)
def test_parse_duration(text: str, expected: float | None) -> None:
    result = parse_duration(text)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_iter_headers_lower_cases_names_and_keeps_every_pair() -> None:
    assert iter_headers([("X-A", "1"), ("x-a", "2"), ("bad",), ("X-B", 3)]) == [
        ("x-a", "1"),
        ("x-a", "2"),
        ("x-b", "3"),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error": {"code": "x"}}', {"error": {"code": "x"}}),
        ('  {"a": 1}', {"a": 1}),
        ("[1, 2]", [1, 2]),
        ("{not json", "{not json"),
        ("plain text", "plain text"),
        ({"already": "parsed"}, {"already": "parsed"}),
        (None, None),
    ],
)
def test_decode_body(body: object, expected: object) -> None:
    assert decode_body(body) == expected


@pytest.mark.parametrize(
    ("body", "codes", "message"),
    [
        pytest.param(
            {
                "error": {
                    "message": "You exceeded your current quota",
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                }
            },
            ("insufficient_quota", "insufficient_quota"),
            "You exceeded your current quota",
            id="openai-wrapped",
        ),
        pytest.param(
            {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"},
            ("rate_limit_exceeded", "requests"),
            "Rate limit reached",
            id="openai-sdk-inner-object",
        ),
        pytest.param(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            ("overloaded_error",),
            "Overloaded",
            id="anthropic",
        ),
        pytest.param(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
            ("ThrottlingException",),
            "Rate exceeded",
            id="aws",
        ),
        pytest.param(
            {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
            ("RESOURCE_EXHAUSTED",),
            "quota",
            id="google-status",
        ),
        pytest.param({"error": "invalid_token"}, ("invalid_token",), "invalid_token", id="string-error"),
        pytest.param("upstream timed out", (), "upstream timed out", id="text"),
        pytest.param([1, 2], (), None, id="list"),
        pytest.param(None, (), None, id="none"),
    ],
)
def test_body_codes_and_message(body: object, codes: tuple[str, ...], message: str | None) -> None:
    assert body_error_codes(body) == codes
    assert body_message(body) == message


class Attrs:
    """An object with exactly the attributes given."""

    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


class ErrorWith(Exception):
    """An exception with exactly the attributes given."""

    def __init__(self, message: str = "boom", **attrs: Any) -> None:
        super().__init__(message)
        self.__dict__.update(attrs)


class StreamedResponse:
    """A response whose ``text`` would read the network: it must never be called."""

    status_code = 502
    headers: dict[str, str] = {}  # noqa: RUF012
    calls = 0

    @property
    def text(self) -> str:
        StreamedResponse.calls += 1
        raise AssertionError("text read from the network")


class BrokenHeadersResponse:
    status_code = 503

    @property
    def headers(self) -> dict[str, str]:
        raise RuntimeError("ResponseNotRead")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(ErrorWith(status_code=503), HttpDetails(503), id="status_code"),
        pytest.param(
            ErrorWith(status=429, headers={"Retry-After": "2"}), HttpDetails(429, (("retry-after", "2"),)), id="status"
        ),
        pytest.param(
            ErrorWith(response=Attrs(status_code=404, headers={"X": "y"}, text='{"error": {"code": "nope"}}')),
            HttpDetails(404, (("x", "y"),), {"error": {"code": "nope"}}),
            id="response-object",
        ),
        pytest.param(
            ErrorWith(response=Attrs(status=502, _content=b"bad gateway")),
            HttpDetails(502, (), "bad gateway"),
            id="response-status-and-read-content",
        ),
        pytest.param(
            ErrorWith(
                response={
                    "Error": {"Code": "SlowDown"},
                    "ResponseMetadata": {"HTTPStatusCode": 503, "HTTPHeaders": {"retry-after": "1"}},
                }
            ),
            HttpDetails(
                503,
                (("retry-after", "1"),),
                {
                    "Error": {"Code": "SlowDown"},
                    "ResponseMetadata": {"HTTPStatusCode": 503, "HTTPHeaders": {"retry-after": "1"}},
                },
            ),
            id="botocore-response-dict",
        ),
        pytest.param(
            ErrorWith(status_code=429, body={"code": "x"}), HttpDetails(429, (), {"code": "x"}), id="sdk-body"
        ),
        pytest.param(ErrorWith(status_code=True), None, id="bool-is-not-a-status"),
        pytest.param(ErrorWith(status_code=999), None, id="out-of-range"),
        pytest.param(ErrorWith(status_code="503"), None, id="string-is-not-a-status"),
        pytest.param(ErrorWith(response=BrokenHeadersResponse()), HttpDetails(503), id="headers-property-raises"),
        pytest.param(ValueError("plain"), None, id="nothing-http"),
    ],
)
def test_http_details(exc: BaseException, expected: HttpDetails | None) -> None:
    assert http_details(exc) == expected


def test_http_details_never_calls_a_text_property() -> None:
    StreamedResponse.calls = 0
    details = http_details(ErrorWith(response=StreamedResponse()))
    assert details == HttpDetails(502)
    assert StreamedResponse.calls == 0


def test_http_details_reads_a_real_httpx_error() -> None:
    httpx = pytest.importorskip("httpx")
    request = httpx.Request("POST", "https://api.example.test/v1/chat")
    response = httpx.Response(
        429, headers={"retry-after": "8"}, json={"error": {"code": "rate_limit_exceeded"}}, request=request
    )
    details = http_details(httpx.HTTPStatusError("429", request=request, response=response))
    assert details is not None
    assert details.status == 429
    assert ("retry-after", "8") in details.headers
    assert details.body == {"error": {"code": "rate_limit_exceeded"}}


# --- waits stated in prose and in body fields -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Please try again in 20s.", 20.0, id="openai-seconds"),
        pytest.param("Please try again in 1.5s. Visit https://x", 1.5, id="openai-fraction"),
        pytest.param("Please try again in 6m0s.", 360.0, id="openai-go-minutes"),
        pytest.param("Please try again in 644ms.", 0.644, id="openai-ms"),
        pytest.param("Please try again in 7.66s.", 7.66, id="groq"),
        pytest.param("Please try again in 1m0.363142857s.", 60.363142857, id="groq-compound"),
        pytest.param("try again in 1h2m3.5s", 3723.5, id="go-hours"),
        pytest.param("Please retry after 21 seconds.", 21.0, id="azure"),
        pytest.param("Please retry in 37.519576667s.", 37.519576667, id="gemini"),
        pytest.param("Rate limit is exceeded. Try again in 30 seconds.", 30.0, id="apim-capitalised"),
        pytest.param("Please wait 2 minutes before retrying", 120.0, id="wait-minutes"),
        pytest.param("quota resets in 3 hours", 10800.0, id="reset-hours"),
        pytest.param("try again in 250 ms", 0.25, id="ms-word"),
        pytest.param("Too Many Requests: retry after 41", 41.0, id="telegram-unitless"),
        pytest.param("Too Many Requests: retry after 5.", 5.0, id="telegram-unitless-stop"),
        pytest.param("retry after 3 times", None, id="a-count-is-not-a-wait"),
        pytest.param("timed out after 30 seconds", None, id="a-timeout-is-not-a-wait"),
        pytest.param("Limit 30000, Used 29000, Requested 2000.", None, id="numbers-without-a-wait"),
        pytest.param("Please try again later.", None, id="later-states-no-wait"),
        pytest.param("try again in 20", None, id="no-unit"),
        pytest.param("try again in 5 days", 432000.0, id="days"),
        pytest.param("", None, id="empty"),
    ],
)
def test_prose_retry_hint(text: str, expected: float | None) -> None:
    result = prose_retry_hint(text)
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_prose_retry_hint_reads_only_the_start_of_a_huge_text() -> None:
    assert prose_retry_hint("x" * MAX_PROSE_CHARS + " try again in 5s") is None
    assert prose_retry_hint("try again in 5s " + "x" * 10 * MAX_PROSE_CHARS) == 5.0
    assert prose_retry_hint(None) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"error": "Model x is currently loading", "estimated_time": 20.0}, 20.0, id="hf-loading"),
        pytest.param(
            {"message": "You are being rate limited.", "retry_after": 64.57, "global": False}, 64.57, id="discord"
        ),
        pytest.param({"ok": False, "parameters": {"retry_after": 41}}, 41.0, id="telegram-parameters"),
        pytest.param({"error": {"retry_after_ms": 1500}}, 1.5, id="milliseconds-in-error"),
        pytest.param({"estimated_time": -1}, None, id="negative-ignored"),
        pytest.param({"estimated_time": True}, None, id="bool-ignored"),
        pytest.param({"estimated_time": "20"}, None, id="text-ignored"),
        pytest.param({"estimated_time": float("nan")}, None, id="nan-ignored"),
        pytest.param(["estimated_time", 20], None, id="not-a-mapping"),
    ],
)
def test_body_field_hint(body: object, expected: float | None) -> None:
    assert body_field_hint(body) == expected


def test_stated_retry_hint_prefers_headers_then_body_fields_then_body_prose_then_the_message() -> None:
    body = {"error": {"message": "Please try again in 20s."}, "estimated_time": 9.0}
    assert stated_retry_hint(headers={"retry-after": "3"}, body=body, message="try again in 1s", now=NOW) == 3.0
    assert stated_retry_hint(headers={"x-other": "1"}, body=body, message="try again in 1s", now=NOW) == 9.0
    assert stated_retry_hint(body={"error": {"message": "Please try again in 20s."}}, message="in 1s", now=NOW) == 20.0
    assert stated_retry_hint(body={"error": {"message": "later"}}, message="Retry in 30 seconds", now=NOW) == 30.0
    assert stated_retry_hint(message="Please try again later.", now=NOW) is None


def test_classify_http_reads_a_hint_from_the_body_when_no_header_states_one() -> None:
    from error_handling.classifier import Classifier

    classifier = Classifier(clock=lambda: NOW)
    loading = classifier.classify_http(503, None, {"error": "Model gpt2 is currently loading", "estimated_time": 20.0})
    assert loading.retry_after == 20.0
    prose = classifier.classify_http(429, {}, {"error": {"message": "Please try again in 6m0s."}})
    assert prose.retry_after == 360.0
    both = classifier.classify_http(429, {"retry-after": "2"}, {"error": {"message": "Please try again in 6m0s."}})
    assert both.retry_after == 2.0


def test_an_error_states_its_wait_in_its_own_message() -> None:
    from error_handling.classifier import Classifier

    class RetryAfter(Exception):
        pass

    c = Classifier(clock=lambda: NOW).classify(RetryAfter("Flood control exceeded. Retry in 30 seconds"))
    assert c.retry_after == 30.0
