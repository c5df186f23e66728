"""Rules on the codes errors carry in attributes (:class:`~error_handling.rules.outcome.CodeRule`), in
the order they are tried: each library's table is its own module, listed here."""

from __future__ import annotations

from error_handling.rules.brokers import BROKER_CODE_RULES
from error_handling.rules.mysql import MYSQL_RULE
from error_handling.rules.outcome import CodeRule
from error_handling.rules.sqlite import SQLITE_RULE
from error_handling.rules.sqlstate import SQLSTATE_RULE

#: Every code rule, tried in order before the walk along the MRO; the first that finds a code with an
#: outcome decides.
CODE_RULES: tuple[CodeRule, ...] = (
    *BROKER_CODE_RULES,  # Redis reply codes, AMQP reply codes
    MYSQL_RULE,  # before the SQLSTATE: a MySQL number is more specific than its SQLSTATE
    SQLITE_RULE,
    SQLSTATE_RULE,
)
