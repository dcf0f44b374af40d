"""The pages under ``FLASKET_URL_PREFIX``: parse the request, ask the policy, act, render.

The routes and the request hooks of the ``flasket`` blueprint. What the templates call is
:mod:`flasket.templating`'s, the error pages :mod:`flasket.errors`'s, users' keys in URLs
:mod:`flasket.user_keys`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, NoReturn
from urllib.parse import parse_qsl, urlencode

from babel.lists import format_list
from flask import (
    Blueprint,
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
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter
from wtforms import Form
from wtforms.validators import Length

from . import actions, errors, i18n, params, policy, queries
from . import unfollow as unfollow_tokens
from .config import RESOLUTIONS, Status, config_value
from .forms import (
    ACTION_CSRF_MESSAGE,
    FORM_KEY_MESSAGE,
    NOTE_CSRF_MESSAGE,
    REPLY_CSRF_MESSAGE,
    REVISE_CSRF_MESSAGE,
    SUBMIT_CSRF_MESSAGE,
    ActionForm,
    AssignForm,
    BulkForm,
    DuplicateForm,
    NoteForm,
    ReplyForm,
    ReviseForm,
    StatusForm,
    edit_form,
    ticket_form,
)
from .i18n import Text, gettext, lazy_gettext, ngettext
from .models import TicketBase
from .pagination import Page, PageNotFound, page_holding
from .proxies import current_flasket
from .templating import (
    categories_of,
    kind_label,
    real_name,
    resolution_label,
    status_label,
    user_name,
    user_url,
)
from .user_keys import (
    MAX_KEY_LENGTH,
    fits_key_column,
    key_text,
    needs_query_form,
    parse_user_key,
    sa_python_type,
)

#: Flasket's blueprint: every page, its templates and its static files.
bp = Blueprint(
    "flasket",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
errors.register_error_handlers(bp)

#: Ticket ids fit a 32-bit integer column; larger numbers are simply not found.
MAX_TICKET_ID = 2**31 - 1


class TicketNumberConverter(IntegerConverter):
    """A ticket number in a URL as Flasket writes it: ASCII digits without a leading zero.

    Werkzeug's ``int`` converter also takes ``007`` and the digits of other scripts
    (U+FF11, a full-width one), each a second address of the same ticket; here they match
    no page (404).
    """

    regex = r"[1-9][0-9]*"


#: A ticket number as a form sends it: what :class:`TicketNumberConverter` takes in a URL.
TICKET_NUMBER = re.compile(TicketNumberConverter.regex, re.ASCII)

#: The converter's name in the app's URL map, added when the blueprint is registered.
TICKET_NUMBER_CONVERTER = "flasket_ticket_number"


@bp.record_once
def add_ticket_number_converter(state: BlueprintSetupState) -> None:
    """Teach the app's URL map :class:`TicketNumberConverter`, before the routes need it.

    :param state: the blueprint's registration on an app.
    """
    state.app.url_map.converters.setdefault(TICKET_NUMBER_CONVERTER, TicketNumberConverter)


TICKET_ID = f"<{TICKET_NUMBER_CONVERTER}(max={MAX_TICKET_ID}):ticket_id>"


#: Pages anyone may open: the token in an unfollow link is its own credential.
PUBLIC_ENDPOINTS = frozenset({"flasket.static", "flasket.unfollow_link"})


def flash_once(message: Text, category: str) -> None:
    """``flask.flash``, unless the same message is already waiting to be shown.

    A form sent twice (a double click, a resent request) is answered twice with the same
    redirect; the person should read its message once.

    :param message: the text, as the person reads it (a lazy string is translated now).
    :param category: ``"success"``, ``"error"`` or ``"info"``.
    """
    text = str(message)  # a lazy string becomes the reader's words now, for the session
    if (category, text) not in session.get("_flashes", []):
        flash(text, category)


@bp.url_value_preprocessor
def exempt_unfollow_link_from_csrf(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Tell the host's Flask-WTF ``CSRFProtect`` that an unfollow link needs no CSRF token.

    A mail client's one-click unsubscribe (RFC 8058) POSTs without one: the signed token in
    the link is the credential. ``CSRFProtect`` keeps its exemptions per instance and checks
    them in an app-wide ``before_request``; Flask runs a blueprint's URL value preprocessors
    before any ``before_request`` function, and only for the blueprint's own routes, so this
    reaches a ``CSRFProtect`` the host sets up before or after Flasket without a hook on
    the host's other pages. Exempting is idempotent (a set of view names).

    :param endpoint: the matched endpoint.
    :param values: the URL's values (unused).
    """
    if endpoint == "flasket.unfollow_link":
        csrf = current_app.extensions.get("csrf")
        if csrf is not None:
            csrf.exempt(unfollow_link)


@bp.before_request
def require_login() -> ResponseReturnValue | None:
    """Before every page but the public ones: a visitor who is not logged in goes to log in.

    Every page but the static files also refuses hostile input first
    (:func:`flasket.params.reject_hostile_input`).

    :return: None to go on to the page; Flask-Login's answer for a visitor (a redirect to
        the login view, or a 401), or a JSON 401 for a client that asks for JSON.
    :raises werkzeug.exceptions.HTTPException: a 400 for hostile input.
    """
    if request.endpoint == "flasket.static":
        return None
    if request.endpoint in PUBLIC_ENDPOINTS:
        params.reject_hostile_input()
        return None
    if not current_user.is_authenticated:
        if request.accept_mimetypes.best == "application/json":
            return jsonify(error=gettext("Log in to use the ticket system.")), 401
        response: ResponseReturnValue = current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        return response
    params.reject_hostile_input()
    # The reader's language is settled before any change is committed: a host's selector
    # that reads the database never runs after the commit, when nothing may fail.
    i18n.current_reader()
    return None


@bp.before_app_request
def answer_unrouted_paths() -> ResponseReturnValue | None:
    """A URL under the prefix that no route takes (or not by this method) gets Flasket's page.

    Routing fails before the blueprint is known, so its error handlers never see these. This
    hook answers them before the host's handlers would, for paths under the prefix only: the
    host's own 404 and 405 elsewhere are untouched. A prefix of "/" leaves them all to the host.

    :return: Flasket's error page for such a path; None for any other request.
    """
    error = request.routing_exception
    if not isinstance(error, HTTPException) or error.code is None or error.code < 400:
        return None
    prefix = str(config_value("url_prefix")).rstrip("/")
    if not prefix or not (request.path == prefix or request.path.startswith(prefix + "/")):
        return None
    # The blueprint's after_request runs only for routed requests: add its headers here.
    return add_response_headers(make_response(errors.http_error(error)))


@bp.after_request
def add_response_headers(response: Response) -> Response:
    """``FLASKET_RESPONSE_HEADERS`` over the defaults, on Flasket's responses only.

    A header the response has already is kept. The host's own after_request functions and
    Flask-Talisman run after the blueprint's, so a header they set replaces Flasket's.
    Flasket's CSS keeps the caching Flask gives static files.

    :param response: the response of one of Flasket's pages.
    :return: the same response, its headers added to.
    """
    for name, value in current_flasket.settings().response_headers.items():
        if name.lower() == "cache-control" and request.endpoint == "flasket.static":
            continue
        if name not in response.headers:
            response.headers[name] = value
    return response


def _load_ticket(ticket_id: int, for_page: bool = False) -> TicketBase:
    """The ticket if the current user may read it; otherwise the same 404 as a missing one.

    ``for_page``: with what the ticket page shows besides (see
    :func:`flasket.queries.ticket_with_details`)."""
    models = current_flasket.models
    ticket = queries.ticket_with_details(
        current_flasket.session, models, ticket_id, current_user, for_page
    )
    if ticket is None or not policy.may_read(models, current_user, ticket):
        abort(404, gettext("There is no ticket #%(number)s.", number=ticket_id))
    return ticket


def require_action_form(ticket: TicketBase) -> None:
    """Check the CSRF token of a close, reopen, follow or unfollow form.

    :param ticket: the ticket the form acts on (for the page's link back to it).
    :raises werkzeug.exceptions.HTTPException: a 400 page when the token is missing or stale.
    """
    if not ActionForm().validate_on_submit():
        back = (ticket_url(ticket), gettext("Back to ticket #%(number)s", number=ticket.id))
        abort(Response(errors.error_page(400, ACTION_CSRF_MESSAGE, back), 400))


def ticket_url(ticket: TicketBase, **kwargs: Any) -> str:
    """The address of a ticket's page.

    :param ticket: the ticket.
    :param kwargs: further arguments of :func:`flask.url_for` (``page``, ``_anchor`` ...).
    :return: the URL, as :func:`flask.url_for` builds it.
    """
    return url_for("flasket.ticket", ticket_id=ticket.id, **kwargs)


@bp.route("/index")
@bp.route("/")
def index() -> ResponseReturnValue:
    """The ticket system's start page: counts, the latest tickets, and the reader's own.

    :return: the rendered ``flasket/index.html``.
    """
    session, models = current_flasket.session, current_flasket.models
    staff = policy.may_use_queues(current_user)
    # Staff see what is theirs to do: the open tickets assigned to them.
    mine = queries.overview_tickets(
        session, models, current_user, "assigned" if staff else "submitted", limit=5
    )
    return render_template(
        "flasket/index.html",
        counts=queries.index_counts(session, models, current_user, queues=staff),
        recent=queries.overview_tickets(session, models, current_user, "recent", limit=10),
        mine=mine,
        staff=staff,
        queues=QUEUE_LISTS,
    )


@bp.route("/submit", methods=["GET", "POST"])
def submit() -> ResponseReturnValue:
    """The form for a new ticket; a valid POST creates it (once per form) and redirects.

    :return: a 303 redirect to the new ticket; else the form again, with status 200, 400
        (it did not validate) or 409 (its key was used for another ticket).
    """
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
            flash_once(
                gettext(
                    "Ticket #%(number)s submitted. You will get an e-mail when it changes.",
                    number=posted.ticket_id,
                ),
                "success",
            )
            return redirect(url_for("flasket.ticket", ticket_id=posted.ticket_id), 303)
    elif request.method == "POST":
        status = 400
        refuse_invalid_form(form, SUBMIT_CSRF_MESSAGE)
    return render_template("flasket/submit.html", form=form), status


def refuse_invalid_form(form: Any, csrf_message: Text) -> None:
    """Say why a ticket or reply form that did not validate stored nothing; it is shown again.

    :param form: the ticket or reply form.
    :param csrf_message: what to flash when the CSRF token was missing or stale.
    """
    if "csrf_token" in form.errors:
        flash_once(csrf_message, "error")
    if "form_key" in form.errors:
        form.renew_form_key()
        flash_once(FORM_KEY_MESSAGE, "error")
    forget_oversized_input(form)


def refuse_form_key(form: Any, error: actions.FormKeyUsedError) -> int:
    """The status of a form whose key is on another row; it is shown again with a fresh key.

    :param form: the ticket or reply form.
    :param error: what the action raised.
    :return: 409 when the reader sent this form before with other text, else 400.
    """
    form.renew_form_key()
    if error.own_ticket_id is None:
        flash_once(FORM_KEY_MESSAGE, "error")
        return 400
    flash_once(
        gettext(
            "You had sent this form before, for ticket #%(number)s, with other text. "
            "What you changed was not stored; it is still below: send it again to store it.",
            number=error.own_ticket_id,
        ),
        "error",
    )
    return 409


#: A refused form comes back with what was typed, so it can be fixed; a field this many times
#: over its length limit comes back empty instead, so an error page never echoes a huge body.
ECHO_FACTOR = 2


def forget_oversized_input(form: Form) -> None:
    """Empty every field more than :data:`ECHO_FACTOR` times over its length limit.

    :param form: a form that did not validate, about to be shown again.
    """
    for field in form:
        limits = [v.max for v in field.validators if isinstance(v, Length) and v.max >= 0]
        data = field.data
        if limits and isinstance(data, str) and len(data) > ECHO_FACTOR * min(limits):
            field.data = ""
            field.errors = [*field.errors, gettext("What you sent was too long to show again.")]


@bp.route(f"/{TICKET_ID}", methods=["GET", "POST"])
def ticket(ticket_id: int) -> ResponseReturnValue:
    """A ticket's page with its replies; a POST posts a reply (once per form).

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the reply posted; else the page, with status 200, 400 (the
        form did not validate), or 409 (the ticket is closed, or the form's key was used).
    :raises werkzeug.exceptions.HTTPException: a 404 for a ticket the reader may not read.
    """
    found = _load_ticket(ticket_id, for_page=request.method == "GET")
    form = ReplyForm()
    offer_statuses(form, found, keep=True)
    status = 200
    if request.method == "POST":
        status = 400
        if not form.validate_on_submit():
            refuse_invalid_form(form, REPLY_CSRF_MESSAGE)
        elif not refused_status(found, form):
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

    :param found: the ticket, which the reader may read.
    :param form: the validated reply form.
    :return: the reply posted (now or before); None (with a message) when the ticket is
        closed and the form was not sent before.
    :raises flasket.actions.FormKeyUsedError: when the form's key is on a reply this is not.
    """
    body, form_key = form.body.data, form.sent_form_key()
    models = current_flasket.models
    new_status = None
    if form.status.data and form.status.data != found.status:
        new_status = current_flasket.status_named(form.status.data)
    if not policy.may_reply(models, current_user, found):
        earlier = actions.earlier_reply(found, current_user, body, form_key)
        if earlier is None:
            flash_once(
                gettext(
                    "This ticket is closed, so your reply was not posted. "
                    "Your text is still in the box below."
                ),
                "error",
            )
        return earlier
    try:
        return actions.post_reply_once(
            found, current_user, body, form_key, new_status, form.resolution.data
        )
    except actions.TicketClosedError:
        flash_once(
            gettext(
                "This ticket was closed a moment ago, so your reply was not posted. "
                "Your text is still in the box below."
            ),
            "error",
        )
        return None


def refused_status(found: TicketBase, form: ReplyForm) -> bool:
    """Whether the reply form asks for a status its sender may not set (it is sent back).

    A status the ticket has already asks for nothing, and so does any status on a ticket
    that takes no reply: the same form sent again after it closed the ticket is answered
    like its first sending.

    :param found: the ticket.
    :param form: the validated reply form.
    :return: True (with the field's error and a flash) when the status is refused.
    """
    wanted = form.status.data
    models = current_flasket.models
    if not wanted or wanted == found.status or not policy.may_reply(models, current_user, found):
        return False
    if policy.may_set_status(models, current_user, found, wanted):
        return False
    message = gettext("You cannot give this ticket that status.")
    form.status.errors = [*form.status.errors, message]
    flash_once(message, "error")
    return True


def offer_statuses(form: ReplyForm | StatusForm, found: TicketBase, keep: bool) -> None:
    """Offer the statuses and resolutions the reader may set on ``found`` (policy's).

    :param form: the reply form (which may keep the status) or the status form.
    :param found: the ticket.
    :param keep: whether the first choice keeps the ticket's status.
    """
    user = current_user
    statuses = policy.settable_statuses(current_flasket.models, user, found)
    keep_choice = None
    if keep:
        keep_choice = ("", gettext("%(status)s (unchanged)", status=status_label(found.status)))
    form.offer(
        keep_choice,
        status_choices(statuses),
        resolution_choices(policy.settable_resolutions(user)),
        # Sent again, a form may name the status it set: policy answers, not the list.
        accepted=[s.name for s in current_flasket.statuses()] if keep else (),
    )


def status_choices(statuses: Iterable[Status]) -> list[tuple[str, str]]:
    """``(name, label)`` of each status, for a status select.

    :param statuses: configured statuses.
    :return: the choices, labels translated.
    """
    return [(status.name, str(status.label)) for status in statuses]


def resolution_choices(keys: Iterable[str]) -> list[tuple[str, str]]:
    """``(key, label)`` of each resolution, for a resolution select.

    :param keys: keys of ``config.RESOLUTIONS``.
    :return: the choices, labels translated.
    """
    return [(key, resolution_label(key)) for key in keys]


def reply_posted(posted: actions.Posted) -> ResponseReturnValue:
    """The answer to a posted reply: its page of the ticket, at the reply; no database needed.

    :param posted: what the action returned.
    :return: a 303 redirect.
    """
    flash_once(gettext("Your reply was posted."), "success")
    return redirect(
        thread_url(posted.ticket_id, posted.reply_number, f"reply-{posted.reply_id}"), 303
    )


def staff_authors(replies: Iterable[Any]) -> set[Any]:
    """The primary keys of the replies' authors who are staff (their replies get the
    staff tag), asking :func:`flasket.policy.is_staff` once per author.

    :param replies: replies with their authors loaded.
    :return: the authors' keys.
    """
    authors = {reply.author_id: reply.author for reply in replies if reply.author is not None}
    return {key for key, author in authors.items() if policy.is_staff(author)}


def thread_url(ticket_id: int, position: int, anchor: str) -> str:
    """The address of the ticket's page of replies holding the one at ``position``.

    :param ticket_id: the ticket's number.
    :param position: the reply's (or note's) place in the thread, counted from 1.
    :param anchor: the element to scroll to, ``"reply-12"`` or ``"note-3"``.
    :return: the URL, with ``?page=`` past the first page (``replies_per_page`` a page).
    """
    page = page_holding(position, config_value("replies_per_page"))
    page_arg: dict[str, Any] = {"page": page} if page > 1 else {}
    return url_for("flasket.ticket", ticket_id=ticket_id, **page_arg, _anchor=anchor)


def render_ticket(found: TicketBase, form: ReplyForm, note_form: NoteForm | None = None) -> str:
    """The ticket page: the ticket, one page of its replies (``?page=``), the reply form;
    for staff, the internal notes among the replies and the note form.

    :param found: the ticket, which the reader may read.
    :param form: the reply form, empty or as sent.
    :param note_form: the note form as sent, or None for an empty one.
    :return: the rendered ``flasket/ticket.html``.
    :raises werkzeug.exceptions.HTTPException: a 404 for a page past the last.
    """
    session, models = current_flasket.session, current_flasket.models
    reader = current_user._get_current_object()
    status_form = StatusForm(formdata=None, from_status=found.status)
    offer_statuses(status_form, found, keep=False)
    may_assign = policy.may_assign(models, current_user, found)
    assign_form = None
    if may_assign:
        current = "" if found.assignee_id is None else key_text(found.assignee_id)
        assign_form = AssignForm(formdata=None, assignee=current, from_assignee=current)
        assign_form.offer(assignee_choices(found.assignee))
    page = params.page_arg()
    try:
        replies = queries.reply_page(
            session, models, found, page, config_value("replies_per_page")
        )
    except PageNotFound:
        abort(
            404,
            gettext(
                "Ticket #%(number)s has no page %(page)s of replies.", number=found.id, page=page
            ),
        )
    may_add_note = policy.may_add_note(models, current_user, found)
    staff = policy.may_read_notes(models, current_user, found)
    timeline = queries.timeline_for_page(
        session, models, found, replies, notes=staff, staff_changes=staff
    )
    if may_add_note and note_form is None:
        note_form = NoteForm(formdata=None)
    return render_template(
        "flasket/ticket.html",
        ticket=found,
        replies=replies,
        timeline=timeline,
        note_form=note_form if may_add_note else None,
        form=form,
        action_form=ActionForm(),
        followers=queries.followers(session, models, found),
        following=queries.is_following(session, models, found, current_user)
        if found.viewer_follows is None
        else found.viewer_follows,
        may_reply=policy.may_reply(models, current_user, found),
        may_close=policy.may_close(models, current_user, found),
        may_reopen=policy.may_reopen(models, current_user, found),
        # Offered only what policy lets the reader set: staff with a choice get the control.
        may_set_status=policy.is_staff(current_user) and bool(status_form.status.choices),
        status_form=status_form,
        may_follow=policy.may_follow(models, current_user, found),
        categories=categories_of(found),
        may_assign=may_assign,
        assign_form=assign_form,
        assigned_to_me=found.assignee_id is not None
        and found.assignee_id == models.user_id(current_user),
        my_key=key_text(models.user_id(current_user)),
        duplicates=queries.duplicates_of(session, models, found, current_user)
        if found.has_duplicates is not False
        else [],
        ticket_editable=policy.may_edit_text(models, current_user, found),
        editable={
            reply.id
            for reply in replies.items
            if reply.author_id is not None
            and reply.author_id == models.user_id(reader)
            and policy.may_edit_text(models, reader, found, reply)
        },
        # Asked once per author, not once per reply: a page shows up to 100 replies.
        staff_authors=staff_authors(replies.items),
        may_read_versions=policy.may_read_versions(models, current_user, found),
        may_hide=policy.may_hide_reply(models, current_user, found),
        edit_form=edit_form(
            current_flasket.categories(),
            formdata=None,
            data={"title": found.title, **found.category_values()},
        )
        if policy.may_edit_ticket(models, current_user, found)
        else None,
        original_readable=found.duplicate_of is not None
        and policy.may_read(models, current_user, found.duplicate_of),
        duplicate_form=DuplicateForm(formdata=None)
        if found.duplicate_of_id is None and policy.may_mark_duplicate(models, current_user, found)
        else None,
    )


@bp.route(f"/{TICKET_ID}/note", methods=["POST"])
def note(ticket_id: int) -> ResponseReturnValue:
    """Add an internal note (staff only), once per form; POST only.

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the note; else the ticket page with the note form as sent,
        status 400 (it did not validate) or 409 (its key was used for another note).
    :raises werkzeug.exceptions.HTTPException: 403 for a reader who is not staff, 404 for
        a ticket the reader may not read.
    """
    found = _load_ticket(ticket_id)
    if not policy.may_add_note(current_flasket.models, current_user, found):
        abort(403, gettext("Only staff can add internal notes."))
    form = NoteForm()
    status = 400
    if not form.validate_on_submit():
        refuse_invalid_form(form, NOTE_CSRF_MESSAGE)
    else:
        try:
            posted = actions.add_note_once(
                found, current_user, form.note.data, form.sent_form_key()
            )
        except actions.FormKeyUsedError as error:
            status = refuse_form_key(form, error)
        else:
            flash_once(gettext("Your internal note was added. Only staff see it."), "success")
            return redirect(
                thread_url(ticket_id, posted.reply_number, f"note-{posted.reply_id}"), 303
            )
    reply_form = ReplyForm(formdata=None)
    offer_statuses(reply_form, found, keep=True)
    return render_ticket(found, reply_form, note_form=form), status


def ticket_action(
    ticket_id: int,
    act: Callable[[TicketBase, Any], bool],
    done: Text,
    unchanged: Text,
    refusal: Text | None = None,
    allowed: Callable[[Any, Any, TicketBase], bool] = policy.may_change_status,
) -> ResponseReturnValue:
    """Close, reopen, follow or unfollow: the same checks, then a flash and a redirect.

    :param ticket_id: the ticket's number, from the URL.
    :param act: the action; takes the ticket and the user, returns whether it changed
        anything.
    :param done: the message when it did, a lazy string; ``%(number)s`` is the ticket's
        number.
    :param unchanged: the message when it did not.
    :param refusal: the 403 message for users the policy does not let act (``allowed``);
        None for actions anyone who may read the ticket may take.
    :param allowed: the policy's check, taking models, the user and the ticket.
    :return: a 303 redirect to the ticket.
    :raises werkzeug.exceptions.HTTPException: 400 (a stale form), 403, or 404.
    """
    found = _load_ticket(ticket_id)
    require_action_form(found)
    if refusal and not allowed(current_flasket.models, current_user, found):
        abort(403, str(refusal))
    changed = act(found, current_user)
    # Committed: the answer needs nothing from the database (``found`` may be expired).
    message = str(done if changed else unchanged) % {"number": ticket_id}
    flash_once(message, "success" if changed else "info")
    return redirect(url_for("flasket.ticket", ticket_id=ticket_id), 303)


@bp.route(f"/{TICKET_ID}/close", methods=["POST"])
def close(ticket_id: int) -> ResponseReturnValue:
    """Close a ticket (its author or staff); POST only, see :func:`ticket_action`.

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the ticket.
    """
    return ticket_action(
        ticket_id,
        actions.close_ticket,
        lazy_gettext("Ticket #%(number)s is closed."),
        lazy_gettext("Ticket #%(number)s was already closed."),
        refusal=lazy_gettext("Only the ticket's author or staff can close this ticket."),
    )


@bp.route(f"/{TICKET_ID}/reopen", methods=["POST"])
def reopen(ticket_id: int) -> ResponseReturnValue:
    """Reopen a ticket (its author or staff); POST only, see :func:`ticket_action`.

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the ticket.
    """
    return ticket_action(
        ticket_id,
        actions.reopen_ticket,
        lazy_gettext("Ticket #%(number)s is open again."),
        lazy_gettext("Ticket #%(number)s was already open."),
        refusal=lazy_gettext(
            "Only the ticket's author or staff can reopen this ticket; a duplicate, only staff."
        ),
        allowed=policy.may_send_reopen,
    )


@bp.route(f"/{TICKET_ID}/status", methods=["POST"])
def set_status(ticket_id: int) -> ResponseReturnValue:
    """Move a ticket to another status (the statuses policy offers the reader); POST only.

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the ticket.
    :raises werkzeug.exceptions.HTTPException: 400 (a stale form, or a status or
        resolution that is not in the list), 403 (the reader may set no status, or not
        this one) or 404.
    """
    found = _load_ticket(ticket_id)
    require_action_form(found)
    models = current_flasket.models
    if not policy.settable_statuses(models, current_user, found):
        abort(403, gettext("Only the ticket's author or staff can change its status."))
    form = StatusForm()
    form.offer(None, status_choices(current_flasket.statuses()), resolution_choices(RESOLUTIONS))
    if not form.validate():
        abort(400, " ".join(str(e) for errors in form.errors.values() for e in errors))
    status = current_flasket.status_named(form.status.data)
    assert status is not None  # offered, so configured
    label = str(status.label)
    seen = form.from_status.data or found.status
    if status.name == found.status or seen != found.status:
        # Sent twice (the ticket is where it asks), or from a page shown before someone else
        # changed the status: nothing to do, and the reader is told which.
        if status.name == found.status:
            message = gettext(
                "Ticket #%(number)s is now “%(status)s”.", number=ticket_id, status=label
            )
        else:
            message = gettext(
                "Ticket #%(number)s changed meanwhile; nothing was changed. Look at it again.",
                number=ticket_id,
            )
        flash_once(message, "info")
        return redirect(url_for("flasket.ticket", ticket_id=ticket_id), 303)
    if not policy.may_set_status(models, current_user, found, form.status.data):
        abort(403, gettext("You cannot give this ticket that status."))
    resolution = form.resolution.data if status.kind == "closed" else None
    if resolution is not None and resolution not in policy.settable_resolutions(current_user):
        abort(403, gettext("You cannot close this ticket with that resolution."))
    changed = actions.set_status(found, current_user, status, resolution, from_status=seen)
    if changed:
        message = gettext(
            "Ticket #%(number)s is now “%(status)s”.", number=ticket_id, status=label
        )
    else:
        message = gettext(
            "Ticket #%(number)s changed meanwhile; nothing was changed. Look at it again.",
            number=ticket_id,
        )
    flash_once(message, "success" if changed else "info")
    return redirect(url_for("flasket.ticket", ticket_id=ticket_id), 303)


def assignee_choices(current: Any) -> list[tuple[str, str]]:
    """The assign control's choices: nobody, the reader, then the assignable staff.

    :param current: the ticket's assignee (offered even when no longer listed), or None.
    :return: ``(key, label)`` pairs; ``""`` is nobody.
    """
    session, models = current_flasket.session, current_flasket.models
    me = current_user._get_current_object()
    people = [me, *queries.assignable_staff(session, models)]
    if current is not None:
        people.append(current)
    choices = [("", gettext("Nobody"))]
    seen = set()
    for person in people:
        key = key_text(models.user_id(person))
        if key in seen:
            continue
        seen.add(key)
        label = user_name(person)
        if person is me:
            label = gettext("Me (%(name)s)", name=label)
        choices.append((key, label))
    return choices


def find_assignee(key: str, found: TicketBase | None) -> Any:
    """The staff member a form names by key, checked by policy; None for ``""`` (nobody).

    :param key: the key the form sent, stripped.
    :param found: the ticket to assign, or None to check only that they are staff.
    :return: the host user, or None.
    :raises werkzeug.exceptions.HTTPException: a 400 for a key that is no user's, or a user
        who may not be assigned (not staff, or may not read the ticket).
    """
    if not key:
        return None
    models = current_flasket.models
    parsed = parse_user_key(key) if len(key) <= MAX_KEY_LENGTH else None
    person = None
    if parsed is not None:
        person = queries.user_by_key(current_flasket.session, models, parsed)
    if person is None:
        abort(400, gettext("There is no such user."))
    allowed = (
        policy.may_be_assigned(models, person, found)
        if found is not None
        else policy.is_staff(person)
    )
    if not allowed:
        abort(
            400,
            gettext(
                "%(name)s is not staff, so tickets cannot be assigned to them.",
                name=user_name(person),
            ),
        )
    return person


@bp.route(f"/{TICKET_ID}/assign", methods=["POST"])
def assign(ticket_id: int) -> ResponseReturnValue:
    """Assign a ticket to a staff member, or to nobody (staff only); POST only.

    The form names the assignee by key (``assignee``, ``""`` for nobody) and the assignee
    the page showed (``from_assignee``): sent twice, or after someone else reassigned the
    ticket, it changes nothing and says so.

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the ticket.
    :raises werkzeug.exceptions.HTTPException: 400 (a stale form, or an assignee who is
        no user or not staff), 403 (the reader is not staff) or 404.
    """
    found = _load_ticket(ticket_id)
    require_action_form(found)
    models = current_flasket.models
    if not policy.may_assign(models, current_user, found):
        abort(403, gettext("Only staff can assign tickets."))
    form = AssignForm()
    assignee = find_assignee((form.assignee.data or "").strip(), found)
    seen: Any = actions.LOADED
    if form.from_assignee.raw_data:
        shown = form.from_assignee.data.strip()
        seen = parse_user_key(shown) if shown else None
        if shown and seen is None:
            abort(400, gettext("There is no such user."))
    wanted = None if assignee is None else models.user_id(assignee)
    changed = actions.assign_ticket(found, current_user, assignee, from_assignee=seen)
    if changed or found.assignee_id == wanted:
        message = assigned_message(ticket_id, assignee)
    else:
        message = gettext(
            "Ticket #%(number)s changed meanwhile; nothing was changed. Look at it again.",
            number=ticket_id,
        )
    flash_once(message, "success" if changed else "info")
    return redirect(url_for("flasket.ticket", ticket_id=ticket_id), 303)


def assigned_message(number: int, assignee: Any) -> str:
    """What the reader is told once ticket ``number`` is assigned to ``assignee``.

    :param number: the ticket's number.
    :param assignee: the host user now assigned, or None.
    :return: the message, translated.
    """
    if assignee is None:
        return gettext("Ticket #%(number)s is assigned to nobody now.", number=number)
    models = current_flasket.models
    if models.user_id(assignee) == models.user_id(current_user):
        return gettext("Ticket #%(number)s is assigned to you now.", number=number)
    return gettext(
        "Ticket #%(number)s is assigned to %(name)s now.", number=number, name=user_name(assignee)
    )


#: The most tickets one bulk action changes: a list's largest page.
MAX_BULK = 100


@bp.route("/bulk", methods=["POST"])
def bulk() -> ResponseReturnValue:
    """Assign, or set the status of, the tickets ticked on a list (staff only); POST only.

    Every ticket is checked by policy on its own and changed in its own transaction, with
    its own mail and signal, as if changed from its page; a ticket the reader may not
    change, or that has the status or assignee already, is left as it is and named.

    :return: a 303 redirect to the list the form was sent from.
    :raises werkzeug.exceptions.HTTPException: 400 (a stale form, numbers that are no
        ticket's, more than :data:`MAX_BULK` tickets, an unknown status, resolution or
        assignee), 403 (the reader is not staff).
    """
    if not policy.may_use_queues(current_user):
        abort(403, gettext("Only staff can change several tickets at once."))
    form = BulkForm()
    back_url = list_url(form.back.data or "")
    back = (back_url, gettext("Back to the list"))

    def refuse(message: Text) -> NoReturn:
        abort(Response(errors.error_page(400, message, back), 400))

    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            refuse(ACTION_CSRF_MESSAGE)
        refuse(gettext("Choose what to do with the tickets."))
    numbers = ticked_numbers()
    if not numbers:
        flash_once(gettext("Tick the tickets to change first."), "error")
        return redirect(back_url, 303)
    session, models = current_flasket.session, current_flasket.models
    found = queries.tickets_by_numbers(session, models, numbers, current_user)
    if form.action.data == "assign":
        assignee = find_assignee((form.assignee.data or "").strip(), None)

        def change(ticket: TicketBase) -> bool:
            if not policy.may_assign(models, current_user, ticket):
                return False
            if assignee is not None and not policy.may_be_assigned(models, assignee, ticket):
                return False
            return actions.assign_ticket(ticket, current_user, assignee)

    else:
        status = current_flasket.status_named(form.status.data or "")
        if status is None:
            refuse(gettext("Choose one of the statuses in the list."))
        resolution = (form.resolution.data or "solved") if status.kind == "closed" else None
        if resolution is not None and resolution not in policy.settable_resolutions(current_user):
            refuse(gettext("Choose one of the resolutions in the list."))

        def change(ticket: TicketBase) -> bool:
            if not policy.may_set_status(models, current_user, ticket, status.name):
                return False
            return actions.set_status(ticket, current_user, status, resolution)

    changed: list[int] = []
    unchanged: list[int] = []
    for number in numbers:
        ticket = found.get(number)
        (changed if ticket is not None and change(ticket) else unchanged).append(number)
    if changed:
        flash_once(
            ngettext(
                "%(num)s ticket changed: %(numbers)s.",
                "%(num)s tickets changed: %(numbers)s.",
                len(changed),
                numbers=ticket_numbers(changed),
            ),
            "success",
        )
    if unchanged:
        flash_once(
            ngettext(
                "%(num)s ticket was left as it was (it had that already, or you cannot"
                " change it): %(numbers)s.",
                "%(num)s tickets were left as they were (they had that already, or you"
                " cannot change them): %(numbers)s.",
                len(unchanged),
                numbers=ticket_numbers(unchanged),
            ),
            "info",
        )
    return redirect(back_url, 303)


def ticked_numbers() -> list[int]:
    """The ticket numbers a bulk form ticked (``ticket``, repeated), in order, once each.

    :return: the numbers.
    :raises werkzeug.exceptions.HTTPException: a 400 for a value that is no ticket number,
        or more than :data:`MAX_BULK` of them.
    """
    values = request.form.getlist("ticket")
    if len(values) > MAX_BULK:
        abort(
            400,
            gettext("At most %(max)s tickets can be changed at once.", max=MAX_BULK),
        )
    numbers: list[int] = []
    for value in values:
        if not TICKET_NUMBER.fullmatch(value) or int(value) > MAX_TICKET_ID:
            abort(400, gettext("The tickets to change must be given by their numbers."))
        if int(value) not in numbers:
            numbers.append(int(value))
    return numbers


def ticket_numbers(numbers: Iterable[int]) -> str:
    """``"#3, #7 and #12"``, in the reader's language.

    :param numbers: ticket numbers.
    :return: the list, as Babel joins one.
    """
    return format_list([f"#{number}" for number in numbers], locale=i18n.current_reader().locale)


def list_url(query: str) -> str:
    """The ticket list with ``query`` (a list's query string), rebuilt from its parameters.

    Only the list's own parameters are kept (:func:`list_parameters`), so nothing but the
    list can be the address.

    :param query: ``"status=open&queue=mine"`` and the like, as a bulk form carries it.
    :return: the list's URL.
    """
    kept = list_query(parse_qsl(query[:2000]))
    url = url_for("flasket.all_tickets")
    return f"{url}?{kept}" if kept else url


def list_query(pairs: Iterable[tuple[str, str]]) -> str:
    """The query string of a ticket list, of ``pairs`` only the list's own parameters
    (:func:`list_parameters`): what a bulk form carries back to the list it came from.

    :param pairs: ``(name, value)`` pairs, as ``urllib.parse.parse_qsl`` or a
        request's ``args.items(multi=True)`` give them.
    :return: the ``application/x-www-form-urlencoded`` string, ``""`` for none.
    """
    allowed = list_parameters()
    return urlencode([(k, v) for k, v in pairs if k in allowed])


REPLY_ID = f"<{TICKET_NUMBER_CONVERTER}(max={MAX_TICKET_ID}):reply_id>"


def _load_reply(found: TicketBase, reply_id: int) -> Any:
    """Reply ``reply_id`` of ``found``; a 404 for a number that is not one of its replies."""
    reply = current_flasket.session.get(current_flasket.models.Reply, reply_id)
    if reply is None or reply.ticket_id != found.id:
        abort(404, gettext("Ticket #%(number)s has no such reply.", number=found.id))
    return reply


@bp.route(f"/{TICKET_ID}/replies/{REPLY_ID}")
def reply(ticket_id: int, reply_id: int) -> ResponseReturnValue:
    """A reply's own address: a redirect to the page of the ticket that shows it.

    The history's links to a reply, and the pages that change one, go here: which page of
    replies holds a reply depends on the replies before it.

    :param ticket_id: the ticket's number, from the URL.
    :param reply_id: the reply's number, from the URL.
    :return: a 302 redirect to the ticket's page of the reply, at the reply.
    :raises werkzeug.exceptions.HTTPException: a 404 for a ticket the reader may not read,
        or a number that is not one of its replies.
    """
    found = _load_ticket(ticket_id)
    shown = _load_reply(found, reply_id)
    position = queries.reply_position(current_flasket.session, current_flasket.models, shown)
    return redirect(thread_url(ticket_id, position, f"reply-{reply_id}"), 302)


@bp.route(f"/{TICKET_ID}/revise", methods=["GET", "POST"])
@bp.route(f"/{TICKET_ID}/replies/{REPLY_ID}/revise", methods=["GET", "POST"])
def revise(ticket_id: int, reply_id: int | None = None) -> ResponseReturnValue:
    """Edit one's own ticket description, or one's own reply (``FLASKET_EDIT_WINDOW``).

    :param ticket_id: the ticket's number, from the URL.
    :param reply_id: the reply's number, or None for the description.
    :return: the form (GET, or a POST that did not validate: 400); a 303 redirect to the
        text once stored.
    :raises werkzeug.exceptions.HTTPException: 403 when the reader may not edit it (not
        theirs, or too late), 404 for a ticket or reply that is not there.
    """
    found = _load_ticket(ticket_id)
    reply = None if reply_id is None else _load_reply(found, reply_id)
    models = current_flasket.models
    if not policy.may_edit_text(models, current_user, found, reply):
        abort(
            403,
            gettext("Only its author can edit this text, for a while after writing it."),
        )
    written: Any = found if reply is None else reply
    form = ReviseForm(data={"body": written.body})
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            changed = actions.revise_text(found, reply, current_user, form.body.data)
            flash_once(
                gettext("Your text was changed.") if changed else gettext("Nothing was changed."),
                "success" if changed else "info",
            )
            if reply is not None:
                return redirect(
                    url_for("flasket.reply", ticket_id=ticket_id, reply_id=reply.id), 303
                )
            return redirect(
                url_for("flasket.ticket", ticket_id=ticket_id, _anchor="flasket-ticket-title"),
                303,
            )
        refuse_invalid_form(form, REVISE_CSRF_MESSAGE)
    return render_template("flasket/revise.html", ticket=found, reply=reply, form=form), status


@bp.route(f"/{TICKET_ID}/versions")
@bp.route(f"/{TICKET_ID}/replies/{REPLY_ID}/versions")
def versions(ticket_id: int, reply_id: int | None = None) -> ResponseReturnValue:
    """The earlier versions of a ticket's description or of a reply, and a hidden reply's
    text (staff only).

    :param ticket_id: the ticket's number, from the URL.
    :param reply_id: the reply's number, or None for the description.
    :return: the page, newest version first.
    :raises werkzeug.exceptions.HTTPException: 403 for a reader who is not staff, 404 for a
        ticket or reply that is not there.
    """
    found = _load_ticket(ticket_id)
    reply = None if reply_id is None else _load_reply(found, reply_id)
    models = current_flasket.models
    if not policy.may_read_versions(models, current_user, found):
        abort(403, gettext("Only staff can read earlier versions."))
    return render_template(
        "flasket/versions.html",
        ticket=found,
        reply=reply,
        revisions=queries.revisions(current_flasket.session, models, found, reply),
    )


@bp.route(f"/{TICKET_ID}/replies/{REPLY_ID}/hide", methods=["POST"])
def hide(ticket_id: int, reply_id: int) -> ResponseReturnValue:
    """Hide a reply (staff only): its text is kept for staff; POST only.

    :param ticket_id: the ticket's number, from the URL.
    :param reply_id: the reply's number, from the URL.
    :return: a 303 redirect to the reply.
    :raises werkzeug.exceptions.HTTPException: 400 (a stale form), 403 or 404.
    """
    return _hide(ticket_id, reply_id, hide=True)


@bp.route(f"/{TICKET_ID}/replies/{REPLY_ID}/unhide", methods=["POST"])
def unhide(ticket_id: int, reply_id: int) -> ResponseReturnValue:
    """Show a hidden reply again (staff only); POST only.

    :param ticket_id: the ticket's number, from the URL.
    :param reply_id: the reply's number, from the URL.
    :return: a 303 redirect to the reply.
    :raises werkzeug.exceptions.HTTPException: 400 (a stale form), 403 or 404.
    """
    return _hide(ticket_id, reply_id, hide=False)


def _hide(ticket_id: int, reply_id: int, hide: bool) -> ResponseReturnValue:
    found = _load_ticket(ticket_id)
    reply = _load_reply(found, reply_id)
    require_action_form(found)
    if not policy.may_hide_reply(current_flasket.models, current_user, found):
        abort(403, gettext("Only staff can hide replies."))
    changed = actions.hide_reply(found, reply, current_user, hide=hide)
    if hide:
        message = (
            gettext("The reply is hidden.")
            if changed
            else gettext("The reply was hidden already.")
        )
    else:
        message = (
            gettext("The reply is shown again.")
            if changed
            else gettext("The reply was shown already.")
        )
    flash_once(message, "success" if changed else "info")
    return redirect(url_for("flasket.reply", ticket_id=ticket_id, reply_id=reply_id), 303)


@bp.route(f"/{TICKET_ID}/edit", methods=["POST"])
def edit(ticket_id: int) -> ResponseReturnValue:
    """Change a ticket's title and categories (staff only); POST only.

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the ticket.
    :raises werkzeug.exceptions.HTTPException: 400 (a stale form, a title or category
        value that is not valid, with what is wrong), 403 (the reader is not staff) or 404.
    """
    found = _load_ticket(ticket_id)
    require_action_form(found)
    models = current_flasket.models
    if not policy.may_edit_ticket(models, current_user, found):
        abort(403, gettext("Only staff can edit a ticket's title and categories."))
    form = edit_form(current_flasket.categories())
    if not form.validate():
        forget_oversized_input(form)
        abort(400, " ".join(str(e) for errors in form.errors.values() for e in errors))
    # A category the form leaves out keeps its value (a field missing is not "none").
    values = found.category_values()
    sent = form.category_values()
    for name in form.category_names:
        if name in request.form:
            if name in sent:
                values[name] = sent[name]
            else:
                values.pop(name, None)
    changed = actions.edit_ticket(found, current_user, form.title.data, values)
    if changed:
        flash_once(gettext("Ticket #%(number)s is updated.", number=ticket_id), "success")
    else:
        flash_once(gettext("Nothing was changed."), "info")
    return redirect(url_for("flasket.ticket", ticket_id=ticket_id), 303)


@bp.route(f"/{TICKET_ID}/duplicate", methods=["POST"])
def duplicate(ticket_id: int) -> ResponseReturnValue:
    """Close a ticket as a duplicate of another (staff only); POST only.

    The form names the original by number (``original``, "7" or "#7").

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the ticket.
    :raises werkzeug.exceptions.HTTPException: 400 (a stale form, a number that is no
        ticket the reader may read, the ticket itself, or a ticket that is a duplicate
        itself), 403 (the reader is not staff), or 404.
    """
    found = _load_ticket(ticket_id)
    require_action_form(found)
    models = current_flasket.models
    if not policy.may_mark_duplicate(models, current_user, found):
        abort(403, gettext("Only staff can close a ticket as a duplicate."))
    form = DuplicateForm()
    typed = (form.original.data or "").strip().removeprefix("#")
    if not form.validate() or not TICKET_NUMBER.fullmatch(typed) or int(typed) > MAX_TICKET_ID:
        abort(400, gettext("Give the number of the ticket this one duplicates."))
    number = int(typed)
    original = queries.ticket_with_details(current_flasket.session, models, number, current_user)
    if original is None or not policy.may_mark_duplicate(models, current_user, found, original):
        abort(400, gettext("There is no ticket #%(number)s.", number=number))
    try:
        changed = actions.close_as_duplicate(found, current_user, original)
    except actions.DuplicateError as error:
        if error.original_of is None:
            message = gettext("A ticket cannot be a duplicate of itself.")
        elif error.original_of == found.id:
            message = gettext(
                "Ticket #%(number)s is already a duplicate of this one. Reopen it first to"
                " make this ticket the duplicate.",
                number=number,
            )
        else:
            message = gettext(
                "Ticket #%(number)s is itself a duplicate of #%(original)s: close this one as"
                " a duplicate of #%(original)s.",
                number=number,
                original=error.original_of,
            )
        abort(400, message)
    if changed:
        message = gettext(
            "Ticket #%(number)s is closed as a duplicate of #%(original)s; its followers now"
            " follow #%(original)s.",
            number=ticket_id,
            original=number,
        )
    else:
        message = gettext(
            "Ticket #%(number)s was already a duplicate of #%(original)s.",
            number=ticket_id,
            original=number,
        )
    flash_once(message, "success" if changed else "info")
    return redirect(url_for("flasket.ticket", ticket_id=ticket_id), 303)


@bp.route(f"/{TICKET_ID}/follow", methods=["POST"])
def follow(ticket_id: int) -> ResponseReturnValue:
    """Follow a ticket: mail on every change; POST only, see :func:`ticket_action`.

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the ticket.
    """
    return ticket_action(
        ticket_id,
        actions.follow_ticket,
        lazy_gettext("You follow ticket #%(number)s and will get an e-mail when it changes."),
        lazy_gettext("You already follow ticket #%(number)s."),
    )


@bp.route(f"/{TICKET_ID}/unfollow", methods=["POST"])
def unfollow(ticket_id: int) -> ResponseReturnValue:
    """Stop following a ticket; POST only, see :func:`ticket_action`.

    :param ticket_id: the ticket's number, from the URL.
    :return: a 303 redirect to the ticket.
    """
    return ticket_action(
        ticket_id,
        actions.unfollow_ticket,
        lazy_gettext("You no longer follow ticket #%(number)s."),
        lazy_gettext("You were not following ticket #%(number)s."),
    )


@bp.route("/unfollow/<token>", methods=["GET", "POST"])
def unfollow_link(token: str) -> ResponseReturnValue:
    """The link in every follower's e-mail: GET asks, POST (also RFC 8058 one-click) unfollows.

    No login and no CSRF token: the signed token names the ticket and the user.

    :param token: the signed token, from the URL.
    :return: the page asking to confirm (GET) or saying it is done (POST); a 400 page for
        a token that is not valid.
    """
    models = current_flasket.models
    try:
        ticket_key, raw_user_id = unfollow_tokens.read_token(token)
        ticket_id = unfollow_tokens.ticket_number(ticket_key)
        user_id = unfollow_tokens.user_key(
            sa_python_type(getattr(models.user, models.user_pk)), raw_user_id
        )
    except (unfollow_tokens.BadUnfollowToken, ValueError, TypeError) as error:
        message = str(error) if isinstance(error, unfollow_tokens.BadUnfollowToken) else None
        return _bad_unfollow_link(message or gettext("This unfollow link is not valid."))
    key_type = getattr(models.user, models.user_pk).type
    if not 1 <= ticket_id <= MAX_TICKET_ID or (
        isinstance(user_id, int) and not fits_key_column(key_type, user_id)
    ):
        # Signed with the app's key, yet numbers no column holds: no ticket or user has them.
        return _bad_unfollow_link(gettext("This unfollow link is not valid."))
    session = current_flasket.session
    found = session.get(models.Ticket, ticket_id)
    person = session.get(models.user, user_id)
    if person is None:
        return _bad_unfollow_link(
            gettext("This unfollow link is for an account that no longer exists.")
        )
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
        # Not "title": layout.html sets that (the page's title, for host layouts).
        ticket_title=title,
        done=done,
        following=following,
        may_open=title is not None,
        error=None,
    )


def _bad_unfollow_link(message: str) -> ResponseReturnValue:
    page = render_template(
        "flasket/unfollow.html",
        number=None,
        ticket_title=None,
        done=False,
        following=None,
        may_open=False,
        error=message,
    )
    return page, 400


@bp.route("/all")
def all_tickets() -> ResponseReturnValue:
    """The list of tickets the reader may read, filtered, searched, sorted and paged.

    Filters come from the query: ``status``, each category's name, ``author`` or
    ``author_id``, ``q``, ``sort``, ``page``, ``per_page``.

    :return: the rendered ``flasket/all.html``.
    :raises werkzeug.exceptions.HTTPException: a 404 for a page past the last.
    """
    session, models = current_flasket.session, current_flasket.models
    categories = current_flasket.categories()
    chosen = {}
    for category in categories:
        value = params.choice_arg(category.name, category.values, default="")
        if value:
            chosen[category.name] = value
    staff = policy.may_use_queues(current_user)
    queue = params.choice_arg("queue", queries.QUEUES, default="")
    if queue and not staff:
        abort(403, gettext("Only staff can open the queues."))
    assignee_key = params.text_arg("assignee", max_length=MAX_KEY_LENGTH)
    assignee = None
    if assignee_key and assignee_key != queries.UNASSIGNED:
        parsed = parse_user_key(assignee_key)
        assignee = queries.user_by_key(session, models, parsed) if parsed is not None else None
        if assignee is None:
            abort(400, gettext("There is no such user."))
    author, namesakes, author_name = find_author()
    status_filters = queries.STATUS_FILTERS + tuple(
        s.name for s in current_flasket.statuses() if s.name not in queries.STATUS_FILTERS
    )
    filters = queries.TicketFilter(
        status=params.choice_arg("status", status_filters, default="open"),
        categories=chosen,
        author_id=models.user_id(author) if author is not None else None,
        query=params.text_arg("q"),
        sort=params.choice_arg("sort", queries.SORTS, default="updated"),
        assignee_id=models.user_id(assignee) if assignee is not None else None,
        unassigned=assignee_key == queries.UNASSIGNED,
        queue=queue,
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
            abort(404, gettext("There is no page %(page)s of this list.", page=page))
    if queue:
        words = QUEUE_LISTS[queue]
    else:
        words = STATUS_LISTS.get(filters.status) or ListWords(
            status_label(filters.status),
            lazy_gettext("There are no tickets with this status."),
            lazy_gettext("No tickets with this status match these filters."),
        )
    filtered = chosen or author_name or filters.query or assignee_key
    empty = words.no_match if filtered else words.none
    assignees = assignee_choices(None) if staff else []
    bulk_form = None
    if staff and tickets.items:
        bulk_form = BulkForm(formdata=None, back=list_query(request.args.items(multi=True)))
        bulk_form.offer(
            assignees,
            status_choices(current_flasket.statuses()),
            resolution_choices(policy.settable_resolutions(current_user)),
        )
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
        status_filters=[(value, filter_label(value)) for value in status_filters],
        heading=words.heading,
        noun=filters.status if filters.status in STATUS_LISTS and not queue else "tickets",
        empty=empty,
        staff=staff,
        queue=queue,
        queues=QUEUE_LISTS,
        assignee_filters=[
            ("", gettext("Anyone")),
            (queries.UNASSIGNED, gettext("Nobody (unassigned)")),
            *assignees[1:],
        ]
        if staff
        else [],
        assignee_key=assignee_key,
        bulk_form=bulk_form,
    )


def filter_label(value: str) -> str:
    """The label of a value of the list's status filter: a kind, "All", or one status.

    :param value: ``"open"``, ``"closed"``, ``"all"`` or a configured status's name.
    :return: the label, translated.
    """
    return kind_label(value) or status_label(value)


def find_author() -> tuple[Any, list[Any] | None, str]:
    """The list's author filter: ``(user, namesakes, name for the box)``.

    ``?author_id=`` (the links Flasket makes) names a user by primary key and finds every
    user, whatever their name. ``?author=`` is what a person types: a name that several users
    share gives no user and the list of them to choose from (``namesakes``); ``namesakes``
    is None for an ``author_id`` that is no user's key.

    :return: ``(user or None, namesakes or None, name for the box)``.
    """
    session, models = current_flasket.session, current_flasket.models
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


def author_suggestions(listed: list[TicketBase]) -> list[str]:
    """Names the author box offers: the authors of the tickets listed, and the reader's own.

    Read from the rows already loaded, so the suggestions cost no statement; every name
    is one the reader may see (the list holds only tickets they may read).

    :param listed: the tickets of the page shown, authors loaded.
    :return: the names, sorted case-insensitively, without duplicates or blanks.
    """
    names = {real_name(ticket.author) for ticket in listed if ticket.author is not None}
    names.add(real_name(current_user))
    return sorted(filter(None, names), key=lambda name: (name.casefold(), name))


class ListWords(NamedTuple):
    """What the ticket list says about the tickets of one status filter (lazy strings)."""

    heading: Text
    #: The empty list without filters.
    none: Text
    #: The empty list with filters.
    no_match: Text


#: The list's heading and empty-list sentences, by status filter: the list shows open tickets
#: unless asked otherwise, and says so. Its count line is :func:`flasket.templating.count_line`
#: of the same key.
STATUS_LISTS = {
    "open": ListWords(
        lazy_gettext("Open tickets"),
        lazy_gettext("There are no open tickets."),
        lazy_gettext("No open tickets match these filters."),
    ),
    "closed": ListWords(
        lazy_gettext("Closed tickets"),
        lazy_gettext("There are no closed tickets."),
        lazy_gettext("No closed tickets match these filters."),
    ),
    "all": ListWords(
        lazy_gettext("All tickets"),
        lazy_gettext("There are no tickets."),
        lazy_gettext("No tickets match these filters."),
    ),
}


#: The staff queues' headings and empty-list sentences (:data:`flasket.queries.QUEUES`).
QUEUE_LISTS = {
    "mine": ListWords(
        lazy_gettext("Assigned to me"),
        lazy_gettext("No open ticket is assigned to you."),
        lazy_gettext("No open ticket assigned to you matches these filters."),
    ),
    "unassigned": ListWords(
        lazy_gettext("Unassigned"),
        lazy_gettext("Every open ticket is assigned."),
        lazy_gettext("No unassigned ticket matches these filters."),
    ),
    "waiting_on_staff": ListWords(
        lazy_gettext("Waiting on staff"),
        lazy_gettext("No ticket waits on staff: every requester has an answer."),
        lazy_gettext("No ticket waiting on staff matches these filters."),
    ),
    "waiting_on_requester": ListWords(
        lazy_gettext("Waiting on the requester"),
        lazy_gettext("No ticket waits on its requester."),
        lazy_gettext("No ticket waiting on its requester matches these filters."),
    ),
    "recently_closed": ListWords(
        lazy_gettext("Recently closed"),
        lazy_gettext("No ticket was closed in the last 7 days."),
        lazy_gettext("No ticket closed in the last 7 days matches these filters."),
    ),
}


def list_parameters() -> frozenset[str]:
    """The query parameters of the ticket list a bulk form returns to: its filters, order
    and page size. Not its page: the tickets changed may have left the list, and a page past
    its end would be a 404.

    :return: their names, each configured category's included.
    """
    fixed = {"status", "queue", "assignee", "author", "author_id", "q", "sort", "per_page"}
    return frozenset({*fixed, *(c.name for c in current_flasket.categories())})


class UserTab(NamedTuple):
    """How the user page presents one of its lists (lazy strings)."""

    label: Text
    #: Its count line's key (:func:`flasket.templating.count_line`).
    kind: str
    #: The order it is listed in.
    order: Text
    #: The name of its pager.
    pages: Text
    #: The 404 for a page past its end: ``%(page)s`` and ``%(name)s`` (whose list).
    missing: Text


#: The user page's tabs, one per list of ``queries.USER_LISTS`` (``?show=``), in that order.
USER_TABS = {
    "tickets": UserTab(
        lazy_gettext("Submitted"),
        "submitted",
        lazy_gettext("recently updated first"),
        lazy_gettext("Pages of submitted tickets"),
        lazy_gettext("There is no page %(page)s of %(name)s's submitted tickets."),
    ),
    "following": UserTab(
        lazy_gettext("Following"),
        "followed",
        lazy_gettext("newest first"),
        lazy_gettext("Pages of followed tickets"),
        lazy_gettext("There is no page %(page)s of %(name)s's followed tickets."),
    ),
    "replies": UserTab(
        lazy_gettext("Replies"),
        "replies",
        lazy_gettext("newest first"),
        lazy_gettext("Pages of replies"),
        lazy_gettext("There is no page %(page)s of %(name)s's replies."),
    ),
}


@bp.route("/user/", defaults={"key": None})
@bp.route("/user/<path:key>")
def user(key: str | None) -> ResponseReturnValue:
    """A user's page, at their primary key: ``/user/42``, or ``/user/?key=...`` (see user_url).

    A path that is no user's key but exactly one user's name (an address from a release
    that put names in these URLs) redirects to that user's page.

    :param key: the key from the path; None for ``/user/`` (the key is then ``?key=``).
    :return: the page (``?show=`` picks its list); a 301 to the page's one address; a 302
        from a name to its user's page.
    :raises werkzeug.exceptions.HTTPException: a 404 for no such user or page.
    """
    session, models = current_flasket.session, current_flasket.models
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
        abort(404, gettext("There is no such user."))
    in_query = request.view_args is not None and request.view_args.get("key") is None
    if in_query != needs_query_form(key):
        # "/user/?key=42" for "/user/42": the page has one address.
        return redirect(user_url(person, **_page_query()), 301)
    g.flasket_shown_user_key = key
    counts = queries.user_list_counts(session, models, current_user, person)
    listed = queries.user_list(session, models, current_user, person, shown)
    try:
        page = queries.list_page(session, listed, number, per_page, counted=counts[shown])
    except PageNotFound:
        name = user_name(person)
        abort(404, str(USER_TABS[shown].missing) % {"page": number, "name": name})
    return render_template(
        "flasket/user.html", person=person, shown=shown, tabs=USER_TABS, counts=counts, page=page
    )


def _page_query() -> dict[str, str | None]:
    """The user page's own parameters this request gave (tab, page size, page), as read."""
    return {name: value for name, value in params.known_query().items() if name != "key"}
