"""Flasket's error pages: a 4xx in the ticket area, a stale form, a database out of reach.

:func:`register_error_handlers` installs the handlers on the blueprint of
:mod:`flasket.views`, which keeps the routes; the pages render ``flasket/error.html``
in the host's layout (see :mod:`flasket.templating`), with a plain page of last resort
when even that fails.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import HTTPException, default_exceptions

from .db_errors import describe, is_transient
from .forms import CSRF_MESSAGE
from .i18n import (
    SOURCE_READER,
    Text,
    current_reader,
    force_locale,
    gettext,
    lazy_gettext,
)
from .proxies import current_flasket


def register_error_handlers(bp: Blueprint) -> None:
    """Install Flasket's error handlers on ``bp``, for errors raised inside its routes.

    :param bp: the ``flasket`` blueprint.
    """
    bp.register_error_handler(CSRFError, csrf_error)
    bp.register_error_handler(HTTPException, http_error)
    # Also by code: Flask looks for a handler of the error's code (the blueprint's, then the
    # app's) before one of HTTPException, so a host's own 404 page would win inside the ticket
    # area. A 401 is the login view's; a 5xx stays the host's, as rendering a page may be what
    # failed.
    for code in sorted(default_exceptions):
        if 400 <= code < 500 and code != 401:
            bp.register_error_handler(code, http_error)
    bp.register_error_handler(sa.exc.DBAPIError, database_error)
    bp.register_error_handler(sa.exc.PendingRollbackError, database_error)


def csrf_error(error: CSRFError) -> ResponseReturnValue:
    """A form whose CSRF token is missing or stale: a 400 page that says to reload the form.

    :param error: the error Flask-WTF raised.
    :return: the page and status 400.
    """
    return error_page(400, CSRF_MESSAGE), 400


def error_page(code: int, message: Text, back: tuple[str, str] | None = None) -> str:
    """Flasket's error page, in the host's layout.

    :param code: the HTTP status shown on the page (the caller still returns it).
    :param message: what the reader is told, escaped by the template.
    :param back: a ``(URL, link text)`` pair to return to; None for the ticket list.
    :return: the rendered HTML.
    :raises Exception: whatever rendering the host's layout raises (a lost database).
    """
    return render_template("flasket/error.html", code=code, message=message, back=back)


#: Plain words for errors raised without a message of Flasket's own.
ERROR_MESSAGES = {
    400: lazy_gettext("That request could not be understood. Go back and try again."),
    403: lazy_gettext("You are not allowed to do that."),
    404: lazy_gettext("That page does not exist."),
    405: lazy_gettext("That action is not available here."),
    413: lazy_gettext("What you sent is too large. Shorten it and try again."),
}


def http_error(error: HTTPException) -> ResponseReturnValue:
    """Flasket's page for a 4xx raised inside the ticket area (a 401 is the login view's).

    :param error: the HTTP error; its description is the message, or one of
        :data:`ERROR_MESSAGES` when it has only Werkzeug's default one.
    :return: the page, the error's status and, for a 405, its ``Allow`` header; the error
        itself for a status below 400 and for a 401.
    """
    if error.code is None or error.code < 400 or error.code == 401:
        return error
    message = error.description or ""
    if message == type(error).description:
        message = str(ERROR_MESSAGES.get(error.code, message))
    response = error_page(error.code, message)
    return response, error.code, error.get_headers() if error.code == 405 else {}


log = logging.getLogger("flasket")


#: What a person reads when the database is out of reach: a change they saw confirmed was
#: committed before (nothing after a commit can fail it), and forms are safe to send again.
DATABASE_UNAVAILABLE_MESSAGE = lazy_gettext(
    "The ticket system cannot reach its database just now. Nothing you sent was lost if "
    "you saw a confirmation; try again in a minute."
)


#: Seconds a 503 for an unreachable database asks the client to wait (``Retry-After``).
RETRY_AFTER_SECONDS = 60


#: The page of last resort, when even the error page cannot be rendered (the host's layout
#: or Flask-Login's user loader needing the database): no template, no layout, no user.
PLAIN_UNAVAILABLE_PAGE = (
    '<!doctype html>\n<html lang="{lang}" dir="{dir}"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title></head>\n"
    '<body><h1>{title}</h1><p role="alert">{message}</p></body></html>\n'
)


def database_error(error: sa.exc.SQLAlchemyError) -> ResponseReturnValue:
    """A database that went away or is busy gets a 503 page; any other error stays a 500.

    The session is rolled back first, so the page (the host's layout, ``current_user``)
    can use it again; if rendering it still fails, a plain page without the layout says
    the same. Transient is what :func:`flasket.db_errors.is_transient` says, and a
    ``PendingRollbackError`` left by a lost connection (SQLAlchemy's code ``8s2b``).
    Other errors, rolled back, go on to the host's 500 page.

    :param error: the error the request raised.
    :return: a 503 page (JSON for a client that asks for it) with ``Retry-After``
        (:data:`RETRY_AFTER_SECONDS`).
    :raises sqlalchemy.exc.SQLAlchemyError: ``error`` itself, when it is not transient.
    """
    roll_back_quietly()
    lost = isinstance(error, sa.exc.PendingRollbackError) and error.code == "8s2b"
    if not (lost or is_transient(error)):
        raise error
    log.warning(
        "The database failed during %s %s: %s", request.method, request.path, describe(error)
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    try:
        # The host's locale selector may need the database too (a user's saved language).
        reader = current_reader()
        message, title = str(DATABASE_UNAVAILABLE_MESSAGE), gettext("Try again in a minute")
        lang, direction = reader.language_tag, reader.direction
    except Exception:
        log.warning("The reader's language is unknown; the page is in English", exc_info=True)
        roll_back_quietly()
        with force_locale(SOURCE_READER) as reader:
            message, title = str(DATABASE_UNAVAILABLE_MESSAGE), gettext("Try again in a minute")
            lang, direction = reader.language_tag, reader.direction
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=message), 503, headers
    try:
        page = error_page(503, message)
    except Exception:
        log.warning("The error page could not be rendered; a plain one was sent", exc_info=True)
        roll_back_quietly()
        page = PLAIN_UNAVAILABLE_PAGE.format(
            lang=lang, dir=direction, title=escape(title), message=escape(message)
        )
    return page, 503, headers


def roll_back_quietly() -> None:
    """Roll the session back; a rollback that fails too (the server is gone) is logged only.

    Never raises.
    """
    try:
        current_flasket.session.rollback()
    except Exception:
        log.warning("Rolling the session back failed", exc_info=True)
