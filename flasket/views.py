"""The pages under ``FLASKET_URL_PREFIX``: parse the request, ask the policy, act, render."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, default_exceptions
from wtforms import Form
from wtforms.validators import Length

from . import actions, params, policy, queries
from . import unfollow as unfollow_tokens
from .config import Category, config_value, parse_response_headers
from .db_errors import describe, is_transient
from .forms import (
    ACTION_CSRF_MESSAGE,
    CSRF_MESSAGE,
    FORM_KEY_MESSAGE,
    REPLY_CSRF_MESSAGE,
    SUBMIT_CSRF_MESSAGE,
    ActionForm,
    ReplyForm,
    ticket_form,
)
from .models import OPEN, Models, TicketBase
from .pagination import Page, PageNotFound
from .proxies import current_flasket

bp = Blueprint(
    "flasket",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: Ticket ids fit a 32-bit integer column; larger numbers are simply not found.
MAX_TICKET_ID = 2**31 - 1
TICKET_ID = f"<int(max={MAX_TICKET_ID}):ticket_id>"


#: Pages anyone may open: the token in an unfollow link is its own credential.
PUBLIC_ENDPOINTS = frozenset({"flasket.static", "flasket.unfollow_link"})


@bp.before_request
def require_login() -> ResponseReturnValue | None:
    if request.endpoint == "flasket.static":
        return None
    if request.endpoint in PUBLIC_ENDPOINTS:
        params.reject_hostile_input()
        return None
    if not current_user.is_authenticated:
        if request.accept_mimetypes.best == "application/json":
            return jsonify(error="Log in to use the ticket system."), 401
        response: ResponseReturnValue = current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        return response
    params.reject_hostile_input()
    return None


@bp.errorhandler(CSRFError)
def csrf_error(error: CSRFError) -> ResponseReturnValue:
    return error_page(400, CSRF_MESSAGE), 400


def error_page(code: int, message: str, back: tuple[str, str] | None = None) -> str:
    """Flasket's error page; ``back`` is a (URL, link text) pair to return to, if not the index."""
    return render_template("flasket/error.html", code=code, message=message, back=back)


#: Plain words for errors raised without a message of Flasket's own.
ERROR_MESSAGES = {
    400: "That request could not be understood. Go back and try again.",
    403: "You are not allowed to do that.",
    404: "That page does not exist.",
    405: "That action is not available here.",
    413: "What you sent is too large. Shorten it and try again.",
}


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> ResponseReturnValue:
    if error.code is None or error.code < 400 or error.code == 401:
        return error
    message = error.description or ""
    if message == type(error).description:
        message = ERROR_MESSAGES.get(error.code, message)
    response = error_page(error.code, message)
    return response, error.code, error.get_headers() if error.code == 405 else {}


# Also by code: Flask looks for a handler of the error's code (the blueprint's, then the app's)
# before one of HTTPException, so a host's own 404 page would win inside the ticket area. A 401
# is the login view's; a 5xx stays the host's, as rendering a page may be what failed.
for _code in sorted(default_exceptions):
    if 400 <= _code < 500 and _code != 401:
        bp.register_error_handler(_code, http_error)


log = logging.getLogger("flasket")

#: What a person reads when the database is out of reach: a change they saw confirmed was
#: committed before (nothing after a commit can fail it), and forms are safe to send again.
DATABASE_UNAVAILABLE_MESSAGE = (
    "The ticket system cannot reach its database just now. Nothing you sent was lost if "
    "you saw a confirmation; try again in a minute."
)
RETRY_AFTER_SECONDS = 60

#: The page of last resort, when even the error page cannot be rendered (the host's layout
#: or Flask-Login's user loader needing the database): no template, no layout, no user.
PLAIN_UNAVAILABLE_PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>Try again in a minute</title></head>\n"
    '<body><h1>Try again in a minute</h1><p role="alert">{message}</p></body></html>\n'
)


@bp.errorhandler(sa.exc.DBAPIError)
@bp.errorhandler(sa.exc.PendingRollbackError)
def database_error(error: sa.exc.SQLAlchemyError) -> ResponseReturnValue:
    """A database that went away or is busy gets a 503 page; any other error stays a 500.

    The session is rolled back first, so the page (the host's layout, ``current_user``)
    can use it again; if rendering it still fails, a plain page without the layout says
    the same. Transient is what :func:`flasket.db_errors.is_transient` says, and a
    ``PendingRollbackError`` left by a lost connection (SQLAlchemy's code ``8s2b``).
    Other errors, rolled back, go on to the host's 500 page.
    """
    roll_back_quietly()
    lost = isinstance(error, sa.exc.PendingRollbackError) and error.code == "8s2b"
    if not (lost or is_transient(error)):
        raise error
    log.warning(
        "The database failed during %s %s: %s", request.method, request.path, describe(error)
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=DATABASE_UNAVAILABLE_MESSAGE), 503, headers
    try:
        page = error_page(503, DATABASE_UNAVAILABLE_MESSAGE)
    except Exception:
        log.warning("The error page could not be rendered; a plain one was sent", exc_info=True)
        roll_back_quietly()
        page = PLAIN_UNAVAILABLE_PAGE.format(message=escape(DATABASE_UNAVAILABLE_MESSAGE))
    return page, 503, headers


def roll_back_quietly() -> None:
    """Roll the session back; a rollback that fails too (the server is gone) is logged only."""
    try:
        _session().rollback()
    except Exception:
        log.warning("Rolling the session back failed", exc_info=True)


@bp.before_app_request
def answer_unrouted_paths() -> ResponseReturnValue | None:
    """A URL under the prefix that no route takes (or not by this method) gets Flasket's page.

    Routing fails before the blueprint is known, so its error handlers never see these. This
    hook answers them before the host's handlers would, for paths under the prefix only: the
    host's own 404 and 405 elsewhere are untouched. A prefix of "/" leaves them all to the host.
    """
    error = request.routing_exception
    if not isinstance(error, HTTPException) or error.code is None or error.code < 400:
        return None
    prefix = str(config_value("url_prefix")).rstrip("/")
    if not prefix or not (request.path == prefix or request.path.startswith(prefix + "/")):
        return None
    # The blueprint's after_request runs only for routed requests: add its headers here.
    return add_response_headers(make_response(http_error(error)))


@bp.after_request
def add_response_headers(response: Response) -> Response:
    """``FLASKET_RESPONSE_HEADERS`` over the defaults, on Flasket's responses only.

    A header the response has already is kept. The host's own after_request functions and
    Flask-Talisman run after the blueprint's, so a header they set replaces Flasket's.
    Flasket's CSS keeps the caching Flask gives static files.
    """
    for name, value in parse_response_headers(config_value("response_headers")).items():
        if name.lower() == "cache-control" and request.endpoint == "flasket.static":
            continue
        if name not in response.headers:
            response.headers[name] = value
    return response


def _models() -> Models:
    return current_flasket.models


def _session() -> Session:
    return queries.current_session()


def _load_ticket(ticket_id: int) -> TicketBase:
    """The ticket if the current user may read it; otherwise the same 404 as a missing one."""
    models = _models()
    ticket = queries.ticket_with_details(_session(), models, ticket_id, current_user)
    if ticket is None or not policy.may_read(models, current_user, ticket):
        abort(404, f"There is no ticket #{ticket_id}.")
    return ticket


def require_action_form(ticket: TicketBase) -> None:
    if not ActionForm().validate_on_submit():
        back = (ticket_url(ticket), f"Back to ticket #{ticket.id}")
        abort(Response(error_page(400, ACTION_CSRF_MESSAGE, back), 400))


def ticket_url(ticket: TicketBase, **kwargs: Any) -> str:
    return url_for("flasket.ticket", ticket_id=ticket.id, **kwargs)


@bp.route("/index")
@bp.route("/")
def index() -> ResponseReturnValue:
    session, models = _session(), _models()
    me = models.user_id(current_user)
    return render_template(
        "flasket/index.html",
        counts=queries.index_counts(session, models, current_user),
        recent=queries.recent_tickets(session, models, current_user, limit=10),
        mine=queries.recent_tickets(session, models, current_user, limit=5, author_id=me),
    )


@bp.route("/submit", methods=["GET", "POST"])
def submit() -> ResponseReturnValue:
    form = ticket_form(current_flasket.categories())
    status = 200
    if form.validate_on_submit():
        try:
            posted = actions.create_ticket_once(
                current_user,
                form.title.data,
                form.body.data,
                form.category_values(),
                form.sent_form_key(),
            )
        except actions.FormKeyUsedError as error:
            status = refuse_form_key(form, error)
        else:
            # Committed: the answer uses what the action read before, never the database.
            flash(
                f"Ticket #{posted.ticket_id} submitted. You will get an e-mail when it changes.",
                "success",
            )
            return redirect(url_for("flasket.ticket", ticket_id=posted.ticket_id), 303)
    elif request.method == "POST":
        status = 400
        refuse_invalid_form(form, SUBMIT_CSRF_MESSAGE)
    return render_template("flasket/submit.html", form=form), status


def refuse_invalid_form(form: Any, csrf_message: str) -> None:
    """Say why a ticket or reply form that did not validate stored nothing; it is shown again."""
    if "csrf_token" in form.errors:
        flash(csrf_message, "error")
    if "form_key" in form.errors:
        form.renew_form_key()
        flash(FORM_KEY_MESSAGE, "error")
    forget_oversized_input(form)


def refuse_form_key(form: Any, error: actions.FormKeyUsedError) -> int:
    """The status of a form whose key is on another row; it is shown again with a fresh key."""
    form.renew_form_key()
    if error.own_ticket_id is None:
        flash(FORM_KEY_MESSAGE, "error")
        return 400
    flash(
        f"You had sent this form before, for ticket #{error.own_ticket_id}, with other text. "
        "What you changed was not stored; it is still below: send it again to store it.",
        "error",
    )
    return 409


#: A refused form comes back with what was typed, so it can be fixed; a field this many times
#: over its length limit comes back empty instead, so an error page never echoes a huge body.
ECHO_FACTOR = 2


def forget_oversized_input(form: Form) -> None:
    for field in form:
        limits = [v.max for v in field.validators if isinstance(v, Length) and v.max >= 0]
        data = field.data
        if limits and isinstance(data, str) and len(data) > ECHO_FACTOR * min(limits):
            field.data = ""
            field.errors = [*field.errors, "What you sent was too long to show again."]


@bp.route(f"/{TICKET_ID}", methods=["GET", "POST"])
def ticket(ticket_id: int) -> ResponseReturnValue:
    found = _load_ticket(ticket_id)
    form = ReplyForm()
    status = 200
    if request.method == "POST":
        status = 400
        if not form.validate_on_submit():
            refuse_invalid_form(form, REPLY_CSRF_MESSAGE)
        else:
            try:
                posted = post_reply_once(found, form)
            except actions.FormKeyUsedError as error:
                status = refuse_form_key(form, error)
            else:
                if posted is not None:
                    return reply_posted(posted)
                status = 409
    return render_ticket(found, form), status


def post_reply_once(found: TicketBase, form: ReplyForm) -> actions.Posted | None:
    """Post the form's reply, or find the one an earlier sending of the form posted.

    None (with a message) when the ticket is closed and the form was not sent before.

    :raises actions.FormKeyUsedError: when the form's key is on a reply this is not.
    """
    body, form_key = form.body.data, form.sent_form_key()
    if not policy.may_reply(_models(), current_user, found):
        earlier = actions.earlier_reply(found, current_user, body, form_key)
        if earlier is None:
            flash(
                "This ticket is closed, so your reply was not posted. "
                "Your text is still in the box below.",
                "error",
            )
        return earlier
    try:
        return actions.post_reply_once(found, current_user, body, form_key)
    except actions.TicketClosedError:
        flash(
            "This ticket was closed a moment ago, so your reply was not posted. "
            "Your text is still in the box below.",
            "error",
        )
        return None


def reply_posted(posted: actions.Posted) -> ResponseReturnValue:
    """The answer to a posted reply: its page of the ticket, at the reply; no database needed."""
    flash("Your reply was posted.", "success")
    last_page = max(1, -(-posted.reply_number // config_value("replies_per_page")))
    page_arg = {"page": last_page} if last_page > 1 else {}
    anchor = f"reply-{posted.reply_id}"
    return redirect(
        url_for("flasket.ticket", ticket_id=posted.ticket_id, **page_arg, _anchor=anchor), 303
    )


def render_ticket(found: TicketBase, form: ReplyForm) -> str:
    session, models = _session(), _models()
    page = params.page_arg()
    try:
        replies = queries.reply_page(
            session, models, found, page, config_value("replies_per_page")
        )
    except PageNotFound:
        abort(404, f"Ticket #{found.id} has no page {page} of replies.")
    return render_template(
        "flasket/ticket.html",
        ticket=found,
        replies=replies,
        form=form,
        action_form=ActionForm(),
        followers=queries.followers(session, models, found),
        following=queries.is_following(session, models, found, current_user),
        may_reply=policy.may_reply(models, current_user, found),
        may_close=policy.may_close(models, current_user, found),
        may_reopen=policy.may_reopen(models, current_user, found),
        may_follow=policy.may_follow(models, current_user, found),
        categories=categories_of(found),
    )


def ticket_action(
    ticket_id: int,
    act: Callable[[TicketBase, Any], bool],
    done: str,
    unchanged: str,
    refusal: str | None = None,
) -> ResponseReturnValue:
    """Close, reopen, follow or unfollow: the same checks, then a flash and a redirect.

    ``refusal`` is the 403 message for users the policy does not let change the status.
    """
    found = _load_ticket(ticket_id)
    require_action_form(found)
    if refusal and not policy.may_change_status(_models(), current_user, found):
        abort(403, refusal)
    changed = act(found, current_user)
    # Committed: the answer needs nothing from the database (``found`` may be expired).
    flash((done if changed else unchanged).format(id=ticket_id), "success" if changed else "info")
    return redirect(url_for("flasket.ticket", ticket_id=ticket_id), 303)


@bp.route(f"/{TICKET_ID}/close", methods=["POST"])
def close(ticket_id: int) -> ResponseReturnValue:
    return ticket_action(
        ticket_id,
        actions.close_ticket,
        "Ticket #{id} is closed.",
        "Ticket #{id} was already closed.",
        refusal="Only the ticket's author or staff can close this ticket.",
    )


@bp.route(f"/{TICKET_ID}/reopen", methods=["POST"])
def reopen(ticket_id: int) -> ResponseReturnValue:
    return ticket_action(
        ticket_id,
        actions.reopen_ticket,
        "Ticket #{id} is open again.",
        "Ticket #{id} was already open.",
        refusal="Only the ticket's author or staff can reopen this ticket.",
    )


@bp.route(f"/{TICKET_ID}/follow", methods=["POST"])
def follow(ticket_id: int) -> ResponseReturnValue:
    return ticket_action(
        ticket_id,
        actions.follow_ticket,
        "You follow ticket #{id} and will get an e-mail when it changes.",
        "You already follow ticket #{id}.",
    )


@bp.route(f"/{TICKET_ID}/unfollow", methods=["POST"])
def unfollow(ticket_id: int) -> ResponseReturnValue:
    return ticket_action(
        ticket_id,
        actions.unfollow_ticket,
        "You no longer follow ticket #{id}.",
        "You were not following ticket #{id}.",
    )


@bp.route("/unfollow/<token>", methods=["GET", "POST"])
def unfollow_link(token: str) -> ResponseReturnValue:
    """The link in every follower's e-mail: GET asks, POST (also RFC 8058 one-click) unfollows.

    No login and no CSRF token: the signed token names the ticket and the user.
    """
    models = _models()
    try:
        ticket_key, raw_user_id = unfollow_tokens.read_token(token)
        ticket_id = unfollow_tokens.ticket_number(ticket_key)
        user_id = unfollow_tokens.user_key(
            sa_python_type(getattr(models.user, models.user_pk)), raw_user_id
        )
    except (unfollow_tokens.BadUnfollowToken, ValueError, TypeError) as error:
        message = str(error) if isinstance(error, unfollow_tokens.BadUnfollowToken) else None
        return _bad_unfollow_link(message or "This unfollow link is not valid.")
    key_type = getattr(models.user, models.user_pk).type
    if not 1 <= ticket_id <= MAX_TICKET_ID or (
        isinstance(user_id, int) and not _fits(key_type, user_id)
    ):
        # Signed with the app's key, yet numbers no column holds: no ticket or user has them.
        return _bad_unfollow_link("This unfollow link is not valid.")
    session = _session()
    found = session.get(models.Ticket, ticket_id)
    person = session.get(models.user, user_id)
    if person is None:
        return _bad_unfollow_link("This unfollow link is for an account that no longer exists.")
    # A ticket deleted since keeps its number only in the token: a later one given the same
    # number has another key, and the link must not unfollow it.
    if found is not None and found.mail_key != ticket_key:
        found = None
    if found is None or not policy.may_read(models, person, found):
        # Gone, or no longer the person's to read: the same page either way, which tells
        # nothing about the ticket (not even whether it still exists) but its number, which
        # the e-mail gave. Unfollowing still works, so the mail stops if access comes back.
        if request.method == "POST" and found is not None:
            page = _unfollow_page(ticket_id, None, done=True, following=None)
            actions.unfollow_ticket(found, person)
            return page
        return _unfollow_page(ticket_id, None, done=request.method == "POST", following=None)
    if request.method == "POST":
        # Rendered before the change, so nothing reads the database once it is committed.
        page = _unfollow_page(found.id, found.title, done=True, following=False)
        actions.unfollow_ticket(found, person)
        return page
    following = queries.is_following(session, models, found, person)
    return _unfollow_page(found.id, found.title, done=False, following=following)


def _unfollow_page(number: int, title: str | None, done: bool, following: bool | None) -> str:
    """The unfollow link's page about ticket ``number``.

    ``title`` is None for a ticket the person may not read (or one that is gone): the page
    then names only the number, offers no link to the ticket, and ``following`` (None)
    says nothing about whether they follow it.
    """
    return render_template(
        "flasket/unfollow.html",
        number=number,
        title=title,
        done=done,
        following=following,
        may_open=title is not None,
        error=None,
    )


def _bad_unfollow_link(message: str) -> ResponseReturnValue:
    page = render_template(
        "flasket/unfollow.html",
        number=None,
        title=None,
        done=False,
        following=None,
        may_open=False,
        error=message,
    )
    return page, 400


def sa_python_type(column: Any) -> type[Any]:
    python_type: type[Any] = column.type.python_type
    return python_type


@bp.route("/all")
def all_tickets() -> ResponseReturnValue:
    session, models = _session(), _models()
    categories = configured_categories()
    chosen = {}
    for category in categories:
        value = params.choice_arg(category.name, category.values, default="")
        if value:
            chosen[category.name] = value
    author, namesakes, author_name = find_author()
    filters = queries.TicketFilter(
        status=params.choice_arg("status", queries.STATUS_FILTERS, default="open"),
        categories=chosen,
        author_id=models.user_id(author) if author is not None else None,
        query=params.text_arg("q"),
        sort=params.choice_arg("sort", queries.SORTS, default="updated"),
    )
    page = params.page_arg()
    per_page = params.per_page_arg(config_value("per_page"))
    unknown_author = author is None and (
        namesakes is None or (bool(author_name) and not namesakes)
    )
    if author is None and (unknown_author or namesakes):
        tickets = Page[TicketBase](items=[], page=1, per_page=per_page, total=0)
    else:
        try:
            tickets = queries.ticket_page(session, models, current_user, filters, page, per_page)
        except PageNotFound:
            abort(404, f"There is no page {page} of this list.")
    heading, noun = STATUS_HEADINGS[filters.status]
    if chosen or author_name or filters.query:
        empty = f"No {noun} match these filters."
    else:
        empty = f"There are no {noun}."
    return render_template(
        "flasket/all.html",
        tickets=tickets,
        filters=filters,
        author_name=author_name,
        author_names=author_suggestions(tickets.items),
        unknown_author=unknown_author,
        namesakes=namesakes,
        categories=categories,
        sorts=queries.SORTS,
        statuses=queries.STATUS_FILTERS,
        heading=heading,
        noun=noun,
        empty=empty,
    )


def find_author() -> tuple[Any, list[Any] | None, str]:
    """The list's author filter: ``(user, namesakes, name for the box)``.

    ``?author_id=`` (the links Flasket makes) names a user by primary key and finds every
    user, whatever their name. ``?author=`` is what a person types: a name that several users
    share gives no user and the list of them to choose from (``namesakes``); ``namesakes``
    is None for an ``author_id`` that is no user's key.
    """
    session, models = _session(), _models()
    typed = params.text_arg("author")
    key = params.text_arg("author_id", max_length=MAX_KEY_LENGTH)
    if key:
        parsed = parse_user_key(key)
        author = queries.user_by_key(session, models, parsed) if parsed is not None else None
        if author is None:
            return None, None, ""
        return author, [], real_name(author) or ""
    if not typed:
        return None, [], ""
    namesakes = queries.users_named(session, models, typed)
    if len(namesakes) == 1:
        return namesakes[0], [], real_name(namesakes[0]) or typed
    return None, namesakes, typed


def real_name(user: Any) -> str | None:
    """``user``'s name as the host stores it, or None when it is empty."""
    name = getattr(user, config_value("user_name_attr"), None)
    return None if name is None or str(name).strip() == "" else str(name)


def author_suggestions(listed: list[TicketBase]) -> list[str]:
    """Names the author box offers: the authors of the tickets listed, and the reader's own.

    Read from the rows already loaded, so the suggestions cost no statement; every name
    is one the reader may see (the list holds only tickets they may read).
    """
    names = {real_name(ticket.author) for ticket in listed if ticket.author is not None}
    names.add(real_name(current_user))
    return sorted(filter(None, names), key=lambda name: (name.casefold(), name))


#: The list's heading and what its count line calls the tickets, by status filter: the list
#: shows open tickets unless asked otherwise, and says so.
STATUS_HEADINGS = {
    "open": ("Open tickets", "open tickets"),
    "closed": ("Closed tickets", "closed tickets"),
    "all": ("All tickets", "tickets"),
}


class UserTab(NamedTuple):
    """How the user page presents one of its lists."""

    label: str
    #: What a page past the list's end is called.
    noun: str
    order: str


#: The user page's tabs, one per list of ``queries.USER_LISTS`` (``?show=``), in that order.
USER_TABS = {
    "tickets": UserTab("Submitted", "submitted tickets", "recently updated first"),
    "following": UserTab("Following", "followed tickets", "newest first"),
    "replies": UserTab("Replies", "replies", "newest first"),
}


@bp.route("/user/", defaults={"key": None})
@bp.route("/user/<path:key>")
def user(key: str | None) -> ResponseReturnValue:
    """A user's page, at their primary key: ``/user/42``, or ``/user/?key=...`` (see user_url).

    A path that is no user's key but exactly one user's name (an address from a release
    that put names in these URLs) redirects to that user's page.
    """
    session, models = _session(), _models()
    if key is None:
        key = params.text_arg("key", max_length=MAX_KEY_LENGTH)
    shown = params.choice_arg("show", queries.USER_LISTS, default="tickets")
    per_page = params.per_page_arg(config_value("per_page"))
    number = params.page_arg()
    parsed = parse_user_key(key)
    person = queries.user_by_key(session, models, parsed) if parsed is not None else None
    if person is None:
        in_path = request.view_args is not None and request.view_args.get("key") is not None
        if in_path and len(key) <= MAX_KEY_LENGTH:
            named = queries.users_named(session, models, key)
            if len(named) == 1:
                # 302: a name may belong to someone else tomorrow; a browser keeps a 301.
                return redirect(user_url(named[0], **_page_query()), 302)
        abort(404, "There is no such user.")
    in_query = request.view_args is not None and request.view_args.get("key") is None
    if in_query != needs_query_form(key):
        # "/user/?key=42" for "/user/42": the page has one address.
        return redirect(user_url(person, **_page_query()), 301)
    g.flasket_shown_user_key = key
    counts = queries.user_list_counts(session, models, current_user, person)
    listed = queries.user_list(models, current_user, person, shown)
    try:
        page = queries.list_page(session, listed, number, per_page, counted=counts[shown])
    except PageNotFound:
        name = user_name(person)
        abort(404, f"There is no page {number} of {name}'s {USER_TABS[shown].noun}.")
    return render_template(
        "flasket/user.html", person=person, shown=shown, tabs=USER_TABS, counts=counts, page=page
    )


def _page_query() -> dict[str, str | None]:
    """The user page's own parameters this request gave (tab, page size, page), as read."""
    return {name: value for name, value in params.known_query().items() if name != "key"}


#: A primary key longer than this is no user's: the page answers 400 without a lookup.
MAX_KEY_LENGTH = 320


def key_text(key: Any) -> str:
    """A primary key as it appears in URLs: ``str()`` of it (a UUID in its canonical form)."""
    return str(key)


def parse_user_key(text: str) -> Any:
    """``text`` as a value of the host's user primary key, or None when it is not one.

    Only the canonical spelling counts (``"42"``, not ``"042"`` or ``" 42"``), so a user has
    exactly one address.
    """
    models = _models()
    column = getattr(models.user, models.user_pk)
    python_type = sa_python_type(column)
    try:
        key = unfollow_tokens.user_key(python_type, text)
    except (ValueError, TypeError, AttributeError):
        return None
    if isinstance(key, int) and not _fits(column.type, key):
        return None
    return key if key_text(key) == text else None


def _fits(column_type: Any, number: int) -> bool:
    """Whether an integer key column can hold ``number``: a larger one is no user's key.

    SQLAlchemy's SmallInteger, Integer and BigInteger are 16, 32 and 64-bit signed on every
    database Flasket supports; a database refuses a comparison with a larger number.
    """
    bits = 16 if isinstance(column_type, sa.SmallInteger) else 32
    if isinstance(column_type, sa.BigInteger) or not isinstance(column_type, sa.Integer):
        bits = 64
    return bool(-(2 ** (bits - 1)) <= number < 2 ** (bits - 1))


def is_own_page() -> bool:
    """Whether this request shows the current user's own page (the nav marks "My tickets")."""
    shown = g.get("flasket_shown_user_key")
    return shown is not None and shown == key_text(_models().user_id(current_user))


#: Characters a primary key may hold and still be a path segment of its own: no "/" (a
#: server would split it, or merge it with the next), and the key is not "." or ".." (which
#: browsers resolve, also percent-encoded: WHATWG URL Standard, "single-dot and double-dot
#: URL path segments").
_SEGMENT_UNSAFE = frozenset({"", ".", ".."})


def needs_query_form(key: str) -> bool:
    """Whether a key goes in the user page's query rather than its path (see user_url)."""
    return key in _SEGMENT_UNSAFE or "/" in key


def user_name(user: Any) -> str:
    """The name a page shows for ``user``: never a link's target, so never another's name.

    ``"a deleted user"`` for None, ``"unnamed user 42"`` for a user whose name is empty.
    """
    if user is None:
        return "a deleted user"
    return real_name(user) or f"unnamed user {key_text(_models().user_id(user))}"


def user_key(user: Any) -> str:
    """``user``'s primary key as URLs carry it (``?author_id=``)."""
    return key_text(_models().user_id(user))


#: Stands for the ticket number while a ticket URL is built once per request.
_TICKET_ID_PLACEHOLDER = 987_654_321_987_654_321


def ticket_link(ticket_id: int) -> str:
    """``url_for("flasket.ticket", ticket_id=...)``, routed once per request: lists link many."""
    pattern: str | None = g.get("flasket_ticket_url")
    if pattern is None:
        placeholder = str(_TICKET_ID_PLACEHOLDER)
        built = url_for("flasket.ticket", ticket_id=_TICKET_ID_PLACEHOLDER)
        pattern = g.flasket_ticket_url = (
            built.replace("{", "{{").replace("}", "}}").replace(placeholder, "{}")
        )
    return pattern.format(int(ticket_id))


#: Stands for a user's key while the user page's URL is built once per request.
_USER_KEY_PLACEHOLDER = "flasket-user-key-placeholder"


def user_url(user: Any, **query: Any) -> str:
    """The address of ``user``'s page, made from their primary key alone, never their name.

    ``/ticket/user/42``; a key that cannot be a path segment of its own (empty, ``.``,
    ``..``, or holding ``/``) goes in the query instead: ``/ticket/user/?key=a%2Fb``. The
    route is built once per request (lists link many users), each key percent-encoded
    (RFC 3986, section 2.1). ``query`` adds parameters; None values are left out.
    """
    pattern: str | None = g.get("flasket_user_url")
    if pattern is None:
        built = url_for("flasket.user", key=_USER_KEY_PLACEHOLDER)
        pattern = g.flasket_user_url = built
    key = key_text(_models().user_id(user))
    if needs_query_form(key):
        base = pattern.replace(_USER_KEY_PLACEHOLDER, "")
        args: dict[str, Any] = {"key": key}
    else:
        base = pattern.replace(_USER_KEY_PLACEHOLDER, quote(key, safe=""))
        args = {}
    args.update({name: value for name, value in query.items() if value is not None})
    return f"{base}?{urlencode(args)}" if args else base


# These three run for every row of a list, so they build their markup with f-strings (Markup's
# own % and + escape too, but cost a list page up to 0.7 ms); every value is escaped first.


def user_link(user: Any) -> Markup:
    """A link to a user's page, or "a deleted user".

    Built once per key and name in an app context: a ticket's replies name the same few
    people many times. The name is part of the memo's key, so a user renamed meanwhile
    gets a new link; a user without a key yet (not stored) is never memoised.
    """
    if user is None:
        return Markup("a deleted user")
    key = _models().user_id(user)
    name = user_name(user)
    if key is None:
        return Markup(f'<a href="{escape(user_url(user))}">{escape(name)}</a>')  # noqa: S704
    built: dict[tuple[Any, str], Markup] | None = g.get("flasket_user_links")
    if built is None:
        built = g.flasket_user_links = {}
    link = built.get((key, name))
    if link is None:
        link = built[(key, name)] = Markup(  # noqa: S704
            f'<a href="{escape(user_url(user))}">{escape(name)}</a>'
        )
    return link


def status_badge(status: str) -> Markup:
    """The status as a word and a symbol, never by colour alone."""
    symbol = "\N{BLACK CIRCLE}" if status == OPEN else "\N{CHECK MARK}"
    word = escape(status)
    return Markup(  # noqa: S704
        f'<span class="flasket-status flasket-status--{word}">'
        f'<span aria-hidden="true">{symbol}</span> {word.capitalize()}</span>'
    )


def time_tag(value: datetime | None) -> Markup:
    """A ``<time>`` with the relative time shown and the exact one as its title."""
    if not value:
        return Markup("")
    stamp = escape(value.isoformat(timespec="seconds"))
    exact, relative = escape(exact_time(value)), escape(relative_time(value))
    return Markup(f'<time datetime="{stamp}" title="{exact}">{relative}</time>')  # noqa: S704


def exact_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def relative_time(value: datetime) -> str:
    """ "5 minutes ago" for the last week, then the date."""
    seconds = (datetime.now(timezone.utc) - value).total_seconds()
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            if unit == "day" and count > 6:
                return exact_time(value).split(",")[0]
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return exact_time(value)


def configured_categories() -> tuple[Category, ...]:
    """``current_flasket.categories()``, parsed once per request: every row of a list asks."""
    found: tuple[Category, ...] | None = g.get("flasket_categories")
    if found is None:
        found = g.flasket_categories = current_flasket.categories()
    return found


def categories_of(ticket: TicketBase) -> list[tuple[Category, str]]:
    """``current_flasket.categories_of`` with the categories parsed once per request."""
    return current_flasket.categories_of(ticket, configured_categories())


def host_home_url() -> str | None:
    """The host app's home page ("/" under its script root), if the host serves one."""
    for rule in current_app.url_map.iter_rules():
        if rule.rule == "/" and "GET" in (rule.methods or ()):
            return None if rule.endpoint.startswith(f"{bp.name}.") else request.script_root + "/"
    return None


def host_logout_url() -> str | None:
    """The host's log-out page, if it has one a link can reach.

    Flask-Login names no log-out view, so this looks for a GET route without arguments whose
    endpoint is ``logout`` or ends in ``.logout`` (``auth.logout``). A log-out that takes only
    POST needs the host's own form and token: a host with one sets FLASKET_BASE_TEMPLATE.
    """
    found = [
        rule.endpoint
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint.rpartition(".")[2] == "logout"
        and "GET" in (rule.methods or ())
        and not rule.arguments
    ]
    if not found:
        return None
    return url_for(min(found, key=lambda endpoint: (endpoint != "logout", endpoint)))


def page_url(**changes: Any) -> str:
    """The current page's URL with some query parameters changed (pagers keep the filters)."""
    path = url_for(request.endpoint or "flasket.index", **(request.view_args or {}))
    return link_with_query(path, **changes)


def link_with_query(path: str, **changes: Any) -> str:
    """``path`` with the query parameters the page read and accepted, some of them changed.

    Only those (:func:`params.known_query`): a parameter no page reads is never copied into a
    link, and the query never passes through url_for, to which some names mean something.
    """
    args = {**params.known_query(), **changes}
    query = {name: str(value) for name, value in args.items() if value not in (None, "")}
    if query.get("page") == "1":
        del query["page"]
    return f"{path}?{urlencode(query)}" if query else path


def base_template() -> str:
    return str(config_value("base_template"))


def register_template_helpers(app: Flask) -> None:
    app.add_template_global(base_template, "flasket_base_template")
    app.add_template_global(user_name, "flasket_user_name")
    app.add_template_global(user_url, "flasket_user_url")
    app.add_template_global(is_own_page, "flasket_is_own_page")
    app.add_template_global(user_key, "flasket_user_key")
    app.add_template_global(page_url, "flasket_page_url")
    app.add_template_global(ticket_link, "flasket_ticket_url")
    app.add_template_global(user_link, "flasket_user_link")
    app.add_template_global(status_badge, "flasket_status_badge")
    app.add_template_global(time_tag, "flasket_time_tag")
    app.add_template_global(categories_of, "flasket_categories_of")
    app.add_template_global(host_home_url, "flasket_host_home_url")
    app.add_template_global(host_logout_url, "flasket_host_logout_url")
    app.add_template_global(policy.is_staff, "flasket_is_staff")
    app.add_template_filter(exact_time, "flasket_exact_time")
    app.add_template_filter(relative_time, "flasket_relative_time")
