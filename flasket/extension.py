"""The Flasket extension object: registers the pages, the CLI and the template helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask

from . import config, templating, views
from .cli import flasket_cli
from .proxies import EXTENSION_NAME, current_flasket
from .state import AppSettings, FlasketState

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

__all__ = ["EXTENSION_NAME", "Flasket", "current_flasket", "init_flasket"]


class Flasket(FlasketState):
    """A ticket system for one Flask-SQLAlchemy ``db`` and one user model.

    ``Flasket(db, User).init_app(app)`` registers the pages under
    ``FLASKET_URL_PREFIX``. Options passed here become the defaults of the
    matching ``FLASKET_*`` config keys; a key the app sets itself wins.

    :param db: the host's ``flask_sqlalchemy.SQLAlchemy`` instance.
    :param user_model: the host's user model class.
    :param app: an app to register on at once (else call :meth:`init_app`).
    :param options: ``FLASKET_*`` defaults, lower case without the prefix.
    :raises TypeError: when ``options`` names an option Flasket does not have.
    """

    def __init__(
        self,
        db: SQLAlchemy,
        user_model: type[Any],
        app: Flask | None = None,
        **options: Any,
    ) -> None:
        super().__init__(db, user_model, **options)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register Flasket on ``app``: its pages, ``flask flasket`` commands, template helpers.

        Call it after ``db.init_app(app)`` and once per app. It checks the host first
        (:func:`flasket.config.check_host`).

        :param app: the host's Flask app.
        :raises RuntimeError: when Flasket is already registered on ``app``, or ``app`` does
            not use the ``db`` given to Flasket.
        :raises flasket.config.ConfigError: when the host lacks something Flasket needs
            (the message lists every missing piece).
        """
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
        self._settings[app] = AppSettings.from_config(app.config)

        app.register_blueprint(views.bp, url_prefix=app.config[config.key("url_prefix")])
        templating.register_template_helpers(app)
        app.cli.add_command(flasket_cli)
        app.extensions[EXTENSION_NAME] = self


def init_flasket(app: Flask, db: SQLAlchemy, user_model: type[Any], **options: Any) -> Flasket:
    """Add the ticket system to ``app``: ``Flasket(db, user_model, **options).init_app(app)``.

    :param app: the host's Flask app, with ``db.init_app(app)`` done.
    :param db: the host's ``flask_sqlalchemy.SQLAlchemy``; Flasket's tables join its metadata.
    :param user_model: the host's user model class, a model of ``db``.
    :param options: ``FLASKET_*`` defaults, lower case without the prefix
        (``url_prefix="/help"``); a key the app's config sets wins.
    :return: the extension, which is also ``app.extensions["flasket"]``.
    :raises TypeError: for an unknown option.
    :raises RuntimeError: when Flasket is already registered on ``app`` or ``app`` does not
        use ``db``.
    :raises flasket.config.ConfigError: when the host lacks something Flasket needs.
    """
    extension = Flasket(db, user_model, **options)
    extension.init_app(app)
    return extension
