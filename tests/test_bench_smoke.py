"""The benchmark still runs: seed a tiny SQLite database, time every page a few times.

Only the shape of the output is checked (every page has a row, query counts are sane and
constant), never timings; and the seeded data is checked against the rules the bench's
staff queues rely on (assignees, staff answers, recently closed tickets), freshly seeded
and after the in-place upgrade of a seeding from before assignment.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench import bench

TICKETS = 200
#: The most statements a page may run (tests/test_query_counts.py); a reply POST writes too.
MOST_STATEMENTS = 10
MOST_STATEMENTS_POST = 20
#: The staff queues, each a page of the bench; the overview counts them all.
QUEUES = ("mine", "unassigned", "waiting_on_staff", "waiting_on_requester", "recently_closed")
NEW_INDEXES = (
    "ix_flasket_ticket_assignee_state_updated",
    "ix_flasket_ticket_assignee_state_id",
    "ix_flasket_ticket_state_awaiting_updated",
    "ix_flasket_ticket_state_closed",
)


def table_rows(output: str) -> dict[str, list[str]]:
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 6 and cells[0] not in ("page", "---"):
            rows[cells[0]] = cells
    return rows


def check_seeded_data(path: Path, plan: bench.Plan) -> None:
    """The seeding (or upgrade) at ``path`` follows the bench's rules for the staff queues."""
    conn = sqlite3.connect(path)
    try:
        staff = dict(conn.execute("SELECT id, username FROM accounts WHERE is_admin"))
        assert staff == dict(zip(bench.STAFF_IDS, bench.STAFF_USERS, strict=True))
        tickets = conn.execute(
            f"SELECT id, state, assignee_id, {bench.AWAITING}, closed_at, follower_count"  # noqa: S608
            " FROM flasket_ticket ORDER BY id"
        ).fetchall()
        assert len(tickets) == plan.tickets
        last_authors = dict(
            conn.execute(
                "SELECT ticket_id, author_id FROM flasket_reply WHERE id IN"
                " (SELECT max(id) FROM flasket_reply GROUP BY ticket_id)"
            )
        )
        follows = dict(
            conn.execute("SELECT ticket_id, count(*) FROM flasket_follow GROUP BY ticket_id")
        )
        recent = (datetime.now(timezone.utc) - timedelta(days=7)).replace(tzinfo=None)
        for number, state, assignee, awaiting, closed_at, followers in tickets:
            closed = state == "closed"
            assert assignee == bench.assignee_of(plan, number, closed), number
            assert bool(awaiting) == (last_authors.get(number) not in staff), number
            assert followers == follows[number], number
            if closed and bench.recently_closed(plan, number):
                assert datetime.fromisoformat(closed_at) >= recent, number
        assignees = [row[2] for row in tickets if row[1] == "open"]
        assert bench.STAFF_ID in assignees, "the bench's staff user has open tickets"
        assert None in assignees, "some open tickets are unassigned"
        assert any(row[3] for row in tickets), "some tickets await staff"
        assert not all(row[3] for row in tickets), "some tickets have staff's answer"
        # Whoever replied follows the ticket, as replying makes them.
        unfollowed = conn.execute(
            "SELECT count(*) FROM flasket_reply r WHERE NOT EXISTS (SELECT 1 FROM"
            " flasket_follow f WHERE f.ticket_id = r.ticket_id AND f.user_id = r.author_id)"
        ).fetchone()[0]
        assert unfollowed == 0
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert set(NEW_INDEXES) <= indexes
    finally:
        conn.close()


def make_it_a_seeding_before_assignment(path: Path) -> None:
    """What a seeding from before assignment looks like: no staff but the bench's, no
    assignees, no staff replies or follows, no new indexes or columns (but ``assignee_id``,
    which SQLite cannot drop: it is a foreign key), closings weeks old."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for index in NEW_INDEXES:
            conn.execute(f"DROP INDEX {index}")
        conn.execute(f"ALTER TABLE flasket_ticket DROP COLUMN {bench.AWAITING}")
        conn.execute("ALTER TABLE flasket_outbox_event DROP COLUMN recipient_key")
        conn.execute("UPDATE flasket_ticket SET assignee_id = NULL")
        conn.execute(
            "UPDATE flasket_reply SET author_id = (SELECT author_id FROM flasket_ticket t"
            " WHERE t.id = flasket_reply.ticket_id) WHERE author_id >= ?",
            (bench.STAFF_ID,),
        )
        conn.execute("DELETE FROM flasket_follow WHERE user_id >= ?", (bench.STAFF_ID,))
        conn.execute(
            "UPDATE flasket_ticket SET follower_count = (SELECT count(*) FROM flasket_follow f"
            " WHERE f.ticket_id = flasket_ticket.id)"
        )
        old = (datetime.now(timezone.utc) - timedelta(days=30)).replace(tzinfo=None)
        conn.execute(
            "UPDATE flasket_ticket SET closed_at = ?, updated_at = ? WHERE state = 'closed'",
            (old.isoformat(" "), old.isoformat(" ")),
        )
        conn.execute("DELETE FROM accounts WHERE id > ?", (bench.STAFF_ID,))
    finally:
        conn.close()


def test_bench_seeds_sqlite_and_prints_a_row_per_page_with_constant_query_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--db", "sqlite", "--tickets", str(TICKETS), "--data-dir", str(tmp_path)]
    assert bench.main([*argv, "--warmup", "1", "--requests", "3"]) == 0
    output = capsys.readouterr().out
    assert "Seeded in" in output
    assert f"{TICKETS:,} tickets" in output

    rows = table_rows(output)
    plan = bench.Plan(TICKETS)
    pages = bench.probes(plan)
    assert sorted(rows) == sorted(page.name for page in pages)
    for page in pages:
        queries = rows[page.name][5]
        assert re.fullmatch(r"\d+", queries), f"{page.name}: query count varies ({queries})"
        most = MOST_STATEMENTS_POST if page.method == "POST" else MOST_STATEMENTS
        if page.user:
            assert 1 <= int(queries) <= most, (page.name, queries)
        elif page.url == "/bench/rows":
            assert int(queries) == 1, "the rows floor reads its 25 tickets in one statement"
        else:
            assert int(queries) == 0, "the floor view touches no database"
    assert "messages received" in output

    # The staff pages: every queue (one also by creation and one deep), both assignee
    # filters, the overview counting the queues and the ticket page's assign control.
    staff_urls = {page.url for page in pages if page.user == bench.STAFF_USER}
    for queue in QUEUES:
        assert f"/ticket/all?queue={queue}" in staff_urls
    assert "/ticket/all?queue=mine&sort=created" in staff_urls
    assert any(re.fullmatch(r"/ticket/all\?queue=\w+&page=\d+", url) for url in staff_urls)
    assert "/ticket/all?assignee=none" in staff_urls
    assert f"/ticket/all?assignee={bench.STAFF_IDS[1]}" in staff_urls
    assert {"/ticket/", f"/ticket/{plan.sample_ticket}"} <= staff_urls
    database = tmp_path / f"flasket_bench_{TICKETS}.sqlite"
    check_seeded_data(database, plan)

    # A second run re-uses the seeded file instead of seeding again.
    assert bench.main([*argv, "--warmup", "0", "--requests", "1", "--only", "floor"]) == 0
    assert "re-used database" in capsys.readouterr().out

    # A seeding from before assignment is brought up to date in place, and its queues run.
    make_it_a_seeding_before_assignment(database)
    assert bench.main([*argv, "--warmup", "0", "--requests", "1", "--only", "queue"]) == 0
    output = capsys.readouterr().out
    assert f"adding the column flasket_ticket.{bench.AWAITING}" in output
    assert "adding staff members" in output
    assert "re-dating" in output  # the seed's closings are a month old now
    for index in NEW_INDEXES:
        assert f"creating the index {index}" in output
    upgraded = table_rows(output)
    assert sorted(upgraded) == sorted(page.name for page in pages if "queue" in page.name)
    assert all(re.fullmatch(r"\d+", row[5]) for row in upgraded.values())
    check_seeded_data(database, plan)


def test_the_seed_rules_read_the_same_in_sql(tmp_path: Path) -> None:
    """The upgrade computes in SQL what the seeding computes in Python."""
    plan = bench.Plan(20_000)
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE flasket_ticket (id INTEGER PRIMARY KEY, state TEXT)")
        numbers = [*range(1, 3000), *range(plan.tickets - 3000, plan.tickets + 1)]
        conn.executemany(
            "INSERT INTO flasket_ticket VALUES (?, ?)",
            [(n, "closed" if n % 3 == 0 else "open") for n in numbers],
        )
        found = conn.execute(
            f"SELECT id, state, {bench.assignee_sql(plan)}, {bench.recently_closed_sql(plan)}"  # noqa: S608
            " FROM flasket_ticket ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    for number, state, assignee, recent in found:
        assert assignee == bench.assignee_of(plan, number, state == "closed"), number
        assert bool(recent) == bench.recently_closed(plan, number), number
    shares = [bench.assignee_of(plan, n, False) for n in range(1, plan.tickets + 1)]
    assert 0.38 < shares.count(None) / len(shares) < 0.42
    assert 0.004 < shares.count(bench.STAFF_ID) / len(shares) < 0.007
