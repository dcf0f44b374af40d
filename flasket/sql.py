"""Typed helpers around SQLAlchemy results and the current app, for the rest of the package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import Flask, current_app

T = TypeVar("T")


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


def per_app(key: str, make: Callable[[], T], app: Flask | None = None) -> T:
    """The object kept under ``key`` in ``app.extensions``, made by ``make()`` on first use.

    Two threads asking at once may both call ``make``; ``dict.setdefault`` keeps the first
    object stored, and both get that one.

    :param key: the ``app.extensions`` key (``"flasket.outbox_ledger"``).
    :param make: makes the object, without arguments.
    :param app: the Flask application; None for the current app.
    :return: the same object on every call for one app and key.
    :raises RuntimeError: when ``app`` is None and there is no application context.
    """
    extensions = (app or current_app).extensions
    found = extensions.get(key)
    if found is None:
        found = extensions.setdefault(key, make())
    return cast(T, found)
