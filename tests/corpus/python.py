"""Python's own errors, raised for real by task code: bugs (dead-lettered at once), a broken deployment,
malformed input (failing fast), and what decides before them: the error's cause or context, a response it
carries, a network client that raised it.

Each shape is raised by a small function standing for a task's code (its name is the in-app frame of
the fingerprint, as in a real task); a group raised twice with other values must keep one fingerprint."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import ipaddress
import json
import math
import uuid
from typing import Any

import httpx
import pydantic
import redis

from error_handling.categories import Reason
from tests.corpus.shape import P, Shape, T, V, foreign, raised, response, with_attrs

EXC = "https://docs.python.org/3/library/exceptions.html"
JSON = "https://docs.python.org/3/library/json.html#json.JSONDecodeError"
CODECS = "https://docs.python.org/3/library/codecs.html#error-handlers"
PYDANTIC = "https://docs.pydantic.dev/latest/errors/validation_errors/"
CHAIN = "https://docs.python.org/3/reference/simple_stmts.html#the-raise-statement"
REQUESTS = "https://requests.readthedocs.io/en/latest/api/#requests.JSONDecodeError"
HTTPX = "https://www.python-httpx.org/api/#response"
JSONSCHEMA = "https://python-jsonschema.readthedocs.io/en/stable/api/jsonschema/exceptions/"
MARSHMALLOW = "https://marshmallow.readthedocs.io/en/stable/marshmallow.exceptions.html"

PROGRAMMING, CONFIGURATION = Reason.PROGRAMMING_ERROR, Reason.INVALID_CONFIGURATION
INVALID, UNCLASSIFIED = Reason.INVALID_INPUT, Reason.UNCLASSIFIED


def run(work: Any, *args: Any) -> BaseException:
    """The error ``work(*args)`` raises (it must raise)."""
    try:
        work(*args)
    except BaseException as exc:
        return exc
    raise AssertionError(f"{work.__name__} did not raise")


# --- task code with bugs ------------------------------------------------------------------------------


def summarise(document: Any) -> Any:
    return document.text.split()


def send_receipt(order: dict[str, Any]) -> Any:
    return json.dumpz(order)  # type: ignore[attr-defined]


def count_items(items: Any) -> int:
    return len(items)


def add_tax(amount: Any) -> Any:
    return amount + "0.20"


def first_line(rows: Any) -> Any:
    return rows[0]


def total(prices: Any) -> int:
    return sum(p for p in prices)


def greet(name: str, greeting: str) -> str:
    return f"{greeting}, {name}"


def call_greet(name: str) -> str:
    return greet(name)  # type: ignore[call-arg]


def report_name() -> str:
    return undefined_report_title  # type: ignore[name-defined]  # noqa: F821


def check_balance(balance: int) -> None:
    assert balance >= 0, f"balance must not be negative, got {balance}"


class Exporter:
    def export(self) -> None:
        raise NotImplementedError("subclasses of Exporter must implement export()")


def depth(node: dict[str, Any]) -> int:
    return 1 + depth(node)


def user_of(payload: dict[str, Any]) -> Any:
    return payload["user_id"]


def pick(rows: list[Any], index: int) -> Any:
    return rows[index]


def average(values: list[int]) -> float:
    return sum(values) / len(values)


def bucket(n: int, buckets: int) -> int:
    return n % buckets


def growth(rate: float) -> float:
    return math.exp(rate)


def next_page(pages: Any) -> Any:
    return next(pages)


def render(template: str) -> Any:
    return compile(template, "<template>", "exec")


def increment() -> int:
    counter += 1  # type: ignore[name-defined]  # noqa: F821
    return counter  # type: ignore[name-defined]


# --- the deployment -----------------------------------------------------------------------------------


def load_plugin(name: str) -> Any:
    return __import__(name)


def load_codec() -> Any:
    from json import fast_decoder  # type: ignore[attr-defined]  # noqa: F401


# --- malformed input ----------------------------------------------------------------------------------


def parse_quantity(text: str) -> int:
    return int(text)


def parse_price(text: str) -> float:
    return float(text)


def read_order(body: str) -> Any:
    return json.loads(body)


def read_upload(data: bytes) -> str:
    return data.decode("utf-8")


def to_ascii(text: str) -> bytes:
    return text.encode("ascii")


def parse_due(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def parse_id(text: str) -> uuid.UUID:
    return uuid.UUID(text)


def read_attachment(text: str) -> bytes:
    return base64.b64decode(text)


def parse_amount(text: str) -> decimal.Decimal:
    return decimal.Decimal(text)


def parse_ip(text: str) -> Any:
    return ipaddress.ip_address(text)


class Order(pydantic.BaseModel):
    quantity: int
    email: str


def validate_order(data: dict[str, Any]) -> Order:
    return Order.model_validate(data)


# --- what decides before them -------------------------------------------------------------------------


def load_profile(client: Any) -> Any:
    try:
        return client.get("profile")
    except redis.exceptions.ConnectionError as exc:
        raise ValueError("could not load the profile") from exc


def cached_total(cache: dict[str, Any]) -> Any:
    try:
        raise TimeoutError("timed out reading the cache")
    except TimeoutError:
        return int(cache["total"])  # a KeyError while handling the timeout


def decode_reply(text: str) -> Any:
    return httpx.Response(200, content=text.encode()).json()


def decode_requests_reply(doc: str) -> BaseException:
    """What ``requests.Response.json()`` raises on a body that is not JSON (requests 2.27+)."""
    import requests

    try:
        json.loads(doc)
    except json.JSONDecodeError as exc:
        return requests.exceptions.JSONDecodeError(exc.msg, exc.doc, exc.pos)
    raise AssertionError("the document parsed")


def _json_error_with_response(status: int) -> BaseException:
    exc = json.JSONDecodeError("Expecting value", "<html><body>Service Unavailable</body></html>", 0)
    return with_attrs(exc, response=response(status, "<html><body>Service Unavailable</body></html>"))


def _jsonschema(message: str) -> BaseException:
    cls = foreign("jsonschema.exceptions.ValidationError", foreign("jsonschema.exceptions._Error"))
    return cls(message)


def _marshmallow(messages: dict[str, list[str]]) -> BaseException:
    cls = foreign("marshmallow.exceptions.ValidationError", foreign("marshmallow.exceptions.MarshmallowError"))
    return with_attrs(cls(messages), messages=messages)


def _py(group: str, source: str, make: Any, category: Any, reason: Any) -> Shape:
    return Shape("python", f"python:{group}", source, make, category, reason)


SHAPES: list[Shape] = [
    # bugs: dead-lettered on the first failure
    _py("none-attribute", EXC, lambda: run(summarise, None), P, PROGRAMMING),
    _py("module-attribute", EXC, lambda: run(send_receipt, {"id": 1}), P, PROGRAMMING),
    _py("no-len", EXC, lambda: run(count_items, 5), P, PROGRAMMING),
    _py("no-len", EXC, lambda: run(count_items, 7.5), P, PROGRAMMING),
    _py("bad-operand", EXC, lambda: run(add_tax, 10), P, PROGRAMMING),
    _py("not-subscriptable", EXC, lambda: run(first_line, None), P, PROGRAMMING),
    _py("not-iterable", EXC, lambda: run(total, 42), P, PROGRAMMING),
    _py("missing-argument", EXC, lambda: run(call_greet, "Ada"), P, PROGRAMMING),
    _py("undefined-name", EXC, lambda: run(report_name), P, PROGRAMMING),
    _py("unbound-local", EXC, lambda: run(increment), P, PROGRAMMING),
    _py("assertion", EXC, lambda: run(check_balance, -3), P, PROGRAMMING),
    _py("assertion", EXC, lambda: run(check_balance, -1250), P, PROGRAMMING),
    _py("not-implemented", EXC, lambda: run(Exporter().export), P, PROGRAMMING),
    _py("recursion", EXC, lambda: run(depth, {}), P, PROGRAMMING),
    _py("missing-key", EXC, lambda: run(user_of, {"id": 7}), P, PROGRAMMING),
    _py("missing-key", EXC, lambda: run(user_of, {"uid": 9}), P, PROGRAMMING),
    _py("index", EXC, lambda: run(pick, [], 0), P, PROGRAMMING),
    _py("index", EXC, lambda: run(pick, [1, 2], 5), P, PROGRAMMING),
    _py("division", EXC, lambda: run(average, []), P, PROGRAMMING),
    _py("modulo", EXC, lambda: run(bucket, 17, 0), P, PROGRAMMING),
    _py("overflow", EXC, lambda: run(growth, 1000.0), P, PROGRAMMING),
    _py("stop-iteration", EXC, lambda: run(next_page, iter([])), P, PROGRAMMING),
    _py("syntax", EXC, lambda: run(render, "def (:"), P, PROGRAMMING),
    # the deployment
    _py("missing-module", EXC, lambda: run(load_plugin, "fr_corpus_plugin_that_is_not_installed"), P, CONFIGURATION),
    _py("cannot-import-name", EXC, lambda: run(load_codec), P, CONFIGURATION),
    # malformed input: fails fast
    _py("int-literal", EXC, lambda: run(parse_quantity, "abc"), V, INVALID),
    _py("int-literal", EXC, lambda: run(parse_quantity, "12x"), V, INVALID),
    _py("float-literal", EXC, lambda: run(parse_price, "n/a"), V, INVALID),
    _py("json-expecting-value", JSON, lambda: run(read_order, ""), V, INVALID),
    _py("json-expecting-value", JSON, lambda: run(read_order, '{"qty": }'), V, INVALID),
    _py("json-property-name", JSON, lambda: run(read_order, "{qty: 1}"), V, INVALID),
    _py("utf8-start-byte", CODECS, lambda: run(read_upload, b"\xff\xfeabc"), V, INVALID),
    _py("utf8-start-byte", CODECS, lambda: run(read_upload, b"ok \x80 done"), V, INVALID),
    _py("utf8-continuation-byte", CODECS, lambda: run(read_upload, b"ok\xc3\x28"), V, INVALID),
    _py("ascii-encode", CODECS, lambda: run(to_ascii, "café"), V, INVALID),
    _py("isoformat-month", EXC, lambda: run(parse_due, "2026-13-05"), V, INVALID),
    _py("isoformat-month", EXC, lambda: run(parse_due, "2026-00-17"), V, INVALID),
    _py("isoformat", EXC, lambda: run(parse_due, "next tuesday"), V, INVALID),
    _py("isoformat", EXC, lambda: run(parse_due, "17/03/2026"), V, INVALID),
    _py("uuid", EXC, lambda: run(parse_id, "not-a-uuid"), V, INVALID),
    _py("base64-padding", EXC, lambda: run(read_attachment, "abc"), V, INVALID),
    _py(
        "decimal",
        "https://docs.python.org/3/library/decimal.html#decimal.InvalidOperation",
        lambda: run(parse_amount, "12,50"),
        V,
        INVALID,
    ),
    _py(
        "ip-address",
        "https://docs.python.org/3/library/ipaddress.html#ipaddress.ip_address",
        lambda: run(parse_ip, "999.1.1.1"),
        V,
        INVALID,
    ),
    _py("pydantic-int", PYDANTIC, lambda: run(validate_order, {"quantity": "abc", "email": "a@b.c"}), V, INVALID),
    _py("pydantic-int", PYDANTIC, lambda: run(validate_order, {"quantity": "1.5x", "email": "d@e.f"}), V, INVALID),
    _py("pydantic-missing", PYDANTIC, lambda: run(validate_order, {"quantity": 1}), V, INVALID),
    _py("jsonschema-required", JSONSCHEMA, lambda: _jsonschema("'name' is a required property"), V, INVALID),
    _py("marshmallow-email", MARSHMALLOW, lambda: _marshmallow({"email": ["Not a valid email address."]}), V, INVALID),
    # what decides before them: the cause, the context, a response, a network client
    _py(
        "cause-connection",
        CHAIN,
        lambda: run(load_profile, redis.Redis(port=1, socket_connect_timeout=0.05)),
        T,
        Reason.CONNECTION,
    ),
    _py("context-timeout", CHAIN, lambda: run(cached_total, {}), T, Reason.TIMEOUT),
    _py("json-of-a-service", HTTPX, lambda: run(decode_reply, "upstream connect error"), T, UNCLASSIFIED),
    _py(
        "html-instead-of-json",
        REQUESTS,
        lambda: decode_requests_reply("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>"),
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    _py("json-with-a-503", REQUESTS, lambda: _json_error_with_response(503), T, Reason.SERVICE_UNAVAILABLE),
    _py("unknown", EXC, lambda: raised(RuntimeError("the exporter stopped")), T, UNCLASSIFIED),
]
