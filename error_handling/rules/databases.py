"""Database drivers and wrappers by exception class, and the messages of errors that carry no code.

A code (:mod:`~error_handling.rules.sqlstate`, :mod:`~error_handling.rules.mysql`,
:mod:`~error_handling.rules.sqlite`) is more specific and tried first; these rows decide when there is
none: errors raised by the driver itself (a pool that ran out, a closed connection), by SQLAlchemy's ORM
(a session used after a failed flush), or built without one. The connection errors of libpq (psycopg 2
and 3) carry the server's ``FATAL`` message but no SQLSTATE: :data:`DATABASE_MESSAGE_RULES` read it.

Sources: https://www.psycopg.org/psycopg3/docs/api/errors.html, https://www.psycopg.org/psycopg3/docs/api/pool.html,
https://docs.sqlalchemy.org/en/20/errors.html, https://docs.sqlalchemy.org/en/20/core/exceptions.html,
https://magicstack.github.io/asyncpg/current/api/index.html#module-asyncpg.exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.mysql import MYSQL_ERRORS
from error_handling.rules.outcome import MessageRule, Outcome, Outcomes
from error_handling.rules.sqlite import SQLITE_RESULT_CODES
from error_handling.rules.sqlstate import SQLSTATE_CLASSES, SQLSTATE_CODES

#: PostgreSQL errors by class name, for errors without their SQLSTATE; psycopg 3 and psycopg2 both
#: define them in their ``errors`` module.
_POSTGRES_ERRORS: Mapping[str, Outcome] = {
    "DeadlockDetected": Outcomes.CONFLICT,
    "SerializationFailure": Outcomes.CONFLICT,
    "LockNotAvailable": Outcomes.CONFLICT,
    "TransactionRollback": Outcomes.CONFLICT,
    "QueryCanceled": Outcomes.TIMEOUT,
    "TooManyConnections": Outcomes.POOL,
    "DiskFull": Outcomes.DISK_FULL,
    "OutOfMemory": Outcomes.OUT_OF_MEMORY,
    "InvalidPassword": Outcomes.AUTH_FAILED,
    "InvalidAuthorizationSpecification": Outcomes.AUTH_FAILED,
    "InsufficientPrivilege": Outcomes.AUTH_FAILED,
    "UniqueViolation": Outcomes.INVALID_INPUT,
}

#: The DB-API classes of the drivers (PEP 249), which every driver exports from its package root.
_DBAPI_ERRORS: Mapping[str, Outcome] = {
    "OperationalError": Outcomes.CONNECTION,
    "InterfaceError": Outcomes.CONNECTION,
    "IntegrityError": Outcomes.INVALID_INPUT,
    "DataError": Outcomes.INVALID_INPUT,
    "ProgrammingError": Outcomes.PROGRAMMING,
    "NotSupportedError": Outcomes.NOT_SUPPORTED,
}

#: The modules the drivers define their DB-API classes in.
_DBAPI_MODULES = ("psycopg", "psycopg2", "pymysql.err", "MySQLdb._exceptions", "mysql.connector.errors")

#: Database exceptions by qualified name (merged into :data:`~error_handling.rules.EXCEPTION_RULES`).
DATABASE_EXCEPTION_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        # PostgreSQL: psycopg 3, psycopg2 (a SQLSTATE, when there is one, decides first)
        **{f"{driver}.errors.{name}": o for driver in ("psycopg", "psycopg2") for name, o in _POSTGRES_ERRORS.items()},
        **{f"{module}.{name}": o for module in _DBAPI_MODULES for name, o in _DBAPI_ERRORS.items()},
        "psycopg2.extensions.TransactionRollbackError": Outcomes.CONFLICT,
        "psycopg2.extensions.QueryCanceledError": Outcomes.TIMEOUT,
        # the psycopg pool: every connection is in use (or too many clients wait for one)
        "psycopg_pool.PoolTimeout": Outcomes.POOL,
        "psycopg_pool.errors.PoolTimeout": Outcomes.POOL,
        "psycopg_pool.TooManyRequests": Outcomes.POOL,
        "psycopg_pool.errors.TooManyRequests": Outcomes.POOL,
        "psycopg2.pool.PoolError": Outcomes.PROGRAMMING,  # closed, unkeyed (exhausted: a message rule)
        "psycopg_pool.PoolClosed": Outcomes.PROGRAMMING,
        "psycopg_pool.errors.PoolClosed": Outcomes.PROGRAMMING,
        # asyncpg (its server errors carry their SQLSTATE; these are the client's own)
        "asyncpg.exceptions._base.InterfaceError": Outcomes.PROGRAMMING,  # another operation is in progress
        "asyncpg.exceptions._base.InternalClientError": Outcomes.PROGRAMMING,
        # MySQL Connector/Python's pool
        "mysql.connector.errors.PoolError": Outcomes.POOL,  # Failed getting connection; pool exhausted
        # SQLite (its result code and messages decide first)
        "sqlite3.IntegrityError": Outcomes.INVALID_INPUT,
        "sqlite3.DataError": Outcomes.INVALID_INPUT,
        "sqlite3.ProgrammingError": Outcomes.PROGRAMMING,  # a closed database, wrong number of bindings
        "sqlite3.InterfaceError": Outcomes.PROGRAMMING,  # a parameter of an unsupported type
        "sqlite3.NotSupportedError": Outcomes.NOT_SUPPORTED,
        # SQLAlchemy (its DBAPIError wraps the driver's error, which is classified first)
        "sqlalchemy.exc.OperationalError": Outcomes.CONNECTION,
        "sqlalchemy.exc.InterfaceError": Outcomes.CONNECTION,
        "sqlalchemy.exc.DisconnectionError": Outcomes.CONNECTION,
        "sqlalchemy.exc.TimeoutError": Outcomes.POOL,  # QueuePool limit ... reached, connection timed out
        "sqlalchemy.exc.IntegrityError": Outcomes.INVALID_INPUT,
        "sqlalchemy.exc.DataError": Outcomes.INVALID_INPUT,
        "sqlalchemy.exc.ProgrammingError": Outcomes.PROGRAMMING,
        "sqlalchemy.exc.NotSupportedError": Outcomes.NOT_SUPPORTED,
        "sqlalchemy.exc.InvalidRequestError": Outcomes.PROGRAMMING,  # PendingRollbackError, ResourceClosedError
        "sqlalchemy.exc.NoResultFound": Outcomes.NOT_FOUND,  # .one() found no row
        "sqlalchemy.exc.ArgumentError": Outcomes.PROGRAMMING,
        "sqlalchemy.exc.CompileError": Outcomes.PROGRAMMING,
        "sqlalchemy.exc.NoSuchColumnError": Outcomes.PROGRAMMING,
        "sqlalchemy.exc.NoReferenceError": Outcomes.PROGRAMMING,
        "sqlalchemy.exc.UnboundExecutionError": Outcomes.PROGRAMMING,
        "sqlalchemy.exc.MissingGreenlet": Outcomes.PROGRAMMING,  # sync IO under asyncio
        "sqlalchemy.exc.NoSuchModuleError": Outcomes.CONFIGURATION,  # an unknown dialect or driver
        "sqlalchemy.orm.exc.StaleDataError": Outcomes.CONFLICT,  # a concurrent update (version counter)
        "sqlalchemy.orm.exc.ObjectDeletedError": Outcomes.NOT_FOUND,  # its row was deleted meanwhile
        "sqlalchemy.orm.exc.DetachedInstanceError": Outcomes.PROGRAMMING,
        "sqlalchemy.orm.exc.FlushError": Outcomes.PROGRAMMING,
        "sqlalchemy.orm.exc.UnmappedError": Outcomes.PROGRAMMING,
    }
)

_LIBPQ_OPERATIONAL = frozenset({"psycopg.OperationalError", "psycopg2.OperationalError"})
_PSYCOPG2_POOL = frozenset({"psycopg2.pool.PoolError"})

#: The server's ``FATAL`` answers that libpq reports when a connection fails (no SQLSTATE), and
#: PgBouncer's.
DATABASE_MESSAGE_RULES: tuple[MessageRule, ...] = (
    MessageRule(
        "postgres_login",
        re.compile(
            r"FATAL:\s{1,4}(?:password authentication failed for user|role \"[^\"\n]{0,200}\" does not exist"
            r"|no pg_hba\.conf entry|Ident authentication failed|Peer authentication failed)"
            r"|fe_sendauth: no password supplied"
        ),
        Outcomes.AUTH_FAILED,
        _LIBPQ_OPERATIONAL,
    ),
    MessageRule(
        "postgres_no_database",
        re.compile(r"FATAL:\s{1,4}database \"[^\"\n]{0,200}\" does not exist"),
        Outcomes.CONFIGURATION,
        _LIBPQ_OPERATIONAL,
    ),
    MessageRule(
        "postgres_too_many_clients",
        re.compile(
            r"(?:FATAL|ERROR):\s{1,4}(?:sorry, too many clients already|remaining connection slots are reserved"
            r"|too many connections for (?:role|database)|no more connections allowed|query_wait_timeout)"
        ),
        Outcomes.POOL,
        _LIBPQ_OPERATIONAL,
    ),
    MessageRule(
        "postgres_not_ready",
        re.compile(r"FATAL:\s{1,4}the database system is (?:starting up|shutting down|in recovery mode|not )"),
        Outcomes.UNAVAILABLE,
        _LIBPQ_OPERATIONAL,
    ),
    # psycopg2's own pool (older versions spell it "exausted")
    MessageRule("psycopg2_pool_exhausted", re.compile(r"^connection pool exh?austed"), Outcomes.POOL, _PSYCOPG2_POOL),
)


def database_outcomes() -> list[tuple[str, Outcome]]:
    """The rows of the database code rules (SQLSTATE classes and codes, MySQL numbers, SQLite result
    codes), for :func:`~error_handling.rules.all_outcomes`."""
    return [
        *((f"sqlstate:{c}xxx", o) for c, o in SQLSTATE_CLASSES.items()),
        *((f"sqlstate:{c}", o) for c, o in SQLSTATE_CODES.items() if o is not None),
        *((f"mysql:{n}", o) for n, o in MYSQL_ERRORS.items()),
        *((f"sqlite:{name}", o) for name, o in SQLITE_RESULT_CODES.items()),
    ]
