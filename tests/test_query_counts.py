"""List pages and the ticket page run a fixed number of SQL statements, helped by indexes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.helpers import Client, counting_queries, ext_models, text, words
from tests.hostapp import User, db

SMALL, LARGE = 5, 50
#: Most statements any page may run, the host's user loader included.
MOST_STATEMENTS = 10
URGENCIES = ("Low", "Medium", "High")
TOPICS = ("Question", "Bug report", "Account")

PAGES = [
    "/ticket/",
    "/ticket/index",
    "/ticket/all",
    "/ticket/all?page=2&per_page=2",
    "/ticket/all?status=closed",
    "/ticket/all?status=all&sort=created",
    "/ticket/all?status=all&sort=oldest",
    "/ticket/all?urgency=High&topic=Account",
    "/ticket/all?author=alice",
    "/ticket/all?author=ALICE",
    "/ticket/all?q=PRINTER",
    "/ticket/all?status=all&q=printer&application=Website&author=alice&sort=created",
    "/ticket/user/1",
    "/ticket/user/1?per_page=2&page=2",
    "/ticket/user/1?show=following",
    "/ticket/user/1?show=following&per_page=2&page=2",
    "/ticket/user/1?show=replies",
    "/ticket/user/1?show=replies&per_page=2&page=2",
    "/ticket/{ticket}",
    "/ticket/{ticket}?page=1",
]


def seed(app: Flask, size: int) -> int:
    """``size`` tickets, each with ``size`` replies and ``size`` distinct followers.

    Returns the id of a ticket alice wrote. Rows go in as bulk inserts.
    """
    models = ext_models(app)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with app.app_context():
        db.session.execute(
            sa.insert(User),
            [{"username": f"user{n}", "email": f"user{n}@example.test"} for n in range(size)],
        )
        users = dict(db.session.execute(sa.select(User.username, User.id)).all())
        crowd = [users["alice"]] + [users[f"user{n}"] for n in range(size - 1)]
        tickets = []
        for n in range(size):
            closed = n % 4 == 3
            created = start + timedelta(hours=n)
            tickets.append(
                {
                    "title": f"Ticket {n}" if n % 2 else f"Printer problem {n}",
                    "body": f"Body of ticket {n}",
                    "status": "closed" if closed else "open",
                    "created_at": created,
                    "updated_at": created + timedelta(minutes=size),
                    "closed_at": created + timedelta(minutes=size) if closed else None,
                    "closed_by_id": users["admin"] if closed else None,
                    "author_id": users["bob"] if n % 2 else users["alice"],
                    "reply_count": size,
                    "follower_count": size,
                }
            )
        db.session.execute(sa.insert(models.Ticket), tickets)
        ticket_ids: list[int] = list(
            db.session.scalars(sa.select(models.Ticket.id).order_by(models.Ticket.id))
        )
        categories, replies, follows = [], [], []
        for n, ticket_id in enumerate(ticket_ids):
            created = start + timedelta(hours=n)
            categories += [
                {"ticket_id": ticket_id, "name": "urgency", "value": URGENCIES[n % 3]},
                {"ticket_id": ticket_id, "name": "application", "value": "Website"},
                {"ticket_id": ticket_id, "name": "topic", "value": TOPICS[n % 3]},
            ]
            replies += [
                {
                    "ticket_id": ticket_id,
                    "author_id": crowd[r],
                    "body": f"Reply {r} to ticket {n}",
                    "created_at": created + timedelta(minutes=r + 1),
                }
                for r in range(size)
            ]
            follows += [
                {"ticket_id": ticket_id, "user_id": crowd[f], "created_at": created}
                for f in range(size)
            ]
        db.session.execute(sa.insert(models.TicketCategory), categories)
        db.session.execute(sa.insert(models.Reply), replies)
        db.session.execute(sa.insert(models.Follow), follows)
        db.session.commit()
        return ticket_ids[0]


def clear(app: Flask) -> None:
    """Remove everything :func:`seed` added, keeping the fixture's four users."""
    models = ext_models(app)
    with app.app_context():
        for model in (models.Follow, models.Reply, models.TicketCategory, models.Ticket):
            db.session.execute(sa.delete(model))
        db.session.execute(sa.delete(User).where(User.username.like("user%")))
        db.session.commit()


def statements_for(app: Flask, client: Client, url: str) -> list[str]:
    """The statements of a request of ``url`` after a first one (which may fill the app's
    caches, such as PostgreSQL's word statistics for search)."""
    client.get(url)
    with counting_queries(app) as statements:
        response = client.get(url)
    assert response.status_code == 200, url
    return list(statements)


@pytest.mark.parametrize("url", PAGES)
def test_page_runs_the_same_number_of_statements_whatever_the_size(
    app: Flask, alice: Client, url: str
) -> None:
    counts = {}
    for size in (SMALL, LARGE):
        ticket_id = seed(app, size)
        statements = statements_for(app, alice, url.format(ticket=ticket_id))
        counts[size] = len(statements)
        assert any("FROM accounts" in s for s in statements), "the user loader is not counted"
        clear(app)
    assert counts[SMALL] == counts[LARGE], counts
    assert counts[LARGE] <= MOST_STATEMENTS, counts


def test_ticket_page_with_many_replies_and_followers_shows_them_all_without_extra_queries(
    app: Flask, alice: Client
) -> None:
    ticket_id = seed(app, LARGE)
    with counting_queries(app) as statements:
        page = alice.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    assert page.count('<li id="reply-') == LARGE
    assert f"Followers ({LARGE})" in page
    assert len(statements) <= MOST_STATEMENTS


def index_columns(app: Flask, table: str) -> list[list[str | None]]:
    with app.app_context():
        found = sa.inspect(db.engine).get_indexes(table)
        primary = sa.inspect(db.engine).get_pk_constraint(table)["constrained_columns"]
    return [list(index["column_names"]) for index in found] + [list(primary)]


@pytest.mark.parametrize(
    ("table", "leading"),
    [
        # "Newest" and "oldest" sort by id, which grows with creation time.
        # Open and closed lists filter on the kind (state); the list of one status on status.
        ("flasket_ticket", ["state", "updated_at", "id"]),
        ("flasket_ticket", ["state", "id"]),
        ("flasket_ticket", ["status", "updated_at", "id"]),
        ("flasket_ticket", ["status", "id"]),
        ("flasket_ticket", ["updated_at", "id"]),
        ("flasket_ticket", ["id"]),
        ("flasket_ticket", ["author_id", "updated_at", "id"]),
        ("flasket_ticket", ["author_id", "state"]),
        ("flasket_reply", ["ticket_id"]),
        ("flasket_reply", ["author_id"]),
        ("flasket_follow", ["user_id"]),
        ("flasket_follow", ["ticket_id"]),
        ("flasket_ticket_category", ["name", "value"]),
        ("flasket_outbox", ["status", "next_attempt_at"]),
    ],
)
def test_an_index_leads_with_the_columns_pages_filter_and_sort_on(
    app: Flask, table: str, leading: list[str]
) -> None:
    indexes = index_columns(app, table)
    assert any(columns[: len(leading)] == leading for columns in indexes), indexes


@contextmanager
def capturing_statements(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    captured: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        captured.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield captured
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def query_plan(app: Flask, statement: str, parameters: Any) -> list[str]:
    with app.app_context():
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return [str(row[-1]) for row in cursor.fetchall()]
        finally:
            connection.close()


def require_sqlite(app: Flask) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL has its own test below")


def postgresql_plan(app: Flask, statement: str, parameters: Any) -> list[str]:
    """PostgreSQL's plan with sequential scans priced out: an index shows if one can serve."""
    with app.app_context():
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + statement, parameters)
            return [str(row[0]).strip() for row in cursor.fetchall()]
        finally:
            connection.rollback()
            connection.close()


def test_open_tickets_by_recent_update_are_read_through_an_index(
    app: Flask, alice: Client
) -> None:
    require_sqlite(app)
    seed(app, LARGE)
    with capturing_statements(app) as captured:
        assert alice.get("/ticket/all?status=open&sort=updated").status_code == 200
    main = [
        (statement, parameters)
        for statement, parameters in captured
        if "ORDER BY flasket_ticket.updated_at DESC" in statement
        and not suggests_authors(statement)
    ]
    assert len(main) == 1, [statement for statement, _ in captured]
    plan = query_plan(app, *main[0])
    ticket_steps = [step for step in plan if re.search(r"\bflasket_ticket\b(?!_)", step)]
    assert ticket_steps, plan
    assert all(" USING " in step and "INDEX" in step for step in ticket_steps), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def suggests_authors(statement: str) -> bool:
    """The author filter's suggestions: names of the authors of the latest updated tickets."""
    return "SELECT DISTINCT accounts.username" in statement


@pytest.mark.parametrize("url", PAGES)
def test_no_page_reads_a_whole_flasket_table_without_an_index(
    app: Flask, alice: Client, url: str
) -> None:
    require_sqlite(app)
    ticket_id = seed(app, LARGE)
    with capturing_statements(app) as captured:
        assert alice.get(url.format(ticket=ticket_id)).status_code == 200
    for statement, parameters in captured:
        plan = query_plan(app, statement, parameters)
        full_scans = [step for step in plan if re.fullmatch(r"SCAN flasket_\w+", step)]
        # Walking the table in primary-key order up to a LIMIT reads only one page of rows.
        if walks_primary_key_to_a_limit(statement, plan):
            full_scans = []
        assert not full_scans, (statement, plan)


def walks_primary_key_to_a_limit(statement: str, plan: list[str]) -> bool:
    ordered_by_id = re.search(r"ORDER BY flasket_ticket\.id (ASC|DESC)\s+LIMIT", statement)
    return bool(ordered_by_id) and not any("TEMP B-TREE" in step for step in plan)


def test_a_tickets_followers_are_read_in_index_order(app: Flask, alice: Client) -> None:
    require_sqlite(app)
    ticket_id = seed(app, LARGE)
    with capturing_statements(app) as captured:
        assert alice.get(f"/ticket/{ticket_id}").status_code == 200
    (followers,) = [
        (statement, parameters)
        for statement, parameters in captured
        if "JOIN flasket_follow" in statement and "LIMIT" in statement
    ]
    plan = query_plan(app, *followers)
    assert any(step.startswith("SEARCH flasket_follow USING") for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_postgresql_reads_pages_through_indexes(app: Flask, alice: Client, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("EXPLAIN output differs by database; SQLite's plans are checked above")
    ticket_id = seed(app, LARGE)
    with capturing_statements(app) as captured:
        assert alice.get("/ticket/all?status=open&sort=updated").status_code == 200
        assert alice.get(f"/ticket/{ticket_id}").status_code == 200
    ordered = [
        c
        for c in captured
        if "ORDER BY flasket_ticket.updated_at DESC" in c[0] and not suggests_authors(c[0])
    ]
    followers = [c for c in captured if "JOIN flasket_follow" in c[0] and "LIMIT" in c[0]]
    assert len(ordered) == len(followers) == 1, [statement for statement, _ in captured]

    plan = postgresql_plan(app, *ordered[0])
    assert any(
        re.search(r"Index (Only )?Scan (Backward )?using ix_flasket_ticket_state_updated", step)
        for step in plan
    ), plan
    assert not any("Seq Scan on flasket_" in step for step in plan), plan

    plan = postgresql_plan(app, *followers[0])
    by_index = r"Index (Only )?Scan .*\bix_flasket_follow_"
    assert any(re.search(by_index, step) for step in plan), plan
    assert not any("Seq Scan on flasket_" in step for step in plan), plan


def test_postgresql_knows_each_category_value_belongs_to_one_name(
    app: Flask, backend: str
) -> None:
    """The extended statistics (models.CATEGORY_STATISTICS) fix the planner's row estimate.

    Taking ``name`` and ``value`` for independent columns, PostgreSQL would expect a third of
    the real rows for ``topic = Account``; with two such filters it then joins every match.
    """
    if backend != "postgresql":
        pytest.skip("extended statistics are PostgreSQL's")
    seed(app, LARGE)
    category = ext_models(app).TicketCategory
    with app.app_context():
        db.session.execute(sa.text("ANALYZE flasket_ticket_category"))
        wanted = (category.name == "topic", category.value == "Account")
        actual = db.session.scalar(sa.select(sa.func.count()).where(*wanted))
        statement = sa.select(category.ticket_id).where(*wanted)
        compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        [[plan]] = db.session.execute(sa.text(f"EXPLAIN (FORMAT JSON) {compiled}")).one()
        db.session.rollback()
    estimated = plan["Plan"]["Plan Rows"]
    assert actual == LARGE // 3
    assert actual / 1.5 <= estimated <= actual * 1.5, (estimated, actual)


# The staff's pages: queues, the assignee filter, the bulk form and the assign control

#: Staff pages; ``{admin}`` is the admin's key, ``{ticket}`` a ticket alice wrote.
STAFF_PAGES = [
    "/ticket/",
    "/ticket/all",
    "/ticket/all?queue=mine",
    "/ticket/all?queue=unassigned",
    "/ticket/all?queue=waiting_on_staff",
    "/ticket/all?queue=waiting_on_requester",
    "/ticket/all?queue=recently_closed",
    "/ticket/all?queue=waiting_on_staff&page=2&per_page=1",
    "/ticket/all?queue=waiting_on_staff&urgency=High&sort=oldest",
    "/ticket/all?assignee=none",
    "/ticket/all?assignee={admin}&status=all",
    "/ticket/all?queue=mine&q=printer",
    "/ticket/{ticket}",
]


def seed_desk(app: Flask, size: int) -> int:
    """:func:`seed`, then staff at work: every seeded user is staff; a third of the tickets
    are the admin's, a third each another staff member's, some wait on their requester, and
    the closed ones were closed in the last ten days."""
    ticket_id = seed(app, size)
    models = ext_models(app)
    ticket = models.Ticket
    now = datetime.now(timezone.utc)
    with app.app_context():
        db.session.execute(
            sa.update(User).where(User.username.like("user%")).values(is_admin=True)
        )
        staff = list(db.session.scalars(sa.select(User.id).where(User.username.like("user%"))))
        admin = db.session.scalars(sa.select(User.id).filter_by(username="admin")).one()
        ids = list(db.session.scalars(sa.select(ticket.id).order_by(ticket.id)))
        for n, number in enumerate(ids):
            closed = n % 4 == 3
            values: dict[str, Any] = {
                "assignee_id": [None, admin, staff[n % len(staff)]][n % 3],
                "state": "closed" if closed else "open",
                "closed_at": now - timedelta(days=n % 10) if closed else None,
            }
            if n % 4 == 1:
                values["status"] = "waiting"
            db.session.execute(sa.update(ticket).where(ticket.id == number).values(**values))
        db.session.commit()
    return ticket_id


def admin_key(app: Flask) -> str:
    with app.app_context():
        return str(db.session.scalars(sa.select(User.id).filter_by(username="admin")).one())


@pytest.mark.parametrize("url", STAFF_PAGES)
def test_staff_page_runs_the_same_number_of_statements_whatever_the_size(
    app: Flask, admin: Client, url: str
) -> None:
    counts, shown = {}, {}
    for size in (SMALL, LARGE):
        ticket_id = seed_desk(app, size)
        page = url.format(ticket=ticket_id, admin=admin_key(app))
        statements = statements_for(app, admin, page)
        counts[size] = len(statements)
        # The page shows what these statements are for: tickets, or the ticket's controls.
        body = admin.get(page).get_data(as_text=True)
        shown[size] = len(re.findall(r'href="/ticket/\d+"', body))
        shown[size] += body.count('id="flasket-assignee"')
        clear(app)
    assert counts[SMALL] == counts[LARGE], counts
    assert counts[LARGE] <= MOST_STATEMENTS, counts
    assert shown[LARGE] > 0, "the page showed nothing to count statements for"


def test_the_staff_overview_counts_every_queue_in_the_statement_of_its_other_counts(
    app: Flask, admin: Client, alice: Client
) -> None:
    seed_desk(app, SMALL)
    staff = statements_for(app, admin, "/ticket/")
    counted = [s for s in staff if "mine_open" in s]
    assert len(counted) == 1, staff
    for name in ("queue_mine", "queue_unassigned", "queue_waiting_on_staff"):
        assert name in counted[0], name
    assert not any("queue_" in s for s in staff if s is not counted[0])
    # Everyone else's overview counts no queue.
    others = statements_for(app, alice, "/ticket/")
    assert [s for s in others if "mine_open" in s]
    assert not any("queue_" in s for s in others)


@pytest.mark.parametrize(
    ("url", "listed", "count"),
    [
        ("/ticket/all?per_page=2", 2, "1\N{EN DASH}2 of 5 open tickets"),
        ("/ticket/all?per_page=3&page=2", 2, "4\N{EN DASH}5 of 5 open tickets"),
        ("/ticket/all?status=all&per_page=4&page=2", 1, "5\N{EN DASH}5 of 5 tickets"),
        ("/ticket/all?status=closed", 0, "There are no closed tickets."),
    ],
)
def test_a_list_reads_its_page_and_its_count_in_one_statement(
    app: Flask, alice: Client, url: str, listed: int, count: str
) -> None:
    seed(app, SMALL)  # 5 open tickets
    statements = statements_for(app, alice, url)
    counting = [s for s in statements if "count(" in s.lower()]
    assert len(counting) == 1, statements
    assert "flasket_ticket.title" in counting[0]  # the page's rows, in the same statement
    response = alice.get(url)
    assert len(re.findall(r'href="/ticket/\d+"', text(response))) == listed
    assert count in words(response)


@pytest.mark.parametrize(
    "url", ["/ticket/all?per_page=2&page=4", "/ticket/all?status=closed&page=2"]
)
def test_a_page_past_the_end_of_a_list_is_not_found(app: Flask, alice: Client, url: str) -> None:
    seed(app, SMALL)
    response = alice.get(url)
    assert response.status_code == 404
    assert "There is no page" in words(response)
