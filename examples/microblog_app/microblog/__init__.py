"""Microblog: a small Flask app with its own users, and Flasket's tickets under /ticket.

``flask --app microblog run`` finds :func:`create_app` here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, render_template
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from .config import Config
from .extensions import db, login, mail, migrate
from .models import User

#: The schema's history, Flasket's tables included: ``flask --app microblog db upgrade``.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_app(config_overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(Config)
    app.config.update(config_overrides or {})

    # No mail server configured: keep mail in the demo mailbox instead of delivering it.
    if not app.config.get("MAIL_SERVER"):
        app.config["MAIL_SUPPRESS_SEND"] = True
        app.config["MICROBLOG_DEMO_MAILBOX"] = True

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    login.init_app(app)
    login.login_view = "auth.login"
    login.login_message = "Log in to see that page."
    login.login_message_category = "info"
    mail.init_app(app)

    # Flasket: the ticket system, with this app's db, User model and layout (see config.py).
    from flasket import init_flasket

    init_flasket(app, db, User)

    from . import auth, cli, mailbox, main

    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(mailbox.bp)
    cli.register(app)
    # The log-out button in every page's header is a small POST form with this token.
    app.add_template_global(generate_csrf, "csrf_token")

    @app.errorhandler(404)
    def not_found(error: Exception) -> ResponseReturnValue:
        return render_template("404.html"), 404

    return app
