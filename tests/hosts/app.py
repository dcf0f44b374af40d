"""A small host app as integrators write them, in one of several looks, seeded with tickets.

Looks (each a folder beside this file with the host's ``templates/base.html``):

- ``bootstrap5``: a Bootstrap 5 app (navbar, ``<main class="container">``, flashed
  messages as alerts) whose ``<title>`` prints a ``title`` variable, Mega-Tutorial style;
- ``classless``: Pico's classless stylesheet, which styles bare elements (legend,
  fieldset, inputs, buttons, tables) and a ``title`` block;
- ``plain``: no stylesheet at all but Flasket's.

The CSS comes from ``node_modules`` (``npm ci``), served by the host itself: never a CDN.

Each host shows Flasket in its default look; the Bootstrap host can also set
``FLASKET_LOOK = "bootstrap5"`` (``create_host_app("bootstrap5", flasket_look="bootstrap5")``),
so that Flasket's pages are made of Bootstrap's own components.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, abort, flash, redirect, render_template, request, send_from_directory
from flask_login import LoginManager, UserMixin, login_user
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from jinja2 import StrictUndefined
from sqlalchemy.orm import Mapped, mapped_column

from flasket import actions, init_flasket

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE.parents[1] / "node_modules"
#: The files of node_modules a look serves under /vendor/, by look.
VENDOR_FILES = {
    "bootstrap5": (
        "bootstrap/dist/css/bootstrap.min.css",
        "bootstrap/dist/js/bootstrap.bundle.min.js",
    ),
    "classless": ("@picocss/pico/css/pico.classless.min.css",),
    "plain": (),
}
LOOKS = tuple(VENDOR_FILES)
USERS = ("alice", "bob", "admin")
#: Every member's password: these hosts only ever run inside the tests.
PASSWORD = "demo"
#: (author, title, categories, replies, closed): enough rows for a list with every badge.
TICKETS = (
    ("alice", "Cannot upload a profile picture larger than 2 MB", "High", 2, False),
    ("bob", "Export of posts stops at 1,000 rows", "Medium", 1, False),
    ("alice", "Typo on the sign-up page", "Low", 0, True),
    ("bob", "Dark mode resets after logging out and in again", "Low", 3, False),
    ("admin", "Scheduled maintenance window next Sunday", "Medium", 0, False),
)

db = SQLAlchemy()
login = LoginManager()
mail = Mail()


class Member(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(db.String(64), unique=True)
    email: Mapped[str] = mapped_column(db.String(120))
    is_admin: Mapped[bool] = mapped_column(default=False)


@login.user_loader
def load_member(member_id: str) -> Member | None:
    return db.session.get(Member, int(member_id))


def missing_files(look: str) -> str | None:
    """Why ``look`` cannot be served here, in one line; None when it can."""
    for name in VENDOR_FILES[look]:
        if not (NODE_MODULES / name).is_file():
            return f"node_modules/{name} is missing: run `npm ci`"
    return None


def create_host_app(
    look: str, database_uri: str = "sqlite://", flasket_look: str = "flasket"
) -> Flask:
    """The host app in ``look``, with Flasket at /ticket wearing the host's base.html.

    ``flasket_look`` is ``FLASKET_LOOK``: ``"bootstrap5"`` suits the Bootstrap host only.
    """
    app = Flask(__name__, template_folder=str(HERE / look / "templates"))
    app.jinja_env.undefined = StrictUndefined
    app.config.update(
        SECRET_KEY="host-secret",
        SQLALCHEMY_DATABASE_URI=database_uri,
        MAIL_SUPPRESS_SEND=True,
        MAIL_DEFAULT_SENDER="Help desk <help@example.test>",
        FLASKET_BASE_URL="https://help.example.test",
        FLASKET_BASE_TEMPLATE="base.html",
        FLASKET_LOOK=flasket_look,
        # The pages are what these hosts test: notifications stay in the outbox.
        FLASKET_DELIVERY="hook",
        FLASKET_DELIVERY_HOOK=lambda ids: None,
    )
    db.init_app(app)
    login.init_app(app)
    login.login_view = "log_in"
    mail.init_app(app)

    @app.route("/vendor/<path:name>")
    def vendor(name: str) -> Any:
        if name not in VENDOR_FILES[look]:
            abort(404)
        return send_from_directory(NODE_MODULES, name)

    @app.route("/")
    def home() -> str:
        return render_template("home.html", title="Home")

    @app.route("/auth/login", methods=["GET", "POST"])
    def log_in() -> Any:
        if request.method == "POST":
            found = db.session.execute(
                db.select(Member).filter_by(username=request.form["username"])
            ).scalar_one_or_none()
            if found is not None and request.form["password"] == PASSWORD:
                login_user(found)
                flash(f"Welcome back, {found.username}.", "success")
                return redirect(request.args.get("next") or "/")
            flash("No such user.", "danger")
        return render_template("login.html", title="Log in")

    init_flasket(app, db, Member)
    return app


def seed(app: Flask) -> None:
    """Create the tables, three members and a few tickets with replies, one closed."""
    with app.test_request_context("/"):
        db.create_all()
        members = {
            name: Member(username=name, email=f"{name}@example.test", is_admin=name == "admin")
            for name in USERS
        }
        db.session.add_all(members.values())
        db.session.commit()
        others = [members["bob"], members["admin"], members["alice"]]
        for author, title, urgency, replies, closed in TICKETS:
            categories = {"urgency": urgency, "application": "Website", "topic": "Bug report"}
            ticket = actions.create_ticket(
                members[author], title, f"{title}.\n\nSteps to reproduce follow.", categories
            )
            for number in range(replies):
                actions.post_reply(ticket, others[number], f"Reply number {number + 1}.")
            if closed:
                actions.close_ticket(ticket, members[author])
        db.session.remove()
