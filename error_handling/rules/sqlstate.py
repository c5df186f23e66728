"""SQLSTATE codes (PostgreSQL's error codes, shared by every driver and wrapper that carries them).

psycopg 3 and asyncpg put the code in ``sqlstate``, psycopg2 in ``pgcode``; SQLAlchemy's ``DBAPIError``
wraps the driver's error in ``orig``, which is classified first. A code is judged by its class (the first
two characters: ``08`` connection, ``40`` transaction rollback, ``53`` insufficient resources, ...) unless
the code itself differs from its class (:data:`SQLSTATE_CODES`: ``53300`` too many connections waits on
the pool, ``57014`` a statement timeout, ``57P01`` an administrator's shutdown, ...).

Source: https://www.postgresql.org/docs/current/errcodes-appendix.html (other databases use the same
classes: MySQL's ``23000``, ``42S02``, ``08S01``, CockroachDB's ``40001``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.categories import Category, Reason
from error_handling.rules.outcome import CodeRule, Outcome, Outcomes

#: A class of the server's resources that is not one the other reasons name (``53000``).
_DATABASE_RESOURCE = Outcome(Category.RESOURCE, Reason.RESOURCE_UNAVAILABLE, "database")

#: SQLSTATE classes (the first two characters of a code); a class absent here says nothing.
SQLSTATE_CLASSES: Mapping[str, Outcome] = MappingProxyType(
    {
        "03": Outcomes.PROGRAMMING,  # SQL statement not yet complete
        "08": Outcomes.CONNECTION,  # connection exception
        "09": Outcomes.PROGRAMMING,  # triggered action exception
        "0A": Outcomes.NOT_SUPPORTED,  # feature not supported
        "0B": Outcomes.PROGRAMMING,  # invalid transaction initiation
        "0F": Outcomes.PROGRAMMING,  # locator exception
        "0L": Outcomes.PROGRAMMING,  # invalid grantor
        "0P": Outcomes.CONFIGURATION,  # invalid role specification
        "0Z": Outcomes.PROGRAMMING,  # diagnostics exception
        "20": Outcomes.PROGRAMMING,  # case not found
        "21": Outcomes.INVALID_INPUT,  # cardinality violation
        "22": Outcomes.INVALID_INPUT,  # data exception
        "23": Outcomes.INVALID_INPUT,  # integrity constraint violation
        "24": Outcomes.PROGRAMMING,  # invalid cursor state
        "25": Outcomes.PROGRAMMING,  # invalid transaction state
        "26": Outcomes.PROGRAMMING,  # invalid SQL statement name
        "27": Outcomes.PROGRAMMING,  # triggered data change violation
        "28": Outcomes.AUTH_FAILED,  # invalid authorization specification
        "2B": Outcomes.PROGRAMMING,  # dependent privilege descriptors still exist
        "2D": Outcomes.PROGRAMMING,  # invalid transaction termination
        "2F": Outcomes.PROGRAMMING,  # SQL routine exception
        "34": Outcomes.PROGRAMMING,  # invalid cursor name
        "38": Outcomes.PROGRAMMING,  # external routine exception
        "39": Outcomes.PROGRAMMING,  # external routine invocation exception
        "3B": Outcomes.PROGRAMMING,  # savepoint exception
        "3D": Outcomes.CONFIGURATION,  # invalid catalog name: the database does not exist
        "3F": Outcomes.PROGRAMMING,  # invalid schema name
        "40": Outcomes.CONFLICT,  # transaction rollback
        "42": Outcomes.PROGRAMMING,  # syntax error or access rule violation
        "44": Outcomes.INVALID_INPUT,  # WITH CHECK OPTION violation
        "53": _DATABASE_RESOURCE,  # insufficient resources
        "54": Outcomes.TOO_LARGE,  # program limit exceeded (an index row, a statement too large)
        "55": Outcomes.PROGRAMMING,  # object not in prerequisite state
        "57": Outcomes.UNAVAILABLE,  # operator intervention
        "58": Outcomes.UNAVAILABLE,  # system error (errors external to the server: I/O)
        "72": Outcomes.CONFLICT,  # snapshot failure ("snapshot too old")
        "F0": Outcomes.CONFIGURATION,  # configuration file error
        "HV": Outcomes.PERMANENT,  # foreign data wrapper error
        "P0": Outcomes.PROGRAMMING,  # PL/pgSQL error
        "XX": Outcomes.PERMANENT,  # internal error: data or index corrupted
    }
)

#: SQLSTATE codes whose outcome differs from their class's; ``None`` means the code says nothing.
SQLSTATE_CODES: Mapping[str, Outcome | None] = MappingProxyType(
    {
        "08P01": Outcomes.CONNECTION,  # protocol_violation
        "22P05": Outcomes.INVALID_INPUT,  # untranslatable_character
        "25006": Outcomes.UNAVAILABLE,  # read_only_sql_transaction: a replica (after a failover)
        "25P03": Outcomes.CONNECTION,  # idle_in_transaction_session_timeout: the server closed it
        "25P04": Outcomes.TIMEOUT,  # transaction_timeout
        "40002": Outcomes.INVALID_INPUT,  # transaction_integrity_constraint_violation (deferred)
        "40003": Outcomes.CONNECTION,  # statement_completion_unknown (CockroachDB: ambiguous result)
        "42501": Outcomes.AUTH_FAILED,  # insufficient_privilege
        "53100": Outcomes.DISK_FULL,  # disk_full
        "53200": Outcomes.OUT_OF_MEMORY,  # out_of_memory (also "out of shared memory")
        "53300": Outcomes.POOL,  # too_many_connections: wait for a connection slot
        "53400": Outcomes.CONFIGURATION,  # configuration_limit_exceeded
        "55006": Outcomes.CONFLICT,  # object_in_use
        "55P03": Outcomes.CONFLICT,  # lock_not_available (NOWAIT, lock_timeout)
        "57014": Outcomes.TIMEOUT,  # query_canceled (statement_timeout)
        "57P01": Outcomes.CONNECTION,  # admin_shutdown: the connection was terminated
        "57P02": Outcomes.CONNECTION,  # crash_shutdown
        "57P03": Outcomes.UNAVAILABLE,  # cannot_connect_now: starting up, in recovery
        "57P04": Outcomes.NOT_FOUND,  # database_dropped
        "57P05": Outcomes.CONNECTION,  # idle_session_timeout
        "58P01": Outcomes.CONFIGURATION,  # undefined_file (a missing extension's library)
        "58P02": Outcomes.PERMANENT,  # duplicate_file
        "P0001": Outcomes.INVALID_INPUT,  # raise_exception: the application's RAISE EXCEPTION
        "XX000": None,  # internal_error: unknown, retried with the small budget
    }
)

#: What a SQLSTATE looks like: five digits or upper-case letters.
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")


def sqlstate_outcome(code: str) -> Outcome | None:
    """The outcome of a SQLSTATE: its own entry in :data:`SQLSTATE_CODES`, else its class's."""
    if not _SQLSTATE.fullmatch(code):
        return None
    if code in SQLSTATE_CODES:
        return SQLSTATE_CODES[code]
    return SQLSTATE_CLASSES.get(code[:2])


#: The SQLSTATE of psycopg 3 and asyncpg (``sqlstate``) and psycopg2 (``pgcode``), on any exception.
SQLSTATE_RULE = CodeRule("sqlstate", ("sqlstate", "pgcode"), sqlstate_outcome)
