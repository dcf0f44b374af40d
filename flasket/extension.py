"""The Flasket extension object: configuration, models and blueprint registration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from flask import Flask, current_app
from werkzeug.local import LocalProxy

from . import config
from .models import Models, TicketBase, get_models

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

EXTENSION_NAME = "flasket"


class Flasket:
    """A ticket system for one Flask-SQLAlchemy ``db`` and one user model.

    ``Flasket(db, User).init_app(app)`` registers the pages under
    ``FLASKET_URL_PREFIX``. Options passed here become the defaults of the
    matching ``FLASKET_*`` config keys; a key the app sets itself wins.
    """

    def __init__(
        self,
        db: SQLAlchemy,
        user_model: type[Any],
        app: Flask | None = None,
        **options: Any,
    ) -> None:
        unknown = set(options) - set(config.DEFAULTS)
        if unknown:
            raise TypeError(f"Unknown Flasket option(s): {', '.join(sorted(unknown))}")
        self.db = db
        self.user_model = user_model
        self.options = options
        self.models: Models = get_models(db, user_model)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if EXTENSION_NAME in app.extensions:
            raise RuntimeError(
                "Flasket is already registered on this app; call init_flasket() once per app."
            )
        if "sqlalchemy" not in app.extensions or app.extensions["sqlalchemy"] is not self.db:
            raise RuntimeError(
                "Call db.init_app(app) for the db given to Flasket before init_flasket(app, ...)."
            )
        config.apply_defaults(app, self.options)
        config.check_host(app, self.user_model)

        from . import views
        from .cli import flasket_cli

        app.register_blueprint(views.bp, url_prefix=app.config[config.key("url_prefix")])
        views.register_template_helpers(app)
        app.cli.add_command(flasket_cli)
        # A host with CSRFProtect set up before or after us: unfollow links carry their own token.
        _exempt_unfollow_link(app)
        app.before_request(lambda: _exempt_unfollow_link(app))
        app.extensions[EXTENSION_NAME] = self

    def categories(self) -> tuple[config.Category, ...]:
        """The configured categories of the current app."""
        return config.parse_categories(config.config_value("categories"))

    def categories_of(
        self, ticket: TicketBase, categories: tuple[config.Category, ...] | None = None
    ) -> list[tuple[config.Category, str]]:
        """A ticket's category values, in configured order, with their categories.

        A value whose category is no longer configured is left out.

        :param ticket: the ticket.
        :param categories: the configured categories, when the caller parsed them
            already (a list does once per request); else :meth:`categories`.
        :return: ``[(category, value), ...]``; ``category.label_for(value)`` is its label.
        """
        values = ticket.category_values()
        if not values:
            return []
        configured = self.categories() if categories is None else categories
        return [(c, values[c.name]) for c in configured if c.name in values]


def _exempt_unfollow_link(app: Flask) -> None:
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        from .views import unfollow_link

        csrf.exempt(unfollow_link)


def init_flasket(app: Flask, db: SQLAlchemy, user_model: type[Any], **options: Any) -> Flasket:
    """Add the ticket system to ``app``.

    Returns the extension, which is also ``app.extensions["flasket"]``.
    """
    extension = Flasket(db, user_model, **options)
    extension.init_app(app)
    return extension


def _current() -> Flasket:
    try:
        return cast(Flasket, current_app.extensions[EXTENSION_NAME])
    except KeyError:
        raise RuntimeError(
            "Flasket is not registered on this app: call init_flasket(app, ...)"
        ) from None


current_flasket: Flasket = cast(Flasket, LocalProxy(_current))
