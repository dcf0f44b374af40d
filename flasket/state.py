"""What Flasket keeps for the apps it serves: the host's db and user model, and the models.

:class:`FlasketState` is the part of the extension every layer reads (through
:data:`flasket.current_flasket`); :class:`flasket.Flasket` adds registering the pages
on an app. Keeping the two apart keeps the web and mail code from importing the module that
imports them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from flask import Flask

from . import config
from .models import Models, TicketBase, get_models
from .sql import app_object

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class AppSettings:
    """The options of one app that Flasket parses once, when it is registered on the app.

    Pages read them on every request, so they are checked and parsed in
    :meth:`flasket.Flasket.init_app`, not per call: changing ``FLASKET_CATEGORIES``,
    ``FLASKET_STATUSES``, ``FLASKET_IS_STAFF`` or ``FLASKET_RESPONSE_HEADERS`` in
    ``app.config`` after ``init_flasket()`` has no effect. The other options are read from
    ``app.config`` when they are used.

    :param categories: ``FLASKET_CATEGORIES``, parsed (:func:`flasket.config.parse_categories`).
    :param statuses: ``FLASKET_STATUSES``, parsed (:func:`flasket.config.parse_statuses`).
    :param is_staff: ``FLASKET_IS_STAFF``: takes a logged-in user, returns whether they are
        staff.
    :param response_headers: ``FLASKET_RESPONSE_HEADERS`` merged over Flasket's defaults
        (:func:`flasket.config.parse_response_headers`): header name to value.
    """

    categories: tuple[config.Category, ...]
    statuses: tuple[config.Status, ...]
    is_staff: Callable[[Any], bool]
    response_headers: Mapping[str, str]

    @classmethod
    def from_config(cls, app_config: Mapping[str, Any]) -> AppSettings:
        """Parse the settings from an app's config, whose defaults are already filled in.

        :param app_config: ``app.config``, after :func:`flasket.config.apply_defaults`.
        :raises flasket.config.ConfigError: when a value cannot be used.
        """
        return cls(
            categories=config.parse_categories(app_config[config.key("categories")]),
            statuses=config.parse_statuses(app_config[config.key("statuses")]),
            is_staff=app_config[config.key("is_staff")],
            response_headers=config.parse_response_headers(
                app_config[config.key("response_headers")]
            ),
        )


class FlasketState:
    """Flasket's models on the host's ``db``, for one user model.

    :param db: the host's ``flask_sqlalchemy.SQLAlchemy`` instance; Flasket's tables join
        its metadata.
    :param user_model: the host's user model class (a model of ``db``).
    :param options: defaults for ``FLASKET_*`` options, named without the prefix in lower
        case (``url_prefix="/help"``); a key the app's config sets itself wins.
    :raises TypeError: when ``options`` names an option Flasket does not have.
    """

    def __init__(self, db: SQLAlchemy, user_model: type[Any], **options: Any) -> None:
        unknown = set(options) - set(config.DEFAULTS)
        if unknown:
            raise TypeError(f"Unknown Flasket option(s): {', '.join(sorted(unknown))}")
        self.db = db
        self.user_model = user_model
        self.options = options
        self.models: Models = get_models(db, user_model)
        # Per app, as Flask-SQLAlchemy keeps its engines: one extension may serve several apps.
        self._settings: weakref.WeakKeyDictionary[Flask, AppSettings] = weakref.WeakKeyDictionary()

    @property
    def session(self) -> Session:
        """The host's ``db.session`` (scoped to the app context), typed as a ``Session``.

        Flasket's code that acts (actions, notifications, delivery, pages, commands) reaches
        the database through this and ``models``; the functions that build and run
        statements (:mod:`flasket.queries`, :mod:`flasket.search`, :mod:`flasket.pagination`)
        take the session and models as arguments instead.
        """
        return cast("Session", self.db.session)

    def settings(self, app: Flask | None = None) -> AppSettings:
        """The parsed settings of ``app`` (default: the current app).

        :param app: an app Flasket is registered on (``current_app`` will do), or None for
            the current app.
        :raises RuntimeError: outside an app context when ``app`` is None or a proxy, or when
            Flasket was not registered on the app.
        """
        # A proxy such as current_app cannot be a weak key: look up the app it stands for.
        real = app_object() if app is None else getattr(app, "_get_current_object", lambda: app)()
        try:
            return self._settings[real]
        except KeyError:
            raise RuntimeError(
                "Flasket is not registered on this app: call init_flasket(app, ...)"
            ) from None

    def categories(self) -> tuple[config.Category, ...]:
        """The configured categories of the current app (``FLASKET_CATEGORIES``, parsed).

        :raises RuntimeError: outside an app context, or in an app without Flasket.
        """
        return self.settings().categories

    def statuses(self) -> tuple[config.Status, ...]:
        """The configured statuses of the current app (``FLASKET_STATUSES``, parsed), in order.

        :raises RuntimeError: outside an app context, or in an app without Flasket.
        """
        return self.settings().statuses

    def status_named(self, name: str) -> config.Status | None:
        """The configured status called ``name``, or None (a status no longer configured).

        :param name: a value of ``flasket_ticket.status``.
        :raises RuntimeError: outside an app context, or in an app without Flasket.
        """
        for status in self.settings().statuses:
            if status.name == name:
                return status
        return None

    def first_status(self, kind: str) -> config.Status:
        """The first configured status of ``kind``: new and reopened tickets get the first
        ``"open"`` one, "Close ticket" sets the first ``"closed"`` one.

        :param kind: ``"open"`` or ``"closed"``.
        :raises RuntimeError: outside an app context, or in an app without Flasket.
        """
        return next(s for s in self.settings().statuses if s.kind == kind)

    def categories_of(
        self, ticket: TicketBase, categories: tuple[config.Category, ...] | None = None
    ) -> list[tuple[config.Category, str]]:
        """A ticket's category values, in configured order, with their categories.

        A value whose category is no longer configured is left out.

        :param ticket: the ticket.
        :param categories: the categories to show, in order; else :meth:`categories`.
        :return: ``[(category, value), ...]``; ``category.label_for(value)`` is its label.
        """
        values = ticket.category_values()
        if not values:
            return []
        configured = self.categories() if categories is None else categories
        return [(c, values[c.name]) for c in configured if c.name in values]
