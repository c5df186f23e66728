"""The classifier: from an exception, or an HTTP response, to a :class:`Classification`.

First match wins, in this order (the rule name a classification reports is in brackets)::

    1 rules passed at call time (a task's)      [task:<i>]
    2 the classifier's rules (the app's)        [user:<i>]
    3 a RecoverableError states its own verdict [recoverable:<class>]
    4 a wrapper's original, with every rule     [wrapped:<rule>]
    5 HTTP: provider body code, status, class   [body:<code>] [http:429] [http:5xx]
    6 the MRO walk: scoped messages, type, errno [message:<name>] [exception:<name>] [errno:<name>]
    7 message rules for any exception           [message:<name>]
    8 the ``__cause__``, with every rule        [cause:<rule>]
    9 otherwise transient / unclassified        [unclassified]

Modules: :mod:`.engine` (the order above), :mod:`.builtin` (steps 4-7 over
:mod:`error_handling.rules`), :mod:`.user_rules` (steps 1-2), :mod:`.subject` (what is read from one
exception and how a match becomes a classification). Classifying an exception never raises.
"""

from __future__ import annotations

from error_handling.classifier.engine import (
    DEFAULT_CLASSIFIER,
    MAX_CHAIN_DEPTH,
    Classifier,
    classify,
    classify_http,
)
from error_handling.classifier.subject import MAX_MESSAGE_LENGTH

__all__ = [
    "DEFAULT_CLASSIFIER",
    "MAX_CHAIN_DEPTH",
    "MAX_MESSAGE_LENGTH",
    "Classifier",
    "classify",
    "classify_http",
]
