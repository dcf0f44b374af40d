"""The ``FLASKET_*`` configuration keys, their defaults and a strict lookup."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

PREFIX = "FLASKET_"

VISIBILITIES = ("all", "own")
WIDGETS = ("select", "radio")
MAX_PER_PAGE = 100
TITLE_MAX_LENGTH = 200
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
        "label": "Urgency",
        "choices": ["Low", "Medium", "High"],
        "widget": "radio",
        "default": "Low",
    },
    {
        "name": "application",
        "label": "Application",
        "choices": ["Website", "Mobile app", "Desktop app", "API", "Other"],
        "widget": "select",
    },
    {
        "name": "topic",
        "label": "Topic",
        "choices": ["Question", "Bug report", "Feature request", "Account", "Other"],
        "widget": "select",
    },
]

#: Every option, by its lower-case name; the config key is ``FLASKET_`` + NAME.
DEFAULTS: dict[str, Any] = {
    "url_prefix": "/ticket",
    "base_template": "flasket/base.html",
    "user_name_attr": "username",
    "user_email_attr": "email",
    "is_staff": default_is_staff,
    "categories": DEFAULT_CATEGORIES,
    "visibility": "all",
    "per_page": 25,
    "replies_per_page": 100,
    "mail_sender": None,
    "staff_recipients": [],
    "subject_prefix": "",
    "delivery": "after_request",
    "delivery_hook": None,
    "delivery_batch": 100,
    "delivery_lease": 300,
    "delivery_retry_base": 60,
    "delivery_retry_cap": 6 * 3600,
    "delivery_max_attempts": 8,
    "delivery_poll_interval": 5,
    "smtp_timeout": 30,
    "unfollow_max_age": 30 * 24 * 3600,
    "rq_app_factory": None,
}

DELIVERY_MODES = ("after_request", "worker", "hook")

#: A deliverer stops sending a claimed batch when less than this many seconds of the lease
#: are left, so a lease must be longer: a shorter one would run out before anything was sent.
LEASE_MARGIN = 5
MIN_DELIVERY_LEASE = 2 * LEASE_MARGIN

#: Options that are a number of seconds (or a count) greater than zero.
POSITIVE_NUMBERS = (
    "delivery_lease",
    "delivery_retry_cap",
    "delivery_poll_interval",
    "smtp_timeout",
    "unfollow_max_age",
)


class ConfigError(ValueError):
    """A ``FLASKET_*`` key is misspelled or holds a value Flasket cannot use."""


@dataclass(frozen=True)
class Category:
    """One configured category field of a ticket (urgency, topic, ...)."""

    name: str
    label: str
    choices: tuple[tuple[str, str], ...]
    widget: str
    default: str | None
    required: bool

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.choices)

    def label_for(self, value: str) -> str:
        return dict(self.choices).get(value, value)


def key(name: str) -> str:
    return PREFIX + name.upper()


def apply_defaults(app: Flask, options: Mapping[str, Any]) -> None:
    """Fill in every ``FLASKET_*`` key the host did not set, then check them all."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"Unknown Flasket option(s): {', '.join(sorted(unknown))}")
    for name, default in DEFAULTS.items():
        app.config.setdefault(key(name), options.get(name, default))
    reject_unknown_keys(app.config)
    validate(app.config)


def reject_unknown_keys(config: Mapping[str, Any]) -> None:
    known = {key(name) for name in DEFAULTS}
    for name in config:
        if name.startswith(PREFIX) and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{name} is not a Flasket setting.{hint}")


def validate(config: Mapping[str, Any]) -> None:
    prefix = config[key("url_prefix")]
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ConfigError("FLASKET_URL_PREFIX must be a path starting with '/'.")
    if config[key("visibility")] not in VISIBILITIES:
        raise ConfigError(f"FLASKET_VISIBILITY must be one of {', '.join(VISIBILITIES)}.")
    for name in ("per_page", "replies_per_page"):
        value = config[key(name)]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PER_PAGE:
            raise ConfigError(f"{key(name)} must be a whole number from 1 to {MAX_PER_PAGE}.")
    if not callable(config[key("is_staff")]):
        raise ConfigError("FLASKET_IS_STAFF must be a callable taking a user.")
    recipients = config[key("staff_recipients")]
    if isinstance(recipients, str) or not isinstance(recipients, Sequence):
        raise ConfigError("FLASKET_STAFF_RECIPIENTS must be a list of e-mail addresses.")
    parse_categories(config[key("categories")])
    validate_delivery(config)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_delivery(config: Mapping[str, Any]) -> None:
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
    if config[key("delivery_lease")] < MIN_DELIVERY_LEASE:
        raise ConfigError(
            f"FLASKET_DELIVERY_LEASE must be at least {MIN_DELIVERY_LEASE} seconds: a"
            f" deliverer stops sending its batch when less than {LEASE_MARGIN} seconds of the"
            " lease are left."
        )
    if (
        not _is_number(config[key("delivery_retry_base")])
        or config[key("delivery_retry_base")] < 0
    ):
        raise ConfigError("FLASKET_DELIVERY_RETRY_BASE must be a number of seconds, 0 or more.")
    for name in ("delivery_batch", "delivery_max_attempts"):
        value = config[key(name)]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key(name)} must be a whole number of 1 or more.")
    factory = config[key("rq_app_factory")]
    if factory is not None and (not isinstance(factory, str) or ":" not in factory):
        raise ConfigError(
            'FLASKET_RQ_APP_FACTORY must be an import path like "package.module:create_app".'
        )


def parse_categories(raw: Any) -> tuple[Category, ...]:
    """Turn the ``FLASKET_CATEGORIES`` list into typed, checked categories."""
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise ConfigError("FLASKET_CATEGORIES must be a list of category dicts.")
    categories: list[Category] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise ConfigError("Each FLASKET_CATEGORIES entry must be a dict.")
        name = item.get("name")
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 40:
            raise ConfigError(f"Category name {name!r} must be a short identifier.")
        if name in {c.name for c in categories} or name in RESERVED_ARGS:
            raise ConfigError(f"Category name {name!r} is repeated or reserved.")
        choices = tuple(_choice(name, choice) for choice in item.get("choices", ()))
        if not choices:
            raise ConfigError(f"Category {name!r} needs at least one choice.")
        widget = item.get("widget", "select")
        if widget not in WIDGETS:
            raise ConfigError(f"Category {name!r}: widget must be one of {', '.join(WIDGETS)}.")
        default = item.get("default")
        if default is not None and default not in dict(choices):
            raise ConfigError(f"Category {name!r}: default {default!r} is not one of its choices.")
        categories.append(
            Category(
                name=name,
                label=str(item.get("label", name.replace("_", " ").capitalize())),
                choices=choices,
                widget=widget,
                default=default,
                required=bool(item.get("required", True)),
            )
        )
    return tuple(categories)


def _choice(category: str, choice: Any) -> tuple[str, str]:
    if isinstance(choice, str):
        value, label = choice, choice
    elif isinstance(choice, Sequence) and len(choice) == 2:
        value, label = str(choice[0]), str(choice[1])
    else:
        raise ConfigError(f"Category {category!r}: a choice is a string or a (value, label) pair.")
    if not value or len(value) > 100:
        raise ConfigError(f"Category {category!r}: choice values are 1 to 100 characters.")
    return value, label


#: Query-string names the list pages use; a category may not take one of them.
RESERVED_ARGS = frozenset(
    {"q", "status", "author", "sort", "page", "per_page", "csrf_token", "title", "body"}
)


def config_value(name: str, app: Flask | None = None) -> Any:
    """The value of option ``name`` for ``app`` (default: the current app).

    An unknown name is a programming error and raises ``KeyError`` at once.
    """
    if name not in DEFAULTS:
        raise KeyError(f"{name!r} is not a Flasket option")
    config = (app or current_app).config
    return config[key(name)]


def is_staff_callable(app: Flask | None = None) -> Callable[[Any], bool]:
    func: Callable[[Any], bool] = config_value("is_staff", app)
    return func
