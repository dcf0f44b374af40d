"""What Flasket's templates call: the ``flasket_*`` globals and filters, and their HTML.

Links to users and tickets, ``<time>`` tags, status badges, category labels and URLs
that keep the page's query; :func:`register_template_helpers` installs them on the
host's app. :mod:`flasket.views` renders the templates that use them; users' keys in
URLs are :mod:`flasket.user_keys`'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, current_app, g, request, url_for
from flask.globals import _cv_app
from flask_login import current_user
from markupsafe import Markup, escape

from . import i18n, params, policy
from .config import RESOLUTIONS, Category, config_value
from .i18n import gettext, ngettext, pgettext
from .models import (
    ASSIGNEE_CHANGE,
    CATEGORY_CHANGE,
    DUPLICATE_CHANGE,
    DUPLICATED_CHANGE,
    EDIT_CHANGE,
    HIDE_CHANGE,
    OPEN,
    REPOINTED,
    STATUS_CHANGE,
    TITLE_CHANGE,
    UNHIDE_CHANGE,
    ChangeBase,
    TicketBase,
)
from .pagination import Page
from .proxies import current_flasket
from .user_keys import key_text, needs_query_form

#: The name of Flasket's blueprint (:data:`flasket.views.bp`), which prefixes its endpoints.
BLUEPRINT = "flasket"


class _Rows:
    """What the rows of one page share, worked out once per app context (a request).

    A list calls the row helpers (:func:`user_link`, :func:`ticket_link`,
    :func:`category_tags`, :func:`status_badge`, :func:`look`) for every row; each finds
    this through Flask's context variable, not through the ``g`` and ``current_flasket``
    proxies, whose look-ups would cost a list page as much as its rows' own work.
    """

    __slots__ = (
        "badges",
        "categories",
        "look",
        "name_attr",
        "tags",
        "ticket_url",
        "user_links",
        "user_pk",
        "user_url",
    )

    def __init__(self) -> None:
        state = current_flasket._get_current_object()  # type: ignore[attr-defined]
        self.look = str(config_value("look"))
        self.name_attr = str(config_value("user_name_attr"))
        self.user_pk: str = state.models.user_pk
        self.categories = state.categories()
        self.user_links: dict[tuple[Any, Any], Markup] = {}
        self.badges: dict[tuple[str, str | None], Markup] = {}
        self.tags: dict[tuple[str, str], Markup] = {}
        self.ticket_url: str | None = None
        self.user_url: str | None = None


def _rows() -> _Rows:
    """This app context's :class:`_Rows`.

    :raises RuntimeError: outside an application context.
    """
    context = _cv_app.get(None)
    if context is None:
        raise RuntimeError("Working outside of application context.")
    app_globals = context.g
    rows: _Rows | None = app_globals.__dict__.get("flasket_rows")
    if rows is None:
        rows = app_globals.flasket_rows = _Rows()
    return rows


def real_name(user: Any) -> str | None:
    """``user``'s name as the host stores it (``FLASKET_USER_NAME_ATTR``).

    :param user: an instance of the host's user model.
    :return: the name, or None when it is missing or blank.
    """
    name = getattr(user, config_value("user_name_attr"), None)
    return None if name is None or str(name).strip() == "" else str(name)


def is_own_page() -> bool:
    """Whether this request shows the current user's own page (the nav marks "My tickets").

    :return: True on the user page of the logged-in user.
    """
    shown = g.get("flasket_shown_user_key")
    return shown is not None and shown == key_text(current_flasket.models.user_id(current_user))


def user_name(user: Any) -> str:
    """The name a page shows for ``user``: never a link's target, so never another's name.

    :param user: an instance of the host's user model, or None for a deleted one.
    :return: the name; ``"a deleted user"`` for None, ``"unnamed user 42"`` for a user whose
        name is empty.
    """
    if user is None:
        return gettext("a deleted user")
    return _shown_name(real_name(user), current_flasket.models.user_id(user))


def _shown_name(stored: str | None, key: Any) -> str:
    # The stored name, or "unnamed user 42" for a missing or blank one.
    if stored is None or stored.strip() == "":
        return gettext("unnamed user %(key)s", key=key_text(key))
    return stored


def user_key(user: Any) -> str:
    """``user``'s primary key as URLs carry it (``?author_id=``).

    :param user: an instance of the host's user model.
    :return: :func:`flasket.user_keys.key_text` of the key.
    """
    return key_text(current_flasket.models.user_id(user))


#: Stands for the ticket number while a ticket URL is built once per request.
_TICKET_ID_PLACEHOLDER = 987_654_321_987_654_321


def ticket_link(ticket_id: int) -> str:
    """``url_for("flasket.ticket", ticket_id=...)``, routed once per request: lists link many.

    :param ticket_id: the ticket's number.
    :return: the ticket page's path.
    :raises RuntimeError: outside a request context, unless ``SERVER_NAME`` is set.
    """
    rows = _rows()
    pattern = rows.ticket_url
    if pattern is None:
        placeholder = str(_TICKET_ID_PLACEHOLDER)
        built = url_for("flasket.ticket", ticket_id=_TICKET_ID_PLACEHOLDER)
        pattern = rows.ticket_url = (
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
    (RFC 3986, section 2.1).

    :param user: an instance of the host's user model.
    :param query: query parameters to add; None values are left out.
    :return: the page's path, with its query if any.
    :raises RuntimeError: outside a request context, unless ``SERVER_NAME`` is set.
    """
    rows = _rows()
    pattern = rows.user_url
    if pattern is None:
        pattern = rows.user_url = url_for("flasket.user", key=_USER_KEY_PLACEHOLDER)
    key = key_text(getattr(user, rows.user_pk))
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

    Built once per key and stored name in an app context: a ticket's replies name the same
    few people many times. The name is part of the memo's key, so a user renamed meanwhile
    gets a new link; a user without a key yet (not stored) is never memoised.

    :param user: an instance of the host's user model, or None for a deleted one.
    :return: the escaped ``<a>`` element, or the plain words for None.
    """
    if user is None:
        return escape(gettext("a deleted user"))
    rows = _rows()
    key = getattr(user, rows.user_pk)
    if key is None:
        return Markup(f'<a href="{escape(user_url(user))}">{escape(user_name(user))}</a>')  # noqa: S704
    stored_name = getattr(user, rows.name_attr, None)
    memo_key = (key, None if stored_name is None else str(stored_name))
    link = rows.user_links.get(memo_key)
    if link is None:
        name = _shown_name(memo_key[1], key)
        link = rows.user_links[memo_key] = Markup(  # noqa: S704
            f'<a href="{escape(user_url(user))}">{escape(name)}</a>'
        )
    return link


def status_badge(status: str, state: str | None = None) -> Markup:
    """The status as a word and a symbol, never by colour alone.

    :param status: a ticket's status (a ``FLASKET_STATUSES`` name). A status of kind open
        shows a dot, one of kind closed a check mark.
    :param state: the ticket's kind (``ticket.state``), for a status no longer configured:
        it shows as its name, in the style of that kind (open when not given).
    :return: an escaped ``<span>`` element: a Bootstrap badge in the ``bootstrap5`` look.
    """
    rows = _rows()
    badge = rows.badges.get((status, state))
    if badge is None:
        badge = rows.badges[(status, state)] = _status_badge(status, state, rows.look)
    return badge


def _status_badge(status: str, state: str | None, look: str) -> Markup:
    configured = current_flasket.status_named(status)
    # The stored kind first: it is what the lists and replying go by.
    is_open = (state or (configured.kind if configured is not None else OPEN)) == OPEN
    symbol = "\N{BLACK CIRCLE}" if is_open else "\N{CHECK MARK}"
    waits = configured is not None and configured.waiting_on_requester
    if look == "bootstrap5":
        classes = (
            "badge text-bg-warning"
            if waits
            else "badge text-bg-success"
            if is_open
            else "badge text-bg-secondary"
        )
    else:
        kind = "waiting" if waits else OPEN if is_open else "closed"
        classes = f"flasket-status flasket-status--{kind}"
    return Markup(  # noqa: S704
        f'<span class="{classes}">'
        f'<span aria-hidden="true">{symbol}</span> {escape(status_label(status))}</span>'
    )


#: The ``class`` of each part of a page, by look (``FLASKET_LOOK``): Flasket's own classes,
#: which ``flasket.css`` styles, or Bootstrap 5's. An empty string means no ``class``
#: attribute. Where the Bootstrap look needs other elements (navigation, tabs, pager, form
#: fields, filters, counts), the templates branch on :func:`look` instead.
CLASSES: dict[str, dict[str, str]] = {
    "flasket": {
        "visually_hidden": "flasket-visually-hidden",
        "button_primary": "flasket-button flasket-button--primary",
        "message_error": "flasket-message flasket-message--error",
        "message_info": "flasket-message flasket-message--info",
        "message_success": "flasket-message flasket-message--success",
        "empty": "flasket-empty",
        "result_count": "flasket-result-count",
        "form": "flasket-form",
        "inline_form": "flasket-inline-form",
        "ticket_table": "flasket-tickets",
        "ticket_link": "flasket-ticket-link",
        "number": "flasket-number",
        "tags": "flasket-tags",
        "tag_item": "",
        "tag": "flasket-tag",
        "meta": "flasket-meta",
        "actions": "flasket-actions",
        "post": "flasket-post",
        "post_author": "flasket-post--author",
        "post_meta": "flasket-post-meta",
        "body": "flasket-body",
        "replies": "flasket-replies",
        "followers": "flasket-followers",
        "status_form": "flasket-filters flasket-status-form",
        "note": "flasket-post flasket-note",
        "change": "flasket-change",
    },
    "bootstrap5": {
        "visually_hidden": "visually-hidden",
        "button_primary": "btn btn-primary",
        "message_error": "alert alert-danger",
        "message_info": "alert alert-info",
        "message_success": "alert alert-success",
        "empty": "text-body-secondary",
        "result_count": "text-body-secondary",
        "form": "col-lg-8",
        "inline_form": "d-inline",
        "ticket_table": "flasket-tickets table table-hover",
        "ticket_link": (
            "fw-semibold link-underline link-underline-opacity-0 link-underline-opacity-100-hover"
        ),
        "number": "text-body-secondary fw-normal",
        "tags": "d-flex flex-wrap gap-1 list-unstyled mt-1 mb-0",
        "tag_item": "badge rounded-pill border text-body-secondary fw-normal",
        "tag": "badge rounded-pill bg-primary-subtle text-primary-emphasis",
        "meta": "text-body-secondary",
        "actions": "d-flex flex-wrap gap-2 my-3",
        "post": "card mb-3",
        "post_author": "border-primary",
        "post_meta": "card-header bg-transparent text-body-secondary",
        "body": "card-body flasket-body",
        "replies": "list-unstyled",
        "followers": "d-flex flex-wrap column-gap-3 list-unstyled",
        "status_form": "row g-2 align-items-end mb-3",
        "note": "card mb-3 border-warning bg-warning-subtle flasket-note",
        "change": "flasket-change text-body-secondary small ms-3 mb-3",
    },
}


def look() -> str:
    """The look of the pages, ``FLASKET_LOOK``: ``"flasket"`` or ``"bootstrap5"``.

    Read once per request (every row's status badge asks).

    :return: the look's name.
    """
    return _rows().look


def css_class(role: str) -> str:
    """The ``class`` of a part of a page in the current look: ``flasket_class("empty")``.

    :param role: a key of :data:`CLASSES` (``"button_primary"``, ``"message_error"``, ...).
    :return: the classes, space-separated; ``""`` for none.
    :raises KeyError: for a role no look has.
    """
    return CLASSES[_rows().look][role]


def status_label(status: str) -> str:
    """A status as a reader reads it: ``"Open"``, ``"Waiting for requester"``, translated.

    :param status: a ``FLASKET_STATUSES`` name, or ``"open"``, ``"closed"`` or ``"all"``
        (the lists' filter by kind); any other value is shown capitalized, untranslated.
    :return: the label.
    """
    configured = current_flasket.status_named(status)
    if configured is not None:
        return str(configured.label)
    return kind_label(status) or status.capitalize()


def kind_label(value: str) -> str | None:
    """A value of the lists' status filter that is no one status: ``"Open"`` (every status
    of kind open), ``"Closed"``, ``"All"``, translated.

    :param value: ``"open"``, ``"closed"`` or ``"all"``.
    :return: the label; None for any other value.
    """
    if value == "open":
        return pgettext("status", "Open")
    if value == "closed":
        return pgettext("status", "Closed")
    if value == "all":
        return pgettext("status", "All")
    return None


def status_waits(status: str) -> bool:
    """Whether staff wait for the requester in ``status`` (its ``waiting_on_requester``).

    :param status: a ticket's status.
    :return: False for a status no longer configured.
    """
    configured = current_flasket.status_named(status)
    return configured is not None and configured.waiting_on_requester


def resolution_label(resolution: str) -> str:
    """Why a ticket was closed, as a reader reads it: ``"Solved"``, ``"Won't fix"``.

    :param resolution: a key of :data:`flasket.config.RESOLUTIONS`; another value is
        shown as it is.
    :return: the label, translated.
    """
    label = RESOLUTIONS.get(resolution)
    return resolution if label is None else str(label)


def time_tag(value: datetime | None) -> Markup:
    """A ``<time>`` with the relative time shown and the exact one as its title.

    :param value: a timezone-aware datetime, or None.
    :return: the escaped element; empty markup for None.
    """
    if not value:
        return Markup("")
    exact, relative = i18n.times(value)
    # An ISO 8601 stamp is digits, "-", ":", "T" and "+": nothing to escape.
    return Markup(  # noqa: S704
        f'<time datetime="{value.isoformat(timespec="seconds")}" title="{escape(exact)}">'
        f"{escape(relative)}</time>"
    )


def exact_time(value: datetime) -> str:
    """The exact time as a page shows it: :func:`flasket.i18n.exact_time`.

    :param value: a timezone-aware datetime.
    :return: the text, in the reader's language and time zone (``"Mar 5, 2024, 2:30 PM
        UTC"`` in English).
    """
    return i18n.exact_time(value)


def relative_time(value: datetime) -> str:
    """ "5 minutes ago" for the last week, then the date: :func:`flasket.i18n.relative_time`.

    :param value: a timezone-aware datetime in the past.
    :return: the text, in the reader's language.
    """
    return i18n.relative_time(value)


def number(value: int) -> str:
    """A count as the reader writes it (``1,234``; ``1.234`` in German).

    :param value: the count.
    :return: :func:`flasket.i18n.format_number` of it.
    """
    return i18n.format_number(value)


def _count_forms(kind: str, total: int, capped: bool, **v: str) -> str:
    # One full sentence per list and form, so every language can word and inflect it.
    if kind == "open":
        if capped:
            return ngettext(
                "%(first)s–%(last)s of more than %(num)s open ticket",
                "%(first)s–%(last)s of more than %(num)s open tickets",
                total,
                **v,
            )
        return ngettext(
            "%(first)s–%(last)s of %(num)s open ticket",
            "%(first)s–%(last)s of %(num)s open tickets",
            total,
            **v,
        )
    if kind == "closed":
        if capped:
            return ngettext(
                "%(first)s–%(last)s of more than %(num)s closed ticket",
                "%(first)s–%(last)s of more than %(num)s closed tickets",
                total,
                **v,
            )
        return ngettext(
            "%(first)s–%(last)s of %(num)s closed ticket",
            "%(first)s–%(last)s of %(num)s closed tickets",
            total,
            **v,
        )
    if kind == "submitted":
        if capped:
            return ngettext(
                "%(first)s–%(last)s of more than %(num)s submitted ticket",
                "%(first)s–%(last)s of more than %(num)s submitted tickets",
                total,
                **v,
            )
        return ngettext(
            "%(first)s–%(last)s of %(num)s submitted ticket",
            "%(first)s–%(last)s of %(num)s submitted tickets",
            total,
            **v,
        )
    if kind == "followed":
        if capped:
            return ngettext(
                "%(first)s–%(last)s of more than %(num)s followed ticket",
                "%(first)s–%(last)s of more than %(num)s followed tickets",
                total,
                **v,
            )
        return ngettext(
            "%(first)s–%(last)s of %(num)s followed ticket",
            "%(first)s–%(last)s of %(num)s followed tickets",
            total,
            **v,
        )
    if kind == "replies":
        if capped:
            return ngettext(
                "%(first)s–%(last)s of more than %(num)s reply",
                "%(first)s–%(last)s of more than %(num)s replies",
                total,
                **v,
            )
        return ngettext(
            "%(first)s–%(last)s of %(num)s reply",
            "%(first)s–%(last)s of %(num)s replies",
            total,
            **v,
        )
    if capped:
        return ngettext(
            "%(first)s–%(last)s of more than %(num)s ticket",
            "%(first)s–%(last)s of more than %(num)s tickets",
            total,
            **v,
        )
    return ngettext(
        "%(first)s–%(last)s of %(num)s ticket",
        "%(first)s–%(last)s of %(num)s tickets",
        total,
        **v,
    )


def change_line(change: ChangeBase) -> Markup:
    """One entry of a ticket's history, as the thread shows it: who changed what, when.

    "admin changed the status from Open to Waiting for requester 5 minutes ago",
    "admin assigned this ticket to sam 1 hour ago" and the like, in the reader's words;
    names are links to the users' pages, and what people wrote is escaped.

    :param change: a ``flasket_ticket_change`` row, its users loaded.
    :return: the escaped sentence.
    """
    values: dict[str, Any] = {
        "user": user_link(change.actor),
        "time": time_tag(change.created_at),
    }
    if change.field == STATUS_CHANGE:
        values["new"] = status_label(change.new_value or "")
        if change.old_value:
            values["old"] = status_label(change.old_value)
            pattern = gettext("%(user)s changed the status from %(old)s to %(new)s %(time)s")
        else:
            pattern = gettext("%(user)s set the status to %(new)s %(time)s")
        line = escape(pattern) % values
        if change.detail:
            resolution = gettext(
                "Resolution: %(resolution)s", resolution=resolution_label(change.detail)
            )
            line = Markup("{} · {}").format(line, resolution)
        return line
    if change.field == ASSIGNEE_CHANGE:
        # A side is somebody when its key was recorded, even if the user is deleted since.
        had_old = change.old_user_id is not None or change.old_value is not None
        has_new = change.new_user_id is not None or change.new_value is not None
        if not has_new and not had_old:
            pattern = gettext("%(user)s removed the assignee %(time)s")
        elif not has_new:
            values["old"] = user_link(change.old_user)
            pattern = gettext("%(user)s removed %(old)s as the assignee %(time)s")
        elif not had_old:
            values["assignee"] = user_link(change.new_user)
            pattern = gettext("%(user)s assigned this ticket to %(assignee)s %(time)s")
        else:
            values["old"] = user_link(change.old_user)
            values["assignee"] = user_link(change.new_user)
            pattern = gettext(
                "%(user)s reassigned this ticket from %(old)s to %(assignee)s %(time)s"
            )
        return escape(pattern) % values
    if change.field == TITLE_CHANGE:
        values["old"], values["new"] = change.old_value or "", change.new_value or ""
        pattern = gettext("%(user)s changed the title from “%(old)s” to “%(new)s” %(time)s")
        return escape(pattern) % values
    if change.field == CATEGORY_CHANGE:
        return _category_change(change, values)
    if change.field == EDIT_CHANGE:
        if change.detail == "ticket":
            pattern = gettext("%(user)s edited the description %(time)s")
        else:
            values["reply"] = _reply_link(change)
            pattern = gettext("%(user)s edited %(reply)s %(time)s")
        return escape(pattern) % values
    if change.field in (HIDE_CHANGE, UNHIDE_CHANGE):
        values["reply"] = _reply_link(change)
        if change.field == HIDE_CHANGE:
            pattern = gettext("%(user)s hid %(reply)s %(time)s")
        else:
            pattern = gettext("%(user)s showed %(reply)s again %(time)s")
        return escape(pattern) % values
    if (
        change.field in (DUPLICATE_CHANGE, DUPLICATED_CHANGE)
        and (change.new_value or "").isdigit()
    ):
        number = int(change.new_value or 0)
        values["ticket"] = Markup('<a href="{}">#{}</a>').format(ticket_link(number), number)
        old = change.old_value or ""
        if change.field == DUPLICATE_CHANGE and change.detail == REPOINTED and old.isdigit():
            values["old"] = Markup('<a href="{}">#{}</a>').format(ticket_link(int(old)), old)
            pattern = gettext(
                "%(user)s closed %(old)s as a duplicate of %(ticket)s, so this ticket is now a"
                " duplicate of %(ticket)s %(time)s"
            )
        elif change.field == DUPLICATE_CHANGE:
            pattern = gettext("%(user)s closed this ticket as a duplicate of %(ticket)s %(time)s")
        else:
            pattern = gettext("%(user)s closed %(ticket)s as a duplicate of this ticket %(time)s")
        return escape(pattern) % values
    # A change of a kind this release does not know (written by a later one): said plainly.
    return escape(gettext("%(user)s changed this ticket %(time)s")) % values


def _reply_link(change: ChangeBase) -> Markup:
    """The words "a reply", linked to the reply's own address, which finds its page."""
    words = escape(gettext("a reply"))
    if not (change.new_value or "").isdigit():
        return words
    url = url_for("flasket.reply", ticket_id=change.ticket_id, reply_id=int(change.new_value or 0))
    return Markup('<a href="{}">{}</a>').format(url, words)


def _category_change(change: ChangeBase, values: dict[str, Any]) -> Markup:
    """:func:`change_line` of a category's new value, in the category's own words."""
    category = next((c for c in current_flasket.categories() if c.name == change.detail), None)
    values["category"] = str(category.label) if category else change.detail or ""

    def label(value: str | None) -> str:
        return str(category.label_for(value or "")) if category else value or ""

    if change.new_value is None:
        values["old"] = label(change.old_value)
        pattern = gettext("%(user)s cleared %(category)s (it was %(old)s) %(time)s")
    elif change.old_value is None:
        values["new"] = label(change.new_value)
        pattern = gettext("%(user)s set %(category)s to %(new)s %(time)s")
    else:
        values["old"], values["new"] = label(change.old_value), label(change.new_value)
        pattern = gettext("%(user)s changed %(category)s from %(old)s to %(new)s %(time)s")
    return escape(pattern) % values


def count_line(page: Page[Any], kind: str) -> str:
    """A list's count line: ``"1–25 of 1,234 open tickets"``, in the reader's language.

    :param page: the page shown.
    :param kind: what the list holds: ``"open"``, ``"closed"`` or ``"all"`` (the ticket
        list's status filter), ``"submitted"``, ``"followed"`` or ``"replies"`` (the user
        page's tabs); any other value counts tickets.
    :return: the line; "No tickets" (and the like) for an empty list.
    """
    if not page.total:
        return {
            "open": gettext("No open tickets"),
            "closed": gettext("No closed tickets"),
            "submitted": gettext("No submitted tickets"),
            "followed": gettext("No followed tickets"),
            "replies": gettext("No replies"),
        }.get(kind) or gettext("No tickets")
    return _count_forms(
        kind, page.total, page.capped, first=number(page.first), last=number(page.last)
    )


def categories_of(ticket: TicketBase) -> list[tuple[Category, str]]:
    """A ticket's categories for a page: :meth:`flasket.state.FlasketState.categories_of`.

    :param ticket: a ticket with its categories loaded.
    :return: ``(category, value)`` pairs, in the configured order.
    """
    return current_flasket.categories_of(ticket)


def category_tags(ticket: TicketBase) -> list[Markup]:
    """A ticket's categories as a list shows them: ``"Urgency: High"``, in the reader's words.

    Each (category, value) is worded and escaped once per request, not once per row: a list
    of 100 tickets names the same few categories and values over and over.

    :param ticket: a ticket with its categories loaded.
    :return: escaped ``"label: value"`` texts (the ``"%(category)s: %(value)s"`` message),
        in the configured order.
    """
    values = ticket.listed_categories
    if values is None:
        values = ticket.category_values()
    if not values:
        return []
    rows = _rows()
    tags = []
    for category in rows.categories:  # in the configured order; others are not shown
        value = values.get(category.name)
        if value is None:
            continue
        tag = rows.tags.get((category.name, value))
        if tag is None:
            tag = rows.tags[(category.name, value)] = escape(
                gettext(
                    "%(category)s: %(value)s",
                    category=str(category.label),
                    value=str(category.label_for(value)),
                )
            )
        tags.append(tag)
    return tags


#: Stands for the ticket number in a table's tick box label (:class:`TicketColumns`).
_NUMBER_MARK = "\x00"
_PLACEHOLDER_TEXT = str(_TICKET_ID_PLACEHOLDER)


class TicketColumns:
    """What every row of one ticket table shares, worked out once per table: its column
    headings, escaped, and the classes of the current look.

    Made by ``flasket_ticket_columns(select=..., assignee=...)`` in a template; the table
    writes its headings from it and passes it to :func:`ticket_row` for every row.

    :param select: whether the table has a first column of tick boxes for the bulk form.
    :param assignee: whether it has a column naming each ticket's assignee.
    """

    __slots__ = (
        "assignee",
        "author",
        "bootstrap",
        "categories",
        "empty_class",
        "link_class",
        "nobody",
        "number_class",
        "replies",
        "select",
        "select_label",
        "status",
        "tag_class",
        "tags_class",
        "ticket",
        "ticket_url",
        "updated",
        "with_assignee",
        "with_select",
    )

    def __init__(self, select: bool = False, assignee: bool = False) -> None:
        classes = CLASSES[_rows().look]
        self.with_select = bool(select)
        self.with_assignee = bool(assignee)
        #: The headings, escaped.
        self.ticket = escape(pgettext("column", "Ticket"))
        self.status = escape(pgettext("column", "Status"))
        self.author = escape(pgettext("column", "Author"))
        self.assignee = escape(pgettext("column", "Assignee"))
        self.replies = escape(pgettext("column", "Replies"))
        self.updated = escape(pgettext("column", "Updated"))
        self.select = escape(gettext("Select"))
        # The tick box's label and the ticket's address with a mark where the number goes:
        # filled in by str.replace, each row's number being digits alone.
        pattern = i18n.Pattern(escape(gettext("Select ticket #%(number)s")))
        self.select_label = str(pattern % {"number": _NUMBER_MARK})
        self.ticket_url = str(escape(ticket_link(_TICKET_ID_PLACEHOLDER)))
        self.categories = escape(gettext("Categories"))
        self.nobody = escape(gettext("Nobody"))
        self.bootstrap = _rows().look == "bootstrap5"
        self.link_class = escape(classes["ticket_link"])
        self.number_class = escape(classes["number"])
        self.tags_class = escape(classes["tags"])
        self.tag_class = escape(classes["tag_item"])
        self.empty_class = escape(classes["empty"])


def ticket_row(ticket: TicketBase, columns: TicketColumns) -> Markup:
    """One ``<tr>`` of a ticket table: number and title (a link), categories, status,
    author, the assignee and a tick box when ``columns`` has them, replies, last update.

    A list draws 25-100 of these; written here rather than in the template, a row costs
    35-45% less (25 rows: about 0.7 ms instead of 1.0-1.3). Every value is escaped; the
    markup is that of ``ticket_table`` in ``flasket/_macros.html`` before it called this
    (``tests/test_ticket_rows.py``).

    :param ticket: a ticket as lists load it (author, assignee and categories loaded).
    :param columns: the table's :class:`TicketColumns`.
    :return: the escaped ``<tr>`` element.
    """
    c = columns
    ticket_id = str(int(ticket.id))
    cells = []
    if c.with_select:
        checkbox_class = ' class="form-check-input"' if c.bootstrap else ""
        cells.append(
            f'<td class="flasket-select" data-label="{c.select}"><input type="checkbox" '
            f'name="ticket" value="{ticket_id}" form="flasket-bulk" '
            f'aria-label="{c.select_label.replace(_NUMBER_MARK, ticket_id)}"{checkbox_class}>'
            "</td>"
        )
    title = (
        f'<td data-label="{c.ticket}">\n        <a class="{c.link_class}" '
        f'href="{c.ticket_url.replace(_PLACEHOLDER_TEXT, ticket_id)}">'
        f'<span class="{c.number_class}">#{ticket_id}</span> {escape(ticket.title)}</a>'
    )
    tags = category_tags(ticket)
    if tags:
        tag = f'<li class="{c.tag_class}">' if c.tag_class else "<li>"
        items = "".join(f"{tag}{text}</li>" for text in tags)
        title += (
            f'\n        <ul class="{c.tags_class}" aria-label="{c.categories}">'
            f"\n          {items}\n        </ul>"
        )
    cells.append(title + "\n      </td>")
    cells.append(f'<td data-label="{c.status}">{status_badge(ticket.status, ticket.state)}</td>')
    cells.append(f'<td data-label="{c.author}">{user_link(ticket.author)}</td>')
    if c.with_assignee:
        if ticket.assignee_id is not None:
            assignee = user_link(ticket.assignee)
        else:
            assignee = Markup(f'<span class="{c.empty_class}">{c.nobody}</span>')  # noqa: S704
        cells.append(f'<td data-label="{c.assignee}">{assignee}</td>')
    cells.append(f'<td data-label="{c.replies}">{escape(number(ticket.reply_count))}</td>')
    cells.append(f'<td data-label="{c.updated}">{time_tag(ticket.updated_at)}</td>')
    return Markup("<tr>\n      " + "\n      ".join(cells) + "\n    </tr>")  # noqa: S704


def host_home_url() -> str | None:
    """The host app's home page ("/" under its script root), if the host serves one.

    :return: the URL, or None when no GET route of the host's is ``/``.
    """
    for rule in current_app.url_map.iter_rules():
        if rule.rule == "/" and "GET" in (rule.methods or ()):
            return None if rule.endpoint.startswith(f"{BLUEPRINT}.") else request.script_root + "/"
    return None


def host_logout_url() -> str | None:
    """The host's log-out page, if it has one a link can reach.

    Flask-Login names no log-out view, so this looks for a GET route without arguments whose
    endpoint is ``logout`` or ends in ``.logout`` (``auth.logout``). A log-out that takes only
    POST needs the host's own form and token: a host with one sets FLASKET_BASE_TEMPLATE.

    :return: the URL, or None when the host has no such route.
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
    """The current page's URL with some query parameters changed (pagers keep the filters).

    :param changes: parameters to set; None or ``""`` removes one.
    :return: the path and query, as :func:`link_with_query` makes them.
    """
    path = url_for(request.endpoint or "flasket.index", **(request.view_args or {}))
    return link_with_query(path, **changes)


def link_with_query(path: str, **changes: Any) -> str:
    """``path`` with the query parameters the page read and accepted, some of them changed.

    Only those (:func:`flasket.params.known_query`): a parameter no page reads is never
    copied into a link, and the query never passes through url_for, to which some names
    mean something.

    :param path: a URL path.
    :param changes: parameters to set; None or ``""`` removes one; ``page=1`` is left out.
    :return: ``path``, with ``?`` and the query when there is one.
    """
    args = {**params.known_query(), **changes}
    query = {name: str(value) for name, value in args.items() if value not in (None, "")}
    if query.get("page") == "1":
        del query["page"]
    return f"{path}?{urlencode(query)}" if query else path


def base_template() -> str:
    """The layout Flasket's pages extend.

    :return: the template name, ``FLASKET_BASE_TEMPLATE``.
    """
    return str(config_value("base_template"))


def register_template_helpers(app: Flask) -> None:
    """Make the ``flasket_*`` globals and filters available to ``app``'s templates.

    Globals: ``flasket_base_template``, ``flasket_user_name``, ``flasket_user_url``,
    ``flasket_is_own_page``, ``flasket_user_key``, ``flasket_page_url``,
    ``flasket_ticket_url``, ``flasket_user_link``, ``flasket_status_badge``,
    ``flasket_time_tag``, ``flasket_categories_of``, ``flasket_category_tags``,
    ``flasket_ticket_columns``, ``flasket_ticket_row``, ``flasket_host_home_url``,
    ``flasket_host_logout_url``, ``flasket_is_staff``, ``flasket_status_label``,
    ``flasket_status_waits``, ``flasket_resolution_label``,
    ``flasket_count_line``, ``flasket_look``, ``flasket_class``,
    ``flasket_gettext``, ``flasket_ngettext``, ``flasket_pgettext`` (Flasket's messages,
    :mod:`flasket.i18n`) and ``flasket_reader`` (the reader's locale and time zone). Filters:
    ``flasket_exact_time``, ``flasket_relative_time``, ``flasket_number``.

    :param app: the host's Flask application.
    """
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
    app.add_template_global(category_tags, "flasket_category_tags")
    app.add_template_global(TicketColumns, "flasket_ticket_columns")
    app.add_template_global(ticket_row, "flasket_ticket_row")
    app.add_template_global(host_home_url, "flasket_host_home_url")
    app.add_template_global(host_logout_url, "flasket_host_logout_url")
    app.add_template_global(policy.is_staff, "flasket_is_staff")
    app.add_template_global(status_label, "flasket_status_label")
    app.add_template_global(status_waits, "flasket_status_waits")
    app.add_template_global(resolution_label, "flasket_resolution_label")
    app.add_template_global(count_line, "flasket_count_line")
    app.add_template_global(change_line, "flasket_change_line")
    app.add_template_global(look, "flasket_look")
    app.add_template_global(css_class, "flasket_class")
    app.add_template_global(i18n.template_gettext, "flasket_gettext")
    app.add_template_global(i18n.template_ngettext, "flasket_ngettext")
    app.add_template_global(i18n.template_pgettext, "flasket_pgettext")
    app.add_template_global(i18n.current_reader, "flasket_reader")
    app.add_template_filter(number, "flasket_number")
    app.add_template_filter(exact_time, "flasket_exact_time")
    app.add_template_filter(relative_time, "flasket_relative_time")
