"""Flasket's foreign keys follow the host user's table name, key column and key type."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, redirect, request
from flask_login import LoginManager, UserMixin, login_user
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from jinja2 import StrictUndefined
from sqlalchemy.orm import Mapped, mapped_column

from flasket import Flasket
from tests.helpers import Client, Inbox

STAFF = "staff@example.test"
PEOPLE = ("alice", "bob", "carol")


def make_host(
    db: SQLAlchemy,
    user_model: type[Any],
    *,
    load_id: Callable[[str], Any] = int,
    smtp_port: int | None = None,
    flasket_options: dict[str, Any] | None = None,
    **config: Any,
) -> Flask:
    """A host app as an integrator writes it, around its own ``db`` and ``User``.

    Its ``POST /login`` takes a ``username`` form field, as the conftest ``Client`` expects.
    """
    app = Flask(__name__)
    app.jinja_env.undefined = StrictUndefined
    app.config.update(
        SECRET_KEY="test-secret",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp_port or 1,
        MAIL_DEFAULT_SENDER="Support <support@example.test>",
        SERVER_NAME="host.test",
    )
    app.config.update(config)
    db.init_app(app)
    login = LoginManager(app)
    login.login_view = "login_page"
    Mail(app)

    @login.user_loader
    def load_user(user_id: str) -> Any:
        return db.session.get(user_model, load_id(user_id))

    @app.route("/login", methods=["GET", "POST"])
    def login_page() -> Any:
        if request.method == "POST":
            user = db.session.execute(
                sa.select(user_model).filter_by(username=request.form["username"])
            ).scalar_one()
            login_user(user)
            return redirect(request.args.get("next") or "/")
        return "<form method=post><input name=username></form>"

    Flasket(db, user_model, **(flasket_options or {})).init_app(app)
    return app


def with_foreign_keys_enforced(app: Flask, db: SQLAlchemy) -> None:
    """SQLite checks foreign keys only when asked, on each new connection; others always do."""

    def enforce(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", enforce)


@dataclass(frozen=True)
class UserKey:
    """One way a host declares its user table and primary key."""

    table: str
    column: str
    attribute: str
    declare: Callable[[SQLAlchemy], type[Any]]
    load_id: Callable[[str], Any] = int
    #: Explicit primary keys, for key types the database does not generate.
    new_id: Callable[[int], Any] | None = None


def int_key_in_renamed_column(db: SQLAlchemy) -> type[Any]:
    class User(UserMixin, db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "people"

        id: Mapped[int] = mapped_column("person_id", primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(64), unique=True)
        email: Mapped[str] = mapped_column(sa.String(120))

    return User


def int_key_under_renamed_attribute(db: SQLAlchemy) -> type[Any]:
    class User(UserMixin, db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "members"

        member_no: Mapped[int] = mapped_column("id", primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(64), unique=True)
        email: Mapped[str] = mapped_column(sa.String(120))

        def get_id(self) -> str:
            return str(self.member_no)

    return User


def big_int_key(db: SQLAlchemy) -> type[Any]:
    class User(UserMixin, db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "big_users"

        id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
        username: Mapped[str] = mapped_column(sa.String(64), unique=True)
        email: Mapped[str] = mapped_column(sa.String(120))

    return User


def string_uuid_key(db: SQLAlchemy) -> type[Any]:
    class User(UserMixin, db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "string_users"

        id: Mapped[str] = mapped_column(
            sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4())
        )
        username: Mapped[str] = mapped_column(sa.String(64), unique=True)
        email: Mapped[str] = mapped_column(sa.String(120))

    return User


def native_uuid_key(db: SQLAlchemy) -> type[Any]:
    class User(UserMixin, db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "uuid_users"

        id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
        username: Mapped[str] = mapped_column(sa.String(64), unique=True)
        email: Mapped[str] = mapped_column(sa.String(120))

    return User


USER_KEYS = {
    "int-renamed-column": UserKey("people", "person_id", "id", int_key_in_renamed_column),
    "int-renamed-attribute": UserKey(
        "members", "id", "member_no", int_key_under_renamed_attribute
    ),
    "big-int": UserKey("big_users", "id", "id", big_int_key, new_id=lambda n: 2**40 + n),
    "string-uuid": UserKey("string_users", "id", "id", string_uuid_key, load_id=str),
    "native-uuid": UserKey("uuid_users", "id", "id", native_uuid_key, load_id=uuid.UUID),
}


@dataclass
class Host:
    app: Flask
    db: SQLAlchemy
    user: type[Any]
    key: UserKey
    ids: dict[str, Any]

    def models(self) -> Any:
        return self.app.extensions["flasket"].models

    def scalars(self, statement: Any) -> list[Any]:
        with self.app.app_context():
            return list(self.db.session.scalars(statement))


@pytest.fixture(params=list(USER_KEYS), ids=list(USER_KEYS))
def host(
    request: pytest.FixtureRequest,
    smtp_server: tuple[Inbox, int],
    inbox: Inbox,
    database_url: str,
) -> Any:
    key = USER_KEYS[request.param]
    db = SQLAlchemy()
    user_model = key.declare(db)
    app = make_host(
        db,
        user_model,
        load_id=key.load_id,
        smtp_port=smtp_server[1],
        FLASKET_STAFF_RECIPIENTS=[STAFF],
        SQLALCHEMY_DATABASE_URI=database_url,
    )
    with_foreign_keys_enforced(app, db)
    with app.app_context():
        db.create_all()
        users = []
        for n, name in enumerate(PEOPLE, start=1):
            extra = {key.attribute: key.new_id(n)} if key.new_id else {}
            users.append(user_model(username=name, email=f"{name}@example.test", **extra))
        db.session.add_all(users)
        db.session.commit()
        ids = {user.username: getattr(user, key.attribute) for user in users}
    yield Host(app, db, user_model, key, ids)
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def foreign_key(inspector: Any, table: str, column: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        fk for fk in inspector.get_foreign_keys(table) if fk["constrained_columns"] == [column]
    ]
    assert len(found) == 1, f"{table}.{column} has {len(found)} foreign keys"
    return found[0]


def column_type(inspector: Any, table: str, column: str) -> str:
    (found,) = [c for c in inspector.get_columns(table) if c["name"] == column]
    return str(found["type"])


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("flasket_ticket", "author_id"),
        ("flasket_ticket", "closed_by_id"),
        ("flasket_reply", "author_id"),
        ("flasket_follow", "user_id"),
    ],
)
def test_user_foreign_keys_point_at_the_host_user_key_with_its_type(
    host: Host, table: str, column: str
) -> None:
    with host.app.app_context():
        inspector = sa.inspect(host.db.engine)
        fk = foreign_key(inspector, table, column)
        assert fk["referred_table"] == host.key.table
        assert fk["referred_columns"] == [host.key.column]
        assert column_type(inspector, table, column) == column_type(
            inspector, host.key.table, host.key.column
        )
    pk_type = host.user.__table__.c[host.key.column].type
    declared = host.db.metadata.tables[table].c[column].type
    assert type(declared) is type(pk_type)
    assert getattr(declared, "length", None) == getattr(pk_type, "length", None)


def test_extension_reads_user_ids_from_the_mapped_key_attribute(host: Host) -> None:
    assert host.models().user_pk == host.key.attribute


def test_ticket_flow_over_http_stores_the_host_user_keys(host: Host, inbox: Inbox) -> None:
    alice, bob, carol = (Client(host.app, name) for name in PEOPLE)

    ticket_id = alice.submit("Cannot log in", "The button does nothing.")
    assert bob.reply(ticket_id, "Same here.").status_code == 303
    assert carol.post(f"/ticket/{ticket_id}/follow").status_code == 303
    assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303

    models = host.models()
    (ticket,) = host.scalars(sa.select(models.Ticket))
    assert ticket.id == ticket_id
    assert ticket.author_id == host.ids["alice"]
    assert type(ticket.author_id) is type(host.ids["alice"])
    assert ticket.status == "closed"
    assert ticket.closed_by_id == host.ids["alice"]
    assert ticket.reply_count == 1
    assert ticket.follower_count == 3
    (reply,) = host.scalars(sa.select(models.Reply))
    assert (reply.ticket_id, reply.author_id, reply.body) == (
        ticket_id,
        host.ids["bob"],
        "Same here.",
    )
    follows = host.scalars(sa.select(models.Follow))
    assert {f.user_id for f in follows} == set(host.ids.values())
    assert {f.ticket_id for f in follows} == {ticket_id}

    # Viewed by carol, so only the ticket's own user links can name alice and bob.
    page = carol.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    alice_at, bob_at = (f"/ticket/user/{host.ids[name]}" for name in ("alice", "bob"))
    assert f'Opened by <a href="{alice_at}">alice</a>' in page
    assert f'closed by <a href="{alice_at}">alice</a>' in page
    assert re.search(rf'<a href="{bob_at}">bob</a>[^<]* replied', page)
    assert "Same here." in page
    assert "Followers (3)" in page
    bobs_page = carol.get(f"/ticket/user/{host.ids['bob']}?show=replies")
    assert bobs_page.status_code == 200
    assert "Same here." in bobs_page.get_data(as_text=True)
    followed = carol.get(f"/ticket/user/{host.ids['carol']}?show=following").get_data(as_text=True)
    assert "Cannot log in" in followed

    assert [m.subject for m in inbox.to(STAFF)] == [f"[Ticket #{ticket_id}] Cannot log in"]
    assert [m.subject for m in inbox.to("alice@example.test")] == [
        f"Re: [Ticket #{ticket_id}] Cannot log in"
    ]
    for name in ("bob", "carol"):
        assert len(inbox.to(f"{name}@example.test")) == 1, name


def test_deleting_a_host_user_keeps_their_tickets_as_a_deleted_users(host: Host) -> None:
    alice, bob = Client(host.app, "alice"), Client(host.app, "bob")
    ticket_id = alice.submit()
    bob.reply(ticket_id, "Me too.")
    with host.app.app_context():
        host.db.session.execute(
            sa.delete(host.user).where(getattr(host.user, host.key.attribute) == host.ids["alice"])
        )
        host.db.session.commit()
    models = host.models()
    [ticket] = host.scalars(sa.select(models.Ticket))
    assert (ticket.id, ticket.author_id) == (ticket_id, None)
    [reply] = host.scalars(sa.select(models.Reply))
    assert reply.author_id == host.ids["bob"]
    follows = host.scalars(sa.select(models.Follow))
    assert [follow.user_id for follow in follows] == [host.ids["bob"]]
    page = bob.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    assert "Opened by a deleted user" in page
    assert "Followers (1)" in page
