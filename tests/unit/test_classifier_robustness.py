"""The classifier never raises, whatever it is given, and its cost stays linear in the message length.

Never raising is a property over generated inputs (hypothesis): exception classes with any name, module
and bases, attributes of any JSON shape or type, attributes that raise when read, messages that are huge,
odd or unprintable, headers of any type, causes and contexts that loop. Linear cost is shown by
construction, not by timing (the house rule: no timing threshold in a unit test): every regular
expression on the classifier's path has no unbounded repetition nested in another (the shape that
backtracks catastrophically), and every scan reads a capped prefix, so past the cap a longer message
costs nothing more.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import re
from collections.abc import Iterator, Mapping
from re import _constants as sre_constants  # the parser re compiles with (sre_parse is deprecated)
from re import _parser as sre_parse
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import error_handling.http
import error_handling.rules
from error_handling.classification import Classification
from error_handling.classifier import MAX_MESSAGE_LENGTH, Classifier
from error_handling.exceptions import PermanentError, ResourceError, TransientError, ValidationError
from error_handling.fingerprint import MAX_FINGERPRINT_CHARS
from error_handling.http import MAX_BODY_CHARS, MAX_PROSE_CHARS

CLASSIFIER = Classifier(clock=lambda: 1767225600.0)

#: Attributes the classifier and its rules read from an exception.
READ_ATTRIBUTES = (
    "response", "status_code", "status", "headers", "body", "code", "errno", "sqlstate", "pgcode", "orig",
    "original_exception", "reply_code", "retry_after", "args", "message", "strerror", "request", "details",
)  # fmt: skip

BASES: tuple[type[BaseException], ...] = (
    Exception, ValueError, KeyError, OSError, TimeoutError, ConnectionError, RuntimeError, TypeError,
    UnicodeDecodeError, LookupError, ArithmeticError, MemoryError, RecursionError, KeyboardInterrupt,
    TransientError, PermanentError, ValidationError, ResourceError,
)  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
provider_keys = st.sampled_from(
    ["error", "Error", "code", "type", "message", "status", "details", "retryDelay", "@type", "estimated_time",
     "retry_after", "parameters", "description", "ResponseMetadata", "HTTPStatusCode", "HTTPHeaders", "violations"]
)  # fmt: skip
provider_bodies = st.recursive(
    json_values,
    lambda inner: st.dictionaries(provider_keys, inner, max_size=5) | st.lists(inner, max_size=3),
    max_leaves=25,
)


class Raises:
    """Any attribute read raises; so do str(), repr(), iteration, items() and comparisons."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")

    def __str__(self) -> str:
        raise RuntimeError("no str")

    __repr__ = __str__

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iteration")

    def items(self) -> Any:
        raise RuntimeError("no items")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    __hash__ = None  # type: ignore[assignment]


odd_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="0123456789.:-_ smhx'\"`/\\", max_size=300),
    st.builds(
        lambda unit, n: unit * n,
        st.sampled_from(["9", "a1", "try again in ", "'", '"', "/a", "0x", ":", "-", "1.", "\x00", "\ud800"]),
        st.integers(0, 3000),
    ),
)
headers = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["retry-after", "Retry-After", "retry-after-ms", "x-ratelimit-reset", "x-ratelimit-reset-tokens", "ratelimit-reset", "x"]), st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none(), st.binary(max_size=10)), max_size=4),
    st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20)), max_size=3),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.tuples(st.integers())), max_size=3),
    st.just(Raises()),
    st.integers(),
    st.text(max_size=20),
)  # fmt: skip
attribute_values = st.one_of(
    json_values, provider_bodies, odd_text, headers, st.binary(max_size=200), st.just(Raises()),
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
)  # fmt: skip


class ResponseLike:
    """A response-ish object with generated status, headers and body."""

    def __init__(self, status: Any, headers: Any, text: Any) -> None:
        self.status_code = status
        self.headers = headers
        self.text = text


@st.composite
def exceptions(draw: st.DrawFn, depth: int = 0) -> BaseException:
    bases = tuple(draw(st.lists(st.sampled_from(BASES), min_size=1, max_size=3, unique=True)))
    name = draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True))
    module = draw(
        st.sampled_from(
            [
                "builtins",
                "openai",
                "anthropic",
                "psycopg.errors",
                "redis.exceptions",
                "sqlalchemy.exc",
                "botocore.exceptions",
                "celery.exceptions",
                "kombu.exceptions",
                "x.y",
                "",
            ]
        )
    )
    namespace: dict[str, Any] = {"__module__": module}
    if draw(st.booleans()):
        raising = draw(st.lists(st.sampled_from(READ_ATTRIBUTES), max_size=4, unique=True))
        for attribute in raising:
            namespace[attribute] = property(lambda self, a=attribute: (_ for _ in ()).throw(RuntimeError(a)))
    if draw(st.booleans()):
        namespace["__str__"] = lambda self: (_ for _ in ()).throw(ValueError("unprintable"))
    try:
        cls = type(name, bases, namespace)
        exc = cls.__new__(cls)
    except TypeError:
        assume(False)
        raise
    try:
        BaseException.__init__(exc, *draw(st.lists(st.one_of(odd_text, json_values), max_size=3)))
    except Exception:
        assume(False)
    for attribute in draw(st.lists(st.sampled_from(READ_ATTRIBUTES), max_size=6, unique=True)):
        value = draw(st.one_of(attribute_values, st.builds(ResponseLike, attribute_values, headers, attribute_values)))
        with contextlib.suppress(Exception):  # a property that raises cannot be set: it stays raising
            setattr(exc, attribute, value)
    if depth < 2 and draw(st.booleans()):
        exc.__cause__ = draw(exceptions(depth + 1))
    if depth < 2 and draw(st.booleans()):
        exc.__context__ = draw(exceptions(depth + 1))
    if draw(st.booleans()):
        exc.__context__ = exc  # a loop
    return exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(exceptions())
def test_classify_never_raises(exc: BaseException) -> None:
    result = CLASSIFIER.classify(exc)
    assert isinstance(result, Classification)
    assert len(result.message) <= MAX_MESSAGE_LENGTH
    assert result.retry_after is None or result.retry_after >= 0


@settings(max_examples=300, deadline=None)
@given(st.integers(100, 599), headers, st.one_of(provider_bodies, odd_text, st.binary(max_size=300)))
def test_classify_http_never_raises(status: int, header_values: Any, body: Any) -> None:
    result = CLASSIFIER.classify_http(status, header_values, body)
    assert isinstance(result, Classification)
    assert result.retry_after is None or result.retry_after >= 0


# --- linear cost --------------------------------------------------------------------------------------------


def _patterns(value: Any, depth: int = 0) -> Iterator[re.Pattern[str]]:
    """The compiled patterns in a module-level value: itself, or inside its tuples, mappings and rows."""
    if depth > 4:
        return
    if isinstance(value, re.Pattern):
        yield value
    elif isinstance(value, tuple | list | frozenset | set):
        for item in value:
            yield from _patterns(item, depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _patterns(key, depth + 1)
            yield from _patterns(item, depth + 1)
    elif hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
        for field in value.__dataclass_fields__:
            yield from _patterns(getattr(value, field, None), depth + 1)


def _classifier_modules() -> list[str]:
    names: list[str] = []
    for package in (error_handling.rules, error_handling.http):
        names += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    return [
        *names,
        "error_handling.fingerprint",
        "error_handling.classifier.subject",
        "error_handling.classifier.builtin",
    ]


def classifier_patterns() -> list[tuple[str, re.Pattern[str]]]:
    found: dict[str, tuple[str, re.Pattern[str]]] = {}
    for name in _classifier_modules():
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            for pattern in _patterns(value):
                found.setdefault(f"{pattern.pattern}/{pattern.flags}", (f"{name}.{attribute}", pattern))
    return list(found.values())


_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None)}


def _children(op: Any, arg: Any) -> list[tuple[Any, bool]]:
    """The sub-patterns of one parsed item, each with whether it repeats without bound."""
    if op in _REPEATS:
        return [(arg[2], arg[1] == sre_constants.MAXREPEAT)]
    if op == sre_constants.SUBPATTERN:
        return [(arg[-1], False)]
    if op == sre_constants.ATOMIC_GROUP:
        return [(arg, False)]
    if op == sre_constants.BRANCH:
        return [(branch, False) for branch in arg[1]]
    if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
        return [(arg[1], False)]
    return []


def _unbounded_nesting(items: Any, inside_unbounded: bool) -> bool:
    """Whether an unbounded repetition (``*``, ``+``, ``{n,}``) sits inside another one."""
    for op, arg in items:
        for sub, unbounded in _children(op, arg):
            if unbounded and inside_unbounded:
                return True
            if _unbounded_nesting(sub, inside_unbounded or unbounded):
                return True
    return False


def test_the_classifier_path_has_its_patterns() -> None:
    names = {name for name, _ in classifier_patterns()}
    assert any(name.startswith("error_handling.fingerprint.") for name in names)
    assert any(name.startswith("error_handling.http.prose.") for name in names)
    assert any(name.startswith("error_handling.rules.") for name in names)


@pytest.mark.parametrize(("name", "pattern"), classifier_patterns(), ids=lambda p: p if isinstance(p, str) else "")
def test_no_pattern_nests_an_unbounded_repetition(name: str, pattern: re.Pattern[str]) -> None:
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    assert not _unbounded_nesting(parsed, False), f"{name}: {pattern.pattern!r} nests unbounded repetitions"


def test_every_scan_reads_a_capped_prefix() -> None:
    assert MAX_MESSAGE_LENGTH <= MAX_FINGERPRINT_CHARS <= MAX_PROSE_CHARS <= MAX_BODY_CHARS

    class Huge(Exception):
        pass

    prefix = "connection refused 42 " * (MAX_BODY_CHARS // 20)
    short = CLASSIFIER.classify(Huge(prefix + "x"))
    long = CLASSIFIER.classify(Huge(prefix + "try again in 5s " + "y" * 10 * MAX_BODY_CHARS))
    assert (short.fingerprint, short.retry_after, short.message) == (long.fingerprint, long.retry_after, long.message)
    assert len(long.message) == MAX_MESSAGE_LENGTH
