"""Which database errors a deliverer waits out, and which mean its settings are wrong.

A worker keeps running through an outage: a connection killed by the server, a
restart, a failover, a deadlock or lock timeout. It stops on an error that no
wait will mend (a missing table, a wrong password, an unknown database), so the
operator sees it at once instead of a worker that retries for ever.
"""

from __future__ import annotations

import sqlalchemy as sa

#: MariaDB/MySQL codes that are configuration: access denied (1044, 1045, 1698), no database
#: selected or unknown (1046, 1049), unknown column or table (1054, 1146).
CONFIGURATION_CODES = frozenset({1044, 1045, 1046, 1049, 1054, 1146, 1698})

#: SQLSTATE classes that are configuration: invalid authorization (28), invalid catalog
#: name, that is an unknown database (3D), syntax error or access rule violation (42).
CONFIGURATION_SQLSTATE_CLASSES = ("28", "3D", "42")

#: Words of errors that carry no code: psycopg's refused connections ("role ... does not
#: exist", "password authentication failed"), SQLite's missing tables and columns.
CONFIGURATION_WORDS = (
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "access denied",
    "no such table",
    "no such column",
)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is the database going away or being busy, worth a retry.

    True for an error SQLAlchemy recognised as a disconnect (``connection_invalidated``)
    and for ``OperationalError`` and ``InterfaceError`` (refused connections, a server
    shutting down, deadlocks, lock timeouts) unless they say the settings are wrong.
    ``ProgrammingError`` and every other error are not transient.

    :param error: any exception; only a :class:`sqlalchemy.exc.DBAPIError` can be transient.
    :return: True when waiting and retrying may succeed.
    """
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return False
    return not is_configuration(error.orig)


def is_configuration(driver_error: BaseException | None) -> bool:
    """Whether a driver's error says the connection settings or the schema are wrong.

    It is, when its first argument is one of :data:`CONFIGURATION_CODES` (MariaDB/MySQL),
    its ``sqlstate`` is in one of :data:`CONFIGURATION_SQLSTATE_CLASSES` (SQL standard,
    as psycopg reports it), or its text has one of :data:`CONFIGURATION_WORDS`.

    :param driver_error: the DBAPI driver's exception (``DBAPIError.orig``), or None.
    :return: True when no wait will mend it; False for None.
    """
    if driver_error is None:
        return False
    args = getattr(driver_error, "args", ())
    if args and isinstance(args[0], int) and args[0] in CONFIGURATION_CODES:
        return True
    sqlstate = getattr(driver_error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(CONFIGURATION_SQLSTATE_CLASSES):
        return True
    text = str(driver_error).lower()
    return any(words in text for words in CONFIGURATION_WORDS)


def describe(error: BaseException) -> str:
    """The driver's error in one line, without SQLAlchemy's statement and help link.

    :param error: any exception; for a :class:`sqlalchemy.exc.DBAPIError` its driver's
        error (``orig``) is described.
    :return: ``"ClassName: message"``, the message's white space collapsed and cut to
        300 characters; the bare class name when the message is empty.
    """
    found = getattr(error, "orig", None) or error
    first = " ".join(str(found).split())
    name = type(found).__name__
    return f"{name}: {first[:300]}" if first else name
