"""The pages under ``FLASKET_URL_PREFIX``: parse the request, ask the policy, act, render."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NamedTuple
from urllib.parse import urlencode

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
from werkzeug.exceptions import HTTPException, default_exceptions
from wtforms import Form
from wtforms.validators import Length

from . import actions, params, policy, queries
from . import unfollow as unfollow_tokens
from .config import Category, config_value, parse_response_headers
from .extension import current_flasket
from .forms import (
    ACTION_CSRF_MESSAGE,
    CSRF_MESSAGE,
    REPLY_CSRF_MESSAGE,
    SUBMIT_CSRF_MESSAGE,
    ActionForm,
    ReplyForm,
    ticket_form,
)
from .models import OPEN, TicketBase
from .pagination import Page, PageNotFound

bp = Blueprint(
    "flasket",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: Ticket ids fit a 32-bit integer column; larger numbers are simply not found.
TICKET_ID = "<int(max=2147483647):ticket_id>"


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


def _models() -> Any:
    return current_flasket.models


def _session() -> Any:
    return current_flasket.db.session


def load_ticket(ticket_id: int) -> TicketBase:
    """The ticket if the current user may read it; otherwise the same 404 as a missing one."""
    models = _models()
    ticket = queries.ticket_with_details(_session(), models, ticket_id)
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
    if form.validate_on_submit():
        ticket = actions.create_ticket(
            current_user, form.title.data, form.body.data, form.category_values()
        )
        flash(f"Ticket #{ticket.id} submitted. You will get an e-mail when it changes.", "success")
        return redirect(ticket_url(ticket), 303)
    status = 200
    if request.method == "POST":
        status = 400
        if "csrf_token" in form.errors:
            flash(SUBMIT_CSRF_MESSAGE, "error")
        forget_oversized_input(form)
    return render_template("flasket/submit.html", form=form), status


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
    found = load_ticket(ticket_id)
    models = _models()
    form = ReplyForm()
    status = 200
    if request.method == "POST":
        status = 400
        if not form.validate_on_submit():
            if "csrf_token" in form.errors:
                flash(REPLY_CSRF_MESSAGE, "error")
            forget_oversized_input(form)
        elif not policy.may_reply(models, current_user, found):
            status = 409
            flash(
                "This ticket is closed, so your reply was not posted. "
                "Your text is still in the box below.",
                "error",
            )
        else:
            try:
                reply = actions.post_reply(found, current_user, form.body.data)
            except actions.TicketClosedError:
                status = 409
                flash(
                    "This ticket was closed a moment ago, so your reply was not posted. "
                    "Your text is still in the box below.",
                    "error",
                )
            else:
                flash("Your reply was posted.", "success")
                last_page = max(1, -(-found.reply_count // config_value("replies_per_page")))
                page_arg = {"page": last_page} if last_page > 1 else {}
                return redirect(ticket_url(found, **page_arg, _anchor=f"reply-{reply.id}"), 303)
    return render_ticket(found, form), status


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
    found = load_ticket(ticket_id)
    require_action_form(found)
    if refusal and not policy.may_change_status(_models(), current_user, found):
        abort(403, refusal)
    changed = act(found, current_user)
    flash((done if changed else unchanged).format(id=found.id), "success" if changed else "info")
    return redirect(ticket_url(found), 303)


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
    session = _session()
    found = session.get(models.Ticket, ticket_id)
    person = session.get(models.user, user_id)
    if found is None or found.mail_key != ticket_key or person is None:
        # A ticket deleted since keeps its number only in the token: a later one given the
        # same number has another key, and the link must not unfollow it.
        return _bad_unfollow_link("This unfollow link is for a ticket or account that is gone.")
    may_open = policy.may_read(models, person, found)
    if request.method == "POST":
        actions.unfollow_ticket(found, person)
        return _unfollow_page(found, done=True, following=False, may_open=may_open)
    following = queries.is_following(session, models, found, person)
    return _unfollow_page(found, done=False, following=following, may_open=may_open)


def _unfollow_page(found: TicketBase, done: bool, following: bool, may_open: bool) -> str:
    """``may_open``: the person may read the ticket, so a link to it (and Follow) helps."""
    return render_template(
        "flasket/unfollow.html",
        ticket=found,
        done=done,
        following=following,
        may_open=may_open,
        error=None,
    )


def _bad_unfollow_link(message: str) -> ResponseReturnValue:
    page = render_template(
        "flasket/unfollow.html",
        ticket=None,
        done=False,
        following=False,
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
    author_name = params.text_arg("author")
    author = queries.user_by_name(session, models, author_name) if author_name else None
    if author is not None:
        author_name = user_name(author)
    filters = queries.TicketFilter(
        status=params.choice_arg("status", queries.STATUS_FILTERS, default="open"),
        categories=chosen,
        author_id=models.user_id(author) if author is not None else None,
        query=params.text_arg("q"),
        sort=params.choice_arg("sort", queries.SORTS, default="updated"),
    )
    page = params.page_arg()
    per_page = params.per_page_arg(config_value("per_page"))
    unknown_author = bool(author_name) and author is None
    if unknown_author:
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
        categories=categories,
        sorts=queries.SORTS,
        statuses=queries.STATUS_FILTERS,
        heading=heading,
        noun=noun,
        empty=empty,
    )


def author_suggestions(listed: list[TicketBase]) -> list[str]:
    """Names the author box offers: the authors of the tickets listed, and the reader's own.

    Read from the rows already loaded, so the suggestions cost no statement; every name
    is one the reader may see (the list holds only tickets they may read).
    """
    names = {user_name(ticket.author) for ticket in listed if ticket.author is not None}
    names.add(user_name(current_user))
    return sorted(names, key=lambda name: (name.casefold(), name))


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


@bp.route("/user/<path:name>")
def user(name: str) -> ResponseReturnValue:
    session, models = _session(), _models()
    person = queries.user_by_name(session, models, name)
    if person is None:
        shown_name = f"called “{name}”" if len(name) <= params.MAX_QUERY_LENGTH else "by that name"
        abort(404, f"There is no user {shown_name}.")
    shown = params.choice_arg("show", queries.USER_LISTS, default="tickets")
    per_page = params.per_page_arg(config_value("per_page"))
    number = params.page_arg()
    if user_name(person) != name:
        # Found in another case ("Alice" for "alice"): show the page at the name's own address.
        return redirect(link_with_query(url_for("flasket.user", name=user_name(person))), 302)
    counts = queries.user_list_counts(session, models, current_user, person)
    listed = queries.user_list(models, current_user, person, shown)
    try:
        page = queries.list_page(session, listed, number, per_page, counted=counts[shown])
    except PageNotFound:
        abort(404, f"There is no page {number} of {name}'s {USER_TABS[shown].noun}.")
    return render_template(
        "flasket/user.html", person=person, shown=shown, tabs=USER_TABS, counts=counts, page=page
    )


def user_name(user: Any) -> str:
    if user is None:
        return "a deleted user"
    return str(getattr(user, config_value("user_name_attr"), "") or "unknown")


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


def user_url(name: str) -> str:
    """``url_for("flasket.user", name=...)``, once per user and request."""
    known: dict[str, str] = g.setdefault("flasket_user_urls", {})
    url = known.get(name)
    if url is None:
        url = known[name] = url_for("flasket.user", name=name)
    return url


# These three run for every row of a list, so they build their markup with f-strings (Markup's
# own % and + escape too, but cost a list page up to 0.7 ms); every value is escaped first.


def user_link(user: Any) -> Markup:
    """A link to a user's page, or "a deleted user"."""
    if not user:
        return Markup("a deleted user")
    name = user_name(user)
    return Markup(f'<a href="{escape(user_url(name))}">{escape(name)}</a>')  # noqa: S704


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
