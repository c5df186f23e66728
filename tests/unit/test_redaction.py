"""Redaction: secrets never reach a log or a stored text (invariant 6).

Canary secrets (each holds the word ``canary``; the names of the constants do not, since tracebacks
show source lines) are planted everywhere a secret can hide; the tests assert ``canary`` never comes
out, so a partial leak (half a key) fails as surely as a whole one.
"""

from __future__ import annotations

import copy
import datetime
import enum
import io
import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from error_handling.exceptions import ConfigurationError
from error_handling.redaction import (
    CIRCULAR,
    DEFAULT_REDACTOR,
    REDACTED,
    TRUNCATED,
    RedactingFilter,
    Redactor,
    contains_secret,
    is_secret_key,
    redact,
    redact_text,
)
from tests.support.public_names import assert_all_lists_the_public_names

PLANTED_KEY = "sk-canary-3f9a1c0e5b7d4a2e9c81"
PLANTED_PW = "hunter2-canary-pw"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlLWNhbmFyeQ"


def assert_clean(output: object) -> None:
    text = output if isinstance(output, str) else repr(output)
    assert "canary" not in text.lower(), text


# --- key names ----------------------------------------------------------------------------------------

SECRET_KEYS = [
    "password", "PASSWORD", "DB_PASSWORD", "db-password", "dbPassword", "DBPASSWORD", "passwd", "pwd",
    "smtp_pass", "passphrase", "password_hash", "new_password2",
    "secret", "client_secret", "clientSecret", "stripeSecretKey", "secret_key", "SECRET_KEY", "secrets",
    "token", "access_token", "accessToken", "refresh_token", "id_token", "idToken", "authToken", "x-auth-token",
    "X-Amz-Security-Token", "OAuth2Token", "csrf_token", "session_token",
    "api_key", "apikey", "apiKey", "APIKey", "x-api-key", "X-API-Key", "openai_api_key", "OPENAI_API_KEY",
    "anthropic_key", "private_key", "privateKey", "private_key_pem", "aws_secret_access_key",
    "aws_access_key_id", "encryption_key", "api_keys",
    "authorization", "Authorization", "HTTP_AUTHORIZATION", "proxy-authorization", "auth", "http_auth",
    "basicAuth", "oauth", "auth_header", "authorization_code",
    "credential", "credentials", "creds", "aws_credentials",
    "cookie", "Cookie", "set-cookie", "Set-Cookie", "cookies", "session", "session_id", "sessionid",
    "signature", "x-hub-signature-256", "webhook_signature",
    "dsn", "sentry_dsn", "SENTRY_DSN", "connection_string", "connectionString", "conn_str",
    "database_url", "DATABASE_URL", "SQLALCHEMY_DATABASE_URI", "db_url", "jwt",
]  # fmt: skip

NOT_SECRET_KEYS = [
    "max_tokens", "total_tokens", "prompt_tokens", "completion_tokens", "tokens", "token_count",
    "tokenCount", "token_type", "token_url", "token_expires_at",
    "author", "authors", "auth_failed", "auth_type", "auth_method", "authenticated",
    "routing_key", "cache_key", "idempotency_key", "partition_key", "primary_key", "public_key", "key",
    "keys", "key_name", "sort_key",
    "password_length", "password_policy", "secret_name", "session_timeout", "cookie_domain",
    "signature_version", "broker_url", "url", "status_code", "error_code", "user", "username", "email",
    "task_id", "client_id", "name", "description", "passenger", "bypass_cache", "keyboard", "monkey",
]  # fmt: skip


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_key_names(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", NOT_SECRET_KEYS)
def test_harmless_key_names(key: str) -> None:
    assert not is_secret_key(key)


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_every_secret_key_is_found_in_free_text_too(key: str) -> None:
    for text in (
        f"{key}={PLANTED_PW}",
        f'{{"{key}": "{PLANTED_PW}"}}',
        f"{key}: {PLANTED_PW}",
        f"<{key}>{PLANTED_PW}</{key}>",
    ):
        assert_clean(redact_text(text))


@pytest.mark.parametrize("key", NOT_SECRET_KEYS)
def test_harmless_keys_are_kept_in_free_text(key: str) -> None:
    assert redact_text(f"{key}=4096 and {key}: plain") == f"{key}=4096 and {key}: plain"


def test_extra_keys_match_like_the_built_in_ones() -> None:
    redactor = Redactor(extra_keys=["ssn", "internal-ref"])
    for key in ("ssn", "SSN", "user_ssn", "userSsn", "ssn_value", "internal_ref", "InternalRef"):
        assert redactor.is_secret_key(key), key
    assert not redactor.is_secret_key("ssn_count")
    assert not redactor.is_secret_key("reference")
    assert redactor.redact_text("userSsn=123-45-6789 ok") == f"userSsn={REDACTED} ok"
    assert redactor.redact({"ssn": "123-45-6789"}) == {"ssn": REDACTED}
    assert DEFAULT_REDACTOR.is_secret_key("ssn")  # built in since; "internal-ref" is not
    assert not DEFAULT_REDACTOR.is_secret_key("internal_ref")


# --- patterns in text ------------------------------------------------------------------------------------

PATTERNS = [
    # (text, redacted text)
    (f"password={PLANTED_PW} user=bob", f"password={REDACTED} user=bob"),
    (f"api_key: {PLANTED_PW}", f"api_key: {REDACTED}"),
    (f'{{"token": "{PLANTED_PW}", "max_tokens": 5}}', f'{{"token": "{REDACTED}", "max_tokens": 5}}'),
    (f"{{'password': '{PLANTED_PW}', 'user': 'bob'}}", f"{{'password': '{REDACTED}', 'user': 'bob'}}"),
    (f"{{'password': b'{PLANTED_PW}'}}", f"{{'password': {REDACTED}}}"),
    (f"{{'auth': ('bob', '{PLANTED_PW}'), 'n': 1}}", f"{{'auth': {REDACTED}, 'n': 1}}"),
    (f"{{'credentials': {{'user': 'a', 'pin': '{PLANTED_PW}'}}, 'n': 1}}", f"{{'credentials': {REDACTED}, 'n': 1}}"),
    (f'{{\\"password\\": \\"{PLANTED_PW}\\", \\"a\\": 1}}', f'{{\\"password\\": \\"{REDACTED}\\", \\"a\\": 1}}'),
    (f'password="with \\"quote\\" {PLANTED_PW}" x=1', f'password="{REDACTED}" x=1'),
    (f"DB_PASSWORD='{PLANTED_PW}'", f"DB_PASSWORD='{REDACTED}'"),
    (f"--password={PLANTED_PW} --verbose", f"--password={REDACTED} --verbose"),
    (f"<password>{PLANTED_PW}</password>", f"<password>{REDACTED}</password>"),
    (
        f"GET https://api.example.com/v1?api_key={PLANTED_PW}&q=1",
        f"GET https://api.example.com/v1?api_key={REDACTED}&q=1",
    ),
    (f"url=https://h.example/?token={PLANTED_PW} ok", f"url=https://h.example/?token={REDACTED} ok"),
    (f'msg="password={PLANTED_PW}"', f'msg="password={REDACTED}"'),
    # URLs
    (f"postgres://app:{PLANTED_PW}@db:5432/app", f"postgres://app:{REDACTED}@db:5432/app"),
    (f"redis://:{PLANTED_PW}@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
    ("amqp://guest:p@ss-canary@rabbit//", f"amqp://guest:{REDACTED}@rabbit//"),
    ("https://0123456789abcdefcanary0123@o1.ingest.sentry.io/5", f"https://{REDACTED}@o1.ingest.sentry.io/5"),
    ("https://hooks.slack.com/services/T000/B000/canaryXYZ", f"https://hooks.slack.com/services/{REDACTED}"),
    # headers and schemes
    ("Authorization: Bearer canary.abc-123", f"Authorization: {REDACTED}"),
    ('curl -H "Authorization: Basic Y2FuYXJ5OnB3" https://x', f'curl -H "Authorization: {REDACTED}" https://x'),
    ("Cookie: sid=canary1; theme=dark\nnext line", f"Cookie: {REDACTED}\nnext line"),
    ("sent Bearer canary-0123456789 upstream", f"sent Bearer {REDACTED} upstream"),
    # provider keys
    (f"bad key {PLANTED_KEY} used", f"bad key {REDACTED} used"),
    ("sk-proj-canaryABCDEFGHIJKLMNOP_qrstu", REDACTED),
    ("sk-ant-api03-canary0123456789abcdef-xyz", REDACTED),
    ("sk_live_canary0123456789", REDACTED),
    ("id AKIACANARY0123456789 here", f"id {REDACTED} here"),
    ("aws_secret_access_key=canary/AbCdEfGh+0123456789", f"aws_secret_access_key={REDACTED}"),
    ("ghp_canary0123456789ABCDEFGHIJKLMNOPQRSTUV", REDACTED),
    ("github_pat_11canary0123456789_abcdefghijklmnop", REDACTED),
    ("xoxb-1234567890-canary-abcdef", REDACTED),
    ("AIzaSyCanary0123456789abcdefghijklmnopq", REDACTED),
    ("ya29.canary0123456789abcdefghij", REDACTED),
    ("hf_canary0123456789abcdefghijklmnopqrs", REDACTED),
    (f"jwt {JWT} expired", f"jwt {REDACTED} expired"),
    (
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIcanary0123\nabc+/=\n-----END RSA PRIVATE KEY-----\nend",
        f"key:\n{REDACTED}\nend",
    ),
    ("-----BEGIN PRIVATE KEY-----\\nMIIcanary\\nxyz", REDACTED),
]


@pytest.mark.parametrize(("text", "expected"), PATTERNS)
def test_patterns_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert_clean(redact_text(text))
    assert contains_secret(text)


@pytest.mark.parametrize(("text", "expected"), PATTERNS)
def test_redaction_is_idempotent(text: str, expected: str) -> None:
    assert redact_text(expected) == expected
    assert not contains_secret(expected)


HARMLESS_TEXTS = [
    "Basic authentication failed for user bob",
    "the bearer of bad news",
    "max_tokens=4096 prompt_tokens=12 total_tokens: 99 token_count=3",
    "routing_key=celery cache_key: user:42 status_code=429",
    "author: Jane Doe",
    "https://example.com/path?q=1&page=2",
    "ssh://git@github.com/org/repo.git",
    "http://localhost:8080/health",
    "connect to redis://cache:6379/0 failed",
    "task-abcdefghijklmnopqrstuvwxyz finished",
    "ConnectionError: HTTPSConnectionPool(host='api.openai.com', port=443): Read timed out.",
    "<uuid> <n> <hex>",
    "",
]


@pytest.mark.parametrize("text", HARMLESS_TEXTS)
def test_harmless_text_is_kept(text: str) -> None:
    assert redact_text(text) == text
    assert not contains_secret(text)


def test_a_traceback_is_redacted() -> None:
    def connect(url: str, api_key: str) -> None:
        raise ConnectionError(f"cannot reach {url} with api_key={api_key}")

    try:
        try:
            connect(f"postgres://app:{PLANTED_PW}@db/app", PLANTED_KEY)
        except ConnectionError as exc:
            raise RuntimeError(f"giving up; Authorization: Bearer {PLANTED_PW}") from exc
    except RuntimeError as exc:
        text = "".join(traceback.format_exception(exc))
    assert "canary" in text
    redacted = redact_text(text)
    assert_clean(redacted)
    assert "Traceback (most recent call last)" in redacted
    assert "ConnectionError: cannot reach postgres://app:[REDACTED]@db/app" in redacted


def test_extra_patterns_replace_the_match_or_its_secret_group() -> None:
    redactor = Redactor(extra_patterns=[r"INTERNAL-\d{6}", re.compile(r"pin (?P<secret>\d{4})")])
    assert redactor.redact_text("ref INTERNAL-123456, pin 1234") == f"ref {REDACTED}, pin {REDACTED}"


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="invalid redaction pattern"):
        Redactor(extra_patterns=["(unclosed"])
    with pytest.raises(ConfigurationError, match="max_depth"):
        Redactor(max_depth=0)


# --- structures -------------------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


class Opaque:
    def __repr__(self) -> str:
        return f"Opaque(token={PLANTED_PW})"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_redact_hides_secret_keys_and_patterns_everywhere() -> None:
    kwargs: dict[str, Any] = {
        "prompt": "hello",
        "max_tokens": 256,
        "api_key": PLANTED_KEY,
        "openaiApiKey": PLANTED_KEY,
        "headers": {"Authorization": f"Bearer {PLANTED_PW}", "X-Request-Id": "r1"},
        "db": {"DATABASE_URL": f"postgres://u:{PLANTED_PW}@h/db", "pool": 5},
        "attempts": [{"password": PLANTED_PW}, f"note: password={PLANTED_PW}", [f"deep {PLANTED_KEY}"]],
        "pin": 1234,
        "credentials": {"user": "bob", "pin": 9999},
        "auth": ("bob", PLANTED_PW),
        "message": f"calling with {PLANTED_KEY}",
    }
    redacted = redact(kwargs)
    assert_clean(redacted)
    assert redacted["prompt"] == "hello"
    assert redacted["max_tokens"] == 256
    assert redacted["api_key"] == REDACTED
    assert redacted["headers"] == {"Authorization": REDACTED, "X-Request-Id": "r1"}
    assert redacted["db"] == {"DATABASE_URL": REDACTED, "pool": 5}
    assert redacted["attempts"] == [{"password": REDACTED}, f"note: password={REDACTED}", [f"deep {REDACTED}"]]
    assert redacted["pin"] == REDACTED  # a number under a secret key is hidden too
    assert redacted["credentials"] == REDACTED
    assert redacted["auth"] == REDACTED
    assert redacted["message"] == f"calling with {REDACTED}"


def test_redact_never_mutates_its_input() -> None:
    value: dict[str, Any] = {
        "password": PLANTED_PW,
        "items": [{"token": PLANTED_PW}, {PLANTED_KEY}],
        "t": (PLANTED_KEY,),
    }
    before = copy.deepcopy(value)
    redact(value)
    assert value == before


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, PLANTED_KEY), (1, REDACTED)),
        ([PLANTED_KEY], [REDACTED]),
        ({PLANTED_KEY, "a"}, {REDACTED, "a"}),
        (frozenset({PLANTED_KEY}), frozenset({REDACTED})),
        (f"k {PLANTED_KEY}".encode(), f"k {REDACTED}".encode()),
        (bytearray(f"k {PLANTED_KEY}".encode()), bytearray(f"k {REDACTED}".encode())),
        (b"\xff\xfe token=" + PLANTED_PW.encode(), b"\xff\xfe token=" + REDACTED.encode()),
        ({PLANTED_KEY: 1}, {REDACTED: 1}),
        ({1: PLANTED_KEY, b"password": PLANTED_PW}, {1: REDACTED, b"password": REDACTED}),
        (Opaque(), f"Opaque(token={REDACTED})"),
        (BrokenRepr(), "<BrokenRepr object (repr failed)>"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_redact_keeps_types(value: Any, expected: Any) -> None:
    redacted = redact(value)
    assert redacted == expected
    assert type(redacted) is type(expected)
    assert_clean(redacted)


@pytest.mark.parametrize(
    "value",
    [
        None, True, 3, 2.5, Decimal("1.10"), datetime.datetime(2024, 5, 1, 12, 0), datetime.date(2024, 5, 1),
        datetime.timedelta(seconds=3), uuid.UUID(int=7), Color.RED, "plain text", b"plain bytes",
    ],
    ids=repr,
)  # fmt: skip
def test_harmless_values_come_back_as_they_are(value: Any) -> None:
    assert redact(value) is value


@pytest.mark.parametrize("empty", [None, "", b"", [], {}, (), False, True])
def test_empty_values_under_secret_keys_are_kept(empty: Any) -> None:
    assert redact({"password": empty}) == {"password": empty}


@pytest.mark.parametrize("value", [0, 123456, 1.5, ["a"], {"x": 1}, b"\x00"], ids=repr)
def test_any_other_value_under_a_secret_key_is_hidden(value: Any) -> None:
    assert redact({"api_key": value}) == {"api_key": REDACTED}


def test_cycles_and_depth() -> None:
    cyclic: list[Any] = [PLANTED_KEY]
    cyclic.append(cyclic)
    assert redact(cyclic) == [REDACTED, CIRCULAR]
    shared = [PLANTED_KEY]
    assert redact([shared, shared]) == [[REDACTED], [REDACTED]]  # shared is not a cycle

    deep: Any = PLANTED_KEY
    for _ in range(30):
        deep = [deep]
    shallow = Redactor(max_depth=3).redact(deep)
    assert shallow == [[[TRUNCATED]]]
    assert_clean(redact(deep))


def test_patterns_are_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = Redactor(extra_keys=["ssn"], extra_patterns=[r"INTERNAL-\d+"])

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pattern was compiled while redacting")

    monkeypatch.setattr(re, "compile", refuse)
    monkeypatch.setattr(re, "sub", refuse)
    monkeypatch.setattr(re, "search", refuse)
    assert_clean(redactor.redact({"ssn": 1, "m": f"password={PLANTED_PW} {PLANTED_KEY} <token>canary</token>"}))


def test_text_without_secrets_is_cheap() -> None:
    line = "task tasks.send_email[8c1f] failed: ConnectionError after 3 attempts (host=smtp.example.com)"
    start = time.perf_counter()
    for _ in range(2000):
        redact_text(line)
    assert time.perf_counter() - start < 1.0  # about 20 µs a line; the bound only catches a blow-up


# --- logging -----------------------------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose only handler redacts and writes what it formats to a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(f"tests.redaction.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def _raise_and_log(logger: logging.Logger) -> None:
    try:
        raise ValueError(f"login failed: password={PLANTED_PW} via postgres://app:{PLANTED_PW}@db/app")
    except ValueError:
        logger.exception("request failed")


def _raise_chained_and_log(logger: logging.Logger) -> None:
    try:
        try:
            raise KeyError(PLANTED_KEY)
        except KeyError as exc:
            raise RuntimeError("lookup failed") from exc
    except RuntimeError as exc:
        logger.error("task %s failed", "t1", exc_info=exc)


LOG_CALLS: list[tuple[str, Callable[[logging.Logger], None]]] = [
    ("msg", lambda log: log.info(f"calling OpenAI with {PLANTED_KEY}")),
    ("msg-pair", lambda log: log.info(f"retrying with password={PLANTED_PW}")),
    ("args-tuple", lambda log: log.info("calling %s with %s", "openai", PLANTED_KEY)),
    ("args-split", lambda log: log.info("login with password=%s", PLANTED_PW)),
    ("args-split-repr", lambda log: log.info("login with token=%r", PLANTED_PW)),
    ("args-dict", lambda log: log.info("kwargs: %s", {"api_key": PLANTED_PW, "n": 1})),
    ("args-mapping", lambda log: log.info("key %(api_key)s for %(user)s", {"api_key": PLANTED_PW, "user": "bob"})),
    ("args-nested", lambda log: log.info("payload %s", [{"headers": {"Authorization": f"Bearer {PLANTED_PW}"}}])),
    ("args-object", lambda log: log.info("got %s", Opaque())),
    ("args-bytes", lambda log: log.info("raw %s", f"token={PLANTED_PW}".encode())),
    ("msg-dict", lambda log: log.info({"credentials": {"user": "bob", "word": PLANTED_PW}})),
    ("exception", _raise_and_log),
    ("exception-chained", _raise_chained_and_log),
    ("stack", lambda log: log.warning("where am I", stack_info=True)),  # api_key=sk-canary-3f9a1c0e5b7d4a2e9c81
]


@pytest.mark.parametrize("call", [call for _, call in LOG_CALLS], ids=[name for name, _ in LOG_CALLS])
def test_logging_filter_lets_no_secret_out(
    captured: tuple[logging.Logger, io.StringIO], call: Callable[[logging.Logger], None]
) -> None:
    logger, stream = captured
    call(logger)
    output = stream.getvalue()
    assert output.strip()
    assert_clean(output)


def test_logging_filter_keeps_what_is_not_secret(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("task %s took %.1f s (max_tokens=%d)", "t1", 1.25, 4096)
    _raise_and_log(logger)
    output = stream.getvalue()
    assert "INFO" in output
    assert "task t1 took 1.2 s (max_tokens=4096)" in output
    assert "Traceback (most recent call last)" in output
    assert f"ValueError: login failed: password={REDACTED} via postgres://app:{REDACTED}@db/app" in output


def test_logging_filter_leaves_clean_records_alone() -> None:
    args = ("t1", 3)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "task %s attempt %d", args, None)
    assert RedactingFilter().filter(record) is True
    assert record.msg == "task %s attempt %d"
    assert record.args == args
    assert record.getMessage() == "task t1 attempt 3"


def test_logging_filter_renders_and_clears_the_exception() -> None:
    try:
        raise ValueError(f"bad token={PLANTED_PW}")
    except ValueError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), (type(exc), exc, exc.__traceback__))
    RedactingFilter().filter(record)
    assert record.exc_info is None
    assert record.exc_text is not None
    assert f"ValueError: bad token={REDACTED}" in record.exc_text
    assert_clean(logging.Formatter().format(record))


def test_logging_filter_survives_a_broken_format_string() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, f"%d password={PLANTED_PW}", ("nan",), None)
    assert RedactingFilter().filter(record) is True
    assert_clean(record.msg)


def test_logging_filter_uses_the_given_redactor() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(Redactor(extra_keys=["ssn"])))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "user %s", ({"ssn": "123-45-6789"},), None)
    handler.handle(record)
    assert "123-45-6789" not in stream.getvalue()


def test_logging_filter_keeps_argument_types_for_number_formats(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("%(attempt)d of %(max)d took %(secs).2f s", {"attempt": 2, "max": 5, "secs": Decimal("1.5")})
    logger.info("%d of %d took %.2f s", 3, 5, Decimal("0.25"))
    name = logger.name
    assert stream.getvalue().splitlines() == [f"INFO {name} 2 of 5 took 1.50 s", f"INFO {name} 3 of 5 took 0.25 s"]


def test_all_lists_the_public_names() -> None:
    assert_all_lists_the_public_names("error_handling.redaction")
