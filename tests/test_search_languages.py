"""Search in every language, and in replies, on every database (flasket/search.py).

Case and accents are folded the same way on SQLite, PostgreSQL and MariaDB, whatever the
database's locale; a ticket matches when each word is in its text or in one of its
replies; a reply never shows a ticket its reader may not read; the indexes follow every
write (SQLite's FTS5 tables by triggers).
"""

# Cyrillic and Greek capitals that look like Latin ones are the point of these tests.
# ruff: noqa: RUF001
from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import search
from flasket.search_index import SQLITE_SEARCH_TABLES, sqlite_search_ddl
from tests.helpers import Client, counting_queries, ext_models
from tests.hostapp import User, db

TICKET_LINK = re.compile(r'class="flasket-ticket-link" href="/ticket/(\d+)"')


def found_by(client: Client, query: str) -> list[int]:
    """The tickets a search for ``query`` lists (every status, newest first)."""
    page = client.get(f"/ticket/all?status=all&sort=created&q={quote(query)}")
    assert page.status_code == 200
    return [int(found) for found in TICKET_LINK.findall(page.get_data(as_text=True))]


def add_ticket(app: Flask, author: str, title: str, body: str = "Nothing special.") -> int:
    models = ext_models(app)
    with app.app_context():
        author_id = db.session.scalar(sa.select(User.id).filter_by(username=author))
        ticket = models.Ticket(author_id=author_id, title=title, body=body)
        db.session.add(ticket)
        db.session.commit()
        return int(ticket.id)


def add_reply(app: Flask, ticket_id: int, author: str, body: str) -> int:
    models = ext_models(app)
    with app.app_context():
        author_id = db.session.scalar(sa.select(User.id).filter_by(username=author))
        reply = models.Reply(ticket_id=ticket_id, author_id=author_id, body=body)
        db.session.add(reply)
        db.session.commit()
        return int(reply.id)


#: (what the ticket says, queries that find it): case, accents, and normal forms.
PAIRS = [
    ("Élan vital", ("élan", "ÉLAN", "Élan", "elan", "e\u0301lan", "E\u0301LAN")),
    (unicodedata.normalize("NFD", "Crème brûlée"), ("crème", "CRÈME", "creme", "brûlée")),
    ("Die Straße ist gesperrt", ("straße", "STRASSE", "Strasse", "STRAẞE")),
    ("DIE STRASSE IST NASS", ("straße", "strasse")),
    ("İstanbul office", ("istanbul", "İSTANBUL", "i̇stanbul")),
    ("ΣΟΦΟΣ ΑΝΘΡΩΠΟΣ", ("σοφος", "σοφοσ", "Σοφός", "ανθρωπος")),
    ("σοφός άνθρωπος", ("Σοφός", "ΆΝΘΡΩΠΟΣ")),
    ("ПРИВЕТ из Москвы", ("привет", "Привет", "москвы", "МОСКВ")),
    ("Ошибка при входе", ("ОШИБКА", "ошибк")),
    ("東京都の天気が悪い", ("東京", "天気", "天気が")),
]


@pytest.mark.parametrize(("text", "queries"), PAIRS, ids=[pair[0] for pair in PAIRS])
def test_search_folds_case_accents_and_normal_forms_in_every_script(
    app: Flask, alice: Client, text: str, queries: tuple[str, ...]
) -> None:
    in_title = add_ticket(app, "bob", text)
    in_body = add_ticket(app, "bob", "Ticket", body=f"Seen: {text}.")
    add_ticket(app, "bob", "Unrelated", body="Coffee machine, cafe, printer.")

    found = {query: found_by(alice, query) for query in queries}
    assert found == {query: [in_body, in_title] for query in queries}


def test_search_of_an_unspaced_script_does_not_match_other_text(app: Flask, alice: Client) -> None:
    add_ticket(app, "bob", "東京都の天気が悪い")
    assert found_by(alice, "大阪") == []
    assert found_by(alice, "天気 printer") == []


def test_search_finds_a_word_written_only_in_a_reply(app: Flask, alice: Client) -> None:
    ticket = add_ticket(app, "bob", "Printer jam", body="Paper stuck.")
    other = add_ticket(app, "bob", "Printer toner", body="Empty.")
    add_reply(app, ticket, "alice", "Fixed it with a screwdriver, über-easy: Zürich style.")

    assert found_by(alice, "screwdriver") == [ticket]
    assert found_by(alice, "SCREWDRIV") == [ticket]
    assert found_by(alice, "zurich") == [ticket]
    assert found_by(alice, "ÜBER") == [ticket]
    # Each word in the ticket or in a reply: one in the title, the other in the reply.
    assert found_by(alice, "printer screwdriver") == [ticket]
    assert found_by(alice, "printer") == [other, ticket]
    assert found_by(alice, "toner screwdriver") == []


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}], indirect=True)
def test_a_reply_on_a_ticket_the_reader_may_not_read_finds_nothing(
    app: Flask, alice: Client, bob: Client
) -> None:
    bobs = add_ticket(app, "bob", "Bob's private ticket")
    add_reply(app, bobs, "bob", "The vault combination is marmalade.")
    alices = add_ticket(app, "alice", "Alice's ticket", body="Marmalade for breakfast.")

    page = alice.get("/ticket/all?status=all&q=marmalade").get_data(as_text=True)
    assert [int(found) for found in TICKET_LINK.findall(page)] == [alices]
    assert "vault" not in page
    assert "private" not in page
    assert found_by(alice, "vault") == []
    assert found_by(bob, "vault") == [bobs]


def test_the_index_follows_replies_added_and_edited_and_tickets_deleted(
    app: Flask, alice: Client
) -> None:
    models = ext_models(app)
    ticket = add_ticket(app, "bob", "Heating", body="Cold office.")
    reply = add_reply(app, ticket, "bob", "Radiator valve stuck.")
    assert found_by(alice, "radiator") == [ticket]

    with app.app_context():
        db.session.execute(
            sa.update(models.Reply).where(models.Reply.id == reply).values(body="Boiler fixed.")
        )
        db.session.execute(
            sa.update(models.Ticket).where(models.Ticket.id == ticket).values(title="Warmth")
        )
        db.session.commit()
    assert found_by(alice, "radiator") == []
    assert found_by(alice, "heating") == []
    assert found_by(alice, "boiler") == [ticket]
    assert found_by(alice, "warmth") == [ticket]

    with app.app_context():
        db.session.execute(sa.delete(models.Reply).where(models.Reply.ticket_id == ticket))
        db.session.execute(sa.delete(models.Ticket).where(models.Ticket.id == ticket))
        db.session.commit()
    assert found_by(alice, "boiler") == []
    assert found_by(alice, "warmth") == []
    newer = add_ticket(app, "bob", "Warmth again")
    assert found_by(alice, "warmth") == [newer]


def test_a_reply_posted_through_the_page_is_found(app: Flask, alice: Client) -> None:
    ticket = alice.submit(title="Projector", body="No signal.")
    assert alice.reply(ticket, "Tried the HDMI-Kabel, ça marche.").status_code == 303
    assert found_by(alice, "kabel") == [ticket]
    assert found_by(alice, "ÇA") == [ticket]


def test_a_query_without_letters_or_digits_is_a_literal_substring_of_tickets_and_replies(
    app: Flask, alice: Client
) -> None:
    ticket = add_ticket(app, "bob", "Disk", body="Nearly full.")
    add_reply(app, ticket, "bob", "Now at 100% (again).")
    add_ticket(app, "bob", "Disk 100 files")
    assert found_by(alice, "%") == [ticket]
    assert found_by(alice, "% (") == [ticket]
    assert found_by(alice, "_") == []


def test_a_search_takes_the_same_statements_with_words_in_replies(
    app: Flask, alice: Client
) -> None:
    ticket = add_ticket(app, "bob", "Printer jam")
    add_reply(app, ticket, "bob", "Sorted, Grüße.")
    alice.get("/ticket/all?q=warm")
    counts = []
    for query in ("printer", "grüsse", "printer GRÜSSE", "東京", "%"):
        with counting_queries(app) as statements:
            alice.get(f"/ticket/all?q={quote(query)}")
        counts.append(len(statements))
    # The user, SQLite's FTS5 counts (PostgreSQL's statistics were read by the first search),
    # the page, and on SQLite the categories of what it lists.
    assert counts[:3] == [counts[0]] * 3, counts
    assert max(counts) <= 4, counts


def test_postgresql_reads_its_word_statistics_once_per_period(
    app: Flask, backend: str, alice: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's index statistics")
    add_ticket(app, "bob", "Printer jam")

    def reads_statistics(query: str) -> bool:
        with counting_queries(app) as statements:
            assert alice.get(f"/ticket/all?q={quote(query)}").status_code == 200
        return any("pg_stats" in statement for statement in statements)

    assert reads_statistics("printer")
    assert not reads_statistics("jam")
    assert not reads_statistics("printer jam")
    monkeypatch.setattr(search, "STATISTICS_TTL", 0.0)
    assert reads_statistics("printer")


def test_word_statistics_add_the_shares_of_every_word_a_prefix_starts() -> None:
    ordered = sorted(
        [
            ("error", 0.2),
            ("error", 0.1),
            ("errors", 0.05),
            ("straße", 0.01),
            ("strasse", 0.02),
            ("zeppelin", 0.001),
        ]
    )
    statistics = search.WordStatistics(
        words=tuple(word for word, _ in ordered),
        shares=tuple(share for _, share in ordered),
        read_at=0.0,
    )
    assert statistics.share(["error"]) == pytest.approx(0.35)
    assert statistics.share(["errors"]) == pytest.approx(0.05)
    assert statistics.share(["err", "error"]) == pytest.approx(0.35)
    assert statistics.share(["straße", "strasse"]) == pytest.approx(0.03)
    assert statistics.share(["quokka"]) == 0.0
    assert statistics.share(["zeppelins"]) == 0.0


def test_words_are_folded_the_same_way_as_the_indexes_fold_text() -> None:
    assert search.words("Élan E\u0301LAN ΣΟΦΟΣ İstanbul Straße foo_bar") == [
        "elan",
        "elan",
        "σοφοσ",
        "istanbul",
        "straße",
        "foo",
        "bar",
    ]
    assert search.spellings("straße") == ["straße", "strasse"]
    assert search.spellings("strasse") == ["strasse", "straße"]
    assert search.spellings("printer") == ["printer"]
    assert search.is_unspaced("東京")
    assert not search.is_unspaced("tokyo")


def test_sqlite_search_tables_are_created_and_filled_by_triggers(app: Flask, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("FTS5 is SQLite's")
    ticket = add_ticket(app, "bob", "Élan", body="Body")
    add_reply(app, ticket, "bob", "Réponse")
    with app.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
        assert set(SQLITE_SEARCH_TABLES) <= tables
        for name in SQLITE_SEARCH_TABLES:
            # FTS5's own check: the index matches the rows of the table it reads.
            check = f"INSERT INTO {name}({name}) VALUES ('integrity-check')"  # noqa: S608
            db.session.execute(sa.text(check))
        triggers = set(
            db.session.scalars(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        )
    assert {f"{name}_{event}" for name in SQLITE_SEARCH_TABLES for event in EVENTS} <= triggers
    assert all("IF NOT EXISTS" in statement for statement in sqlite_search_ddl(*SQLITE_NAMES))


EVENTS = ("insert", "delete", "update")
SQLITE_NAMES = ("flasket_reply_search",)


def test_postgresql_folds_without_the_databases_locale(app: Flask, backend: str) -> None:
    """The index expression lowercases with ICU's root locale, not the database's lc_ctype:
    under a "C" collation lower('É') is 'É', but the document still holds 'elan'."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's documents")
    with app.app_context():
        document = db.session.scalar(
            sa.text(
                "SELECT "  # noqa: S608 - Flasket's expression, the test's literals
                + search.postgresql_document()
                .compile(dialect=db.engine.dialect)
                .string.replace("flasket_ticket.title", "x.title")
                .replace("flasket_ticket.body", "x.body")
                + " FROM (SELECT 'ÉLAN ΣΟΦΟΣ' COLLATE \"C\" AS title,"
                " 'ПРИВЕТ' COLLATE \"C\" AS body) AS x"
            )
        )
        c_lower = db.session.scalar(sa.text("SELECT lower('É' COLLATE \"C\")"))
    assert c_lower == "É"
    assert document == "'elan':1 'σοφοσ':2 'привет':3"


def _plan(app: Flask, statement: Any) -> list[str]:
    compiled = statement.compile(dialect=db.engine.dialect)
    with db.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        plan = connection.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
        return [str(row[0]) for row in plan]


def test_postgresql_rare_words_read_both_gin_indexes(app: Flask, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the GIN indexes are PostgreSQL's")
    ticket = add_ticket(app, "bob", "Élan")
    add_reply(app, ticket, "bob", "Réponse")
    models = ext_models(app)
    with app.app_context():
        session: Any = db.session
        condition = search.matches("postgresql", models, "élan", session)
        steps = _plan(app, sa.select(models.Ticket.id).where(condition))
    assert any("Bitmap Index Scan on ix_flasket_ticket_search" in step for step in steps), steps
    assert any("Bitmap Index Scan on ix_flasket_reply_search" in step for step in steps), steps


def test_search_index_rebuild_fills_the_search_tables_of_an_older_sqlite_database(
    app: Flask, alice: Client, backend: str
) -> None:
    ticket = add_ticket(app, "bob", "Élan", body="Body")
    add_reply(app, ticket, "bob", "Réponse marmalade")
    if backend == "sqlite":
        # A database from before search tables: none, and no triggers.
        with app.app_context():
            for name in SQLITE_SEARCH_TABLES:
                db.session.execute(sa.text(f"DROP TABLE {name}"))
                for event in EVENTS:
                    db.session.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}_{event}"))
            db.session.commit()

    result = app.test_cli_runner().invoke(args=["flasket", "search-index", "--rebuild"])

    assert result.exit_code == 0, result.output
    assert ("Rebuilt" in result.output) == (backend == "sqlite")
    assert found_by(alice, "marmalade") == [ticket]
    later = add_ticket(app, "bob", "Élan again")
    assert found_by(alice, "elan") == [later, ticket]


def _sqlite_plan(statement: Any) -> list[str]:
    compiled = statement.compile(dialect=db.engine.dialect)
    with db.engine.connect() as connection:
        plan = connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + str(compiled), tuple(compiled.params.values())
        )
        return [str(row[3]) for row in plan]


def test_sqlite_reads_a_common_word_in_list_order_and_a_rare_one_from_its_index(
    app: Flask, backend: str
) -> None:
    """A common word is checked ticket by ticket down the list's index (no sort of every
    match); a rare one reads its tickets from the FTS5 tables, then sorts those few."""
    if backend != "sqlite":
        pytest.skip("FTS5 is SQLite's")
    for number in range(20):
        ticket = add_ticket(app, "bob", f"Printer {number}")
        add_reply(app, ticket, "bob", "Toner ordered.")
    models = ext_models(app)
    ticket = models.Ticket
    plans, statements = {}, {}
    with app.app_context():
        for query in ("printer toner", "zeppelin"):
            session: Any = db.session
            condition = search.matches("sqlite", models, query, session)
            listed = (
                sa.select(ticket.id)
                .where(ticket.state == "open", condition)
                .order_by(ticket.updated_at.desc(), ticket.id.desc())
                .limit(25)
            )
            plans[query] = _sqlite_plan(listed)
            statements[query] = str(listed.compile(dialect=db.engine.dialect))
    common = plans["printer toner"]
    assert any("INDEX ix_flasket_ticket_state_updated (state=?)" in step for step in common), (
        common
    )
    assert not any("FOR ORDER BY" in step for step in common), common
    # The rare word's tickets may be looked up by number (on 20 tickets SQLite may not).
    assert "(+ flasket_ticket.id) IN" in statements["printer toner"]
    assert "(+ flasket_ticket.id) IN" not in statements["zeppelin"]
    assert "flasket_ticket.id IN (SELECT flasket_ticket_search.rowid" in statements["zeppelin"]


def test_sqlite_finds_a_common_word_beyond_the_newest_tickets_and_replies(
    app: Flask, alice: Client, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A common word's matches are read for the newest tickets first (search.SQLITE_RECENT);
    older tickets, and older replies of any ticket, are still found."""
    if backend != "sqlite":
        pytest.skip("FTS5 is SQLite's")
    monkeypatch.setattr(search, "SQLITE_RECENT", 1)
    oldest = add_ticket(app, "bob", "Printer jam")
    replied = add_ticket(app, "bob", "Scanner")
    add_reply(app, replied, "bob", "The printer too.")
    add_reply(app, replied, "bob", "Fixed.")
    newest = add_ticket(app, "bob", "Printer again")
    add_ticket(app, "bob", "Coffee")

    assert found_by(alice, "printer") == [newest, replied, oldest]
    assert found_by(alice, "printer fixed") == [replied]


def test_postgresql_finds_the_same_tickets_in_list_order_as_through_the_indexes(
    app: Flask, backend: str
) -> None:
    """A common word's check, ticket by ticket (no session: no statistics read), finds what a
    rare word's reading of the GIN indexes finds, for ASCII and other text, in replies too."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's two ways to search")
    elan = add_ticket(app, "bob", "Élan vital", body="Crème brûlée.")
    printer = add_ticket(app, "bob", "Printer jam", body="Paper stuck.")
    add_reply(app, printer, "bob", "Fixed in Zürich with a SCREWDRIVER.")
    greek = add_ticket(app, "bob", "ΣΟΦΟΣ", body="Die Straße.")
    add_ticket(app, "bob", "Plain words", body="Nothing else.")
    models = ext_models(app)
    ticket = models.Ticket
    expected = {
        "élan": [elan],
        "CREME": [elan],
        "printer": [printer],
        "zurich": [printer],
        "screwdriv": [printer],
        "printer zürich": [printer],
        "σοφος": [greek],
        "strasse": [greek],
        "paper élan": [],
    }
    with app.app_context():
        session: Any = db.session
        found = {}
        for query in expected:
            ways = []
            for each in (None, session):
                condition = search.matches("postgresql", models, query, each)
                ids = db.session.scalars(sa.select(ticket.id).where(condition).order_by(ticket.id))
                ways.append(list(ids))
            found[query] = ways
    assert found == {query: [ids, ids] for query, ids in expected.items()}
