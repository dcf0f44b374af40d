"""The demo's assignment revision (a7d3e9f1c2b8) on a database that already holds tickets:
what it fills in, and that its downgrade keeps the tickets and Flasket's SQLite triggers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask

BEFORE = "f3c9a2d7e5b1"
REVISION = "a7d3e9f1c2b8"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc).replace(tzinfo=None)


@pytest.fixture
def demo_app(microblog: ModuleType, database_url: str) -> Iterator[Flask]:
    app: Flask = microblog.create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "MAIL_SERVER": None}
    )
    yield app
    with app.app_context():
        microblog.extensions.db.session.remove()
        microblog.extensions.db.engine.dispose()


def insert(connection: sa.Connection, table: str, **values: object) -> None:
    columns: list[Any] = [sa.column(name) for name in values]
    connection.execute(sa.insert(sa.table(table, *columns)).values(**values))


def fill(connection: sa.Connection) -> None:
    """Users (1 staff), and four tickets as the previous revision stored them:
    #1 no reply; #2 the requester spoke last; #3 staff spoke last; #4 another user last."""
    for number, (name, admin) in enumerate(
        [("staff", True), ("alice", False), ("bob", False)], start=1
    ):
        insert(
            connection,
            "user",
            id=number,
            username=name,
            email=f"{name}@example.test",
            password_hash="x",
            is_admin=admin,
        )
    replies = {1: [], 2: [1, 2], 3: [2, 1], 4: [1, 3]}
    reply_id = 0
    for ticket, authors in replies.items():
        insert(
            connection,
            "flasket_ticket",
            id=ticket,
            title=f"Ticket {ticket} zeppelin",
            body="Text",
            status="open",
            state="open",
            created_at=NOW,
            updated_at=NOW,
            reply_count=len(authors),
            follower_count=0,
            author_id=2,
        )
        for author in authors:
            reply_id += 1
            insert(
                connection,
                "flasket_reply",
                id=reply_id,
                ticket_id=ticket,
                body="Reply",
                created_at=NOW,
                author_id=author,
            )


def test_the_revision_fills_awaiting_staff_from_the_last_reply_and_downgrades_keeping_tickets(
    demo_app: Flask, microblog: ModuleType
) -> None:
    db = microblog.extensions.db
    with demo_app.app_context():
        flask_migrate.upgrade(revision=BEFORE)
        with db.engine.begin() as connection:
            fill(connection)
        flask_migrate.upgrade(revision=REVISION)
        with db.engine.connect() as connection:
            found = dict(
                connection.execute(
                    sa.text("SELECT id, awaiting_staff FROM flasket_ticket ORDER BY id")
                ).all()
            )
            assignees = connection.scalars(sa.text("SELECT assignee_id FROM flasket_ticket"))
            assert set(assignees) == {None}
        # Only #3's last word is staff's; a third user's reply (#4) still waits on staff.
        assert {key: bool(value) for key, value in found.items()} == {
            1: True,
            2: True,
            3: False,
            4: True,
        }
        with db.engine.begin() as connection:
            connection.execute(sa.text("UPDATE flasket_ticket SET assignee_id = 1 WHERE id = 1"))
            if db.engine.dialect.name == "sqlite":
                # SQLite without the foreign keys pragma: the trigger unassigns.
                connection.execute(sa.text('DELETE FROM "user" WHERE id = 1'))
                left = connection.scalar(
                    sa.text("SELECT assignee_id FROM flasket_ticket WHERE id = 1")
                )
                assert left is None
                hits = connection.scalar(
                    sa.text(
                        "SELECT count(*) FROM flasket_ticket_search"
                        " WHERE flasket_ticket_search MATCH 'zeppelin'"
                    )
                )
                assert hits == 4, "the search triggers and index survive the rebuild"

        flask_migrate.downgrade(revision=BEFORE)
        inspector = sa.inspect(db.engine)
        columns = {c["name"] for c in inspector.get_columns("flasket_ticket")}
        assert not {"assignee_id", "awaiting_staff"} & columns
        with db.engine.begin() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM flasket_ticket")) == 4
            if db.engine.dialect.name == "sqlite":
                triggers = set(
                    connection.scalars(
                        sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                    )
                )
                assert {
                    "flasket_user_deleted",
                    "flasket_ticket_deleted",
                    "flasket_ticket_search_insert",
                    "flasket_ticket_search_update",
                    "flasket_ticket_search_delete",
                } <= triggers
                connection.execute(sa.text('DELETE FROM "user" WHERE id = 2'))
                orphans = connection.scalar(
                    sa.text("SELECT count(*) FROM flasket_ticket WHERE author_id = 2")
                )
                assert orphans == 0
                connection.execute(sa.text("DELETE FROM flasket_ticket WHERE id = 2"))
                replies = connection.scalar(
                    sa.text("SELECT count(*) FROM flasket_reply WHERE ticket_id = 2")
                )
                assert replies == 0
        flask_migrate.upgrade()
