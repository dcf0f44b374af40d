"""The integration contract: ``init_flasket(app, db, User)`` and nothing else in the host."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_login import UserMixin
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flasket import Flasket, init_flasket
from tests import helpers, hostapp
from tests.databases import fresh_database
from tests.helpers import CSRF_FIELD, Client, Inbox, OwnApps, ext_models, rows
from tests.test_user_keys import make_host

FLASKET_TABLES = set(helpers.FLASKET_TABLES)


def declare_user(db: SQLAlchemy) -> type[Any]:
    class User(UserMixin, db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "users"

        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(64), unique=True)
        email: Mapped[str] = mapped_column(sa.String(120))

    return User


def add_users(app: Flask, db: SQLAlchemy, user_model: type[Any], *names: str) -> None:
    with app.app_context():
        db.create_all()
        db.session.add_all(user_model(username=n, email=f"{n}@example.test") for n in names)
        db.session.commit()


def bare_app() -> Flask:
    """An app with what Flasket needs from the host but the db and login manager."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        MAIL_DEFAULT_SENDER="support@example.test",
        SERVER_NAME="host.test",
    )
    Mail(app)
    return app


def test_init_flasket_returns_the_extension_stored_in_app_extensions() -> None:
    app = bare_app()
    hostapp.db.init_app(app)
    hostapp.login.init_app(app)
    hostapp.login.login_view = "login_page"

    extension = init_flasket(app, hostapp.db, hostapp.User)

    assert isinstance(extension, Flasket)
    assert app.extensions["flasket"] is extension
    assert extension.db is hostapp.db
    assert extension.user_model is hostapp.User
    assert "flasket" in app.blueprints


def test_extension_does_not_keep_a_reference_to_the_app(app: Flask) -> None:
    extension = app.extensions["flasket"]
    assert not hasattr(extension, "app")
    assert app not in vars(extension).values()


def test_app_factory_called_twice_gives_two_working_apps_sharing_the_model_classes(
    smtp_server: tuple[Inbox, int], backend: str
) -> None:
    with fresh_database(backend) as first_url, fresh_database(backend) as second_url:
        first = hostapp.create_app(smtp_port=smtp_server[1], SQLALCHEMY_DATABASE_URI=first_url)
        second = hostapp.create_app(smtp_port=smtp_server[1], SQLALCHEMY_DATABASE_URI=second_url)
        check_two_apps_sharing_the_model_classes(first, second)


def check_two_apps_sharing_the_model_classes(first: Flask, second: Flask) -> None:
    try:
        assert first.extensions["flasket"] is not second.extensions["flasket"]
        assert ext_models(first) == ext_models(second)
        assert ext_models(first).Ticket is ext_models(second).Ticket
        declared = [
            mapper.class_
            for mapper in hostapp.db.Model.registry.mappers  # type: ignore[attr-defined]
            if mapper.local_table.name == "flasket_ticket"
        ]
        assert declared == [ext_models(first).Ticket]

        for number, app in enumerate((first, second), start=1):
            add_users(app, hostapp.db, hostapp.User, "alice")
            ticket_id = Client(app, "alice").submit(title=f"From app {number}")
            assert [t.title for t in rows(app, ext_models(app).Ticket)] == [f"From app {number}"]
            assert ticket_id == 1
    finally:
        for app in (first, second):
            with app.app_context():
                hostapp.db.session.remove()
                hostapp.db.engine.dispose()


def test_registering_flasket_twice_on_one_app_raises_a_clear_error(app: Flask) -> None:
    registered = app.extensions["flasket"]
    with pytest.raises(RuntimeError, match="already registered on this app"):
        init_flasket(app, hostapp.db, hostapp.User)
    with pytest.raises(RuntimeError, match="already registered on this app"):
        Flasket(hostapp.db, hostapp.User).init_app(app)
    assert app.extensions["flasket"] is registered


def test_init_flasket_before_db_init_app_raises_a_clear_error() -> None:
    app = bare_app()
    with pytest.raises(RuntimeError, match=r"Call db\.init_app\(app\)"):
        init_flasket(app, hostapp.db, hostapp.User)
    assert "flasket" not in app.extensions
    assert "flasket" not in app.blueprints


def test_init_flasket_with_a_db_other_than_the_apps_raises_a_clear_error() -> None:
    other_db = SQLAlchemy()
    other_user = declare_user(other_db)
    app = bare_app()
    hostapp.db.init_app(app)
    with pytest.raises(RuntimeError, match=r"Call db\.init_app\(app\)"):
        init_flasket(app, other_db, other_user)
    assert "flasket" not in app.extensions


def test_one_db_refuses_flasket_tables_for_a_second_user_model() -> None:
    db = SQLAlchemy()
    user = declare_user(db)

    class Customer(db.Model):  # type: ignore[misc,name-defined]
        id: Mapped[int] = mapped_column(primary_key=True)

    Flasket(db, user)
    with pytest.raises(RuntimeError, match="one user model only"):
        Flasket(db, Customer)


def test_create_all_creates_the_flasket_tables_in_the_host_database(app: Flask) -> None:
    with app.app_context():
        tables = set(sa.inspect(hostapp.db.engine).get_table_names())
        dialect = hostapp.db.engine.dialect.name
    assert tables >= FLASKET_TABLES
    # SQLite's search: two FTS5 tables and the shadow tables FTS5 keeps for each.
    search = {
        f"flasket_{kind}_search{part}"
        for kind in ("ticket", "reply")
        for part in ("", "_config", "_data", "_docsize", "_idx")
    }
    assert tables - FLASKET_TABLES - search == {"accounts"}
    if dialect == "sqlite":
        assert tables >= search


def test_every_flasket_table_and_index_is_prefixed(app: Flask) -> None:
    models = ext_models(app)
    flasket_tables = [
        model.__table__
        for model in (
            models.Ticket,
            models.Reply,
            models.Note,
            models.Change,
            models.Revision,
            models.Follow,
            models.OutboxEvent,
            models.Outbox,
        )
    ] + [models.TicketCategory.__table__]
    assert {table.name for table in flasket_tables} == FLASKET_TABLES
    for table in flasket_tables:
        for index in table.indexes:
            assert index.name.startswith("ix_flasket_"), index.name
    host_tables = set(hostapp.db.metadata.tables) - FLASKET_TABLES
    assert host_tables == {"accounts"}


def user_model_shape(user_model: type[Any]) -> dict[str, Any]:
    mapper = sa.inspect(user_model)
    return {
        "class attributes": set(dir(user_model)),
        "own attributes": set(vars(user_model)),
        "mapped attributes": set(mapper.attrs.keys()),
        "relationships": set(mapper.relationships.keys()),
        "columns": [(c.name, str(c.type)) for c in user_model.__table__.columns],
        "table constraints": {repr(c) for c in user_model.__table__.constraints},
        "indexes": {index.name for index in user_model.__table__.indexes},
    }


def test_nothing_is_added_to_the_host_user_class_or_table(own_apps: OwnApps) -> None:
    db = SQLAlchemy()
    user = declare_user(db)
    sa.orm.configure_mappers()
    before = user_model_shape(user)

    app = own_apps.track(make_host(db, user, SQLALCHEMY_DATABASE_URI=own_apps.database_url))
    add_users(app, db, user, "alice")
    sa.orm.configure_mappers()
    Client(app, "alice").submit()

    assert user_model_shape(user) == before
    with app.app_context():
        inspector = sa.inspect(db.engine)
        reflected = [c["name"] for c in inspector.get_columns("users")]
        assert inspector.get_foreign_keys("users") == []
    assert reflected == [name for name, _ in before["columns"]]


def test_host_model_named_ticket_does_not_collide_with_flasket(
    smtp_server: tuple[Inbox, int], own_apps: OwnApps
) -> None:
    db = SQLAlchemy()

    class User(UserMixin, db.Model):  # type: ignore[misc,name-defined]
        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(64), unique=True)
        email: Mapped[str] = mapped_column(sa.String(120))
        tickets: Mapped[list[Ticket]] = relationship("Ticket", back_populates="owner")

    class Ticket(db.Model):  # type: ignore[misc,name-defined]
        id: Mapped[int] = mapped_column(primary_key=True)
        seat: Mapped[str] = mapped_column(sa.String(10))
        owner_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"))
        owner: Mapped[User] = relationship("User", back_populates="tickets")

    app = own_apps.track(
        make_host(
            db, User, smtp_port=smtp_server[1], SQLALCHEMY_DATABASE_URI=own_apps.database_url
        )
    )
    add_users(app, db, User, "alice")
    with app.app_context():
        alice = db.session.execute(sa.select(User)).scalar_one()
        db.session.add(Ticket(seat="12A", owner=alice))
        db.session.commit()

    ticket_id = Client(app, "alice").submit(title="Lost my boarding pass")

    models = app.extensions["flasket"].models
    assert models.Ticket is not Ticket
    with app.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"ticket", "flasket_ticket"} <= tables
        alice = db.session.execute(sa.select(User)).scalar_one()
        assert [t.seat for t in alice.tickets] == ["12A"]
        assert all(type(t) is Ticket for t in alice.tickets)
        assert db.session.scalars(sa.select(Ticket.seat)).all() == ["12A"]
        flasket_ticket: Any = db.session.get(models.Ticket, ticket_id)
        assert flasket_ticket.title == "Lost my boarding pass"
        assert flasket_ticket.author is alice


@pytest.mark.parametrize(
    "app_config",
    [{"FLASKET_URL_PREFIX": "/help", "FLASKET_STAFF_RECIPIENTS": ["staff@example.test"]}],
)
def test_pages_live_under_a_custom_url_prefix(app: Flask, login: Any, inbox: Inbox) -> None:
    anonymous = app.test_client()
    redirected = anonymous.get("/help/")
    assert redirected.status_code == 302
    assert redirected.headers["Location"].startswith("/login")

    alice = login("alice")
    form = alice.get("/help/submit")
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert 'action="/help/submit"' in page
    assert "/help/static/flasket/flasket.css" in page
    assert alice.get("/ticket/submit").status_code == 404
    with alice.get("/help/static/flasket/flasket.css") as stylesheet:
        assert stylesheet.status_code == 200
        assert b".flasket" in stylesheet.data

    match = CSRF_FIELD.search(page)
    assert match
    response = alice.http.post(
        "/help/submit",
        data={
            "csrf_token": match.group(1),
            "title": "Under help",
            "body": "Body.",
            "urgency": "Low",
            "application": "API",
            "topic": "Question",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/help/1"
    assert [t.title for t in rows(app, ext_models(app).Ticket)] == ["Under help"]
    assert "Under help" in alice.get("/help/all").get_data(as_text=True)
    (mail,) = inbox.to("staff@example.test")
    assert "http://host.test/help/1" in mail.part("plain")


def test_keyword_options_are_defaults_that_config_keys_override(
    smtp_server: tuple[Inbox, int],
) -> None:
    db = SQLAlchemy()
    user = declare_user(db)
    app = make_host(
        db,
        user,
        smtp_port=smtp_server[1],
        flasket_options={"url_prefix": "/support", "per_page": 10, "visibility": "own"},
        FLASKET_PER_PAGE=5,
        FLASKET_VISIBILITY="all",
    )
    assert app.config["FLASKET_URL_PREFIX"] == "/support"
    assert app.config["FLASKET_PER_PAGE"] == 5
    assert app.config["FLASKET_VISIBILITY"] == "all"

    add_users(app, db, user, "alice", "bob")
    alice, bob = Client(app, "alice"), Client(app, "bob")
    csrf = CSRF_FIELD.search(alice.get("/support/submit").get_data(as_text=True))
    assert csrf
    for number in range(6):
        response = alice.http.post(
            "/support/submit",
            data={
                "csrf_token": csrf.group(1),
                "title": f"Ticket number {number}",
                "body": "Body.",
                "urgency": "Low",
                "application": "API",
                "topic": "Question",
            },
        )
        assert response.status_code == 303
    listing = bob.get("/support/all").get_data(as_text=True)
    assert "1\N{EN DASH}5 of 6 open tickets" in listing
    assert len(re.findall(r'class="flasket-ticket-link"', listing)) == 5
    assert bob.get("/support/1").status_code == 200
    assert bob.get("/ticket/1").status_code == 404


def test_unknown_keyword_option_raises_type_error_and_leaves_the_app_alone() -> None:
    app = bare_app()
    hostapp.db.init_app(app)
    with pytest.raises(TypeError, match="url_prefx"):
        init_flasket(app, hostapp.db, hostapp.User, url_prefx="/help")
    assert "flasket" not in app.extensions
    assert "flasket" not in app.blueprints
    assert not any(name.startswith("FLASKET_") for name in app.config)
