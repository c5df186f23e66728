"""The rules on brokers, caches, Celery and the network (error_handling/rules/brokers.py, celery.py,
network.py): what the corpus does not pin down on its own."""

from __future__ import annotations

import datetime as dt

import amqp.exceptions
import celery.exceptions
import httpx
import pytest
import redis.exceptions
from redis._parsers.base import BaseParser

from error_handling.categories import Category, Reason
from error_handling.classifier import Classifier, classify, classify_http
from error_handling.exceptions import TransientError
from error_handling.rules import AMQP_REPLY_CODES, CODE_RULES, REDIS_REPLY_CODES, all_outcomes

NOW = 1767225600.0  # 2026-01-01T00:00:00Z
CLASSIFIER = Classifier(clock=lambda: NOW)


def test_every_reply_code_is_listed_among_the_outcomes() -> None:
    described = {description for description, _ in all_outcomes()}
    assert {f"redis:{code}" for code in REDIS_REPLY_CODES} <= described
    assert {f"amqp:{code}" for code in AMQP_REPLY_CODES} <= described
    assert {rule.name for rule in CODE_RULES} >= {"redis", "amqp"}


@pytest.mark.parametrize(
    ("text", "reason", "rule"),
    [
        ("BUSY Redis is busy running a module command.", Reason.SERVICE_UNAVAILABLE, "redis:BUSY"),
        ("LOADING Redis is loading the dataset in memory", Reason.SERVICE_UNAVAILABLE, "redis:LOADING"),
        (
            "ERR max number of clients reached",
            Reason.POOL_EXHAUSTED,
            "exception:redis.exceptions.MaxClientsReachedError",
        ),
        ("SOMEMODULE_CODE something else", Reason.PERMANENT_FAILURE, "exception:redis.exceptions.ResponseError"),
    ],
)
def test_a_redis_reply_is_judged_by_its_code(text: str, reason: Reason, rule: str) -> None:
    got = classify(BaseParser.parse_error(text))
    assert (got.reason, got.rule) == (reason.value, rule)


def test_a_reply_code_in_the_message_is_read_when_redis_py_kept_no_status_code() -> None:
    exc = redis.exceptions.ResponseError(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    )
    del exc.status_code
    assert classify(exc).reason == Reason.SERVICE_UNAVAILABLE.value


def test_an_amqp_error_is_judged_by_its_reply_code_not_its_class() -> None:
    # a code py-amqp has no class for falls back to ChannelError, which the code still decides
    exc = amqp.exceptions.error_for_code(
        311, "CONTENT_TOO_LARGE - message too large", (60, 40), amqp.exceptions.ChannelError
    )
    got = classify(exc)
    assert (got.category, got.reason, got.rule) == (Category.VALIDATION, Reason.PAYLOAD_TOO_LARGE.value, "amqp:311")
    resource = classify(amqp.exceptions.error_for_code(506, "RESOURCE_ERROR", (0, 0), amqp.exceptions.ConnectionError))
    assert (resource.category, resource.resource) == (Category.RESOURCE, "broker")


def test_a_retry_keeps_the_classification_of_its_exc_and_its_own_countdown() -> None:
    got = CLASSIFIER.classify(celery.exceptions.Retry(exc=httpx.ReadTimeout("timed out"), when=15))
    assert (got.reason, got.retry_after, got.rule) == (
        Reason.TIMEOUT.value,
        15.0,
        "wrapped:exception:httpx.ReadTimeout",
    )
    # without a countdown, the hint of the error it wraps stays
    limited = TransientError("slow down", reason=Reason.RATE_LIMITED, retry_after=90)
    got = CLASSIFIER.classify(celery.exceptions.Retry(exc=limited))
    assert (got.reason, got.retry_after) == (Reason.RATE_LIMITED.value, 90.0)


@pytest.mark.parametrize(
    ("when", "hint"),
    [
        (dt.datetime(2026, 1, 1, 0, 0, 30), 30.0),  # naive: UTC, as Celery reads an ETA
        (dt.datetime(2026, 1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), 30.0),
        (dt.datetime(2025, 12, 31, 23, 0, tzinfo=dt.UTC), 0.0),  # in the past: now
        ("soon", None),
        (float("nan"), None),
        (-3, None),
    ],
)
def test_a_retry_countdown_is_read_as_seconds_or_a_datetime(when: object, hint: float | None) -> None:
    got = CLASSIFIER.classify(celery.exceptions.Retry(when=when))
    assert (got.category, got.retry_after) == (Category.TRANSIENT, hint)


def test_a_reject_that_requeues_is_transient_and_one_that_drops_is_permanent() -> None:
    assert classify(celery.exceptions.Reject("later", requeue=True)).category is Category.TRANSIENT
    assert classify(celery.exceptions.Reject("never", requeue=False)).category is Category.PERMANENT
    assert classify(celery.exceptions.Reject()).category is Category.PERMANENT


def test_kombu_operational_error_is_judged_by_what_it_wraps_first() -> None:
    import kombu.exceptions

    wrongpass = BaseParser.parse_error("WRONGPASS invalid username-password pair or user is disabled.")
    try:
        raise kombu.exceptions.OperationalError(str(wrongpass)) from wrongpass
    except kombu.exceptions.OperationalError as exc:
        got = classify(exc)
    assert (got.reason, got.rule) == (
        Reason.AUTH_FAILED.value,
        "wrapped:redis:WRONGPASS",
    )
    assert (
        classify(kombu.exceptions.OperationalError("[Errno 111] Connection refused")).reason == Reason.CONNECTION.value
    )


def test_a_tls_failure_is_configuration_but_other_tls_errors_stay_transient() -> None:
    failed = httpx.ConnectError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)"
    )
    assert classify(failed).reason == Reason.INVALID_CONFIGURATION.value
    eof = httpx.ConnectError("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1006)")
    assert classify(eof).reason == Reason.CONNECTION.value


def test_http_511_is_configuration() -> None:
    got = classify_http(511, {}, "<html><title>Network Authentication Required</title></html>")
    assert (got.category, got.reason) == (Category.PERMANENT, Reason.INVALID_CONFIGURATION.value)
