"""Deterministic errors: a retry runs the same code on the same input again, so it cannot help.

A bug (``AttributeError``, ``TypeError``, ``AssertionError``, ...) is dead-lettered at once, to be
replayed after the fix; a missing module is the deployment's mistake; malformed input (``ValueError`` and
its parse errors, schema validation) fails fast with a message for the user.

These rules are the weakest there are: they apply only when nothing else recognises the error, nor its
cause, its context or what it wraps. A ``ValueError`` raised while handling a ``ConnectionError`` is the
connection's; an exception that carries an HTTP response is judged by the response. And malformed input
raised from inside a network client (:data:`NETWORK_CLIENT_MODULES`: a JSON decode error of a proxy's
HTML error page, a response that does not parse) is the service's answer, not the task's input: it stays
``unclassified`` (retried with a small budget).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import Outcome, Outcomes

#: Deterministic exceptions by qualified name; the most specific class of the MRO with an entry wins.
DETERMINISTIC_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        # Python: bugs in the task's code
        "AttributeError": Outcomes.PROGRAMMING,
        "TypeError": Outcomes.PROGRAMMING,
        "NameError": Outcomes.PROGRAMMING,  # also UnboundLocalError
        "AssertionError": Outcomes.PROGRAMMING,
        "NotImplementedError": Outcomes.PROGRAMMING,
        "RecursionError": Outcomes.PROGRAMMING,
        "LookupError": Outcomes.PROGRAMMING,  # KeyError, IndexError
        "ArithmeticError": Outcomes.PROGRAMMING,  # ZeroDivisionError, OverflowError
        "SyntaxError": Outcomes.PROGRAMMING,  # a module that does not compile, also IndentationError
        "StopIteration": Outcomes.PROGRAMMING,
        "StopAsyncIteration": Outcomes.PROGRAMMING,
        "UnicodeError": Outcomes.INVALID_INPUT,  # a ValueError, but listed: encodings are input
        # Python: the deployment
        "ImportError": Outcomes.CONFIGURATION,  # also ModuleNotFoundError
        # Python: malformed input (json.JSONDecodeError, binascii.Error, ... are ValueErrors)
        "ValueError": Outcomes.INVALID_INPUT,
        "decimal.InvalidOperation": Outcomes.INVALID_INPUT,  # Decimal("abc")
        # schema validation: pydantic 2 (pydantic.ValidationError is pydantic_core's) and 1, jsonschema,
        # marshmallow
        "pydantic_core._pydantic_core.ValidationError": Outcomes.INVALID_INPUT,
        "pydantic.error_wrappers.ValidationError": Outcomes.INVALID_INPUT,
        "pydantic.v1.error_wrappers.ValidationError": Outcomes.INVALID_INPUT,
        "jsonschema.exceptions.ValidationError": Outcomes.INVALID_INPUT,
        "marshmallow.exceptions.ValidationError": Outcomes.INVALID_INPUT,
    }
)

#: The start of an HTML or XML document: a JSON decoder given one was sent a server's (or a proxy's) error
#: page instead of the JSON it expected, which is the server's failure, not malformed input.
HTML_DOCUMENT = re.compile(r"\s{0,100}<(?:!doctype\s+html|html|head|body|\?xml|title)\b", re.IGNORECASE)

#: Modules (and their submodules) of network clients: malformed input raised while one of them is on the
#: stack is the service's answer, not the task's input.
NETWORK_CLIENT_MODULES: tuple[str, ...] = (
    "http.client",
    "urllib.request",
    "socket",
    "ssl",
    "httpx",
    "httpcore",
    "requests",
    "urllib3",
    "aiohttp",
    "websockets",
    "grpc",
    "openai",
    "anthropic",
    "cohere",
    "mistralai",
    "groq",
    "together",
    "huggingface_hub",
    "botocore",
    "boto3",
    "aiobotocore",
    "google.api_core",
    "google.auth",
    "google.genai",
)
