"""A host application as an integrator would write it: its own db, User, login and mail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, redirect, request
from flask_login import LoginManager, UserMixin, login_user, logout_user
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from jinja2 import StrictUndefined
from sqlalchemy.orm import Mapped, mapped_column

from flasket import init_flasket

db = SQLAlchemy()
login = LoginManager()
mail = Mail()


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(db.String(64), unique=True)
    email: Mapped[str] = mapped_column(db.String(120))
    is_admin: Mapped[bool] = mapped_column(default=False)


@login.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def create_app(
    smtp_port: int | None = None,
    template_folder: str = "templates",
    before_flasket: Callable[[Flask], Any] | None = None,
    **config: Any,
) -> Flask:
    """The host app; ``template_folder`` holds the host's own templates (overrides, layout).

    ``before_flasket(app)`` runs just before ``init_flasket``: a host that sets up other
    extensions first.
    """
    app = Flask(__name__, template_folder=template_folder)
    app.jinja_env.undefined = StrictUndefined
    app.config.update(
        SECRET_KEY="test-secret",
        SQLALCHEMY_DATABASE_URI=config.pop("SQLALCHEMY_DATABASE_URI", "sqlite://"),
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp_port or 1,
        MAIL_DEFAULT_SENDER="Support <support@example.test>",
        SERVER_NAME="host.test",
    )
    app.config.update(config)
    db.init_app(app)
    login.init_app(app)
    login.login_view = "login_page"
    mail.init_app(app)

    @app.route("/login", methods=["GET", "POST"])
    def login_page() -> Any:
        if request.method == "POST":
            user = db.session.execute(
                db.select(User).filter_by(username=request.form["username"])
            ).scalar_one()
            login_user(user)
            return redirect(request.args.get("next") or "/")
        return "<form method=post><input name=username></form>"

    @app.route("/logout")
    def logout() -> Any:
        logout_user()
        return redirect("/")

    @app.route("/")
    def home() -> str:
        return "host home"

    if before_flasket is not None:
        before_flasket(app)
    init_flasket(app, db, User)
    return app
