"""MySQL and MariaDB error numbers: the server's (``ER_*``, 1000-4999) and the client library's (``CR_*``,
2000-2999), whichever driver raises them.

PyMySQL (and aiomysql, built on it) and mysqlclient (``MySQLdb``) raise ``OperationalError(number,
message)``: the number is the first argument. MySQL Connector/Python sets ``errno`` (and ``sqlstate``,
which the SQLSTATE rule reads when the number says nothing). SQLAlchemy's wrappers are classified by the
driver's error they hold.

Sources: https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html,
https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html,
https://mariadb.com/kb/en/mariadb-error-code-reference/, https://docs.pingcap.com/tidb/stable/error-codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import CodeRule, Outcome, Outcomes

#: Error numbers of MySQL, MariaDB and MySQL-compatible servers (TiDB), with their symbol.
MYSQL_ERRORS: Mapping[int, Outcome] = MappingProxyType(
    {
        # connections and the server's state
        1040: Outcomes.POOL,  # ER_CON_COUNT_ERROR: Too many connections
        1203: Outcomes.POOL,  # ER_TOO_MANY_USER_CONNECTIONS: max_user_connections
        1043: Outcomes.CONNECTION,  # ER_HANDSHAKE_ERROR: Bad handshake
        1053: Outcomes.UNAVAILABLE,  # ER_SERVER_SHUTDOWN: Server shutdown in progress
        1152: Outcomes.CONNECTION,  # ER_ABORTING_CONNECTION
        1158: Outcomes.CONNECTION,  # ER_NET_READ_ERROR
        1159: Outcomes.CONNECTION,  # ER_NET_READ_INTERRUPTED
        1160: Outcomes.CONNECTION,  # ER_NET_ERROR_ON_WRITE
        1161: Outcomes.CONNECTION,  # ER_NET_WRITE_INTERRUPTED
        1290: Outcomes.UNAVAILABLE,  # ER_OPTION_PREVENTS_STATEMENT: --read-only (a replica after failover)
        1836: Outcomes.UNAVAILABLE,  # ER_READ_ONLY_MODE
        1927: Outcomes.CONNECTION,  # ER_CONNECTION_KILLED (MariaDB)
        4031: Outcomes.CONNECTION,  # ER_CLIENT_INTERACTION_TIMEOUT: disconnected for inactivity
        2002: Outcomes.CONNECTION,  # CR_CONNECTION_ERROR: Can't connect to local MySQL server through socket
        2003: Outcomes.CONNECTION,  # CR_CONN_HOST_ERROR: Can't connect to MySQL server on
        2005: Outcomes.CONNECTION,  # CR_UNKNOWN_HOST
        2006: Outcomes.CONNECTION,  # CR_SERVER_GONE_ERROR: MySQL server has gone away
        2013: Outcomes.CONNECTION,  # CR_SERVER_LOST: Lost connection to MySQL server during query
        2055: Outcomes.CONNECTION,  # CR_SERVER_LOST_EXTENDED
        2014: Outcomes.PROGRAMMING,  # CR_COMMANDS_OUT_OF_SYNC
        2059: Outcomes.CONFIGURATION,  # CR_AUTH_PLUGIN_CANNOT_LOAD
        # locks and transactions
        1205: Outcomes.CONFLICT,  # ER_LOCK_WAIT_TIMEOUT
        1213: Outcomes.CONFLICT,  # ER_LOCK_DEADLOCK
        1020: Outcomes.CONFLICT,  # ER_CHECKREAD: Record has changed since last read
        1614: Outcomes.CONFLICT,  # ER_XA_RBDEADLOCK
        3572: Outcomes.CONFLICT,  # ER_LOCK_NOWAIT
        1637: Outcomes.UNAVAILABLE,  # ER_TOO_MANY_CONCURRENT_TRXS
        9007: Outcomes.CONFLICT,  # TiDB: Write conflict
        # time limits
        1317: Outcomes.TIMEOUT,  # ER_QUERY_INTERRUPTED
        1969: Outcomes.TIMEOUT,  # ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
        3024: Outcomes.TIMEOUT,  # ER_QUERY_TIMEOUT (max_execution_time)
        # the server's resources
        1021: Outcomes.DISK_FULL,  # ER_DISK_FULL
        1114: Outcomes.DISK_FULL,  # ER_RECORD_FILE_FULL: The table is full
        1037: Outcomes.OUT_OF_MEMORY,  # ER_OUTOFMEMORY
        1038: Outcomes.OUT_OF_MEMORY,  # ER_OUT_OF_SORTMEMORY
        1041: Outcomes.OUT_OF_MEMORY,  # ER_OUT_OF_RESOURCES
        2008: Outcomes.OUT_OF_MEMORY,  # CR_OUT_OF_MEMORY
        1226: Outcomes.QUOTA,  # ER_USER_LIMIT_REACHED: max_questions, max_updates
        # credentials
        1044: Outcomes.AUTH_FAILED,  # ER_DBACCESS_DENIED_ERROR
        1045: Outcomes.AUTH_FAILED,  # ER_ACCESS_DENIED_ERROR
        1130: Outcomes.AUTH_FAILED,  # ER_HOST_NOT_PRIVILEGED
        1142: Outcomes.AUTH_FAILED,  # ER_TABLEACCESS_DENIED_ERROR
        1143: Outcomes.AUTH_FAILED,  # ER_COLUMNACCESS_DENIED_ERROR
        1227: Outcomes.AUTH_FAILED,  # ER_SPECIFIC_ACCESS_DENIED_ERROR
        1698: Outcomes.AUTH_FAILED,  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
        # the deployment
        1046: Outcomes.CONFIGURATION,  # ER_NO_DB_ERROR: No database selected
        1049: Outcomes.CONFIGURATION,  # ER_BAD_DB_ERROR: Unknown database
        # the task's SQL
        1050: Outcomes.PROGRAMMING,  # ER_TABLE_EXISTS_ERROR
        1051: Outcomes.PROGRAMMING,  # ER_BAD_TABLE_ERROR
        1052: Outcomes.PROGRAMMING,  # ER_NON_UNIQ_ERROR: Column is ambiguous
        1054: Outcomes.PROGRAMMING,  # ER_BAD_FIELD_ERROR: Unknown column
        1060: Outcomes.PROGRAMMING,  # ER_DUP_FIELDNAME
        1064: Outcomes.PROGRAMMING,  # ER_PARSE_ERROR
        1091: Outcomes.PROGRAMMING,  # ER_CANT_DROP_FIELD_OR_KEY
        1136: Outcomes.PROGRAMMING,  # ER_WRONG_VALUE_COUNT_ON_ROW
        1146: Outcomes.PROGRAMMING,  # ER_NO_SUCH_TABLE
        1305: Outcomes.PROGRAMMING,  # ER_SP_DOES_NOT_EXIST
        # the task's input
        1048: Outcomes.INVALID_INPUT,  # ER_BAD_NULL_ERROR
        1062: Outcomes.INVALID_INPUT,  # ER_DUP_ENTRY
        1586: Outcomes.INVALID_INPUT,  # ER_DUP_ENTRY_WITH_KEY_NAME
        1216: Outcomes.INVALID_INPUT,  # ER_NO_REFERENCED_ROW
        1217: Outcomes.INVALID_INPUT,  # ER_ROW_IS_REFERENCED
        1451: Outcomes.INVALID_INPUT,  # ER_ROW_IS_REFERENCED_2
        1452: Outcomes.INVALID_INPUT,  # ER_NO_REFERENCED_ROW_2
        1264: Outcomes.INVALID_INPUT,  # ER_WARN_DATA_OUT_OF_RANGE
        1265: Outcomes.INVALID_INPUT,  # WARN_DATA_TRUNCATED
        1292: Outcomes.INVALID_INPUT,  # ER_TRUNCATED_WRONG_VALUE
        1364: Outcomes.INVALID_INPUT,  # ER_NO_DEFAULT_FOR_FIELD
        1366: Outcomes.INVALID_INPUT,  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD (also "Incorrect string value")
        1406: Outcomes.INVALID_INPUT,  # ER_DATA_TOO_LONG
        3819: Outcomes.INVALID_INPUT,  # ER_CHECK_CONSTRAINT_VIOLATED
        1153: Outcomes.TOO_LARGE,  # ER_NET_PACKET_TOO_LARGE: max_allowed_packet
    }
)


def mysql_outcome(code: str) -> Outcome | None:
    """The outcome of a MySQL error number (given as text)."""
    return MYSQL_ERRORS.get(int(code)) if code.isdecimal() and len(code) <= 5 else None


#: The base classes of the MySQL drivers' errors.
MYSQL_EXCEPTIONS = frozenset(
    {
        "pymysql.err.MySQLError",  # PyMySQL, aiomysql
        "MySQLdb._exceptions.MySQLError",  # mysqlclient
        "_mysql_exceptions.MySQLError",  # mysqlclient before 1.4
        "mysql.connector.errors.Error",  # MySQL Connector/Python
        "asyncmy.errors.MySQLError",
    }
)

#: The error number: Connector/Python's ``errno``, else the first argument (PyMySQL, mysqlclient).
MYSQL_RULE = CodeRule("mysql", ("errno", "args"), mysql_outcome, MYSQL_EXCEPTIONS)
