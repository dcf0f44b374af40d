"""What the host must provide is checked when ``init_flasket`` runs, with a message that says how.

Each test builds a host app the way an integrator might get it wrong (a user model
with other attribute names, no mail sender, an extension not set up) and checks
that start-up fails naming the missing piece, or that a correct variant starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, redirect, request
from flask_login import LoginManager, UserMixin, login_user
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flasket import Flasket, delivery, init_flasket
from flasket.config import ConfigError
from tests.helpers import CSRF_FIELD, Inbox


def user_class(db: SQLAlchemy, **columns: Any) -> type[Any]:
    """A host ``User`` on ``db`` with an integer key and the given extra attributes."""
    namespace: dict[str, Any] = {
        "__tablename__": "people",
        "__annotations__": {"id": Mapped[int]},
        "id": mapped_column(primary_key=True),
        **columns,
    }
    return type("Person", (UserMixin, db.Model), namespace)


def standard_columns() -> dict[str, Any]:
    return {"username": sa.Column(sa.String(64)), "email": sa.Column(sa.String(120))}


def build(
    *,
    columns: dict[str, Any] | None = None,
    mail: bool = True,
    login: bool = True,
    login_view: str | None = "login_page",
    user_loader: bool = True,
    setup: Callable[[Flask, LoginManager], None] | None = None,
    templates: Path | None = None,
    **config: Any,
) -> Flask:
    """A host app with everything Flasket needs, less what the arguments leave out."""
    db = SQLAlchemy()
    model = user_class(db, **(standard_columns() if columns is None else columns))
    app = Flask(__name__, template_folder=str(templates) if templates else "templates")
    settings: dict[str, Any] = {
        "SECRET_KEY": "host-secret",
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "MAIL_DEFAULT_SENDER": "Support <support@example.test>",
        "FLASKET_BASE_URL": "https://help.example.test",
    }
    settings.update(config)
    app.config.update({name: value for name, value in settings.items() if value is not None})
    db.init_app(app)
    manager = LoginManager()
    if login:
        manager.init_app(app)
        manager.login_view = login_view
        if user_loader:
            manager.user_loader(lambda key: db.session.get(model, int(key)))
    if mail:
        Mail(app)
    if setup is not None:
        setup(app, manager)
    init_flasket(app, db, model)
    return app


def start_up_error(**arguments: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        build(**arguments)
    return str(raised.value)


def test_a_complete_host_starts() -> None:
    assert "flasket" in build().extensions


def test_user_model_without_the_name_attribute_names_the_setting_and_the_columns() -> None:
    message = start_up_error(
        columns={"nickname": sa.Column(sa.String(64)), "email": sa.Column(sa.String(120))}
    )
    assert "Person has no attribute 'username' (FLASKET_USER_NAME_ATTR)" in message
    assert "Set FLASKET_USER_NAME_ATTR" in message
    assert "email, id, nickname" in message


def test_name_and_email_attributes_can_be_pointed_elsewhere() -> None:
    columns = {"nickname": sa.Column(sa.String(64)), "mail_address": sa.Column(sa.String(120))}
    app = build(
        columns=columns, FLASKET_USER_NAME_ATTR="nickname", FLASKET_USER_EMAIL_ATTR="mail_address"
    )
    assert app.config["FLASKET_USER_NAME_ATTR"] == "nickname"


def test_a_name_that_sql_cannot_query_is_refused() -> None:
    columns = {
        **standard_columns(),
        "display_name": property(lambda self: self.username.title()),
    }
    message = start_up_error(columns=columns, FLASKET_USER_NAME_ATTR="display_name")
    assert "Person.display_name (FLASKET_USER_NAME_ATTR) is not a column" in message


def test_an_email_property_is_enough() -> None:
    columns = {
        "username": sa.Column(sa.String(64)),
        "contact": property(lambda self: f"{self.username}@example.test"),
    }
    assert build(columns=columns, FLASKET_USER_EMAIL_ATTR="contact")


def test_user_model_without_the_email_attribute_names_the_setting() -> None:
    message = start_up_error(columns={"username": sa.Column(sa.String(64))})
    assert "Person has no attribute 'email' (FLASKET_USER_EMAIL_ATTR)" in message
    assert "Set FLASKET_USER_EMAIL_ATTR" in message


def test_no_sender_anywhere_is_a_start_up_error() -> None:
    message = start_up_error(MAIL_DEFAULT_SENDER=None)
    assert "Notifications need a sender" in message
    assert "FLASKET_MAIL_SENDER (or Flask-Mail's MAIL_DEFAULT_SENDER)" in message


@pytest.mark.parametrize(
    "sender",
    [
        "support@example.test",
        "Support <support@example.test>",
        '"Acme, Inc." <support@example.test>',
        ("Support", "support@example.test"),
        ["Support", "support@example.test"],
    ],
)
def test_every_sender_form_flask_mail_accepts_is_usable(sender: Any) -> None:
    assert build(MAIL_DEFAULT_SENDER=sender)


def test_flasket_sender_alone_is_enough() -> None:
    assert build(MAIL_DEFAULT_SENDER=None, FLASKET_MAIL_SENDER="desk@example.test")


@pytest.mark.parametrize(
    "sender",
    [
        "support",
        "Support <>",
        "support@example.test\r\nBcc: everyone@example.test",
        ("Support",),
        ("Support", "not an address"),
        ("Support\r\nBcc: x@example.test", "support@example.test"),
        42,
    ],
)
def test_a_sender_that_is_not_an_address_is_refused(sender: Any) -> None:
    for key in ("MAIL_DEFAULT_SENDER", "FLASKET_MAIL_SENDER"):
        message = start_up_error(**{key: sender})
        assert "FLASKET_MAIL_SENDER (or Flask-Mail's MAIL_DEFAULT_SENDER)" in message


def test_no_trusted_address_for_mail_links_is_a_start_up_error() -> None:
    message = start_up_error(FLASKET_BASE_URL=None)
    assert "Links in e-mails (to a ticket, to unfollow it) need the address" in message
    assert "Set FLASKET_BASE_URL" in message


def test_server_name_is_enough_for_mail_links() -> None:
    assert build(FLASKET_BASE_URL=None, SERVER_NAME="help.example.test")


def test_staff_recipients_must_be_addresses() -> None:
    message = start_up_error(FLASKET_STAFF_RECIPIENTS=["staff@example.test", "the staff"])
    assert "FLASKET_STAFF_RECIPIENTS holds 'the staff', which is not an e-mail address" in message


def test_flask_mail_not_initialised() -> None:
    message = start_up_error(mail=False)
    assert "Flask-Mail is not initialised" in message
    assert "mail.init_app(app)" in message


def test_no_secret_key() -> None:
    message = start_up_error(SECRET_KEY=None)
    assert "The app has no SECRET_KEY" in message


def test_flask_login_not_initialised() -> None:
    message = start_up_error(login=False)
    assert "Flask-Login is not initialised" in message


def test_no_login_view() -> None:
    message = start_up_error(login_view=None)
    assert "Flask-Login has no login view" in message
    assert "login_manager.login_view" in message


def test_an_unauthorized_handler_or_blueprint_login_view_stands_for_a_login_view() -> None:
    def handler(app: Flask, manager: LoginManager) -> None:
        manager.unauthorized_handler(lambda: ("Log in first", 401))

    def per_blueprint(app: Flask, manager: LoginManager) -> None:
        manager.blueprint_login_views = {"flasket": "login_page"}

    assert build(login_view=None, setup=handler)
    assert build(login_view=None, setup=per_blueprint)


def test_a_host_whose_users_cannot_be_staff_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flasket"):
        build()
    assert "Nobody is staff: Person has no is_admin or admin attribute" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="flasket"):
        build(FLASKET_IS_STAFF=lambda user: user.id == 1)
    assert "Nobody is staff" not in caplog.text


def test_no_user_loader() -> None:
    message = start_up_error(user_loader=False)
    assert "Flask-Login has no user loader" in message


def test_every_missing_piece_is_listed_at_once() -> None:
    message = start_up_error(mail=False, SECRET_KEY=None, login_view=None)
    assert message.startswith("Flasket cannot start on this app:\n")
    assert message.count("\n- ") == 3


def host_templates(folder: Path, **templates: str) -> Path:
    for name, source in templates.items():
        (folder / f"{name}.html").write_text(source)
    return folder


def test_a_base_template_that_does_not_exist_is_named(tmp_path: Path) -> None:
    message = start_up_error(templates=tmp_path, FLASKET_BASE_TEMPLATE="layout/base.html")
    assert "FLASKET_BASE_TEMPLATE = 'layout/base.html' is not a template of this app" in message


def test_a_base_template_without_a_content_block_is_refused(tmp_path: Path) -> None:
    folder = host_templates(tmp_path, base="<main>{% block main %}{% endblock %}</main>")
    message = start_up_error(templates=folder, FLASKET_BASE_TEMPLATE="base.html")
    assert "FLASKET_BASE_TEMPLATE = 'base.html' has no {% block content %}" in message


def test_a_content_block_may_come_from_the_layout_the_base_extends(tmp_path: Path) -> None:
    folder = host_templates(
        tmp_path,
        skeleton="<title>{{ title }}</title>"
        "{% if 1 %}{% block content %}{% endblock %}{% endif %}",
        base='{% extends "skeleton.html" %}{% block nav %}{% endblock %}',
    )
    assert build(templates=folder, FLASKET_BASE_TEMPLATE="base.html")


def mail_host(database: Path, port: int, sender: Any) -> Flask:
    """A host with a file database shared by two builds: before and after a config fix."""

    def routes(app: Flask, manager: LoginManager) -> None:
        @app.post("/login")
        def login_page() -> Any:
            db = app.extensions["sqlalchemy"]
            user = db.session.execute(
                sa.select(app.extensions["flasket"].models.user).filter_by(
                    username=request.form["username"]
                )
            ).scalar_one()
            login_user(user)
            return redirect("/")

    return build(
        setup=routes,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=port,
        MAIL_DEFAULT_SENDER=sender,
        FLASKET_STAFF_RECIPIENTS=["staff@example.test"],
        FLASKET_DELIVERY="worker",
    )


def test_queued_mail_goes_out_with_the_sender_configured_when_it_is_sent(
    tmp_path: Path, smtp_server: tuple[Inbox, int], inbox: Inbox
) -> None:
    database = tmp_path / "host.db"
    before = mail_host(database, 1, "Old Desk <old@example.test>")
    with before.app_context():
        db = before.extensions["sqlalchemy"]
        db.create_all()
        models = before.extensions["flasket"].models
        db.session.add(models.user(username="alice", email="alice@example.test"))
        db.session.commit()
    client = before.test_client()
    client.post("/login", data={"username": "alice"})
    form = client.get("/ticket/submit").get_data(as_text=True)
    match = CSRF_FIELD.search(form)
    assert match
    fields = {"title": "Sender test", "body": "Body", "urgency": "Low", "application": "API"}
    fields.update(topic="Other", csrf_token=match.group(1))
    assert client.post("/ticket/submit", data=fields).status_code == 303
    with before.app_context():
        # Port 1 refuses: the message counts a failed attempt and waits for its retry.
        assert delivery.deliver_due().retrying == 1
        before.extensions["sqlalchemy"].engine.dispose()

    after = mail_host(database, smtp_server[1], ("New Desk", "new@example.test"))
    runner = after.test_cli_runner()
    assert (
        "Requeued 1 message."
        in runner.invoke(args=["flasket", "outbox", "--retry-failed", "--retry", "1"]).output
    )
    result = runner.invoke(args=["flasket", "deliver", "--once"])
    assert "sent 1" in result.output, result.output
    with after.app_context():
        after.extensions["sqlalchemy"].engine.dispose()
    (received,) = inbox.to("staff@example.test")
    assert str(received.message["From"]) == "New Desk <new@example.test>"


@pytest.mark.parametrize(
    ("sender", "display_name"),
    [
        (("Acme, Inc.", "desk@example.test"), "Acme, Inc."),
        (('Støtte (Désk) "Ø"', "desk@example.test"), 'Støtte (Désk) "Ø"'),
        ('"Acme, Inc." <desk@example.test>', "Acme, Inc."),
        ("desk@example.test", ""),
    ],
)
def test_the_sender_arrives_as_one_mailbox_whatever_its_name_holds(
    tmp_path: Path, smtp_server: tuple[Inbox, int], inbox: Inbox, sender: Any, display_name: str
) -> None:
    app = mail_host(tmp_path / "host.db", smtp_server[1], sender)
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        db.create_all()
        db.session.add(app.extensions["flasket"].models.user(username="alice", email="a@x.test"))
        db.session.commit()
    client = app.test_client()
    client.post("/login", data={"username": "alice"})
    match = CSRF_FIELD.search(client.get("/ticket/submit").get_data(as_text=True))
    assert match
    fields = {"title": "Sender", "body": "Body", "urgency": "Low", "application": "API"}
    fields.update(topic="Other", csrf_token=match.group(1))
    assert client.post("/ticket/submit", data=fields).status_code == 303
    with app.app_context():
        assert delivery.deliver_due().sent == 1
        app.extensions["sqlalchemy"].engine.dispose()
    (received,) = inbox.to("staff@example.test")
    (mailbox,) = received.message["From"].addresses
    assert (mailbox.display_name, mailbox.addr_spec) == (display_name, "desk@example.test")


def test_a_user_model_of_another_db_is_refused() -> None:
    other = SQLAlchemy()
    model = user_class(other, **standard_columns())
    db = SQLAlchemy()
    with pytest.raises(TypeError, match="Person is not declared on the db given to Flasket"):
        Flasket(db, model)


def test_a_missing_base_template_is_listed_with_the_other_problems(tmp_path: Path) -> None:
    message = start_up_error(
        templates=tmp_path, SECRET_KEY=None, mail=False, FLASKET_BASE_TEMPLATE="layout.html"
    )
    assert message.count("\n- ") == 3
    assert "The app has no SECRET_KEY" in message
    assert "Flask-Mail is not initialised" in message
    assert "FLASKET_BASE_TEMPLATE = 'layout.html' is not a template of this app" in message


def test_a_bad_sender_is_reported_even_before_flask_mail_is_set_up() -> None:
    message = start_up_error(mail=False, MAIL_DEFAULT_SENDER=None)
    assert "Flask-Mail is not initialised" in message
    assert "Notifications need a sender" in message


def test_a_base_template_that_does_not_parse_is_named(tmp_path: Path) -> None:
    folder = host_templates(tmp_path, base="{% block content %}")
    message = start_up_error(templates=folder, FLASKET_BASE_TEMPLATE="base.html")
    assert "FLASKET_BASE_TEMPLATE = 'base.html' does not parse" in message


@pytest.mark.parametrize(
    ("category", "message"),
    [
        (
            {"name": "team", "choices": ["A"], "requried": False},
            "Category 'team' has the key 'requried', which is not one of name, label, choices,"
            " widget, default, required. Did you mean 'required'?",
        ),
        (
            {"name": "team", "choices": ["A"], "colour": "red"},
            "Category 'team' has the key 'colour'",
        ),
        (
            {"name": "status", "choices": ["A"]},
            "Category name 'status' is taken by the ticket list's own parameters (author,",
        ),
        ({"name": "team", "choices": ["A", ("A", "Again")]}, "the choice 'A' is given twice"),
    ],
)
def test_a_category_with_a_typo_or_clash_is_refused(
    category: dict[str, Any], message: str
) -> None:
    assert message in start_up_error(FLASKET_CATEGORIES=[category])


def test_two_categories_with_one_name_are_refused() -> None:
    twice = [{"name": "team", "choices": ["A"]}, {"name": "team", "choices": ["B"]}]
    assert "Category name 'team' is used by two categories" in start_up_error(
        FLASKET_CATEGORIES=twice
    )
