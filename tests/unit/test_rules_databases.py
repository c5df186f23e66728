"""The database rules: SQLSTATE by class and by code (psycopg 3, psycopg2, asyncpg, SQLAlchemy's wrappers),
MySQL error numbers (``errno`` or the first argument), SQLite result codes and messages, pools."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import psycopg.errors
import pytest
import sqlalchemy.exc as sa_exc

from error_handling import Category, Reason, classify
from error_handling.rules import CODE_RULES, all_outcomes, database_outcomes
from error_handling.rules.mysql import MYSQL_ERRORS, mysql_outcome
from error_handling.rules.outcome import Outcomes
from error_handling.rules.sqlite import sqlite_outcome
from error_handling.rules.sqlstate import SQLSTATE_CLASSES, SQLSTATE_CODES, sqlstate_outcome

T, R, V, P = Category.TRANSIENT, Category.RESOURCE, Category.VALIDATION, Category.PERMANENT


def fake(path: str, *bases: type[BaseException], **attrs: Any) -> type[Exception]:
    module, _, name = path.rpartition(".")
    return type(name, bases or (Exception,), {"__module__": module, **attrs})


# --- SQLSTATE ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("08006", Outcomes.CONNECTION),  # by class
        ("23505", Outcomes.INVALID_INPUT),
        ("42P01", Outcomes.PROGRAMMING),
        ("28P01", Outcomes.AUTH_FAILED),
        ("40001", Outcomes.CONFLICT),
        ("53300", Outcomes.POOL),  # a code that differs from its class
        ("53100", Outcomes.DISK_FULL),
        ("57014", Outcomes.TIMEOUT),
        ("57P01", Outcomes.CONNECTION),
        ("57P03", Outcomes.UNAVAILABLE),
        ("55P03", Outcomes.CONFLICT),
        ("25P02", Outcomes.PROGRAMMING),
        ("42501", Outcomes.AUTH_FAILED),
        ("XX000", None),  # says nothing
        ("01000", None),  # a warning class: nothing
        ("ABC", None),  # not a SQLSTATE
        ("4000l", None),
        ("40001 ", None),
    ],
)
def test_sqlstate_by_code_then_class(code: str, outcome: object) -> None:
    assert sqlstate_outcome(code) == outcome


def test_the_sqlstate_tables_are_well_formed() -> None:
    assert all(len(c) == 2 and c.isalnum() and c == c.upper() for c in SQLSTATE_CLASSES)
    assert all(len(c) == 5 and c.isalnum() and c == c.upper() for c in SQLSTATE_CODES)
    assert all(isinstance(n, int) and 1000 <= n <= 9999 for n in MYSQL_ERRORS)
    descriptions = [d for d, _ in database_outcomes()]
    assert len(descriptions) == len(set(descriptions))
    assert set(descriptions) <= {d for d, _ in all_outcomes()}


@pytest.mark.parametrize(
    ("code", "message", "category", "reason"),
    [
        ("53300", "sorry, too many clients already", R, Reason.POOL_EXHAUSTED),
        ("57014", "canceling statement due to statement timeout", T, Reason.TIMEOUT),
        ("57P01", "terminating connection due to administrator command", T, Reason.CONNECTION),
        ("42P01", 'relation "t" does not exist', P, Reason.PROGRAMMING_ERROR),
        ("22P02", 'invalid input syntax for type integer: "abc"', V, Reason.INVALID_INPUT),
        ("40P01", "deadlock detected", T, Reason.CONFLICT),
        ("25006", "cannot execute INSERT in a read-only transaction", T, Reason.SERVICE_UNAVAILABLE),
    ],
)
def test_real_psycopg_errors_by_sqlstate(code: str, message: str, category: Category, reason: Reason) -> None:
    c = classify(psycopg.errors.lookup(code)(message))
    assert (c.category, c.reason, c.rule) == (category, reason.value, f"sqlstate:{code}")


def test_psycopg2_pgcode_and_asyncpg_class_sqlstate() -> None:
    p2 = fake("psycopg2.errors.SerializationFailure", fake("psycopg2.OperationalError"))("could not serialize")
    p2.pgcode = "40001"  # type: ignore[attr-defined]
    assert classify(p2).rule == "sqlstate:40001"
    asyncpg = fake("asyncpg.exceptions.TooManyConnectionsError", sqlstate="53300")("sorry, too many clients already")
    c = classify(asyncpg)
    assert (c.category, c.reason, c.resource) == (R, Reason.POOL_EXHAUSTED.value, "connection_pool")


def test_a_sqlalchemy_wrapper_is_classified_by_the_sqlstate_it_wraps() -> None:
    orig = psycopg.errors.lookup("57014")("canceling statement due to statement timeout")
    c = classify(sa_exc.OperationalError("SELECT pg_sleep(10)", {}, orig))
    assert (c.category, c.reason, c.rule) == (T, Reason.TIMEOUT.value, "wrapped:sqlstate:57014")
    assert c.exc_type == "sqlalchemy.exc.OperationalError"


@pytest.mark.parametrize(
    ("message", "category", "reason"),
    [
        ('connection failed: FATAL:  database "x" does not exist', P, Reason.INVALID_CONFIGURATION),
        ('FATAL:  password authentication failed for user "app"', P, Reason.AUTH_FAILED),
        ("connection failed: FATAL:  sorry, too many clients already", R, Reason.POOL_EXHAUSTED),
        (
            "FATAL:  remaining connection slots are reserved for non-replication superuser connections",
            R,
            Reason.POOL_EXHAUSTED,
        ),
        ("FATAL:  the database system is starting up", T, Reason.SERVICE_UNAVAILABLE),
        ("connection failed: Connection refused", T, Reason.CONNECTION),
    ],
)
def test_libpq_connection_failures_by_message(message: str, category: Category, reason: Reason) -> None:
    c = classify(psycopg.OperationalError(message))
    assert (c.category, c.reason) == (category, reason.value)


# --- pools and SQLAlchemy ----------------------------------------------------------------------------------


def test_pool_timeouts_wait_for_the_pool() -> None:
    sa = sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00")
    pool = fake("psycopg_pool.PoolTimeout", psycopg.OperationalError)("couldn't get a connection after 30.00 sec")
    for exc in (sa, pool):
        c = classify(exc)
        assert (c.category, c.reason, c.resource) == (R, Reason.POOL_EXHAUSTED.value, "connection_pool")


def test_session_misuse_is_a_programming_error() -> None:
    pending = sa_exc.PendingRollbackError(
        "This Session's transaction has been rolled back due to a previous exception during flush. To begin a new "
        "transaction with this Session, first issue Session.rollback(). Original exception was: (sqlite3."
        "IntegrityError) UNIQUE constraint failed: user.id"
    )
    for exc in (pending, sa_exc.ResourceClosedError("This result object is closed.")):
        assert (classify(exc).category, classify(exc).reason) == (P, Reason.PROGRAMMING_ERROR.value)


def test_session_misuse_wins_over_the_transient_error_it_was_raised_while_handling() -> None:
    try:
        try:
            raise psycopg.errors.lookup("40P01")("deadlock detected")
        except psycopg.Error:
            raise sa_exc.PendingRollbackError("This Session's transaction has been rolled back ...") from None
    except sa_exc.PendingRollbackError as exc:
        assert classify(exc).reason == Reason.PROGRAMMING_ERROR.value


# --- MySQL -------------------------------------------------------------------------------------------------


def test_mysql_number_as_first_argument_or_errno() -> None:
    pymysql = fake("pymysql.err.OperationalError", fake("pymysql.err.MySQLError"))
    c = classify(pymysql(1213, "Deadlock found when trying to get lock; try restarting transaction"))
    assert (c.category, c.reason, c.rule) == (T, Reason.CONFLICT.value, "mysql:1213")
    connector = fake("mysql.connector.errors.DatabaseError", fake("mysql.connector.errors.Error"))
    exc = connector("1040 (08004): Too many connections")
    exc.errno, exc.sqlstate = 1040, "08004"  # type: ignore[attr-defined]
    assert classify(exc).rule == "mysql:1040"


def test_an_unlisted_mysql_number_falls_back_to_its_sqlstate_then_its_class() -> None:
    connector = fake("mysql.connector.errors.ProgrammingError", fake("mysql.connector.errors.Error"))
    exc = connector("1247 (42S22): Reference 'x' not supported")
    exc.errno, exc.sqlstate = 1247, "42S22"  # type: ignore[attr-defined]
    assert classify(exc).rule == "sqlstate:42S22"
    pymysql = fake("pymysql.err.OperationalError", fake("pymysql.err.MySQLError"))
    assert classify(pymysql(1105, "Unknown error")).rule == "exception:pymysql.err.OperationalError"


@pytest.mark.parametrize("args", [(), (True, "x"), (None,), ("12345678",), (-1, "x"), ([1213], "x"), ("x",)])
def test_odd_mysql_arguments_say_nothing(args: tuple[Any, ...]) -> None:
    pymysql = fake("pymysql.err.InternalError", fake("pymysql.err.MySQLError"))
    assert classify(pymysql(*args)).rule == "unclassified"


def test_the_first_argument_is_read_only_for_mysql_errors() -> None:
    assert classify(Exception(1213, "Deadlock found")).rule == "unclassified"
    assert mysql_outcome("1213") == Outcomes.CONFLICT
    assert mysql_outcome("-1") is None
    names = [rule.name for rule in CODE_RULES]
    assert names.index("mysql") < names.index("sqlite") < names.index("sqlstate")  # the most specific first


# --- SQLite ------------------------------------------------------------------------------------------------


def test_sqlite_result_codes_and_their_primary_code() -> None:
    assert sqlite_outcome("SQLITE_BUSY") == Outcomes.CONFLICT
    assert sqlite_outcome("SQLITE_BUSY_SNAPSHOT") == Outcomes.CONFLICT
    assert sqlite_outcome("SQLITE_IOERR_NOMEM") == Outcomes.OUT_OF_MEMORY
    assert sqlite_outcome("SQLITE_IOERR_WRITE") == Outcomes.UNAVAILABLE
    assert sqlite_outcome("SQLITE_ERROR") is None
    assert sqlite_outcome("SQLITE") is None


def test_real_sqlite_errors() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("create table t (x unique)")
    connection.execute("insert into t values (1)")
    cases = {
        "insert into t values (1)": (V, Reason.INVALID_INPUT, "sqlite:SQLITE_CONSTRAINT_UNIQUE"),
        "select * from missing": (P, Reason.PROGRAMMING_ERROR, "message:sqlite_sql"),
        "selec 1": (P, Reason.PROGRAMMING_ERROR, "message:sqlite_sql"),
    }
    for statement, (category, reason, rule) in cases.items():
        with pytest.raises(sqlite3.Error) as caught:
            connection.execute(statement)
        c = classify(caught.value)
        assert (c.category, c.reason, c.rule) == (category, reason.value, rule)
    connection.close()
    with pytest.raises(sqlite3.ProgrammingError) as closed:
        connection.execute("select 1")
    assert classify(closed.value).reason == Reason.PROGRAMMING_ERROR.value
