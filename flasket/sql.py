"""Typed helpers around SQLAlchemy results and the current app, for the rest of the package."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app


def affected_rows(result: sa.Result[Any]) -> int:
    """How many rows an ``INSERT``, ``UPDATE`` or ``DELETE`` matched (DBAPI ``rowcount``).

    ``Session.execute()`` is typed as returning :class:`sqlalchemy.Result`; a statement
    that changes rows returns a :class:`sqlalchemy.CursorResult`, which has the count.

    :param result: what ``session.execute()`` returned for such a statement.
    :return: the number of rows, 0 or more.
    :raises TypeError: when ``result`` does not come from a statement run on a cursor.
    """
    if not isinstance(result, sa.CursorResult):
        raise TypeError(f"{type(result).__name__} has no row count")
    return int(result.rowcount)


def app_object() -> Flask:
    """The current app itself, not the ``current_app`` proxy.

    For threads and signal receivers that outlive the request or app context.

    :return: the :class:`flask.Flask` object ``current_app`` stands for.
    :raises RuntimeError: outside an app context (Flask's "Working outside of application
        context").
    """
    return getattr(current_app, "_get_current_object")()  # type: ignore[no-any-return]  # noqa: B009
