"""SQLite: the result code its errors carry (``sqlite_errorname``, Python 3.11+), and their messages.

The code decides when SQLite gives one (``SQLITE_BUSY`` is "database is locked", ``SQLITE_CANTOPEN``
"unable to open database file"); its generic ``SQLITE_ERROR`` ("no such table: x", a syntax error) and
errors built without a code are judged by their message (:data:`SQLITE_MESSAGE_RULES`).

Sources: https://www.sqlite.org/rescode.html, https://docs.python.org/3/library/sqlite3.html#exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import CodeRule, MessageRule, Outcome, Outcomes

#: SQLite result codes by name; an extended code (``SQLITE_IOERR_WRITE``) without an entry of its own
#: takes its primary code's (``SQLITE_IOERR``).
SQLITE_RESULT_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        "SQLITE_BUSY": Outcomes.CONFLICT,  # database is locked
        "SQLITE_LOCKED": Outcomes.CONFLICT,  # database table is locked
        "SQLITE_PROTOCOL": Outcomes.CONFLICT,  # locking protocol
        "SQLITE_SCHEMA": Outcomes.CONFLICT,  # database schema has changed
        "SQLITE_INTERRUPT": Outcomes.TIMEOUT,  # interrupted (a progress handler's time limit)
        "SQLITE_FULL": Outcomes.DISK_FULL,  # database or disk is full
        "SQLITE_NOMEM": Outcomes.OUT_OF_MEMORY,
        "SQLITE_IOERR_NOMEM": Outcomes.OUT_OF_MEMORY,
        "SQLITE_IOERR": Outcomes.UNAVAILABLE,  # disk I/O error
        "SQLITE_CANTOPEN": Outcomes.CONFIGURATION,  # unable to open database file
        "SQLITE_READONLY": Outcomes.CONFIGURATION,  # attempt to write a readonly database
        "SQLITE_PERM": Outcomes.AUTH_FAILED,  # access permission denied
        "SQLITE_AUTH": Outcomes.AUTH_FAILED,  # not authorized
        "SQLITE_CORRUPT": Outcomes.PERMANENT,  # database disk image is malformed
        "SQLITE_NOTADB": Outcomes.PERMANENT,  # file is not a database
        "SQLITE_CONSTRAINT": Outcomes.INVALID_INPUT,  # UNIQUE / NOT NULL / FOREIGN KEY / CHECK constraint failed
        "SQLITE_MISMATCH": Outcomes.INVALID_INPUT,  # datatype mismatch
        "SQLITE_TOOBIG": Outcomes.TOO_LARGE,  # string or blob too big
        "SQLITE_MISUSE": Outcomes.PROGRAMMING,  # bad parameter or other API misuse
        "SQLITE_RANGE": Outcomes.PROGRAMMING,  # column index out of range
    }
)


def sqlite_outcome(name: str) -> Outcome | None:
    """The outcome of a SQLite result code's name, else of its primary code's."""
    outcome = SQLITE_RESULT_CODES.get(name)
    if outcome is None and name.startswith("SQLITE_"):
        primary = "_".join(name.split("_", 2)[:2])
        outcome = SQLITE_RESULT_CODES.get(primary)
    return outcome


_SQLITE_ERROR = frozenset({"sqlite3.Error"})
_SQLITE_OPERATIONAL = frozenset({"sqlite3.OperationalError"})

#: The result code's name of SQLite's errors.
SQLITE_RULE = CodeRule("sqlite", ("sqlite_errorname",), sqlite_outcome, _SQLITE_ERROR)

#: SQLite's messages, for its generic ``SQLITE_ERROR`` and errors without a code.
SQLITE_MESSAGE_RULES: tuple[MessageRule, ...] = (
    MessageRule(
        "sqlite_locked", re.compile(r"database (?:table |schema )?is locked"), Outcomes.CONFLICT, _SQLITE_OPERATIONAL
    ),
    MessageRule("sqlite_full", re.compile(r"database or disk is full"), Outcomes.DISK_FULL, _SQLITE_OPERATIONAL),
    MessageRule("sqlite_io", re.compile(r"^disk I/O error"), Outcomes.UNAVAILABLE, _SQLITE_OPERATIONAL),
    MessageRule(
        "sqlite_file",
        re.compile(r"^(?:unable to open database file|attempt to write a readonly database)"),
        Outcomes.CONFIGURATION,
        _SQLITE_OPERATIONAL,
    ),
    MessageRule(
        "sqlite_corrupt",
        re.compile(r"^(?:database disk image is malformed|file is not a database)"),
        Outcomes.PERMANENT,
        _SQLITE_ERROR,
    ),
    MessageRule(
        "sqlite_sql",
        re.compile(
            r"^(?:no such (?:table|column|function|index|view|savepoint|module|collation sequence):"
            r"|table \S+ has no column named |(?:table|index|view|trigger) \S+ already exists"
            r"|near \"[^\"\n]{0,200}\": syntax error|incomplete input|ambiguous column name:"
            r"|table \S+ has \d+ columns but \d+ values were supplied|\d+ values for \d+ columns"
            r"|misuse of aggregate|wrong number of arguments to function )"
        ),
        Outcomes.PROGRAMMING,
        _SQLITE_OPERATIONAL,
    ),
)
