"""Reading the request strictly: a bad body or parameter is a 4xx with a plain message."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import IO

from flask import abort, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from .config import MAX_PER_PAGE
from .i18n import gettext, lazy_gettext

#: The highest page number a ``page`` parameter may ask for.
MAX_PAGE = 1_000_000
#: Characters a text query parameter (a search, a filter) may have, after stripping.
MAX_QUERY_LENGTH = 200
#: Bytes of body Flasket reads on its own pages, however the body is sent (also chunked, which
#: has no Content-Length): far above its largest form (a 20,000-character description,
#: percent-encoded), far below what a url-encoded body that Werkzeug reads whole would cost.
MAX_REQUEST_SIZE = 500_000
#: What browsers send from a form, and what RFC 8058 one-click unsubscribe POSTs use.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
#: Werkzeug decodes form data as UTF-8 whatever the request says; other charsets would be garbled.
FORM_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
#: Methods whose body is checked to be a form (:func:`reject_non_form_body`).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The 415 message for a body that is not a form.
UNSUPPORTED_TYPE_MESSAGE = lazy_gettext(
    "Flasket's pages take only web forms, sent as application/x-www-form-urlencoded "
    "or multipart/form-data."
)
#: The 415 message for a form in a charset other than UTF-8 or ASCII.
UNSUPPORTED_CHARSET_MESSAGE = lazy_gettext("Form data must be sent as UTF-8.")
#: The 400 message for a form that carries a file.
FILE_MESSAGE = lazy_gettext("Flasket's forms take no files.")


#: The form fields an endpoint takes more than once: the bulk form's ticked tickets.
REPEATABLE_FIELDS = {"flasket.bulk": frozenset({"ticket"})}


def reject_hostile_input() -> None:
    """Refuse oversized bodies, bodies that are not a form, repeated parameters and NUL characters.

    Runs before any form reads the body: Flask-WTF would turn a JSON body into form data, and
    WTForms' validators fail on numbers, lists and uploaded files. Needs a request context.

    :raises werkzeug.exceptions.RequestEntityTooLarge: (413) for a body over
        :func:`request_size_cap` bytes.
    :raises werkzeug.exceptions.UnsupportedMediaType: (415) for a body that is not a form
        (see :func:`reject_non_form_body`).
    :raises werkzeug.exceptions.BadRequest: (400) for a query or form parameter given
        more than once (but :data:`REPEATABLE_FIELDS`), a NUL character in a parameter or
        URL part, or an uploaded file.
    """
    cap = request_size_cap()
    if request.content_length is not None and request.content_length > cap:
        abort(413)
    cap_unsized_body(cap)
    if request.method in BODY_METHODS:
        reject_non_form_body()
    repeatable = REPEATABLE_FIELDS.get(request.endpoint or "", frozenset())
    for source in (request.args, request.form):
        for name in source:
            if len(source.getlist(name)) > 1 and not (
                source is request.form and name in repeatable
            ):
                abort(
                    400, gettext("The parameter “%(name)s” was given more than once.", name=name)
                )
            if any("\x00" in value for value in source.getlist(name)):
                abort(400, gettext("Text may not contain NUL characters."))
    for value in (request.view_args or {}).values():
        if isinstance(value, str) and "\x00" in value:
            abort(400, gettext("Text may not contain NUL characters."))


def request_size_cap() -> int:
    """Flasket's own cap, or the host's ``MAX_CONTENT_LENGTH`` where that is smaller.

    Needs a request context.

    :return: the most bytes of body this request may send: :data:`MAX_REQUEST_SIZE` or
        less.
    """
    host_cap = request.max_content_length
    return MAX_REQUEST_SIZE if host_cap is None else min(host_cap, MAX_REQUEST_SIZE)


class CappedInput(io.RawIOBase):
    """A request body that answers 413 as soon as more than ``cap`` bytes have come in.

    It looks one byte past the cap itself: Werkzeug 3's own limit stops reading there and
    parses what it read, so a chunked form over the host's ``MAX_CONTENT_LENGTH`` would be
    cut short and could be stored cut short.

    :param stream: the WSGI input stream to read from.
    :param cap: the most bytes the body may have.
    """

    def __init__(self, stream: IO[bytes], cap: int) -> None:
        super().__init__()
        self.stream = stream
        self.cap = cap
        self.received = 0

    def readable(self) -> bool:
        """Always True: the body is for reading."""
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Read up to ``len(buffer)`` bytes of the body into ``buffer``.

        As :meth:`io.RawIOBase.readinto` does, never past ``cap`` bytes in all.

        :param buffer: where the bytes go.
        :return: how many bytes were read; 0 at the end of the body.
        :raises werkzeug.exceptions.RequestEntityTooLarge: (413) once the body turns out
            to have more than ``cap`` bytes.
        """
        wanted = min(len(buffer), self.cap - self.received)
        chunk = self.stream.read(wanted) if wanted > 0 else b""
        self.received += len(chunk)
        if self.received >= self.cap and self.stream.read(1):
            raise RequestEntityTooLarge()
        buffer[: len(chunk)] = chunk
        return len(chunk)


def cap_unsized_body(cap: int) -> None:
    """Read at most ``cap`` bytes of a body sent without a Content-Length (chunked).

    Werkzeug reads such a body whole when it parses a url-encoded form, and Werkzeug before
    3.0 ignores ``MAX_CONTENT_LENGTH`` for it; wrapping the WSGI input before anything reads
    it holds the cap on every Werkzeug. A host that read the body before Flasket's hooks ran
    (an app-wide CSRFProtect) read it under its own ``MAX_CONTENT_LENGTH``. Needs a request
    context; a body with a Content-Length is left alone.

    :param cap: the most bytes the body may have (:func:`request_size_cap`); reading past
        it raises :class:`werkzeug.exceptions.RequestEntityTooLarge` (413).
    """
    if request.content_length is not None or "stream" in request.__dict__:
        return
    stream = request.environ.get("wsgi.input")
    if stream is not None and not isinstance(stream, CappedInput):
        request.environ["wsgi.input"] = CappedInput(stream, cap)


def reject_non_form_body() -> None:
    """A body must be a form of text fields; an empty body needs no type (a one-click POST).

    A form is one of :data:`FORM_TYPES` (the RFC 8058 one-click POST is the first), in
    one of :data:`FORM_CHARSETS` when it names a charset. Needs a request context.

    :raises werkzeug.exceptions.UnsupportedMediaType: (415) for a non-empty body with
        no type or another type, or another charset.
    :raises werkzeug.exceptions.BadRequest: (400) for a form that carries a file.
    """
    if not request.mimetype:
        if request.content_length or request.headers.get("Transfer-Encoding"):
            abort(415, str(UNSUPPORTED_TYPE_MESSAGE))
        return
    if request.mimetype not in FORM_TYPES:
        abort(415, str(UNSUPPORTED_TYPE_MESSAGE))
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower() not in FORM_CHARSETS:
        abort(415, str(UNSUPPORTED_CHARSET_MESSAGE))
    if request.files:
        abort(400, str(FILE_MESSAGE))


# The readers below note each query parameter they accept: links back to the page (pagers,
# tabs, filters) are built from those alone, never from the raw query string, so a name that
# means something to url_for (endpoint, _external, _anchor, _method) or any other name
# Flasket does not read goes nowhere.


def known_query() -> dict[str, str | None]:
    """The query parameters this request's page read, in the order it read them, as accepted.

    A parameter the request left out is there with ``None``, holding its place in the order.
    Needs an app context (it reads :data:`flask.g`).

    :return: a new dict from parameter name to its accepted text (stripped, a number
        normalised) or None.
    """
    known: dict[str, str | None] = g.get("flasket_query", {})
    return dict(known)


def _accept(name: str, value: str | None) -> None:
    g.setdefault("flasket_query", {})[name] = value or None


def text_arg(name: str, max_length: int = MAX_QUERY_LENGTH) -> str:
    """Query parameter ``name`` as text, stripped of surrounding white space.

    :param name: the parameter's name.
    :param max_length: the most characters it may have, after stripping.
    :return: the text; ``""`` when the parameter is absent or blank.
    :raises werkzeug.exceptions.BadRequest: (400) when it is longer than ``max_length``.
    """
    value = request.args.get(name, "").strip()
    if len(value) > max_length:
        abort(
            400,
            gettext(
                "“%(name)s” may be at most %(max)s characters long.", name=name, max=max_length
            ),
        )
    _accept(name, value)
    return value


def choice_arg(name: str, allowed: Iterable[str], default: str) -> str:
    """Query parameter ``name``, which must be one of ``allowed``.

    :param name: the parameter's name.
    :param allowed: the values it may take (matched exactly, after stripping).
    :param default: returned when the parameter is absent or blank.
    :return: the value given, or ``default``.
    :raises werkzeug.exceptions.BadRequest: (400) for a value not in ``allowed``.
    """
    value = request.args.get(name, "").strip()
    if not value:
        _accept(name, None)
        return default
    allowed = tuple(allowed)
    if value not in allowed:
        abort(
            400,
            gettext(
                "“%(name)s” must be one of: %(choices)s.", name=name, choices=", ".join(allowed)
            ),
        )
    _accept(name, value)
    return value


def int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    """Query parameter ``name`` as a whole number from ``minimum`` to ``maximum``.

    Only ASCII digits are a number (no sign, at most 12 of them).

    :param name: the parameter's name.
    :param default: returned when the parameter is absent or blank.
    :param minimum: the smallest value allowed.
    :param maximum: the largest value allowed.
    :return: the number given, or ``default``.
    :raises werkzeug.exceptions.BadRequest: (400) for anything else, or a number out of
        range.
    """
    raw = request.args.get(name, "").strip()
    if not raw:
        _accept(name, None)
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        abort(400, _not_a_whole_number(name, minimum, maximum))
    value = int(raw)
    if not minimum <= value <= maximum:
        abort(400, _not_a_whole_number(name, minimum, maximum))
    _accept(name, str(value))
    return value


def _not_a_whole_number(name: str, minimum: int, maximum: int) -> str:
    return gettext(
        "“%(name)s” must be a whole number from %(min)s to %(max)s.",
        name=name,
        min=minimum,
        max=maximum,
    )


def page_arg(name: str = "page") -> int:
    """A page number from query parameter ``name``: 1 to :data:`MAX_PAGE`, default 1.

    :param name: the parameter's name.
    :return: the page number.
    :raises werkzeug.exceptions.BadRequest: (400) for anything else.
    """
    return int_arg(name, default=1, minimum=1, maximum=MAX_PAGE)


def per_page_arg(default: int) -> int:
    """Rows per page from query parameter ``per_page``: 1 to :data:`flasket.config.MAX_PER_PAGE`.

    :param default: returned when the parameter is absent or blank.
    :return: the number of rows per page.
    :raises werkzeug.exceptions.BadRequest: (400) for anything else.
    """
    return int_arg("per_page", default=default, minimum=1, maximum=MAX_PER_PAGE)
