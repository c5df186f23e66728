"""Rules on error messages, for errors whose class says too little: scoped to an exception name
(tried along the MRO before that class's own entry) or for any exception (tried last)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.brokers import BROKER_MESSAGE_RULES
from error_handling.rules.celery import CELERY_MESSAGE_RULES
from error_handling.rules.databases import DATABASE_MESSAGE_RULES
from error_handling.rules.network import NETWORK_MESSAGE_RULES
from error_handling.rules.outcome import MessageRule, Outcomes
from error_handling.rules.providers_aws import AWS_MESSAGE_RULES
from error_handling.rules.sqlite import SQLITE_MESSAGE_RULES

#: Rules on messages, for errors whose class says too little.
MESSAGE_RULES: tuple[MessageRule, ...] = (
    *BROKER_MESSAGE_RULES,  # redis-py, kombu
    *CELERY_MESSAGE_RULES,  # Celery, billiard
    *NETWORK_MESSAGE_RULES,  # TLS verification
    *SQLITE_MESSAGE_RULES,
    *DATABASE_MESSAGE_RULES,
    MessageRule(
        "gpu_out_of_memory",
        re.compile(
            r"CUDA out of memory|CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED|MPS backend out of memory"
            r"|No CUDA GPUs are available|CUDA-capable device\(s\) is/are busy or unavailable",
        ),
        Outcomes.GPU,
    ),
    *AWS_MESSAGE_RULES,
)


def _scoped(rules: tuple[MessageRule, ...]) -> Mapping[str, tuple[MessageRule, ...]]:
    table: dict[str, tuple[MessageRule, ...]] = {}
    for rule in rules:
        for name in rule.exceptions:
            table[name] = (*table.get(name, ()), rule)
    return MappingProxyType(table)


#: :data:`MESSAGE_RULES` that are scoped, by the exception name they are scoped to.
MESSAGE_RULES_BY_EXCEPTION: Mapping[str, tuple[MessageRule, ...]] = _scoped(MESSAGE_RULES)
#: :data:`MESSAGE_RULES` for any exception, tried when the MRO walk found nothing.
UNSCOPED_MESSAGE_RULES: tuple[MessageRule, ...] = tuple(r for r in MESSAGE_RULES if not r.exceptions)
