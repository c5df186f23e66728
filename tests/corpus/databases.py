"""Databases: PostgreSQL (psycopg 3 for real, psycopg2, asyncpg and the psycopg pool by their classes and
codes), SQLAlchemy's wrappers and ORM errors (real), MySQL drivers (PyMySQL, mysqlclient, Connector/Python)
and SQLite (real errors of the ``sqlite3`` module).

The PostgreSQL messages are the server's own: they were produced against PostgreSQL 15 (the statement in
each comment), then built here with ``psycopg.errors.lookup(sqlstate)(message)``, which is the class and
``sqlstate`` psycopg gives them. The SQLite errors are raised by SQLite here, each time."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import sqlalchemy.exc as sa_exc
import sqlalchemy.orm.exc as sa_orm_exc

from error_handling.categories import Reason
from tests.corpus.shape import P, R, Shape, T, V, foreign, shapes_of, with_attrs

ERRCODES = "https://www.postgresql.org/docs/current/errcodes-appendix.html"
PSYCOPG_ERRORS = "https://www.psycopg.org/psycopg3/docs/api/errors.html"
PSYCOPG_POOL = "https://www.psycopg.org/psycopg3/docs/api/pool.html"
SA_ERRORS = "https://docs.sqlalchemy.org/en/20/errors.html"
SA_ORM_EXC = "https://docs.sqlalchemy.org/en/20/orm/exceptions.html"
MYSQL_SERVER = "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html"
MYSQL_CLIENT = "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html"
PYMYSQL_ERR = "https://github.com/PyMySQL/PyMySQL/blob/main/pymysql/err.py"
CONNECTOR_ERRORS = "https://dev.mysql.com/doc/connector-python/en/connector-python-api-errors-error.html"
SQLITE_CODES = "https://www.sqlite.org/rescode.html"
PY_SQLITE = "https://docs.python.org/3/library/sqlite3.html#exceptions"

PROGRAMMING, CONFIGURATION, POOL = Reason.PROGRAMMING_ERROR, Reason.INVALID_CONFIGURATION, Reason.POOL_EXHAUSTED


# --- builders -----------------------------------------------------------------------------------------------


def pg(sqlstate: str, message: str) -> Callable[[], BaseException]:
    """A psycopg 3 error as psycopg builds it from the server's answer: the class of its SQLSTATE."""
    return lambda: psycopg.errors.lookup(sqlstate)(message)


def pg_operational(message: str) -> Callable[[], BaseException]:
    """psycopg 3's error when a connection fails (libpq's message, no SQLSTATE)."""
    return lambda: psycopg.OperationalError(message)


_P2_ERROR = foreign("psycopg2.Error")
_P2_DATABASE = foreign("psycopg2.DatabaseError", _P2_ERROR)


def p2_base(name: str) -> type[Exception]:
    """psycopg2's DB-API class ``name`` (``OperationalError``, ``IntegrityError``, ...)."""
    return foreign(f"psycopg2.{name}", _P2_DATABASE)


def p2(name: str, base: str, pgcode: str, message: str) -> Callable[[], BaseException]:
    """A psycopg2 server error: its class in ``psycopg2.errors``, ``pgcode`` and ``pgerror`` set."""
    cls = foreign(f"psycopg2.errors.{name}", p2_base(base))
    return lambda: with_attrs(cls(message), pgcode=pgcode, pgerror=f"ERROR:  {message}")


def p2_connect(message: str) -> Callable[[], BaseException]:
    """psycopg2's error when a connection fails: ``OperationalError``, ``pgcode`` None."""
    return lambda: with_attrs(p2_base("OperationalError")(message), pgcode=None, pgerror=None)


_ASYNCPG_BASE = foreign("asyncpg.exceptions._base.PostgresError")


def asyncpg_error(name: str, sqlstate: str, message: str) -> Callable[[], BaseException]:
    """An asyncpg server error: a class per SQLSTATE, which it holds as a class attribute."""
    cls = foreign(f"asyncpg.exceptions.{name}", _ASYNCPG_BASE, sqlstate=sqlstate)
    return lambda: cls(message)


def sa_wrapped(kind: str, statement: str, make: Callable[[], BaseException]) -> Callable[[], BaseException]:
    """SQLAlchemy's DBAPIError subclass ``kind`` wrapping the driver's error (``.orig``), as the engine
    raises it."""
    cls = getattr(sa_exc, kind)
    return lambda: cls(statement, {}, make())


_PYMYSQL_BASE = foreign("pymysql.err.MySQLError")
_PYMYSQL_DATABASE = foreign("pymysql.err.DatabaseError", foreign("pymysql.err.Error", _PYMYSQL_BASE))
_MYSQLDB_BASE = foreign("MySQLdb._exceptions.MySQLError")
_MYSQLDB_DATABASE = foreign("MySQLdb._exceptions.DatabaseError", foreign("MySQLdb._exceptions.Error", _MYSQLDB_BASE))
_CONNECTOR_ERROR = foreign("mysql.connector.errors.Error")
_CONNECTOR_DATABASE = foreign("mysql.connector.errors.DatabaseError", _CONNECTOR_ERROR)


def pymysql(kind: str, number: int, message: str) -> Callable[[], BaseException]:
    """PyMySQL's ``raise errorclass(errno, errval)``."""
    cls = foreign(f"pymysql.err.{kind}", _PYMYSQL_DATABASE)
    return lambda: cls(number, message)


def mysqldb(kind: str, number: int, message: str) -> Callable[[], BaseException]:
    """mysqlclient's error: ``(number, message)`` as its arguments."""
    cls = foreign(f"MySQLdb._exceptions.{kind}", _MYSQLDB_DATABASE)
    return lambda: cls(number, message)


def connector(kind: str, number: int, message: str, sqlstate: str | None) -> Callable[[], BaseException]:
    """MySQL Connector/Python's error: ``errno``, ``sqlstate`` and ``msg``; its text is
    ``"<errno> (<sqlstate>): <msg>"`` (``"<errno>: <msg>"`` without a SQLSTATE)."""
    base = _CONNECTOR_ERROR if kind == "InterfaceError" else _CONNECTOR_DATABASE
    cls = foreign(f"mysql.connector.errors.{kind}", base)
    text = f"{number} ({sqlstate}): {message}" if sqlstate else f"{number}: {message}"
    return lambda: with_attrs(cls(text), errno=number, sqlstate=sqlstate, msg=message)


def sqlite_error(*statements: str, uri: str = ":memory:", params: Any = ()) -> Callable[[], BaseException]:
    """The error SQLite raises for ``statements`` run in order (the last with ``params``)."""

    def make() -> BaseException:
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(uri, uri=uri.startswith("file:"))
            *setup, last = statements
            for statement in setup:
                connection.execute(statement)
            connection.execute(last, params)
        except sqlite3.Error as exc:
            return exc
        finally:
            if connection is not None:
                connection.close()
        raise AssertionError(f"no error from {statements!r}")

    return make


def sqlite_locked() -> BaseException:
    """ "database is locked": a second connection writes while the first holds the write lock."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "locked.db")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("create table t (x)")
        holder.execute("begin immediate")
        other = sqlite3.connect(path, timeout=0)
        try:
            other.execute("insert into t values (1)")
        except sqlite3.OperationalError as exc:
            return exc
        finally:
            other.close()
            holder.close()
    raise AssertionError("not locked")


def sqlite_file(content: bytes | None, mode: str, statement: str) -> Callable[[], BaseException]:
    """The error of ``statement`` on a database file holding ``content`` (None: no file, in a folder that
    does not exist), opened with ``mode`` (``ro``, ``rw``)."""

    def make() -> BaseException:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / ("missing/app.db" if content is None else "app.db")
            if content is not None:
                path.write_bytes(content)
                if mode == "ro":
                    writer = sqlite3.connect(path)
                    writer.execute("create table if not exists t (x)")
                    writer.commit()
                    writer.close()
            return sqlite_error(statement, uri=f"file:{path}?mode={mode}")()

    return make


def sqlite_coded(kind: str, message: str, code: int, name: str) -> Callable[[], BaseException]:
    """A SQLite error with its result code, as ``sqlite3`` raises it (for conditions that cannot be made
    here: a full disk, an I/O error)."""
    cls = getattr(sqlite3, kind)
    return lambda: with_attrs(cls(message), sqlite_errorcode=code, sqlite_errorname=name)


def closed_database() -> BaseException:
    """A statement on a closed connection."""
    connection = sqlite3.connect(":memory:")
    connection.close()
    try:
        connection.execute("select 1")
    except sqlite3.ProgrammingError as exc:
        return exc
    raise AssertionError("not closed")


# --- PostgreSQL ---------------------------------------------------------------------------------------------

_DEADLOCK = (
    "deadlock detected\nDETAIL:  Process {a} waits for ShareLock on transaction {t1}; blocked by process {b}.\n"
    "Process {b} waits for ShareLock on transaction {t2}; blocked by process {a}.\n"
    'HINT:  See server log for query details.\nCONTEXT:  while updating tuple (0,{row}) in relation "users"'
)

POSTGRES: list[Shape] = shapes_of(
    "postgres",
    ERRCODES,
    [
        # insert into users values (1, 'b@example.com') -- a duplicate id
        (
            "postgres:unique_violation",
            pg(
                "23505",
                'duplicate key value violates unique constraint "users_pkey"\nDETAIL:  Key (id)=(1) already exists.',
            ),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:unique_violation",
            pg(
                "23505",
                'duplicate key value violates unique constraint "users_pkey"\nDETAIL:  Key (id)=(4172) already exists.',
            ),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:foreign_key_violation",
            pg(
                "23503",
                'insert or update on table "orders" violates foreign key constraint "orders_user_id_fkey"\nDETAIL:  Key (user_id)=(42) is not present in table "users".',
            ),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:foreign_key_violation",
            pg(
                "23503",
                'insert or update on table "orders" violates foreign key constraint "orders_user_id_fkey"\nDETAIL:  Key (user_id)=(977) is not present in table "users".',
            ),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:not_null_violation",
            pg(
                "23502",
                'null value in column "email" of relation "users" violates not-null constraint\nDETAIL:  Failing row contains (3, null, null, null).',
            ),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:check_violation",
            pg(
                "23514",
                'new row for relation "users" violates check constraint "users_age_check"\nDETAIL:  Failing row contains (4, c@x.org, x, -1).',
            ),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:check_violation",
            pg(
                "23514",
                'new row for relation "users" violates check constraint "users_age_check"\nDETAIL:  Failing row contains (81, ann@example.org, ann, -7).',
            ),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:string_too_long",
            pg("22001", "value too long for type character varying(10)"),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:string_too_long",
            pg("22001", "value too long for type character varying(255)"),
            V,
            Reason.INVALID_INPUT,
        ),
        ("postgres:division_by_zero", pg("22012", "division by zero"), V, Reason.INVALID_INPUT),
        # select $1::int with 'abc', then with 'x12'
        (
            "postgres:invalid_text_representation",
            pg("22P02", 'invalid input syntax for type integer: "abc"'),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:invalid_text_representation",
            pg("22P02", 'invalid input syntax for type integer: "x12"'),
            V,
            Reason.INVALID_INPUT,
        ),
        ("postgres:numeric_out_of_range", pg("22003", "integer out of range"), V, Reason.INVALID_INPUT),
        (
            "postgres:invalid_byte_sequence",
            pg("22021", 'invalid byte sequence for encoding "UTF8": 0xff'),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:invalid_byte_sequence",
            pg("22021", 'invalid byte sequence for encoding "UTF8": 0xfe'),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:cardinality_violation",
            pg("21000", "more than one row returned by a subquery used as an expression"),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:raise_exception",
            pg(
                "P0001",
                "insufficient balance for account 42\nCONTEXT:  PL/pgSQL function debit(integer,numeric) line 6 at RAISE",
            ),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:raise_exception",
            pg(
                "P0001",
                "insufficient balance for account 7310\nCONTEXT:  PL/pgSQL function debit(integer,numeric) line 6 at RAISE",
            ),
            V,
            Reason.INVALID_INPUT,
        ),
        (
            "postgres:index_row_too_large",
            pg("54000", "index row requires 9616 bytes, maximum size is 8191"),
            V,
            Reason.PAYLOAD_TOO_LARGE,
        ),
        # the task's SQL
        (
            "postgres:undefined_table",
            pg(
                "42P01",
                'relation "missing_table" does not exist\nLINE 1: select * from missing_table\n                      ^',
            ),
            P,
            PROGRAMMING,
        ),
        (
            "postgres:undefined_column",
            pg("42703", 'column "nocol" does not exist\nLINE 1: select nocol from users\n               ^'),
            P,
            PROGRAMMING,
        ),
        (
            "postgres:undefined_function",
            pg(
                "42883",
                "function nofunc(integer) does not exist\nLINE 1: select nofunc(1)\n               ^\nHINT:  No function matches the given name and argument types. You might need to add explicit type casts.",
            ),
            P,
            PROGRAMMING,
        ),
        (
            "postgres:syntax_error",
            pg("42601", 'syntax error at or near "fron"\nLINE 1: select * fron users\n                 ^'),
            P,
            PROGRAMMING,
        ),
        (
            "postgres:grouping_error",
            pg(
                "42803",
                'column "users.id" must appear in the GROUP BY clause or be used in an aggregate function\nLINE 1: select id, count(*) from users\n               ^',
            ),
            P,
            PROGRAMMING,
        ),
        (
            "postgres:in_failed_transaction",
            pg("25P02", "current transaction is aborted, commands ignored until end of transaction block"),
            P,
            PROGRAMMING,
        ),
        ("postgres:insufficient_privilege", pg("42501", "permission denied for table users"), P, Reason.AUTH_FAILED),
        (
            "postgres:insufficient_privilege_schema",
            pg("42501", "permission denied for schema app"),
            P,
            Reason.AUTH_FAILED,
        ),
        # concurrency
        (
            "postgres:deadlock",
            pg("40P01", _DEADLOCK.format(a=30004, b=30005, t1=7813, t2=7812, row=4)),
            T,
            Reason.CONFLICT,
        ),
        (
            "postgres:deadlock",
            pg("40P01", _DEADLOCK.format(a=118, b=2291, t1=90211, t2=90207, row=17)),
            T,
            Reason.CONFLICT,
        ),
        (
            "postgres:serialization_failure",
            pg("40001", "could not serialize access due to concurrent update"),
            T,
            Reason.CONFLICT,
        ),
        (
            "postgres:serialization_failure_pivot",
            pg(
                "40001",
                "could not serialize access due to read/write dependencies among transactions\nDETAIL:  Reason code: Canceled on identification as a pivot, during commit attempt.\nHINT:  The transaction might succeed if retried.",
            ),
            T,
            Reason.CONFLICT,
        ),
        ("postgres:lock_nowait", pg("55P03", 'could not obtain lock on row in relation "users"'), T, Reason.CONFLICT),
        (
            "postgres:lock_timeout",
            pg(
                "55P03",
                'canceling statement due to lock timeout\nCONTEXT:  while updating tuple (0,1) in relation "users"',
            ),
            T,
            Reason.CONFLICT,
        ),
        (
            "postgres:lock_timeout",
            pg(
                "55P03",
                'canceling statement due to lock timeout\nCONTEXT:  while updating tuple (12,33) in relation "users"',
            ),
            T,
            Reason.CONFLICT,
        ),
        # the server
        ("postgres:statement_timeout", pg("57014", "canceling statement due to statement timeout"), T, Reason.TIMEOUT),
        (
            "postgres:admin_shutdown",
            pg("57P01", "terminating connection due to administrator command"),
            T,
            Reason.CONNECTION,
        ),
        (
            "postgres:read_only_transaction",
            pg("25006", "cannot execute INSERT in a read-only transaction"),
            T,
            Reason.SERVICE_UNAVAILABLE,
        ),
        (
            "postgres:disk_full",
            pg(
                "53100",
                'could not extend file "base/16384/16397": No space left on device\nHINT:  Check free disk space.',
            ),
            R,
            Reason.DISK_FULL,
        ),
        (
            "postgres:disk_full",
            pg(
                "53100",
                'could not extend file "base/16384/2608_fsm": No space left on device\nHINT:  Check free disk space.',
            ),
            R,
            Reason.DISK_FULL,
        ),
        (
            "postgres:out_of_shared_memory",
            pg("53200", "out of shared memory\nHINT:  You might need to increase max_locks_per_transaction."),
            R,
            Reason.OUT_OF_MEMORY,
        ),
        ("postgres:too_many_connections", pg("53300", "sorry, too many clients already"), R, POOL),
        (
            "postgres:reserved_slots",
            pg("53300", "remaining connection slots are reserved for non-replication superuser connections"),
            R,
            POOL,
        ),
        # connections that fail (psycopg 3 gives libpq's message, no SQLSTATE)
        (
            "postgres:connect_no_database",
            pg_operational(
                'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "nosuchdb" does not exist'
            ),
            P,
            CONFIGURATION,
        ),
        (
            "postgres:connect_no_role",
            pg_operational(
                'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  role "nosuchuser" does not exist'
            ),
            P,
            Reason.AUTH_FAILED,
        ),
        (
            "postgres:connect_refused",
            pg_operational(
                'connection failed: connection to server at "127.0.0.1", port 5999 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?'
            ),
            T,
            Reason.CONNECTION,
        ),
        (
            "postgres:connect_refused",
            pg_operational(
                'connection failed: connection to server at "10.0.3.17", port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?'
            ),
            T,
            Reason.CONNECTION,
        ),
        (
            "postgres:connect_dns",
            pg_operational("failed to resolve host 'db.internal': [Errno -2] Name or service not known"),
            T,
            Reason.CONNECTION,
        ),
        ("postgres:connection_closed", pg_operational("the connection is closed"), T, Reason.CONNECTION),
    ],
)

POSTGRES += [
    Shape(
        "postgres",
        "postgres:psycopg3_too_many_clients",
        "https://github.com/Syslifters/sysreptor/issues/201",
        pg_operational("connection failed: FATAL:  sorry, too many clients already"),
        R,
        POOL,
    ),
    # psycopg2: the same errors by ``pgcode``, and libpq's connection failures without one
    Shape(
        "postgres",
        "postgres:psycopg2_too_many_clients",
        "https://github.com/mitodl/micromasters/issues/2219",
        p2_connect("FATAL:  sorry, too many clients already\n"),
        R,
        POOL,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_too_many_clients_at",
        "https://github.com/gregsadetsky/tps/issues/21",
        p2_connect(
            'connection to server at "localhost" (::1), port 5432 failed: FATAL:  sorry, too many clients already\n'
        ),
        R,
        POOL,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_password_failed",
        "https://github.com/BurntSushi/nfldb/issues/245",
        p2_connect('FATAL:  password authentication failed for user "nfldb"\n'),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_password_failed",
        "https://github.com/perfsonar/pscheduler/issues/1039",
        p2_connect('FATAL:  password authentication failed for user "pscheduler"\n'),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_no_password",
        "https://github.com/mapbox/osm-boundaries/issues/4",
        p2_connect("fe_sendauth: no password supplied\n"),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_server_closed",
        "https://github.com/101t/jasmin-web-panel/issues/20",
        p2_connect(
            "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n"
        ),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_unique_violation",
        "https://github.com/aiidateam/aiida-core/pull/5103",
        p2(
            "UniqueViolation",
            "IntegrityError",
            "23505",
            'duplicate key value violates unique constraint "db_dbgroup_label_type_string_key"\nDETAIL:  Key (label, type_string)=(group_a, core) already exists.\n',
        ),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_admin_shutdown",
        ERRCODES,
        p2(
            "AdminShutdown",
            "OperationalError",
            "57P01",
            "terminating connection due to administrator command\nSSL connection has been closed unexpectedly\n",
        ),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_query_canceled",
        ERRCODES,
        p2("QueryCanceled", "OperationalError", "57014", "canceling statement due to statement timeout\n"),
        T,
        Reason.TIMEOUT,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_undefined_table",
        ERRCODES,
        p2(
            "UndefinedTable",
            "ProgrammingError",
            "42P01",
            'relation "auth_user" does not exist\nLINE 1: SELECT "auth_user"."id" FROM "auth_user"\n                                      ^\n',
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_cannot_connect_now",
        ERRCODES,
        p2("CannotConnectNow", "OperationalError", "57P03", "the database system is in recovery mode\n"),
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    # asyncpg: the SQLSTATE is an attribute of its class
    Shape(
        "postgres",
        "postgres:asyncpg_too_many_connections",
        "https://github.com/python-gino/gino/issues/70",
        asyncpg_error("TooManyConnectionsError", "53300", "sorry, too many clients already"),
        R,
        POOL,
    ),
    Shape(
        "postgres",
        "postgres:asyncpg_starting_up",
        "https://magicstack.github.io/asyncpg/current/api/index.html#module-asyncpg.exceptions",
        asyncpg_error("CannotConnectNowError", "57P03", "the database system is starting up"),
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    Shape(
        "postgres",
        "postgres:asyncpg_unique_violation",
        "https://magicstack.github.io/asyncpg/current/api/index.html#module-asyncpg.exceptions",
        asyncpg_error(
            "UniqueViolationError", "23505", 'duplicate key value violates unique constraint "users_email_key"'
        ),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "postgres",
        "postgres:asyncpg_deadlock",
        "https://magicstack.github.io/asyncpg/current/api/index.html#module-asyncpg.exceptions",
        asyncpg_error("DeadlockDetectedError", "40P01", "deadlock detected"),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "postgres",
        "postgres:asyncpg_another_operation",
        "https://github.com/MagicStack/asyncpg/issues/537",
        lambda: foreign("asyncpg.exceptions._base.InterfaceError")(
            "cannot perform operation: another operation is in progress"
        ),
        P,
        PROGRAMMING,
    ),
    # the psycopg pool
    Shape(
        "postgres",
        "postgres:pool_timeout",
        "https://github.com/psycopg/psycopg/issues/395",
        lambda: foreign("psycopg_pool.PoolTimeout", psycopg.OperationalError)("couldn't get a connection after 15 sec"),
        R,
        POOL,
    ),
    Shape(
        "postgres",
        "postgres:pool_timeout",
        "https://github.com/canvas-medical/canvas-plugins/issues/634",
        lambda: foreign("psycopg_pool.PoolTimeout", psycopg.OperationalError)(
            "couldn't get a connection after 30.00 sec"
        ),
        R,
        POOL,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_pool_exhausted",
        "https://github.com/Oslandia/lopocs/issues/36",
        lambda: foreign("psycopg2.pool.PoolError", _P2_ERROR)("connection pool exhausted"),
        R,
        POOL,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_pool_exhausted_typo",
        "https://github.com/gratipay/gratipay.com/issues/632",
        lambda: foreign("psycopg2.pool.PoolError", _P2_ERROR)("connection pool exausted"),
        R,
        POOL,
    ),
    Shape(
        "postgres",
        "postgres:psycopg2_pool_closed",
        "https://github.com/psycopg/psycopg2/blob/master/lib/pool.py",
        lambda: foreign("psycopg2.pool.PoolError", _P2_ERROR)("connection pool is closed"),
        P,
        PROGRAMMING,
    ),
    Shape(
        "postgres",
        "postgres:pool_too_many_requests",
        "https://github.com/psycopg/psycopg/blob/master/psycopg_pool/psycopg_pool/pool.py",
        lambda: foreign("psycopg_pool.TooManyRequests", psycopg.OperationalError)(
            "the pool 'pool-1' has already 10 requests waiting"
        ),
        R,
        POOL,
    ),
]


# --- SQLAlchemy ---------------------------------------------------------------------------------------------

_PENDING = (
    "This Session's transaction has been rolled back due to a previous exception during flush. To begin a new "
    "transaction with this Session, first issue Session.rollback(). Original exception was: {orig}"
)


def _pending(orig: str) -> Callable[[], BaseException]:
    return lambda: sa_exc.PendingRollbackError(_PENDING.format(orig=orig), code="7s2a")


SQLALCHEMY: list[Shape] = [
    Shape(
        "sqlalchemy",
        "sqlalchemy:queue_pool_limit",
        "https://github.com/numerique-gouv/ami-notifications-api/issues/375",
        lambda: sa_exc.TimeoutError(
            "QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00", code="3o7r"
        ),
        R,
        POOL,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:queue_pool_limit",
        "https://github.com/PriorLabs/tabpfn-client/issues/57",
        lambda: sa_exc.TimeoutError(
            "QueuePool limit of size 20 overflow 20 reached, connection timed out, timeout 30.00", code="3o7r"
        ),
        R,
        POOL,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:queue_pool_limit",
        "https://github.com/Future-Energy-Associates/granular_certificate_registry/issues/104",
        lambda: sa_exc.TimeoutError(
            "QueuePool limit of size 10 overflow 20 reached, connection timed out, timeout 30.00", code="3o7r"
        ),
        R,
        POOL,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:pending_rollback",
        "https://github.com/Zenor27/fastapi-rest-jsonapi/issues/20",
        _pending("(sqlite3.IntegrityError) UNIQUE constraint failed: user.id"),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:pending_rollback_autoflush",
        "https://github.com/aiidateam/aiida-core/pull/5103",
        _pending(
            '(raised as a result of Query-invoked autoflush; consider using a session.no_autoflush block if this flush is occurring prematurely)\n(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "db_dbgroup_label_type_string_key"\nDETAIL:  Key (label, type_string)=(group_a, core) already exists.'
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:pending_rollback_autoflush",
        "https://github.com/aiidateam/aiida-core/pull/5103",
        _pending(
            '(raised as a result of Query-invoked autoflush; consider using a session.no_autoflush block if this flush is occurring prematurely)\n(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "db_dbgroup_label_type_string_key"\nDETAIL:  Key (label, type_string)=(group_b, data) already exists.'
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:invalid_transaction",
        "https://github.com/pallets-eco/flask-sqlalchemy/issues/1237",
        lambda: sa_exc.PendingRollbackError(
            "Can't reconnect until invalid transaction is rolled back.  Please rollback() fully before proceeding",
            code="8s2b",
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:resource_closed",
        SA_ERRORS,
        lambda: sa_exc.ResourceClosedError(
            "This result object does not return rows. It has been closed automatically."
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:already_attached",
        "https://github.com/sqlalchemy/sqlalchemy/blob/main/lib/sqlalchemy/orm/session.py",
        lambda: sa_exc.InvalidRequestError(
            "Object '<User at 0x7f3a1c2b9d50>' is already attached to session '3' (this is '4')"
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:already_attached",
        "https://github.com/sqlalchemy/sqlalchemy/blob/main/lib/sqlalchemy/orm/session.py",
        lambda: sa_exc.InvalidRequestError(
            "Object '<User at 0x10e4f8a90>' is already attached to session '12' (this is '15')"
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:detached_instance",
        SA_ERRORS,
        lambda: sa_orm_exc.DetachedInstanceError(
            "Parent instance <User at 0x7f0c2a8b5e50> is not bound to a Session; lazy load operation of attribute 'orders' cannot proceed",
            code="bhk3",
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:detached_instance",
        SA_ERRORS,
        lambda: sa_orm_exc.DetachedInstanceError(
            "Parent instance <User at 0x7f11d04c2a10> is not bound to a Session; lazy load operation of attribute 'orders' cannot proceed",
            code="bhk3",
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:missing_greenlet",
        SA_ERRORS,
        lambda: sa_exc.MissingGreenlet(
            "greenlet_spawn has not been called; can't call await_only() here. Was IO attempted in an unexpected place?",
            code="xd2s",
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:no_result",
        "https://docs.sqlalchemy.org/en/20/core/exceptions.html#sqlalchemy.exc.NoResultFound",
        lambda: sa_exc.NoResultFound("No row was found when one was required"),
        P,
        Reason.NOT_FOUND,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:multiple_results",
        "https://docs.sqlalchemy.org/en/20/core/exceptions.html#sqlalchemy.exc.MultipleResultsFound",
        lambda: sa_exc.MultipleResultsFound("Multiple rows were found when exactly one was required"),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:stale_data",
        SA_ORM_EXC,
        lambda: sa_orm_exc.StaleDataError(
            "UPDATE statement on table 'users' expected to update 1 row(s); 0 were matched."
        ),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:stale_data",
        SA_ORM_EXC,
        lambda: sa_orm_exc.StaleDataError(
            "UPDATE statement on table 'users' expected to update 3 row(s); 2 were matched."
        ),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:no_such_dialect",
        "https://github.com/sqlalchemy/sqlalchemy/issues/6105",
        lambda: sa_exc.NoSuchModuleError("Can't load plugin: sqlalchemy.dialects:postgres"),
        P,
        CONFIGURATION,
    ),
    # DBAPIError wrappers: the driver's error inside decides
    Shape(
        "sqlalchemy",
        "sqlalchemy:wrapped_deadlock",
        SA_ERRORS,
        sa_wrapped(
            "OperationalError",
            "UPDATE accounts SET balance=%(balance)s WHERE accounts.id = %(accounts_id)s",
            pg("40P01", _DEADLOCK.format(a=51, b=52, t1=100, t2=101, row=2)),
        ),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:wrapped_too_many_clients",
        "https://github.com/openstate/open-raadsinformatie/issues/198",
        sa_wrapped("OperationalError", "SELECT 1", p2_connect("FATAL:  sorry, too many clients already\n")),
        R,
        POOL,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:wrapped_unique_violation",
        SA_ERRORS,
        sa_wrapped(
            "IntegrityError",
            "INSERT INTO users (email) VALUES (%(email)s)",
            pg(
                "23505",
                'duplicate key value violates unique constraint "users_email_key"\nDETAIL:  Key (email)=(a@example.com) already exists.',
            ),
        ),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:wrapped_undefined_table",
        SA_ERRORS,
        sa_wrapped(
            "ProgrammingError",
            "SELECT users.id FROM users",
            pg(
                "42P01",
                'relation "users" does not exist\nLINE 1: SELECT users.id FROM users\n                             ^',
            ),
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:wrapped_lost_connection",
        "https://github.com/sqlalchemy/sqlalchemy/issues/10327",
        sa_wrapped(
            "OperationalError",
            "SELECT 1",
            pymysql("OperationalError", 2013, "Lost connection to MySQL server during query"),
        ),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:wrapped_sqlite_locked",
        "https://github.com/opensafely-core/opencodelists/pull/1823",
        lambda: sa_exc.OperationalError("INSERT INTO t (x) VALUES (?)", (1,), sqlite_locked()),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "sqlalchemy",
        "sqlalchemy:wrapped_connector_access_denied",
        "https://github.com/wizguin/slippers/issues/38",
        sa_wrapped(
            "ProgrammingError",
            "SELECT 1",
            connector(
                "ProgrammingError", 1045, "Access denied for user 'root'@'localhost' (using password: YES)", "28000"
            ),
        ),
        P,
        Reason.AUTH_FAILED,
    ),
]


# --- MySQL --------------------------------------------------------------------------------------------------

_LOCK_WAIT = "Lock wait timeout exceeded; try restarting transaction"
_DEADLOCK_MYSQL = "Deadlock found when trying to get lock; try restarting transaction"

MYSQL: list[Shape] = [
    Shape(
        "mysql",
        "mysql:pymysql_lock_wait_timeout",
        "https://github.com/frappe/erpnext/pull/25813",
        pymysql("OperationalError", 1205, _LOCK_WAIT),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "mysql",
        "mysql:mysqldb_lock_wait_timeout",
        "https://github.com/nautobot/nautobot-app-golden-config/issues/336",
        mysqldb("OperationalError", 1205, _LOCK_WAIT),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_deadlock",
        "https://github.com/mozilla/ichnaea/issues/991",
        pymysql("OperationalError", 1213, _DEADLOCK_MYSQL),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_deadlock_internal",
        "https://github.com/aio-libs/aiomysql/issues/165",
        pymysql("InternalError", 1213, _DEADLOCK_MYSQL),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "mysql",
        "mysql:mysqldb_deadlock",
        "https://github.com/codalab/codalab-worksheets/issues/3337",
        mysqldb("OperationalError", 1213, _DEADLOCK_MYSQL),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_lost_connection",
        "https://github.com/danfengcao/binlog2sql/issues/80",
        pymysql("OperationalError", 2013, "Lost connection to MySQL server during query"),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "mysql",
        "mysql:mysqldb_lost_connection",
        "https://github.com/CDLUC3/ezid/issues/577",
        mysqldb("OperationalError", 2013, "Lost connection to MySQL server during query"),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_gone_away",
        "https://github.com/PyMySQL/PyMySQL/blob/main/pymysql/connections.py",
        pymysql("OperationalError", 2006, "MySQL server has gone away (BrokenPipeError(32, 'Broken pipe'))"),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "mysql",
        "mysql:mysqldb_gone_away",
        MYSQL_CLIENT,
        mysqldb("OperationalError", 2006, "MySQL server has gone away"),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_cant_connect",
        "https://github.com/neurodata/ndstore/issues/396",
        pymysql("OperationalError", 2003, "Can't connect to MySQL server on 'dsp061.pha.jhu.edu' (111)"),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_cant_connect",
        "https://github.com/neurodata/ndstore/issues/396",
        pymysql("OperationalError", 2003, "Can't connect to MySQL server on '10.0.0.12' (111)"),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_too_many_connections",
        MYSQL_SERVER,
        pymysql("OperationalError", 1040, "Too many connections"),
        R,
        POOL,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_user_connections",
        MYSQL_SERVER,
        pymysql(
            "OperationalError", 1203, "User app_rw already has more than 'max_user_connections' active connections"
        ),
        R,
        POOL,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_duplicate_entry",
        "https://github.com/kkamkou/gitmostwanted.com/issues/216",
        pymysql("IntegrityError", 1062, "Duplicate entry '26554-2017-10-27' for key 'PRIMARY'"),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_duplicate_entry",
        "https://github.com/hail-is/hail/pull/8014",
        pymysql("IntegrityError", 1062, "Duplicate entry '7433-432443' for key 'PRIMARY'"),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_foreign_key",
        MYSQL_SERVER,
        pymysql(
            "IntegrityError",
            1452,
            "Cannot add or update a child row: a foreign key constraint fails (`app`.`orders`, CONSTRAINT `orders_ibfk_1` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`))",
        ),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_data_too_long",
        PYMYSQL_ERR,
        pymysql("DataError", 1406, "Data too long for column 'name' at row 1"),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_data_too_long",
        PYMYSQL_ERR,
        pymysql("DataError", 1406, "Data too long for column 'name' at row 37"),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_incorrect_string",
        MYSQL_SERVER,
        pymysql("DataError", 1366, "Incorrect string value: '\\xF0\\x9F\\x98\\x80' for column 'body' at row 1"),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_no_such_table",
        PYMYSQL_ERR,
        pymysql("ProgrammingError", 1146, "Table 'app.users' doesn't exist"),
        P,
        PROGRAMMING,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_syntax",
        PYMYSQL_ERR,
        pymysql(
            "ProgrammingError",
            1064,
            "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near 'fron users' at line 1",
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_unknown_column",
        PYMYSQL_ERR,
        pymysql("OperationalError", 1054, "Unknown column 'nickname' in 'field list'"),
        P,
        PROGRAMMING,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_access_denied",
        "https://github.com/danfengcao/binlog2sql/issues/123",
        pymysql("OperationalError", 1045, "Access denied for user 'z'@'localhost' (using password: NO)"),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_access_denied",
        "https://github.com/pypi/warehouse/issues/9885",
        pymysql("OperationalError", 1045, "Access denied for user 'user'@'localhost' (using password: NO)"),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_unknown_database",
        MYSQL_SERVER,
        pymysql("OperationalError", 1049, "Unknown database 'app_prod'"),
        P,
        CONFIGURATION,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_read_only",
        MYSQL_SERVER,
        pymysql(
            "OperationalError",
            1290,
            "The MySQL server is running with the --read-only option so it cannot execute this statement",
        ),
        T,
        Reason.SERVICE_UNAVAILABLE,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_max_execution_time",
        MYSQL_SERVER,
        pymysql("OperationalError", 3024, "Query execution was interrupted, maximum statement execution time exceeded"),
        T,
        Reason.TIMEOUT,
    ),
    Shape(
        "mysql",
        "mysql:pymysql_disk_full",
        MYSQL_SERVER,
        pymysql("OperationalError", 1114, "The table 'events' is full"),
        R,
        Reason.DISK_FULL,
    ),
    Shape(
        "mysql",
        "mysql:connector_access_denied",
        "https://github.com/wizguin/slippers/issues/22",
        connector("ProgrammingError", 1045, "Access denied for user 'root'@'localhost' (using password: YES)", "28000"),
        P,
        Reason.AUTH_FAILED,
    ),
    Shape(
        "mysql",
        "mysql:connector_cant_connect",
        "https://github.com/paulpierre/informer/issues/3",
        connector(
            "InterfaceError", 2003, "Can't connect to MySQL server on '127.0.0.1:3320' (111 Connection refused)", None
        ),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "mysql",
        "mysql:connector_cant_connect_hy000",
        "https://github.com/evangelosmeklis/peepdb/issues/60",
        connector("DatabaseError", 2003, "Can't connect to MySQL server on 'localhost:3306' (10061)", "HY000"),
        T,
        Reason.CONNECTION,
    ),
    Shape(
        "mysql",
        "mysql:connector_lock_wait_timeout",
        CONNECTOR_ERRORS,
        connector("DatabaseError", 1205, _LOCK_WAIT, "HY000"),
        T,
        Reason.CONFLICT,
    ),
    Shape(
        "mysql",
        "mysql:connector_duplicate_entry",
        CONNECTOR_ERRORS,
        connector("IntegrityError", 1062, "Duplicate entry 'a@example.com' for key 'users.email'", "23000"),
        V,
        Reason.INVALID_INPUT,
    ),
    Shape(
        "mysql",
        "mysql:connector_duplicate_entry",
        CONNECTOR_ERRORS,
        connector("IntegrityError", 1062, "Duplicate entry 'bob@example.org' for key 'users.email'", "23000"),
        V,
        Reason.INVALID_INPUT,
    ),
    # an error number the table does not list: Connector/Python's SQLSTATE decides (42S22: class 42)
    Shape(
        "mysql",
        "mysql:connector_sqlstate_fallback",
        CONNECTOR_ERRORS,
        connector(
            "ProgrammingError", 1247, "Reference 'total' not supported (forward reference in item list)", "42S22"
        ),
        P,
        PROGRAMMING,
    ),
    Shape(
        "mysql",
        "mysql:connector_pool_exhausted",
        "https://github.com/binux/qiandao/issues/33",
        lambda: foreign("mysql.connector.errors.PoolError", _CONNECTOR_ERROR)(
            "Failed getting connection; pool exhausted"
        ),
        R,
        POOL,
    ),
]


# --- SQLite -------------------------------------------------------------------------------------------------

_USERS = "create table users (id integer primary key, email text unique, name text not null, age int check (age >= 0))"

SQLITE: list[Shape] = [
    *shapes_of(
        "sqlite",
        PY_SQLITE,
        [
            ("sqlite:locked", sqlite_locked, T, Reason.CONFLICT),
            ("sqlite:no_such_table", sqlite_error("select * from users"), P, PROGRAMMING),
            ("sqlite:no_such_column", sqlite_error(_USERS, "select nickname from users"), P, PROGRAMMING),
            (
                "sqlite:no_column_named",
                sqlite_error(_USERS, "insert into users (nickname) values ('x')"),
                P,
                PROGRAMMING,
            ),
            ("sqlite:syntax_error", sqlite_error("selec 1"), P, PROGRAMMING),
            ("sqlite:table_exists", sqlite_error(_USERS, _USERS), P, PROGRAMMING),
            (
                "sqlite:unique",
                sqlite_error(
                    _USERS,
                    "insert into users values (1, 'a@example.com', 'a', 1)",
                    "insert into users values (2, ?, 'b', 2)",
                    params=("a@example.com",),
                ),
                V,
                Reason.INVALID_INPUT,
            ),
            (
                "sqlite:primary_key",
                sqlite_error(
                    _USERS,
                    "insert into users values (1, 'a@example.com', 'a', 1)",
                    "insert into users values (1, 'x@example.com', 'b', 2)",
                ),
                V,
                Reason.INVALID_INPUT,
            ),
            (
                "sqlite:not_null",
                sqlite_error(_USERS, "insert into users (id, email) values (1, 'a@example.com')"),
                V,
                Reason.INVALID_INPUT,
            ),
            (
                "sqlite:check",
                sqlite_error(_USERS, "insert into users values (1, 'a@example.com', 'a', ?)", params=(-1,)),
                V,
                Reason.INVALID_INPUT,
            ),
            (
                "sqlite:foreign_key",
                sqlite_error(
                    "pragma foreign_keys = on",
                    "create table a (id integer primary key)",
                    "create table b (a_id references a(id))",
                    "insert into b values (?)",
                    params=(7,),
                ),
                V,
                Reason.INVALID_INPUT,
            ),
            ("sqlite:bindings", sqlite_error("select ?, ?", params=(1,)), P, PROGRAMMING),
            ("sqlite:bindings", sqlite_error("select ?, ?, ?", params=(1, 2, 3, 4)), P, PROGRAMMING),
            ("sqlite:unsupported_parameter", sqlite_error("select ?", params=({"a": 1},)), P, PROGRAMMING),
            ("sqlite:closed", closed_database, P, PROGRAMMING),
        ],
    ),
    *shapes_of(
        "sqlite",
        SQLITE_CODES,
        [
            (
                "sqlite:readonly",
                sqlite_file(b"", "ro", "insert into t values (1)"),
                P,
                CONFIGURATION,
            ),  # also https://github.com/ReneSmeekes/storj_earnings/issues/20
            ("sqlite:cannot_open", sqlite_file(None, "rwc", "select 1"), P, CONFIGURATION),
            (
                "sqlite:not_a_database",
                sqlite_file(b"this is not a database, it is a text file" * 50, "rw", "select * from sqlite_master"),
                P,
                Reason.PERMANENT_FAILURE,
            ),
            (
                "sqlite:disk_full",
                sqlite_coded("OperationalError", "database or disk is full", 13, "SQLITE_FULL"),
                R,
                Reason.DISK_FULL,
            ),
            (
                "sqlite:disk_io",
                sqlite_coded("OperationalError", "disk I/O error", 522, "SQLITE_IOERR_SHORT_READ"),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            ("sqlite:locked_uncoded", lambda: sqlite3.OperationalError("database table is locked"), T, Reason.CONFLICT),
        ],
    ),
]

SHAPES: list[Shape] = [*POSTGRES, *SQLALCHEMY, *MYSQL, *SQLITE]
