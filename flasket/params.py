"""Reading the request strictly: a bad body or parameter is a 4xx with a plain message."""

from __future__ import annotations

from collections.abc import Iterable

from flask import abort, request

from .config import MAX_PER_PAGE

MAX_PAGE = 1_000_000
MAX_QUERY_LENGTH = 200
#: Far above the largest form Flasket accepts; Werkzeug does not limit url-encoded bodies.
MAX_REQUEST_SIZE = 500_000
#: What browsers send from a form, and what RFC 8058 one-click unsubscribe POSTs use.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
#: Werkzeug decodes form data as UTF-8 whatever the request says; other charsets would be garbled.
FORM_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNSUPPORTED_TYPE_MESSAGE = (
    "Flasket's pages take only web forms, sent as application/x-www-form-urlencoded "
    "or multipart/form-data."
)
UNSUPPORTED_CHARSET_MESSAGE = "Form data must be sent as UTF-8."
FILE_MESSAGE = "Flasket's forms take no files."


def reject_hostile_input() -> None:
    """Refuse oversized bodies, bodies that are not a form, repeated parameters and NUL characters.

    Runs before any form reads the body: Flask-WTF would turn a JSON body into form data, and
    WTForms' validators fail on numbers, lists and uploaded files.
    """
    if request.content_length is not None and request.content_length > MAX_REQUEST_SIZE:
        abort(413)
    if request.method in BODY_METHODS:
        reject_non_form_body()
    for source in (request.args, request.form):
        for name in source:
            if len(source.getlist(name)) > 1:
                abort(400, f"The parameter “{name}” was given more than once.")
            if any("\x00" in value for value in source.getlist(name)):
                abort(400, "Text may not contain NUL characters.")
    for value in (request.view_args or {}).values():
        if isinstance(value, str) and "\x00" in value:
            abort(400, "Text may not contain NUL characters.")


def reject_non_form_body() -> None:
    """A body must be a form of text fields; an empty body needs no type (a one-click POST)."""
    if not request.mimetype:
        if request.content_length or request.headers.get("Transfer-Encoding"):
            abort(415, UNSUPPORTED_TYPE_MESSAGE)
        return
    if request.mimetype not in FORM_TYPES:
        abort(415, UNSUPPORTED_TYPE_MESSAGE)
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower() not in FORM_CHARSETS:
        abort(415, UNSUPPORTED_CHARSET_MESSAGE)
    if request.files:
        abort(400, FILE_MESSAGE)


def text_arg(name: str, max_length: int = MAX_QUERY_LENGTH) -> str:
    value = request.args.get(name, "").strip()
    if len(value) > max_length:
        abort(400, f"“{name}” may be at most {max_length} characters long.")
    return value


def choice_arg(name: str, allowed: Iterable[str], default: str) -> str:
    value = request.args.get(name, "").strip()
    if not value:
        return default
    allowed = tuple(allowed)
    if value not in allowed:
        abort(400, f"“{name}” must be one of: {', '.join(allowed)}.")
    return value


def int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        abort(400, f"“{name}” must be a whole number from {minimum} to {maximum}.")
    value = int(raw)
    if not minimum <= value <= maximum:
        abort(400, f"“{name}” must be a whole number from {minimum} to {maximum}.")
    return value


def page_arg(name: str = "page") -> int:
    return int_arg(name, default=1, minimum=1, maximum=MAX_PAGE)


def per_page_arg(default: int) -> int:
    return int_arg("per_page", default=default, minimum=1, maximum=MAX_PER_PAGE)
