"""The ``FLASKET_*`` configuration keys, their defaults and a strict lookup."""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import jinja2.nodes
import sqlalchemy as sa
from flask import Flask, current_app

from . import i18n
from .i18n import lazy_gettext, lazy_pgettext
from .smtp import OPEN_COST, SEND_COST

log = logging.getLogger("flasket")

PREFIX = "FLASKET_"

VISIBILITIES = ("all", "own")
#: The looks of the pages (``FLASKET_LOOK``): Flasket's own stylesheet, or Bootstrap 5's classes.
LOOKS = ("flasket", "bootstrap5")
WIDGETS = ("select", "radio")
#: The most tickets or replies a page shows (``FLASKET_PER_PAGE``, ``?per_page=``).
MAX_PER_PAGE = 100
#: The longest ticket title, in characters.
TITLE_MAX_LENGTH = 200
#: The longest ticket description or reply, in characters.
BODY_MAX_LENGTH = 20_000


def default_is_staff(user: Any) -> bool:
    """Staff are users whose ``is_admin`` (or ``admin``) attribute is true."""
    for attr in ("is_admin", "admin"):
        value = getattr(user, attr, None)
        if value is not None:
            return bool(value() if callable(value) else value)
    return False


DEFAULT_CATEGORIES: list[dict[str, Any]] = [
    {
        "name": "urgency",
        "label": lazy_gettext("Urgency"),
        "choices": [
            ("Low", lazy_gettext("Low")),
            ("Medium", lazy_gettext("Medium")),
            ("High", lazy_gettext("High")),
        ],
        "widget": "radio",
        "default": "Low",
    },
    {
        "name": "application",
        "label": lazy_gettext("Application"),
        "choices": [
            ("Website", lazy_gettext("Website")),
            ("Mobile app", lazy_gettext("Mobile app")),
            ("Desktop app", lazy_gettext("Desktop app")),
            ("API", lazy_gettext("API")),
            ("Other", lazy_gettext("Other")),
        ],
        "widget": "select",
    },
    {
        "name": "topic",
        "label": lazy_gettext("Topic"),
        "choices": [
            ("Question", lazy_gettext("Question")),
            ("Bug report", lazy_gettext("Bug report")),
            ("Feature request", lazy_gettext("Feature request")),
            ("Account", lazy_gettext("Account")),
            ("Other", lazy_gettext("Other")),
        ],
        "widget": "select",
    },
]

#: A status's kind: whether a ticket in it is still being worked on (listed as open,
#: answerable) or done.
KINDS = ("open", "closed")

#: The statuses of a help desk out of the box: ``open`` (new tickets), ``waiting`` (staff wait
#: for the requester's answer; the requester's reply opens it again) and ``closed``.
DEFAULT_STATUSES: list[dict[str, Any]] = [
    {"name": "open", "label": lazy_pgettext("status", "Open"), "kind": "open"},
    {
        "name": "waiting",
        "label": lazy_pgettext("status", "Waiting for requester"),
        "kind": "open",
        "waiting_on_requester": True,
    },
    {"name": "closed", "label": lazy_pgettext("status", "Closed"), "kind": "closed"},
]

#: Why a ticket was closed, stored in ``flasket_ticket.resolution``: the key and its label.
RESOLUTIONS: dict[str, Any] = {
    "solved": lazy_pgettext("resolution", "Solved"),
    "wont_fix": lazy_pgettext("resolution", "Won't fix"),
    "duplicate": lazy_pgettext("resolution", "Duplicate"),
}
#: The resolution of a ticket closed as a duplicate of another (``duplicate_of_id``): set
#: only by closing it so (:func:`flasket.actions.close_as_duplicate`), never chosen alone.
DUPLICATE = "duplicate"

#: Every option, by its lower-case name; the config key is ``FLASKET_`` + NAME.
DEFAULTS: dict[str, Any] = {
    "url_prefix": "/ticket",
    "base_url": None,
    "base_template": "flasket/base.html",
    "look": "flasket",
    "user_name_attr": "username",
    "user_email_attr": "email",
    "is_staff": default_is_staff,
    "assignable_staff": None,
    "categories": DEFAULT_CATEGORIES,
    "statuses": DEFAULT_STATUSES,
    "visibility": "all",
    "per_page": 25,
    "replies_per_page": 100,
    "response_headers": {},
    "mail_sender": None,
    "staff_recipients": [],
    "staff_follow_ups": True,
    "edit_window": 3600,
    "subject_prefix": "",
    "delivery": "after_request",
    "delivery_hook": None,
    "delivery_batch": 100,
    "delivery_lease": 300,
    "delivery_retry_base": 60,
    "delivery_retry_cap": 6 * 3600,
    "delivery_max_attempts": 8,
    "delivery_poll_interval": 5,
    "worker_backoff_cap": 60,
    "outbox_keep_sent_days": 30,
    "outbox_keep_failed_days": 90,
    "outbox_prune_batch": 1000,
    "smtp_timeout": 30,
    "unfollow_max_age": 30 * 24 * 3600,
    "rq_app_factory": None,
    **i18n.DEFAULTS,
}

DELIVERY_MODES = ("after_request", "worker", "hook")

#: Seconds a deliverer keeps in hand to record a message's outcome: it starts a step
#: (connecting, sending one message) only while the lease outlasts the step's worst case
#: (see :mod:`flasket.smtp`) by this much, so no other deliverer can take the row meanwhile.
LEASE_MARGIN = 5
MIN_DELIVERY_LEASE = 2 * LEASE_MARGIN

#: Options that are a number of seconds (or a count) greater than zero.
POSITIVE_NUMBERS = (
    "delivery_lease",
    "delivery_retry_cap",
    "delivery_poll_interval",
    "worker_backoff_cap",
    "smtp_timeout",
    "unfollow_max_age",
)


class ConfigError(ValueError):
    """A ``FLASKET_*`` key is misspelled or holds a value Flasket cannot use."""


@dataclass(frozen=True)
class Category:
    """One configured category field of a ticket (urgency, topic, ...).

    Made by :func:`parse_categories` from one ``FLASKET_CATEGORIES`` entry.

    :param name: the identifier stored with each ticket and used as the list filter's
        query parameter (at most 40 characters).
    :param label: the field's label on forms, lists and mail: a string, or a lazy string
        (``flask_babel.lazy_gettext``) that is translated each time it is shown.
    :param choices: ``(value, label)`` pairs in the order shown; values are 1 to 100
        characters.
    :param widget: ``"select"`` or ``"radio"``.
    :param default: the value chosen when the form opens, or None.
    :param required: whether a ticket must have a value.
    """

    name: str
    label: Any
    choices: tuple[tuple[str, str], ...]
    widget: str
    default: str | None
    required: bool

    @property
    def values(self) -> tuple[str, ...]:
        """The stored values of the choices, in order."""
        return tuple(value for value, _ in self.choices)

    def label_for(self, value: str) -> str:
        """The label of ``value``, or ``value`` itself when it is no longer a choice."""
        return dict(self.choices).get(value, value)


@dataclass(frozen=True)
class Status:
    """One configured status of a ticket (open, waiting for the requester, closed, ...).

    Made by :func:`parse_statuses` from one ``FLASKET_STATUSES`` entry.

    :param name: the identifier stored in ``flasket_ticket.status`` and used by the ticket
        list's ``status`` filter (at most 16 characters).
    :param label: the status as people read it: a string, or a lazy string translated each
        time it is shown.
    :param kind: ``"open"`` (listed as open, answerable) or ``"closed"``, one of
        :data:`KINDS`; stored in ``flasket_ticket.state``, which the lists filter on.
    :param waiting_on_requester: whether staff wait for the requester in this status: the
        requester's reply puts the ticket back in the first open status.
    """

    name: str
    label: Any
    kind: str
    waiting_on_requester: bool = False


#: The keys a ``FLASKET_STATUSES`` entry may have.
STATUS_KEYS = ("name", "label", "kind", "waiting_on_requester")


def parse_statuses(raw: Any) -> tuple[Status, ...]:
    """Turn the ``FLASKET_STATUSES`` list into typed, checked statuses.

    The first status of kind ``open`` is the one new tickets get and reopened tickets go
    back to; the first of kind ``closed`` is the one "Close ticket" sets.

    :param raw: a list of dicts with the keys of :data:`STATUS_KEYS`.
    :return: the statuses, in the order given (the order of the status menus).
    :raises ConfigError: for a value that is not such a list, a name that is not a short
        identifier or is used twice, an unknown key or kind, a waiting status of kind
        ``closed``, or a list without a status of each kind.
    """
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise ConfigError("FLASKET_STATUSES must be a list of status dicts.")
    statuses: list[Status] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise ConfigError("Each FLASKET_STATUSES entry must be a dict.")
        name = item.get("name")
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 16:
            raise ConfigError(f"Status name {name!r} must be an identifier of 1 to 16 characters.")
        for field in item:
            if field not in STATUS_KEYS:
                close = difflib.get_close_matches(str(field), STATUS_KEYS, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"Status {name!r} has the key {field!r}, which is not one of"
                    f" {', '.join(STATUS_KEYS)}.{hint}"
                )
        if name in {s.name for s in statuses}:
            raise ConfigError(f"Status name {name!r} is used by two statuses.")
        if name == "all":
            raise ConfigError("Status name 'all' is taken by the ticket list's filter.")
        kind = item.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"Status {name!r}: kind must be one of {', '.join(KINDS)}.")
        if name in KINDS and kind != name:
            raise ConfigError(
                f"Status {name!r} must be of kind {name!r}: the ticket list's"
                f" status={name} shows every status of that kind."
            )
        waiting = item.get("waiting_on_requester", False)
        if not isinstance(waiting, bool):
            raise ConfigError(f"Status {name!r}: waiting_on_requester must be True or False.")
        if waiting and kind != "open":
            raise ConfigError(
                f"Status {name!r}: a status that waits on the requester must be of kind 'open'."
            )
        statuses.append(
            Status(
                name=name,
                label=_text(item.get("label", name.replace("_", " ").capitalize())),
                kind=kind,
                waiting_on_requester=waiting,
            )
        )
    for kind in KINDS:
        if not any(s.kind == kind for s in statuses):
            raise ConfigError(f"FLASKET_STATUSES needs at least one status of kind {kind!r}.")
    first_open = next(s for s in statuses if s.kind == "open")
    if first_open.waiting_on_requester:
        raise ConfigError(
            f"Status {first_open.name!r} is the first of kind 'open', which new and reopened"
            " tickets get: it cannot wait on the requester. Put another open status first."
        )
    return tuple(statuses)


def key(name: str) -> str:
    """The config key of option ``name``: ``key("per_page") == "FLASKET_PER_PAGE"``."""
    return PREFIX + name.upper()


def apply_defaults(app: Flask, options: Mapping[str, Any]) -> None:
    """Fill in every ``FLASKET_*`` key the host did not set, then check them all.

    :param app: the host app; its config gains the missing keys.
    :param options: defaults given to :class:`flasket.Flasket`, by lower-case option name.
    :raises TypeError: when ``options`` names an option Flasket does not have.
    :raises ConfigError: as :func:`reject_unknown_keys` and :func:`validate`.
    """
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"Unknown Flasket option(s): {', '.join(sorted(unknown))}")
    for name, default in DEFAULTS.items():
        app.config.setdefault(key(name), options.get(name, default))
    reject_unknown_keys(app.config)
    validate(app.config)


def reject_unknown_keys(config: Mapping[str, Any]) -> None:
    """Refuse a ``FLASKET_*`` key that is no option (a typo would otherwise be ignored).

    :param config: the app's config.
    :raises ConfigError: naming the key, and the closest option when one is close.
    """
    known = {key(name) for name in DEFAULTS}
    for name in config:
        if name.startswith(PREFIX) and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{name} is not a Flasket setting.{hint}")


def validate(config: Mapping[str, Any]) -> None:
    """Check every ``FLASKET_*`` value, all keys present.

    :param config: the app's config, defaults filled in.
    :raises ConfigError: for the first value Flasket cannot use, saying what it takes.
    """
    prefix = config[key("url_prefix")]
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ConfigError("FLASKET_URL_PREFIX must be a path starting with '/'.")
    if config[key("visibility")] not in VISIBILITIES:
        raise ConfigError(f"FLASKET_VISIBILITY must be one of {', '.join(VISIBILITIES)}.")
    if config[key("look")] not in LOOKS:
        raise ConfigError(f"FLASKET_LOOK must be one of {', '.join(LOOKS)}.")
    if config[key("look")] == "bootstrap5" and config[key("base_template")] == "flasket/base.html":
        raise ConfigError(
            'FLASKET_LOOK = "bootstrap5" needs FLASKET_BASE_TEMPLATE: your own layout, which'
            " loads Bootstrap 5 (Flasket's standalone page, flasket/base.html, loads only"
            " Flasket's own stylesheet)."
        )
    for name in ("per_page", "replies_per_page"):
        value = config[key(name)]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PER_PAGE:
            raise ConfigError(f"{key(name)} must be a whole number from 1 to {MAX_PER_PAGE}.")
    if not callable(config[key("is_staff")]):
        raise ConfigError("FLASKET_IS_STAFF must be a callable taking a user.")
    if config[key("assignable_staff")] is not None and not callable(
        config[key("assignable_staff")]
    ):
        raise ConfigError(
            "FLASKET_ASSIGNABLE_STAFF must be None or a callable taking no arguments that"
            " returns the users tickets may be assigned to."
        )
    window = config[key("edit_window")]
    if window is not None and (not _is_number(window) or window < 0):
        raise ConfigError(
            "FLASKET_EDIT_WINDOW must be a number of seconds (0: authors never edit) or None"
            " (they always may)."
        )
    if not isinstance(config[key("staff_follow_ups")], bool):
        raise ConfigError("FLASKET_STAFF_FOLLOW_UPS must be True or False.")
    recipients = config[key("staff_recipients")]
    if isinstance(recipients, str) or not isinstance(recipients, Sequence):
        raise ConfigError("FLASKET_STAFF_RECIPIENTS must be a list of e-mail addresses.")
    for recipient in recipients:
        if not isinstance(recipient, str) or not is_mail_address(recipient):
            raise ConfigError(
                f"FLASKET_STAFF_RECIPIENTS holds {recipient!r}, which is not an e-mail address."
            )
    parse_categories(config[key("categories")])
    parse_statuses(config[key("statuses")])
    parse_response_headers(config[key("response_headers")])
    if config[key("base_url")] is not None:
        parse_base_url(config[key("base_url")])
    validate_delivery(config)
    validate_language(config)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_delivery(config: Mapping[str, Any]) -> None:
    """Check the delivery, outbox, SMTP and RQ options (part of :func:`validate`).

    :param config: the app's config, defaults filled in.
    :raises ConfigError: for the first value Flasket cannot use; a lease too short for
        the SMTP timeout says how long it must be.
    """
    mode = config[key("delivery")]
    if mode not in DELIVERY_MODES:
        raise ConfigError(f"FLASKET_DELIVERY must be one of {', '.join(DELIVERY_MODES)}.")
    hook = config[key("delivery_hook")]
    if hook is not None and not callable(hook):
        raise ConfigError(
            "FLASKET_DELIVERY_HOOK must be a callable taking a list of outbox event ids."
        )
    if mode == "hook" and hook is None:
        raise ConfigError('FLASKET_DELIVERY = "hook" needs FLASKET_DELIVERY_HOOK.')
    for name in POSITIVE_NUMBERS:
        if not _is_number(config[key(name)]) or config[key(name)] <= 0:
            raise ConfigError(f"{key(name)} must be a number of seconds greater than 0.")
    lease, timeout = config[key("delivery_lease")], config[key("smtp_timeout")]
    least = max(MIN_DELIVERY_LEASE, (OPEN_COST + SEND_COST) * timeout + 2 * LEASE_MARGIN)
    if lease < least:
        raise ConfigError(
            f"FLASKET_DELIVERY_LEASE ({lease:g} s) must be at least {least:g} seconds with"
            f" FLASKET_SMTP_TIMEOUT = {timeout:g}: a deliverer starts a message only while its"
            f" lease outlasts the worst case of the step ({OPEN_COST + SEND_COST} x the SMTP"
            f" timeout to connect and send the first message) plus {LEASE_MARGIN} seconds to"
            f" record it, so that no other deliverer can take the row meanwhile, and"
            f" {LEASE_MARGIN} seconds more to claim it. Raise the lease or lower the timeout."
        )
    if (
        not _is_number(config[key("delivery_retry_base")])
        or config[key("delivery_retry_base")] < 0
    ):
        raise ConfigError("FLASKET_DELIVERY_RETRY_BASE must be a number of seconds, 0 or more.")
    for name in ("outbox_keep_sent_days", "outbox_keep_failed_days"):
        if not _is_number(config[key(name)]) or config[key(name)] <= 0:
            raise ConfigError(f"{key(name)} must be a number of days greater than 0.")
    for name in ("delivery_batch", "delivery_max_attempts", "outbox_prune_batch"):
        value = config[key(name)]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key(name)} must be a whole number of 1 or more.")
    factory = config[key("rq_app_factory")]
    if factory is not None and (not isinstance(factory, str) or ":" not in factory):
        raise ConfigError(
            'FLASKET_RQ_APP_FACTORY must be an import path like "package.module:create_app".'
        )


def parse_categories(raw: Any) -> tuple[Category, ...]:
    """Turn the ``FLASKET_CATEGORIES`` list into typed, checked categories.

    :param raw: a list of dicts with the keys of :data:`CATEGORY_KEYS`; ``choices`` holds
        strings or ``(value, label)`` pairs.
    :return: the categories, in the order given.
    :raises ConfigError: for a value that is not such a list, a name that is not a short
        identifier or is used twice or taken by a list parameter (:data:`RESERVED_ARGS`),
        an unknown key, no choices, a repeated choice, an unknown widget, or a default that
        is not a choice.
    """
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise ConfigError("FLASKET_CATEGORIES must be a list of category dicts.")
    categories: list[Category] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise ConfigError("Each FLASKET_CATEGORIES entry must be a dict.")
        name = item.get("name")
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 40:
            raise ConfigError(f"Category name {name!r} must be a short identifier.")
        _reject_unknown_category_keys(name, item)
        if name in {c.name for c in categories}:
            raise ConfigError(f"Category name {name!r} is used by two categories.")
        if name in RESERVED_ARGS:
            raise ConfigError(
                f"Category name {name!r} is taken by the ticket list's own parameters"
                f" ({', '.join(sorted(RESERVED_ARGS))}); choose another name."
            )
        choices = tuple(_choice(name, choice) for choice in item.get("choices", ()))
        if not choices:
            raise ConfigError(f"Category {name!r} needs at least one choice.")
        repeated = sorted({v for v, _ in choices if [c for c, _ in choices].count(v) > 1})
        if repeated:
            raise ConfigError(f"Category {name!r}: the choice {repeated[0]!r} is given twice.")
        widget = item.get("widget", "select")
        if widget not in WIDGETS:
            raise ConfigError(f"Category {name!r}: widget must be one of {', '.join(WIDGETS)}.")
        default = item.get("default")
        if default is not None and default not in dict(choices):
            raise ConfigError(f"Category {name!r}: default {default!r} is not one of its choices.")
        categories.append(
            Category(
                name=name,
                label=_text(item.get("label", name.replace("_", " ").capitalize())),
                choices=choices,
                widget=widget,
                default=default,
                required=bool(item.get("required", True)),
            )
        )
    return tuple(categories)


#: The keys a ``FLASKET_CATEGORIES`` entry may have.
CATEGORY_KEYS = ("name", "label", "choices", "widget", "default", "required")


def _reject_unknown_category_keys(name: str, item: Mapping[str, Any]) -> None:
    for field in item:
        if field not in CATEGORY_KEYS:
            close = difflib.get_close_matches(str(field), CATEGORY_KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"Category {name!r} has the key {field!r}, which is not one of"
                f" {', '.join(CATEGORY_KEYS)}.{hint}"
            )


def _text(value: Any) -> Any:
    """A label as text: a plain string, or a lazy string translated each time it is shown.

    Never markup: Flask-Babel's lazy strings say they are HTML (``__html__``), which would
    put a label into pages unescaped, so they are wrapped in a lazy string that is not.
    """
    if _is_lazy(value):
        return value if isinstance(value, i18n.LazyText) else i18n.LazyText(str, value)
    return str.__str__(value) if isinstance(value, str) else str(value)


def _is_lazy(value: Any) -> bool:
    # Flasket's own LazyText, Babel's LazyProxy and Flask-Babel's LazyString.
    return type(value).__name__ in {"LazyText", "LazyProxy", "LazyString"}


def _choice(category: str, choice: Any) -> tuple[str, Any]:
    if isinstance(choice, str):
        value, label = choice, choice
    elif isinstance(choice, Sequence) and len(choice) == 2:
        value, label = str(choice[0]), _text(choice[1])
    else:
        raise ConfigError(f"Category {category!r}: a choice is a string or a (value, label) pair.")
    if not value or len(value) > 100:
        raise ConfigError(f"Category {category!r}: choice values are 1 to 100 characters.")
    return value, label


#: The headers Flasket adds to its own responses; ``FLASKET_RESPONSE_HEADERS`` is merged over
#: them. Every page shows private data, so no cache may keep it (a shared computer's back
#: button, a proxy); no CSP, as that would fight the host's own.
DEFAULT_RESPONSE_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
}
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
RESPONSE_HEADERS_MESSAGE = (
    "FLASKET_RESPONSE_HEADERS must be a dict of header names to values (None leaves one of"
    " Flasket's out), or False to send none."
)


def parse_response_headers(raw: Any) -> dict[str, str]:
    """The headers Flasket adds to its responses: ``raw`` merged over the defaults.

    ``raw`` is ``FLASKET_RESPONSE_HEADERS``: a dict whose ``None`` values remove a default,
    or ``False`` for none at all. Names match the defaults whatever their case.
    """
    if raw is False:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(RESPONSE_HEADERS_MESSAGE)
    headers = dict(DEFAULT_RESPONSE_HEADERS)
    for name, value in raw.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise ConfigError(f"FLASKET_RESPONSE_HEADERS: {name!r} is not a header name.")
        if value is not None and not (
            isinstance(value, str) and value.isascii() and value.isprintable()
        ):
            raise ConfigError(
                f"FLASKET_RESPONSE_HEADERS: the value of {name} must be a line of ASCII text,"
                " or None to leave the header out."
            )
        for known in [known for known in headers if known.lower() == name.lower()]:
            del headers[known]
        if value is not None:
            headers[name] = value
    return headers


#: Query-string names the list pages use; a category may not take one of them.
RESERVED_ARGS = frozenset(
    {"q", "status", "author", "sort", "page", "per_page", "csrf_token", "title", "body"}
)


def config_value(name: str, app: Flask | None = None) -> Any:
    """The value of option ``name`` for ``app`` (default: the current app).

    :param name: the option's lower-case name, without the prefix (``"per_page"``).
    :param app: the app, or None for the current one.
    :raises KeyError: for a name that is no option (a programming error).
    """
    if name not in DEFAULTS:
        raise KeyError(f"{name!r} is not a Flasket option")
    config = (app or current_app).config
    return config[key(name)]


def is_mail_address(text: str) -> bool:
    """Whether ``text`` is one address, bare or with a name (``Support <help@example.com>``).

    A local part, an ``@`` and a domain, and no line break (which would let a value
    start a header of its own); the full RFC 5322 grammar is left to the mail server.
    """
    if any(c in text for c in "\r\n\x00"):
        return False
    _, address = parseaddr(text)
    local, at, domain = address.rpartition("@")
    return bool(local and at and domain) and " " not in address


def configured_sender(app: Flask | None = None) -> Any:
    """``FLASKET_MAIL_SENDER``, else Flask-Mail's ``MAIL_DEFAULT_SENDER``, as configured.

    :return: the value as the host gave it (an address string, a ``(name, address)``
        pair, or anything else :func:`sender_problem` then refuses), or None.
    """
    config = (app or current_app).config
    return config.get(key("mail_sender")) or config.get("MAIL_DEFAULT_SENDER") or None


def mail_sender(app: Flask | None = None) -> str | None:
    """The From of notifications, as one RFC 5322 ``mailbox`` string, or None if unset.

    Read when each message is sent, so mail queued before a configuration change
    goes out with the sender configured now. A ``(name, address)`` pair becomes
    ``"name" <address>`` with the name quoted (RFC 5322 section 3.2.4), so a name
    with a comma or parentheses stays one name; Flask-Mail would join the pair
    unquoted, and "Acme, Inc." would become two addresses.
    """
    sender = configured_sender(app)
    if isinstance(sender, (tuple, list)) and len(sender) == 2:
        name, address = sender
        if not name:
            return str(address)
        quoted = str(name).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return None if sender is None else str(sender)


def sender_problem(sender: Any) -> str | None:
    """Why ``sender`` cannot be a From address, or None when it can."""
    where = "FLASKET_MAIL_SENDER (or Flask-Mail's MAIL_DEFAULT_SENDER)"
    example = 'for example "Support <support@example.com>" or ("Support", "support@example.com")'
    if sender is None:
        return f"Notifications need a sender: set {where}, {example}."
    if isinstance(sender, (tuple, list)):
        if len(sender) != 2 or not all(isinstance(part, str) for part in sender):
            return f"{where} must be an address or a (name, address) pair, {example}."
        name, address = sender
        if any(c in name for c in "\r\n\x00") or not is_mail_address(address):
            return f"{where} holds {sender!r}, whose address is not an e-mail address."
        return None
    if not isinstance(sender, str) or not is_mail_address(sender):
        return f"{where} holds {sender!r}, which is not an e-mail address; {example}."
    return None


@dataclass(frozen=True)
class LinkRoot:
    """Where the links in mail point: a scheme, a host (with its port) and the app's mount path.

    Made from configuration only (:func:`link_root`), never from a request.
    """

    scheme: str
    host: str
    script_name: str

    @property
    def url(self) -> str:
        """The root as one URL without a trailing slash, e.g. ``https://example.com/app``."""
        return f"{self.scheme}://{self.host}{self.script_name.rstrip('/')}"


BASE_URL_EXAMPLE = (
    'for example "https://example.com", or "https://example.com/app" for an app mounted under /app'
)
#: Characters a path of FLASKET_BASE_URL keeps as they are (RFC 3986 ``pchar``, ``/`` and ``%``).
PATH_SAFE = "/%!$&'()*+,;=:@"


def link_root(app: Flask | None = None) -> LinkRoot:
    """The root of every absolute URL in mail, from configuration the integrator controls.

    ``FLASKET_BASE_URL``, else ``SERVER_NAME`` with ``PREFERRED_URL_SCHEME`` and
    ``APPLICATION_ROOT``; never the request's Host header, which whoever sends the
    request chooses.

    :raises ConfigError: when neither is set, or the value makes no usable URL.
    """
    config = (app or current_app).config
    if config.get(key("base_url")) is not None:
        return parse_base_url(config[key("base_url")])
    if config.get("SERVER_NAME"):
        return _server_name_root(config)
    raise ConfigError(
        "Links in e-mails (to a ticket, to unfollow it) need the address your users reach the"
        " app at, and Flasket never takes it from a request, whose Host header the sender"
        f" chooses. Set FLASKET_BASE_URL, {BASE_URL_EXAMPLE}; or set SERVER_NAME"
        ' ("example.com") with PREFERRED_URL_SCHEME ("https").'
    )


def parse_base_url(value: Any) -> LinkRoot:
    """``FLASKET_BASE_URL`` as a :class:`LinkRoot`.

    :raises ConfigError: unless ``value`` is an absolute http(s) URL with a host and
        no user name, query or fragment.
    """
    problem = _base_url_problem(value)
    if problem:
        raise ConfigError(
            f"FLASKET_BASE_URL = {value!r} {problem}. Set it to the URL your users reach the"
            f" app at, {BASE_URL_EXAMPLE}."
        )
    return _root_of(value)


def _server_name_root(config: Mapping[str, Any]) -> LinkRoot:
    server_name = config["SERVER_NAME"]
    scheme = config.get("PREFERRED_URL_SCHEME") or "http"
    root = config.get("APPLICATION_ROOT") or "/"
    url = f"{scheme}://{server_name}{root}"
    problem = None
    if not all(isinstance(part, str) for part in (server_name, scheme, root)):
        problem = "are not all strings"
    elif scheme not in ("http", "https"):
        problem = 'need PREFERRED_URL_SCHEME "https" or "http"'
    elif "/" in server_name or not root.startswith("/"):
        problem = "make no URL"
    else:
        problem = _base_url_problem(url)
    if problem:
        raise ConfigError(
            f"SERVER_NAME = {server_name!r}, PREFERRED_URL_SCHEME = {scheme!r} and"
            f" APPLICATION_ROOT = {root!r}, which links in e-mails are built from, {problem}:"
            ' SERVER_NAME is a host name with an optional port ("example.com"),'
            ' APPLICATION_ROOT a path ("/"). Or set FLASKET_BASE_URL,'
            f" {BASE_URL_EXAMPLE}."
        )
    return _root_of(url)


def _root_of(url: str) -> LinkRoot:
    """A checked URL as a :class:`LinkRoot`: scheme and host lower-cased, path quoted."""
    parts = urlsplit(url)
    path = quote(parts.path.rstrip("/"), safe=PATH_SAFE)
    return LinkRoot(parts.scheme.lower(), parts.netloc.lower(), path or "/")


def _base_url_problem(value: Any) -> str | None:
    """Why ``value`` cannot be the root of links in mail, or None when it can."""
    if not isinstance(value, str):
        return "is not a string"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "holds a space or a control character"
    try:
        parts = urlsplit(value)
        if parts.port == 0:
            return "has port 0"
    except ValueError:  # a port that is not a number from 0 to 65535
        return "has a port that is not a number from 1 to 65535"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "is not an absolute http:// or https:// URL"
    if not parts.hostname:
        return "has no host name"
    if "@" in parts.netloc:
        return "holds a user name or password"
    if "?" in value or "#" in value:
        return "has a query or a fragment"
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        return "has a host name that is not valid"
    return None


def check_host(app: Flask, user_model: type[Any]) -> None:
    """Refuse to start on an app that lacks something Flasket needs.

    Checks, for ``init_app``: the user model's name and e-mail attributes
    (``FLASKET_USER_NAME_ATTR``, ``FLASKET_USER_EMAIL_ATTR``), a usable mail
    sender, Flask-Mail and Flask-Login initialised on ``app``, a login view (or an
    ``unauthorized_handler``) and a user loader, a secret key, and where links in
    mail point (:func:`link_root`).

    :param app: the host app, with its extensions initialised.
    :param user_model: the host's mapped user class.
    :raises ConfigError: naming every missing piece and how to provide it, one per line.
    """
    problems = [
        *_user_model_problems(app, user_model),
        *_extension_problems(app),
        *_link_root_problems(app),
        *_base_template_problems(app),
    ]
    staff = app.config[key("is_staff")]
    if staff is default_is_staff and not any(
        hasattr(user_model, a) for a in ("is_admin", "admin")
    ):
        log.warning(
            "Nobody is staff: %s has no is_admin or admin attribute and FLASKET_IS_STAFF is"
            " not set. Set FLASKET_IS_STAFF to a callable taking a user, for example"
            " lambda user: user.role == 'support'.",
            user_model.__name__,
        )
    if problems:
        raise ConfigError(
            "Flasket cannot start on this app:\n" + "\n".join(f"- {p}" for p in problems)
        )


def _user_model_problems(app: Flask, user_model: type[Any]) -> list[str]:
    problems = []
    model = user_model.__name__
    try:
        columns = ", ".join(sorted(sa.inspect(user_model).column_attrs.keys()))
    except sa.exc.NoInspectionAvailable:
        columns = ""
    name_attr = app.config[key("user_name_attr")]
    found = getattr(user_model, name_attr, None) if isinstance(name_attr, str) else None
    if found is None:
        problems.append(
            f"{model} has no attribute {name_attr!r} (FLASKET_USER_NAME_ATTR), the user's"
            f" name shown on every page. Set FLASKET_USER_NAME_ATTR to the column that holds"
            f" it; {model}'s columns are: {columns}."
        )
    elif not hasattr(found, "__clause_element__"):
        problems.append(
            f"{model}.{name_attr} (FLASKET_USER_NAME_ATTR) is not a column or hybrid property:"
            " Flasket looks users up by name in SQL (the user pages and the author filter)."
            f" Set FLASKET_USER_NAME_ATTR to a column; {model}'s columns are: {columns}."
        )
    email_attr = app.config[key("user_email_attr")]
    if not isinstance(email_attr, str) or not hasattr(user_model, email_attr):
        problems.append(
            f"{model} has no attribute {email_attr!r} (FLASKET_USER_EMAIL_ATTR), where"
            f" notifications go. Set FLASKET_USER_EMAIL_ATTR to the attribute that holds a"
            f" user's e-mail address; {model}'s columns are: {columns}."
        )
    return problems


def _extension_problems(app: Flask) -> list[str]:
    problems = []
    if not app.secret_key:
        problems.append(
            "The app has no SECRET_KEY: Flasket's forms carry CSRF tokens and its unfollow"
            " links are signed with it. Set app.config['SECRET_KEY'] to a long random string."
        )
    if app.extensions.get("mail") is None:
        problems.append(
            "Flask-Mail is not initialised on this app: Flasket sends its notifications"
            " through it. Call mail.init_app(app) (or Mail(app)) before init_flasket()."
        )
    problem = sender_problem(configured_sender(app))
    if problem:
        problems.append(problem)
    login_manager = getattr(app, "login_manager", None)
    if login_manager is None:
        problems.append(
            "Flask-Login is not initialised on this app: only logged-in users use the ticket"
            " pages. Call login_manager.init_app(app) before init_flasket()."
        )
        return problems
    if not (
        login_manager.login_view
        or login_manager.blueprint_login_views
        or getattr(login_manager, "unauthorized_callback", None)
    ):
        problems.append(
            "Flask-Login has no login view, so a logged-out visitor of a ticket page would"
            " get a bare 401. Set login_manager.login_view to the endpoint of your log-in"
            ' page (for example "auth.login") before init_flasket().'
        )
    loaders = ("_user_callback", "_request_callback")
    if all(hasattr(login_manager, name) for name in loaders) and not any(
        getattr(login_manager, name) for name in loaders
    ):
        problems.append(
            "Flask-Login has no user loader: decorate the function that loads a user by id"
            " with @login_manager.user_loader before init_flasket()."
        )
    return problems


def _link_root_problems(app: Flask) -> list[str]:
    # Required with MAIL_SUPPRESS_SEND too: the mail is still rendered, and may be sent later.
    try:
        link_root(app)
    except ConfigError as error:
        return [str(error)]
    return []


DEFAULT_BASE_TEMPLATE = "flasket/base.html"


def _base_template_problems(app: Flask) -> list[str]:
    """Why ``FLASKET_BASE_TEMPLATE`` cannot frame Flasket's pages: missing, or no content block.

    The host's template is looked up as pages will look it up (the app's templates,
    then those of blueprints registered so far); its ``content`` block may come from a
    template it extends. Flasket's own standalone layout is not checked.
    """
    name = app.config[key("base_template")]
    if name == DEFAULT_BASE_TEMPLATE:
        return []
    if not isinstance(name, str) or not name:
        return ["FLASKET_BASE_TEMPLATE must be the name of a template."]
    try:
        found = _has_content_block(app.jinja_env, name, seen=set())
    except jinja2.TemplateNotFound:
        return [
            f"FLASKET_BASE_TEMPLATE = {name!r} is not a template of this app: put it in the"
            " app's templates folder (or a blueprint's registered before init_flasket()), or"
            f" leave the setting out for Flasket's own page, {DEFAULT_BASE_TEMPLATE!r}."
        ]
    except jinja2.TemplateSyntaxError as error:
        return [f"FLASKET_BASE_TEMPLATE = {name!r} does not parse: {error}."]
    if not found:
        return [
            f"FLASKET_BASE_TEMPLATE = {name!r} has no {{% block content %}}, where Flasket"
            " puts its pages. Add one to that layout, or name the layout that has it."
        ]
    return []


def _has_content_block(env: jinja2.Environment, name: str, seen: set[str]) -> bool:
    if name in seen:
        return False
    seen.add(name)
    if env.loader is None:
        raise jinja2.TemplateNotFound(name)
    tree = env.parse(env.loader.get_source(env, name)[0])
    if any(block.name == "content" for block in tree.find_all(jinja2.nodes.Block)):
        return True
    parents = [
        node.template.value
        for node in tree.find_all(jinja2.nodes.Extends)
        if isinstance(node.template, jinja2.nodes.Const) and isinstance(node.template.value, str)
    ]
    return any(_has_content_block(env, parent, seen) for parent in parents)


def validate_language(app_config: Mapping[str, Any]) -> None:
    """Refuse language settings Flasket cannot use (part of :func:`validate`).

    :param app_config: ``app.config``, defaults filled in.
    :raises ConfigError: for a selector that is not callable, an unknown default locale or
        time zone, a user lookup that is neither an attribute name nor a callable, or
        translation directories that are not a list of paths.
    """
    for name in ("locale_selector", "timezone_selector"):
        value = app_config[f"FLASKET_{name.upper()}"]
        if value is not None and not callable(value):
            raise ConfigError(f"FLASKET_{name.upper()} must be a callable or None.")
    locale = app_config["FLASKET_DEFAULT_LOCALE"]
    if locale is not None and i18n.parse_locale(locale) is None:
        raise ConfigError(f"FLASKET_DEFAULT_LOCALE {locale!r} is not a locale Babel knows.")
    zone = app_config["FLASKET_DEFAULT_TIMEZONE"]
    if zone is not None and i18n.parse_timezone(zone) is None:
        raise ConfigError(f"FLASKET_DEFAULT_TIMEZONE {zone!r} is not an IANA time zone.")
    for name in ("user_locale", "user_timezone"):
        value = app_config[f"FLASKET_{name.upper()}"]
        if value is not None and not (isinstance(value, str) or callable(value)):
            raise ConfigError(
                f"FLASKET_{name.upper()} must be an attribute name, a callable or None."
            )
    directories = app_config["FLASKET_TRANSLATION_DIRECTORIES"]
    if (
        isinstance(directories, (str, bytes, os.PathLike))
        or not isinstance(directories, Sequence)
        or not all(isinstance(path, (str, os.PathLike)) for path in directories)
    ):
        raise ConfigError("FLASKET_TRANSLATION_DIRECTORIES must be a list of directory paths.")
