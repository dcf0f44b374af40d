"""Seed a large Flasket database, then time every page in-process (and optionally over HTTP).

    .venv/bin/python bench/bench.py --db postgresql --tickets 1000000
    .venv/bin/python bench/bench.py --db sqlite --tickets 100000 --http

The data: ~1,000 users and 5 staff members, tickets over two years with titles and
descriptions made of real words, three categories each, ~30% closed, ~2 replies per
ticket (some tickets many), the author plus 0-3 other followers, counters consistent
with the rows, and one ticket with exactly 1,000 replies and 300 followers (besides its
assignee). 40% of the open tickets (10% of the closed) are assigned to nobody; the bench's
staff user owns 0.5% (a few thousand at a million), the other four share the rest. On an
assigned ticket its assignee writes some of the replies (and follows it); a ticket
awaits staff unless its last reply is staff's. About a week's closings (at a million)
were in the last six days, most of them of tickets filed in the last month. A seeded
database is re-used until ``--reseed``, brought up to date first (``update_search``).
Timings are server time measured around Flask's test client, every page timed in turn in
each of ten rounds (``ROUNDS``). Two floors are measured with them: a trivial view of the
same app, and a page that reads 25 open tickets with their authors through the ORM and
draws them with Jinja, with nothing of Flasket's (what a list costs this stack).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import os
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.orm import defer, joinedload

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flasket import delivery  # noqa: E402
from flasket.models import UTCDateTime  # noqa: E402
from tests.hostapp import create_app, db  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/flasket_bench"
DATA_DIR = ROOT / "bench" / ".data"
USERS = 1000
STAFF_ID = USERS + 1
#: The user the bench logs in as: the busiest author (Zipf), the worst case for author pages.
NORMAL_USER = "user0001"
#: A user from the middle of the Zipf curve: their tickets, follows and replies are sparse among
#: a million, the worst case for lists read in the tickets' own order.
TYPICAL_USER = "user0500"
STAFF_USER = "staff"
#: Every staff member (``is_admin``), the bench's own first: ids STAFF_ID, STAFF_ID + 1, ...
STAFF_USERS = (STAFF_USER, "staff2", "staff3", "staff4", "staff5")
STAFF_IDS = tuple(range(STAFF_ID, STAFF_ID + len(STAFF_USERS)))
#: The ticket column the "waiting on staff" queue reads (true: no staff reply since the
#: requester's last word).
AWAITING = "awaiting_staff"


def user_key(username: str) -> int:
    """The primary key the seed gives ``userNNNN``: its number (user pages are at keys)."""
    return int(username.removeprefix("user"))


#: The seed's tickets were filed over this many days, up to an hour ago.
SPAN_DAYS = 730
BIG_REPLIES = 1000
BIG_FOLLOWERS = 300
#: Ticket rows generated (and loaded) per batch.
BATCH = 20_000
CLOSED_SHARE = 0.3
#: Open tickets whose number ends in this digit wait for their requester (status "waiting"):
#: a tenth of them, but the 1,000-reply ticket and the reply target.
WAITING_DIGIT = 7
#: Who a ticket is assigned to is decided per mille by a hash of its number (the same in
#: SQL, for an older seeding's upgrade): below MINE_PER_MILLE the bench's staff user; then,
#: up to the open (closed) share, nobody; the other staff members share the rest.
MINE_PER_MILLE = 5
UNASSIGNED_OPEN_PER_MILLE = 400
UNASSIGNED_CLOSED_PER_MILLE = 100
#: Closed tickets this hash puts below it (per mille) were closed in the last RECENT_DAYS
#: days: the "recently closed" queue, re-dated when a re-used seeding has grown old. Most
#: were filed in the seed's last RECENT_FILED_DAYS days, some long before: about a week's
#: closings at a million tickets (~8,000, with the recent ones closed naturally).
RECENTLY_CLOSED_PER_MILLE = 250
OLD_RECENTLY_CLOSED_PER_MILLE = 7
RECENT_FILED_DAYS = 30
RECENT_DAYS = 6
#: An upgraded older seeding (whose replies are all by users) gets the last reply of this
#: share of its assigned tickets (per mille), and of those waiting for their requester,
#: re-written as the assignee's: about the share of a new seeding's last replies.
ANSWERED_PER_MILLE = 550
#: Knuth's multiplicative hashes, one per decision, so that the decisions are unrelated.
ASSIGN_HASH = 2654435761
RECENT_HASH = 2246822519
ANSWER_HASH = 3266489917
RECENT_OFFSET_HASH = 668265263
#: After a staff reply the next reply is staff's again this often; after anyone else's
#: (or the ticket itself) this often: conversations mostly take turns.
STAFF_AGAIN = 0.15
STAFF_ANSWERS = 0.7
RARE_WORD = "zeppelin"
#: How many tickets carry the rare word, whatever the size.
RARE_TICKETS = 20
#: A word written only in replies (in the first reply of RARE_TICKETS tickets).
REPLY_WORD = "quokka"
#: A word beyond ASCII in the titles of RARE_TICKETS tickets; searched in capitals.
NON_ASCII_WORD = "Überweisung"
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

# Ordered from most to least frequent; word k is drawn with weight 1/k (Zipf).
VOCABULARY = """
the to i and a is it not my on in when we of for this can with after page error
that app but you have be login account from again are password update was working
load button users our customer at get do screen email as all order report save
there api any new version if shows data just since data phone by file or out
export server what invoice time an one payment settings so please how browser
user search field blank slow dashboard team message crash notification upload
still would upgrade image sync mobile android iphone website desktop windows mac
request response timeout session cookie token expired reset link broken missing
wrong duplicate total price tax discount shipping address profile avatar photo
language translation date timezone calendar reminder schedule meeting chat
attachment pdf csv spreadsheet import backup restore delete archive folder share
permission admin role invite team billing plan subscription trial cancel refund
card declined receipt webhook integration key limit quota rate log audit history
filter sort column table row chart graph widget menu sidebar header footer modal
dialog popup tooltip font colour dark mode layout print preview zoom scroll
keyboard shortcut mouse click tap swipe offline online network proxy firewall
certificate ssl domain dns redirect loop cache memory cpu disk storage database
query index migration deploy release rollback staging production feature idea
suggestion question thanks hello regards urgent asap yesterday today tomorrow
morning week month customers colleague manager office clients support ticket
""".split()  # noqa: SIM905
COMMON_WORD = "error"
#: Real text has a long tail of rarer words (names, products, codes); without one, PostgreSQL's
#: text statistics would rate every unknown word as common as the least common of these 300.
TAIL_WORDS = 20_000


def _tail_words(count: int) -> list[str]:
    onsets, vowels, codas = "bdfgklmnprstv", "aeiou", ["", "n", "r", "s", "x", "l"]
    rng = random.Random(0)
    found: dict[str, None] = {}
    while len(found) < count:
        syllables = rng.randint(2, 4)
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables))
        found.setdefault(word + rng.choice(codas))
    return [w for w in found if w not in VOCABULARY]


VOCABULARY = VOCABULARY + _tail_words(TAIL_WORDS)
CATEGORY_WEIGHTS = {
    "urgency": {"Low": 50, "Medium": 35, "High": 15},
    "application": {"Website": 40, "Mobile app": 25, "Desktop app": 15, "API": 12, "Other": 8},
    "topic": {"Question": 35, "Bug report": 30, "Feature request": 15, "Account": 12, "Other": 8},
}

TICKET_COLUMNS = (
    "id",
    "title",
    "body",
    "status",
    "state",
    "created_at",
    "updated_at",
    "closed_at",
    "reply_count",
    "follower_count",
    "author_id",
    "closed_by_id",
    "assignee_id",
    AWAITING,
)
COLUMNS = {
    "accounts": ("id", "username", "email", "is_admin"),
    "flasket_ticket": TICKET_COLUMNS,
    "flasket_ticket_category": ("ticket_id", "name", "value"),
    "flasket_reply": ("id", "ticket_id", "body", "created_at", "author_id"),
    "flasket_follow": ("ticket_id", "user_id", "created_at"),
}


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


WORD_CUM = _cumulative([1 / rank for rank in range(1, len(VOCABULARY) + 1)])
AUTHOR_CUM = _cumulative([1 / rank**0.7 for rank in range(1, USERS + 1)])


@dataclass(frozen=True)
class Plan:
    """What gets seeded for ``tickets`` tickets, and which tickets the pages open."""

    tickets: int
    seed: int = 1

    @property
    def big_ticket(self) -> int:
        return self.tickets // 2 + 1

    @property
    def sample_ticket(self) -> int:
        return self.tickets // 3 + 1

    @property
    def reply_target(self) -> int:
        return self.tickets

    @property
    def rare_every(self) -> int:
        return max(1, self.tickets // RARE_TICKETS)

    @property
    def recent_from(self) -> int:
        """The tickets after this one were filed in the seed's last RECENT_FILED_DAYS days."""
        return self.tickets - self.tickets * RECENT_FILED_DAYS // SPAN_DAYS

    @property
    def mine_tickets(self) -> tuple[int, int]:
        """Tickets assigned to the bench's staff user whatever the hash says: its queue is
        never empty, and the staff ticket page is of a ticket of theirs."""
        return (self.sample_ticket, self.reply_target)


@dataclass
class SeedInfo:
    tickets: int
    replies: int
    follows: int
    common_word_tickets: int
    seconds: float
    reused: bool = False


# --- data ---------------------------------------------------------------------------------


def per_mille(ticket_id: int, multiplier: int) -> int:
    """0-999 from a multiplicative hash of ``ticket_id``; :func:`per_mille_sql` in SQL."""
    return (ticket_id * multiplier % 2**32) * 1000 >> 32


def per_mille_sql(column: str, multiplier: int) -> str:
    """:func:`per_mille` of an integer column, in SQL that PostgreSQL and SQLite share."""
    return f"((({column} * {multiplier}) % 4294967296) * 1000 / 4294967296)"


def assignee_of(plan: Plan, ticket_id: int, closed: bool) -> int | None:
    """The staff member a ticket of the seed is assigned to, or None; :func:`assignee_sql`."""
    share = per_mille(ticket_id, ASSIGN_HASH)
    if ticket_id in plan.mine_tickets or share < MINE_PER_MILLE:
        return STAFF_ID
    if share < MINE_PER_MILLE + (
        UNASSIGNED_CLOSED_PER_MILLE if closed else UNASSIGNED_OPEN_PER_MILLE
    ):
        return None
    others = STAFF_IDS[1:]
    return others[share % len(others)]


def assignee_sql(plan: Plan, ticket: str = "") -> str:
    """:func:`assignee_of` as a SQL expression on a ticket row (columns prefixed ``ticket``)."""
    share = per_mille_sql(f"{ticket}id", ASSIGN_HASH)
    mine = ", ".join(str(n) for n in plan.mine_tickets)
    unassigned = (
        f"CASE WHEN {ticket}state = 'closed' THEN {UNASSIGNED_CLOSED_PER_MILLE}"
        f" ELSE {UNASSIGNED_OPEN_PER_MILLE} END"
    )
    return (
        f"CASE WHEN {ticket}id IN ({mine}) OR {share} < {MINE_PER_MILLE} THEN {STAFF_ID}"
        f" WHEN {share} < {MINE_PER_MILLE} + {unassigned} THEN NULL"
        f" ELSE {STAFF_IDS[1]} + {share} % {len(STAFF_IDS) - 1} END"
    )


def recently_closed(plan: Plan, ticket_id: int) -> bool:
    """Whether a ticket of the seed, if closed, was closed in the last RECENT_DAYS days;
    :func:`recently_closed_sql`."""
    recent = ticket_id > plan.recent_from
    share = RECENTLY_CLOSED_PER_MILLE if recent else OLD_RECENTLY_CLOSED_PER_MILLE
    return per_mille(ticket_id, RECENT_HASH) < share


def recently_closed_sql(plan: Plan) -> str:
    """:func:`recently_closed` as a SQL condition on a ticket row."""
    share = (
        f"CASE WHEN id > {plan.recent_from} THEN {RECENTLY_CLOSED_PER_MILLE}"
        f" ELSE {OLD_RECENTLY_CLOSED_PER_MILLE} END"
    )
    return f"{per_mille_sql('id', RECENT_HASH)} < {share}"


def recent_close(ticket_id: int, end: datetime) -> datetime:
    """When such a ticket was closed, at the latest: up to RECENT_DAYS before ``end``."""
    minutes = (ticket_id * RECENT_OFFSET_HASH % 2**32) * (RECENT_DAYS * 24 * 60) >> 32
    return end - timedelta(minutes=minutes)


class Writer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def words(self, low: int, high: int) -> list[str]:
        return self.rng.choices(VOCABULARY, cum_weights=WORD_CUM, k=self.rng.randint(low, high))

    def prose(self, words: list[str]) -> str:
        return " ".join(
            " ".join(words[i : i + 9]).capitalize() + "." for i in range(0, len(words), 9)
        )


def generate(plan: Plan) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Rows per table, in batches of BATCH tickets; the first batch also holds the users."""
    rng = random.Random(plan.seed)
    # Who answers draws from a generator of its own: everything else stays what seedings
    # from before staff replies made.
    staff_rng = random.Random(plan.seed + 1_000_003)
    writer = Writer(rng)
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    span = timedelta(days=SPAN_DAYS)
    start = end - span
    step = span / plan.tickets
    user_ids = range(1, USERS + 1)
    users = [(n, f"user{n:04d}", f"user{n:04d}@example.test", False) for n in user_ids]
    users.extend(
        (n, name, f"{name}@example.test", True)
        for n, name in zip(STAFF_IDS, STAFF_USERS, strict=True)
    )
    batch: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
    batch["accounts"] = users
    reply_id = 0
    categories = [
        (name, list(weights), _cumulative(list(weights.values())))
        for name, weights in CATEGORY_WEIGHTS.items()
    ]
    for ticket_id in range(1, plan.tickets + 1):
        created = start + step * (ticket_id - 1) + step * rng.random()
        author = rng.choices(user_ids, cum_weights=AUTHOR_CUM)[0]
        if ticket_id == plan.reply_target:
            author = 2  # not the bench's user, so its replies notify someone
        title_words = writer.words(3, 8)
        if ticket_id % plan.rare_every == 0:
            title_words.append(RARE_WORD)
        if ticket_id % plan.rare_every == plan.rare_every // 2:
            title_words.append(NON_ASCII_WORD)
        title = " ".join(title_words).capitalize()
        body = writer.prose(writer.words(20, 80))
        if ticket_id == plan.big_ticket:
            others = rng.sample(user_ids, BIG_FOLLOWERS)
            followers = [author, *[u for u in others if u != author][: BIG_FOLLOWERS - 1]]
            reply_count = BIG_REPLIES
        else:
            extra = rng.randint(0, 3) if ticket_id != plan.reply_target else 3
            followers = [author, *(u for u in rng.sample(user_ids, extra) if u != author)]
            if rng.random() < 0.02:
                reply_count = rng.randint(10, 50)
            else:
                reply_count = min(int(rng.expovariate(1 / 1.9)), 9)
        last = created
        gap = (end - created) / (reply_count + 1) if ticket_id == plan.big_ticket else None
        replies: list[list[Any]] = []
        for number in range(reply_count):
            last = last + (gap or timedelta(hours=rng.expovariate(1 / 30)))
            last = min(last, end)
            reply_id += 1
            reply_words = writer.words(5, 40)
            if ticket_id % plan.rare_every == plan.rare_every // 3 and number == 0:
                reply_words.append(REPLY_WORD)
            replies.append(
                [reply_id, ticket_id, writer.prose(reply_words), last, rng.choice(followers)]
            )
        closed = rng.random() < CLOSED_SHARE and ticket_id not in (
            plan.big_ticket,
            plan.reply_target,
        )
        closed_at = min(last + timedelta(hours=rng.expovariate(1 / 24)), end) if closed else None
        if closed_at is not None and recently_closed(plan, ticket_id):
            closed_at = max(closed_at, recent_close(ticket_id, end))
        assignee = assignee_of(plan, ticket_id, closed)
        if assignee is not None:
            # The assignee answers, mostly in turn with the requester and followers, and
            # follows the ticket (as assigning and replying make them).
            staff_last = False
            for reply in replies:
                staff_last = staff_rng.random() < (STAFF_AGAIN if staff_last else STAFF_ANSWERS)
                if staff_last:
                    reply[4] = assignee
            if replies and not closed and waits(plan, ticket_id):
                replies[-1][4] = assignee  # staff asked the requester something
            followers.append(assignee)
        batch["flasket_reply"].extend(tuple(reply) for reply in replies)
        batch["flasket_ticket"].append(
            (
                ticket_id,
                title,
                body,
                "closed" if closed else "waiting" if waits(plan, ticket_id) else "open",
                "closed" if closed else "open",
                created,
                closed_at or last,
                closed_at,
                reply_count,
                len(followers),
                author,
                (author if rng.random() < 0.5 else assignee or STAFF_ID) if closed else None,
                assignee,
                not replies or replies[-1][4] not in STAFF_IDS,
            )
        )
        for name, values, cum in categories:
            value = rng.choices(values, cum_weights=cum)[0]
            batch["flasket_ticket_category"].append((ticket_id, name, value))
        for n, user_id in enumerate(followers):
            batch["flasket_follow"].append((ticket_id, user_id, created + timedelta(minutes=n)))
        if ticket_id % BATCH == 0 or ticket_id == plan.tickets:
            yield batch
            batch = {name: [] for name in COLUMNS}


def waits(plan: Plan, ticket_id: int) -> bool:
    """Whether an open ticket of the seed waits for its requester (status "waiting")."""
    return ticket_id % 10 == WAITING_DIGIT and ticket_id not in (
        plan.big_ticket,
        plan.reply_target,
    )


def count_common(batch: dict[str, list[tuple[Any, ...]]]) -> int:
    """Tickets whose title or body has a word starting with COMMON_WORD (what search matches)."""
    return sum(
        1
        for row in batch["flasket_ticket"]
        if any(
            w.startswith(COMMON_WORD) for w in re.findall(r"\w+", (row[1] + " " + row[2]).lower())
        )
    )


# --- databases ----------------------------------------------------------------------------


def database_url(
    kind: str, tickets: int, pg_url: str = DEFAULT_PG_URL, data_dir: Path = DATA_DIR
) -> str:
    """PostgreSQL: one schema per size in the bench database; SQLite: one file per size."""
    if kind == "postgresql":
        url = sa.make_url(pg_url).update_query_dict(
            {"options": f"-csearch_path={schema(tickets)}"}
        )
        return url.render_as_string(hide_password=False)
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / f'flasket_bench_{tickets}.sqlite'}"


def schema(tickets: int) -> str:
    return f"bench_{tickets}"


def _psycopg_conninfo(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def seeded_info(url: str) -> SeedInfo | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("bench_seeded"):
                return None
            columns = "tickets, replies, follows, common_word_tickets, seconds"
            row = conn.execute(sa.text(f"SELECT {columns} FROM bench_seeded")).one()  # noqa: S608
            return SeedInfo(*row, reused=True)
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()


def fresh_database(url: str, tickets: int) -> None:
    """An empty schema (PostgreSQL, creating the database if missing) or file (SQLite)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    server = parsed.set(database="postgres").difference_update_query(["options"])
    with psycopg.connect(
        _psycopg_conninfo(server.render_as_string(False)), autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{parsed.database}"')
    bench_db = parsed.difference_update_query(["options"]).render_as_string(False)
    with psycopg.connect(_psycopg_conninfo(bench_db), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema(tickets)} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema(tickets)}")


def create_schema(url: str) -> None:
    """The host app's ``db.create_all()``: Flasket's real tables and indexes."""
    app = build_app(url, mail_suppress=True)
    with app.app_context():
        db.create_all()
        db.engine.dispose()


def load_postgresql(url: str, plan: Plan, say: Callable[[str], None]) -> tuple[int, int, int]:
    """COPY every batch in one transaction, with secondary indexes and foreign keys added after."""
    import psycopg

    replies = follows = common = 0
    with psycopg.connect(_psycopg_conninfo(url)) as conn:
        conn.execute("SET maintenance_work_mem = '2GB'")
        conn.execute("SET synchronous_commit = off")
        foreign_keys = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype = 'f'"
            " AND connamespace = current_schema()::regnamespace"
        ).fetchall()
        indexes = conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE t.relnamespace = current_schema()::regnamespace AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid"
            "  AND c.contype IN ('p', 'u', 'x'))"
        ).fetchall()
        for table, name, _ in foreign_keys:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor() as cursor:
            for batch in generate(plan):
                replies += len(batch["flasket_reply"])
                follows += len(batch["flasket_follow"])
                common += count_common(batch)
                for table, rows in batch.items():
                    if not rows:
                        continue
                    columns = ", ".join(COLUMNS[table])
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                last = batch["flasket_ticket"][-1][0]
                if last % (BATCH * 10) == 0:
                    say(f"  loaded {last:,} tickets")
        say(f"  rows loaded; building {len(indexes)} indexes and {len(foreign_keys)} foreign keys")
        for _, definition in indexes:
            conn.execute(definition)
        for table, name, definition in foreign_keys:
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for table in ("accounts", "flasket_ticket", "flasket_reply"):
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            conn.execute(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))")  # noqa: S608
    with psycopg.connect(_psycopg_conninfo(url), autocommit=True) as conn:
        say("  VACUUM ANALYZE")
        conn.execute("VACUUM ANALYZE")
    return replies, follows, common


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLAlchemy's SQLite DateTime storage format, UTC wall time (as UTCDateTime stores it).
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def load_sqlite(url: str, plan: Plan, say: Callable[[str], None]) -> tuple[int, int, int]:
    """executemany in one transaction per batch, with WAL and synchronous=OFF during the load."""
    replies = follows = common = 0
    conn = sqlite3.connect(sa.make_url(url).database or "", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        for batch in generate(plan):
            replies += len(batch["flasket_reply"])
            follows += len(batch["flasket_follow"])
            common += count_common(batch)
            conn.execute("BEGIN")
            for table, rows in batch.items():
                if not rows:
                    continue
                columns = COLUMNS[table]
                marks = ", ".join("?" for _ in columns)
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                    [tuple(_sqlite_value(v) for v in row) for row in rows],
                )
            conn.execute("COMMIT")
            last = batch["flasket_ticket"][-1][0]
            if last % (BATCH * 10) == 0:
                say(f"  loaded {last:,} tickets")
        say("  ANALYZE")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA synchronous=FULL")
    finally:
        conn.close()
    return replies, follows, common


def seed(
    url: str, tickets: int, reseed: bool = False, say: Callable[[str], None] = print
) -> SeedInfo:
    """Seed ``tickets`` tickets into a fresh database at ``url``, or re-use an earlier seeding."""
    if not reseed:
        found = seeded_info(url)
        if found is not None and found.tickets == tickets:
            update_search(url, Plan(tickets), say)
            return found
    plan = Plan(tickets)
    began = time.perf_counter()
    say(f"Seeding {tickets:,} tickets into {sa.make_url(url).render_as_string()} ...")
    fresh_database(url, tickets)
    create_schema(url)
    load = load_postgresql if sa.make_url(url).get_backend_name() == "postgresql" else load_sqlite
    replies, follows, common = load(url, plan, say)
    seconds = time.perf_counter() - began
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE bench_seeded (tickets INTEGER, replies INTEGER, follows INTEGER,"
                " common_word_tickets INTEGER, seconds FLOAT)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO bench_seeded VALUES (:t, :r, :f, :c, :s)"),
            {"t": tickets, "r": replies, "f": follows, "c": common, "s": seconds},
        )
    engine.dispose()
    say(f"Seeded in {seconds:.1f} s")
    return SeedInfo(tickets, replies, follows, common, seconds)


SEARCH_INDEXES = ("ix_flasket_ticket_search", "ix_flasket_reply_search")


def update_search(url: str, plan: Plan, say: Callable[[str], None] = print) -> None:
    """Bring a database seeded by an earlier bench up to today's schema and data, in place.

    Tables, nullable columns (and those with a server default) added since are created,
    foreign keys included; the words only newer seedings write (REPLY_WORD, NON_ASCII_WORD) are
    added to the same tickets and replies; a seeding from before assignment gets the staff
    members, its tickets assigned as a new seeding's are (:func:`_add_assignment`); the
    recently closed tickets are re-dated once the seeding is older than a day
    (:func:`_refresh_recently_closed`); then indexes added since are built, and the tables
    changed vacuumed and analysed. PostgreSQL's search indexes whose expression differs from
    Flasket's are built again (and the tables analysed); SQLite's FTS5 tables are created
    if missing.
    """
    engine = sa.create_engine(url)
    try:
        tables = _declared_tables(url)
        changed = _add_missing_columns(tables, engine, say)
        with engine.begin() as conn:
            _add_search_words(conn, plan, say)
            if _add_waiting_tickets(conn, plan, say):
                changed.add("flasket_ticket")
            changed |= _add_assignment(conn, plan, say)
            if _refresh_recently_closed(conn, plan, say):
                changed.add("flasket_ticket")
        # After the rows are filled in: each index is built once, not updated row by row.
        changed |= _add_missing_indexes(tables, engine, say)
        if changed and engine.dialect.name == "postgresql":
            # Rows rewritten by an added column's UPDATE are not all-visible: until vacuumed,
            # the counts' index-only scans read the table too (the overview: 7 ms to 30 ms).
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in sorted(changed):
                    say(f"  vacuuming and analysing {table}")
                    conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
        elif changed:
            with engine.begin() as conn:
                say("  ANALYZE")
                conn.exec_driver_sql("ANALYZE")
        if engine.dialect.name == "sqlite":
            _create_sqlite_search_tables(engine, say)
        else:
            _rebuild_postgresql_search_indexes(url, engine, say)
    finally:
        engine.dispose()


def _declared_tables(url: str) -> list[sa.Table]:
    """Today's tables, as the host app and Flasket declare them."""
    app = build_app(url, mail_suppress=True)
    with app.app_context():
        return list(db.metadata.sorted_tables)


def _add_missing_columns(
    tables: Sequence[sa.Table], engine: sa.Engine, say: Callable[[str], None]
) -> set[str]:
    """Tables, and columns (nullable ones, empty, or with a server default) of today's tables
    that an older seeding lacks, so that the pages run on it; the tables changed."""
    changed: set[str] = set()
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        existing = set(inspector.get_table_names())
        for table in tables:
            if table.name not in existing:
                say(f"  creating the table {table.name}")
                table.create(conn)
                continue
            columns = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                default = column.server_default
                if column.name in columns or not (column.nullable or default is not None):
                    continue
                say(f"  adding the column {table.name}.{column.name}")
                changed.add(table.name)
                kind = column.type.compile(dialect=engine.dialect)
                if column.nullable:
                    for key in column.foreign_keys:  # as declared (ON DELETE SET NULL ...)
                        target = key.column
                        kind += f" REFERENCES {target.table.name} ({target.name})"
                        kind += f" ON DELETE {key.ondelete}" if key.ondelete else ""
                    conn.exec_driver_sql(
                        f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
                    )
                    continue
                value = str(default.arg)  # type: ignore[union-attr]
                conn.exec_driver_sql(
                    f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
                    f" NOT NULL DEFAULT '{value}'"
                )
                if (table.name, column.name) == ("flasket_ticket", "state"):
                    # The kind of each status the seed writes (open, closed).
                    conn.exec_driver_sql(
                        "UPDATE flasket_ticket SET state = 'closed' WHERE status = 'closed'"
                    )
    return changed


def _add_missing_indexes(
    tables: Sequence[sa.Table], engine: sa.Engine, say: Callable[[str], None]
) -> set[str]:
    """The indexes of today's tables that an older seeding lacks; the tables changed."""
    changed: set[str] = set()
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        for table in tables:
            indexes = {index["name"] for index in inspector.get_indexes(table.name)}
            for index in table.indexes:
                dialects = index.info.get("dialects", (engine.dialect.name,))
                if index.name in indexes or engine.dialect.name not in dialects:
                    continue
                say(f"  creating the index {index.name}")
                conn.execute(sa.schema.CreateIndex(index))
                changed.add(table.name)
    return changed


def _add_assignment(conn: sa.Connection, plan: Plan, say: Callable[[str], None]) -> set[str]:
    """Staff, assignees and staff answers for a seeding from before assignment (one without
    all of STAFF_USERS); the tables changed.

    The missing staff members are added and every ticket assigned as :func:`generate`
    assigns it (:func:`assignee_sql`), the assignee following it. The seeding's replies are
    all users': the last reply of ANSWERED_PER_MILLE of the assigned tickets (and of the
    assigned ones waiting for their requester) becomes the assignee's. ``awaiting_staff``
    is then true unless a ticket's last reply is staff's, as the demo's migration fills it.
    """
    staff = set(
        conn.scalars(sa.text("SELECT username FROM accounts WHERE is_admin = :yes"), {"yes": True})
    )
    if set(STAFF_USERS) <= staff:
        return set()
    say("  adding staff members, assigning tickets and answering some (a seeding before them)")
    for n, name in zip(STAFF_IDS, STAFF_USERS, strict=True):
        if name not in staff:
            conn.execute(
                sa.text(
                    "INSERT INTO accounts (id, username, email, is_admin)"
                    " VALUES (:n, :name, :email, :yes)"
                ),
                {"n": n, "name": name, "email": f"{name}@example.test", "yes": True},
            )
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('accounts', 'id'),"
            " (SELECT max(id) FROM accounts))"
        )
    # Text, not driver SQL: psycopg would read the modulo signs as placeholders.
    run = functools.partial(_run_sql, conn)
    assignee = assignee_sql(plan, "t.")
    run(
        "INSERT INTO flasket_follow (ticket_id, user_id, created_at)"  # noqa: S608
        f" SELECT t.id, {assignee}, t.created_at FROM flasket_ticket t"
        f" WHERE ({assignee}) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM flasket_follow f"
        f" WHERE f.ticket_id = t.id AND f.user_id = ({assignee}))"
    )
    answered = per_mille_sql("t.id", ANSWER_HASH)
    run(
        "UPDATE flasket_reply SET author_id = (SELECT "  # noqa: S608
        f"{assignee} FROM flasket_ticket t WHERE t.id = flasket_reply.ticket_id)"
        " WHERE id IN (SELECT max(r.id) FROM flasket_reply r"
        " JOIN flasket_ticket t ON t.id = r.ticket_id"
        f" WHERE ({assignee}) IS NOT NULL"
        f" AND ({answered} < {ANSWERED_PER_MILLE} OR t.status = 'waiting')"
        " GROUP BY r.ticket_id)"
    )
    own = assignee_sql(plan)
    last_reply = "SELECT max(r2.id) FROM flasket_reply r2 WHERE r2.ticket_id = flasket_ticket.id"
    run(
        f"UPDATE flasket_ticket SET assignee_id = {own},"  # noqa: S608
        f" follower_count = CASE WHEN ({own}) IS NULL THEN follower_count ELSE (SELECT"
        " count(*) FROM flasket_follow f WHERE f.ticket_id = flasket_ticket.id) END,"
        f" {AWAITING} = (reply_count = 0 OR NOT EXISTS (SELECT 1 FROM flasket_reply r"
        f" JOIN accounts u ON u.id = r.author_id WHERE r.id = ({last_reply})"
        " AND u.is_admin))"
    )
    return {"accounts", "flasket_follow", "flasket_reply", "flasket_ticket"}


def _run_sql(conn: sa.Connection, statement: str) -> None:
    conn.execute(sa.text(statement))


def _refresh_recently_closed(conn: sa.Connection, plan: Plan, say: Callable[[str], None]) -> int:
    """Re-date the recently closed tickets (:func:`recently_closed`) of a seeding older than
    a day, as if it were seeded now: the "recently closed" queue looks back from today.
    How many."""
    ticket = sa.table(
        "flasket_ticket",
        sa.column("id", sa.Integer),
        sa.column("state", sa.String),
        sa.column("closed_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    chosen = sa.text(recently_closed_sql(plan))
    rows = conn.execute(
        sa.select(ticket.c.id, ticket.c.closed_at).where(ticket.c.state == "closed", chosen)
    ).all()
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    if not rows or max(row.closed_at for row in rows) >= end - timedelta(days=1):
        return 0
    say(f"  re-dating {len(rows):,} tickets closed recently (the seeding is older than a day)")
    conn.execute(
        sa.update(ticket)
        .where(ticket.c.id == sa.bindparam("number"))
        .values(closed_at=sa.bindparam("at"), updated_at=sa.bindparam("at")),
        [{"number": row.id, "at": max(row.closed_at, recent_close(row.id, end))} for row in rows],
    )
    return len(rows)


def _add_waiting_tickets(conn: sa.Connection, plan: Plan, say: Callable[[str], None]) -> int:
    """The open tickets a seeding from before statuses left open that now wait (:func:`waits`);
    how many."""
    changed = conn.execute(
        sa.text(
            "UPDATE flasket_ticket SET status = 'waiting'"
            " WHERE status = 'open' AND state = 'open' AND (id % 10) = :digit"
            " AND id NOT IN (:big, :target)"
        ),
        {"digit": WAITING_DIGIT, "big": plan.big_ticket, "target": plan.reply_target},
    )
    if changed.rowcount:
        say(f"  {changed.rowcount:,} open tickets now wait for their requester")
    return int(changed.rowcount or 0)


def _add_search_words(conn: sa.Connection, plan: Plan, say: Callable[[str], None]) -> None:
    every = plan.rare_every
    ticket, reply = (
        sa.table("flasket_ticket", sa.column("id"), sa.column("title")),
        sa.table("flasket_reply", sa.column("id"), sa.column("ticket_id"), sa.column("body")),
    )
    titled = list(range(every // 2, plan.tickets + 1, every))
    present = conn.scalar(sa.select(ticket.c.title).where(ticket.c.id == titled[0])) or ""
    if every < 3 or NON_ASCII_WORD.lower() in present.lower():
        return
    say(f"  adding {NON_ASCII_WORD!r} and {REPLY_WORD!r} to a database seeded before them")
    conn.execute(
        sa.update(ticket)
        .where(ticket.c.id.in_(titled))
        .values(title=ticket.c.title + f" {NON_ASCII_WORD.lower()}")
    )
    replied = list(range(every // 3, plan.tickets + 1, every))
    first_replies = (
        sa.select(sa.func.min(reply.c.id))
        .where(reply.c.ticket_id.in_(replied))
        .group_by(reply.c.ticket_id)
    )
    conn.execute(
        sa.update(reply)
        .where(reply.c.id.in_(first_replies))
        .values(body=reply.c.body + f" {REPLY_WORD.capitalize()}.")
    )


def _create_sqlite_search_tables(engine: sa.Engine, say: Callable[[str], None]) -> None:
    from flasket.migrations import sqlite_search_sql
    from flasket.search_index import SQLITE_SEARCH_TABLES

    with engine.begin() as conn:
        if set(SQLITE_SEARCH_TABLES) <= set(sa.inspect(conn).get_table_names()):
            return
        say("  creating and filling SQLite's FTS5 search tables")
        for statement in sqlite_search_sql():
            conn.exec_driver_sql(statement)


def _rebuild_postgresql_search_indexes(
    url: str, engine: sa.Engine, say: Callable[[str], None]
) -> None:
    """Build again each search index whose definition differs from the one Flasket declares
    (compared as PostgreSQL prints both, the declared one built on an empty copy)."""
    app = build_app(url, mail_suppress=True)
    with app.app_context():
        tables = [db.metadata.tables[name] for name in ("flasket_ticket", "flasket_reply")]
    declared: dict[str, sa.Index] = {
        str(index.name): index
        for table in tables
        for index in table.indexes
        if index.name in SEARCH_INDEXES
    }
    definition = (
        "SELECT c.relname, split_part(pg_get_indexdef(c.oid), ' USING ', 2) FROM pg_class c"
        " WHERE c.relkind = 'i' AND c.relname = ANY(%(names)s)"
        " AND c.relnamespace = {}::regnamespace"
    )
    found: dict[str, str]
    wanted: dict[str, str]
    with engine.connect() as conn:
        found = dict(
            conn.exec_driver_sql(
                definition.format("current_schema()"), {"names": list(SEARCH_INDEXES)}
            ).all()
        )
        # Empty copies, in the temporary schema that comes first in the search path.
        for table in tables:
            conn.exec_driver_sql(f"CREATE TEMP TABLE {table.name} (LIKE {table.name})")
        for index in declared.values():
            conn.execute(sa.schema.CreateIndex(index))
        wanted = dict(
            conn.exec_driver_sql(
                definition.format("pg_my_temp_schema()"), {"names": list(SEARCH_INDEXES)}
            ).all()
        )
        conn.rollback()
    stale = [name for name in SEARCH_INDEXES if found.get(name) != wanted[name]]
    if not stale:
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("SET maintenance_work_mem = '1GB'")
        for name in stale:
            say(f"  building {name} again (its expression changed): minutes at a million")
            began = time.perf_counter()
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
            conn.execute(sa.schema.CreateIndex(declared[name]))
            conn.commit()
            say(f"    {time.perf_counter() - began:.0f} s")
        conn.exec_driver_sql("ANALYZE flasket_ticket")
        conn.exec_driver_sql("ANALYZE flasket_reply")
        conn.commit()


# --- the app and the pages ----------------------------------------------------------------


def build_app(url: str, smtp_port: int | None = None, mail_suppress: bool = False) -> Any:
    """The test suite's host app on ``url``, plus the two floors: a trivial view and 25 rows."""
    app = create_app(
        smtp_port=smtp_port,
        SQLALCHEMY_DATABASE_URI=url,
        SERVER_NAME=None,
        FLASKET_BASE_URL="http://bench.test",
        MAIL_SUPPRESS_SEND=mail_suppress,
    )

    @app.route("/bench/floor")
    def bench_floor() -> str:
        return "ok"

    rows_floor = app.jinja_env.from_string(ROWS_FLOOR)

    @app.route("/bench/rows")
    def bench_rows() -> str:
        # 25 tickets with their authors, read by the ORM and drawn by Jinja, with nothing of
        # Flasket's: what a list page costs this stack on this machine before Flasket's work.
        ticket = app.extensions["flasket"].models.Ticket
        rows = db.session.scalars(
            sa.select(ticket)
            .options(defer(ticket.body), joinedload(ticket.author))
            .where(ticket.state == "open")
            .order_by(ticket.updated_at.desc(), ticket.id.desc())
            .limit(25)
        ).all()
        return rows_floor.render(tickets=rows)

    return app


#: The rows floor's page: a table of 25 tickets, seven cells each.
ROWS_FLOOR = """<!doctype html><title>Tickets</title><table><tbody>
{% for t in tickets %}<tr><td><a href="/ticket/{{ t.id }}">#{{ t.id }} {{ t.title }}</a></td>
<td>{{ t.status }}</td><td>{{ t.author.username if t.author else "" }}</td>
<td>{{ t.assignee_id or "" }}</td><td>{{ t.reply_count }}</td>
<td><time datetime="{{ t.updated_at.isoformat() }}">{{ t.updated_at.date() }}</time></td></tr>
{% endfor %}</tbody></table>"""


@dataclass(frozen=True)
class Probe:
    name: str
    url: str
    user: str = NORMAL_USER
    method: str = "GET"
    http: bool = False


def probes(plan: Plan) -> list[Probe]:
    """Every page the bench times, in table order."""
    big, big_pages = plan.big_ticket, -(-BIG_REPLIES // 100)
    # About 70% of tickets are open; page 400 (10,000 rows deep) once there are that many.
    deep = max(1, min(400, plan.tickets * 6 // 10 // 25))
    # About half the tickets wait on staff: 30% of them deep, at most 10,000 rows as above.
    queue_deep = max(1, min(400, plan.tickets * 3 // 10 // 25))
    queue, staff = "/ticket/all?queue=", STAFF_USER
    return [
        Probe("floor: trivial Flask view", "/bench/floor", user="", http=True),
        Probe("floor: 25 rows by the ORM and Jinja", "/bench/rows", user=""),
        Probe("overview", "/ticket/", http=True),
        Probe("overview (staff): 5 queue counts, mine", "/ticket/", user=staff),
        Probe("all: open, recently updated", "/ticket/all", http=True),
        Probe("all (staff)", "/ticket/all", user=staff),
        Probe("queue mine", f"{queue}mine", user=staff),
        Probe("queue unassigned", f"{queue}unassigned", user=staff),
        Probe("queue waiting_on_staff", f"{queue}waiting_on_staff", user=staff),
        Probe("queue waiting_on_requester", f"{queue}waiting_on_requester", user=staff),
        Probe("queue recently_closed", f"{queue}recently_closed", user=staff),
        Probe("queue mine, sort=created", f"{queue}mine&sort=created", user=staff),
        Probe(
            "queue waiting_on_staff, sort=created",
            f"{queue}waiting_on_staff&sort=created",
            user=staff,
        ),
        Probe(
            f"queue waiting_on_staff, deep page={queue_deep}",
            f"{queue}waiting_on_staff&page={queue_deep}",
            user=staff,
        ),
        Probe("filter assignee=none (staff)", "/ticket/all?assignee=none", user=staff),
        Probe(
            f"filter assignee={STAFF_USERS[1]} (staff)",
            f"/ticket/all?assignee={STAFF_IDS[1]}",
            user=staff,
        ),
        Probe("filter status=closed", "/ticket/all?status=closed"),
        Probe("filter status=all", "/ticket/all?status=all"),
        Probe("filter status=waiting", "/ticket/all?status=waiting"),
        Probe("filter urgency=High", "/ticket/all?urgency=High"),
        Probe(
            "filter topic=Account, application=API", "/ticket/all?topic=Account&application=API"
        ),
        Probe(f"filter author={NORMAL_USER}", f"/ticket/all?author={NORMAL_USER}"),
        Probe("sort=updated", "/ticket/all?sort=updated"),
        Probe("sort=created", "/ticket/all?sort=created"),
        Probe("sort=oldest", "/ticket/all?sort=oldest"),
        Probe(f"deep page={deep}", f"/ticket/all?page={deep}", http=True),
        Probe(f"search common word ({COMMON_WORD})", f"/ticket/all?q={COMMON_WORD}", http=True),
        Probe(f"search rare word ({RARE_WORD})", f"/ticket/all?q={RARE_WORD}"),
        Probe(f"search reply-only word ({REPLY_WORD})", f"/ticket/all?q={REPLY_WORD}"),
        Probe(
            f"search non-ASCII word ({NON_ASCII_WORD.upper()})",
            f"/ticket/all?q={quote(NON_ASCII_WORD.upper())}",
        ),
        Probe(
            f"search {COMMON_WORD}, status=all, sort=created",
            f"/ticket/all?q={COMMON_WORD}&status=all&sort=created",
        ),
        Probe(
            f"user page {NORMAL_USER}: submitted",
            f"/ticket/user/{user_key(NORMAL_USER)}",
            http=True,
        ),
        Probe(
            f"user page {NORMAL_USER}: following",
            f"/ticket/user/{user_key(NORMAL_USER)}?show=following",
        ),
        Probe(
            f"user page {NORMAL_USER}: replies",
            f"/ticket/user/{user_key(NORMAL_USER)}?show=replies",
        ),
        Probe(f"user page {TYPICAL_USER}: submitted", f"/ticket/user/{user_key(TYPICAL_USER)}"),
        Probe(
            f"user page {TYPICAL_USER}: following",
            f"/ticket/user/{user_key(TYPICAL_USER)}?show=following",
        ),
        Probe(
            f"user page {TYPICAL_USER}: replies",
            f"/ticket/user/{user_key(TYPICAL_USER)}?show=replies",
        ),
        Probe(f"ticket page #{plan.sample_ticket}", f"/ticket/{plan.sample_ticket}", http=True),
        Probe(
            "ticket page (staff): assign control, staff list",
            f"/ticket/{plan.sample_ticket}",
            user=staff,
        ),
        Probe(f"1,000-reply ticket #{big}, first page", f"/ticket/{big}", http=True),
        Probe(f"1,000-reply ticket #{big}, last page", f"/ticket/{big}?page={big_pages}"),
        Probe(
            f"reply POST to #{plan.reply_target}", f"/ticket/{plan.reply_target}", method="POST"
        ),
    ]


@dataclass
class Result:
    probe: Probe
    times_ms: list[float]
    queries: list[int]

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def query_text(self) -> str:
        low, high = min(self.queries), max(self.queries)
        return str(low) if low == high else f"{low}-{high}"


@dataclass
class Mailbox:
    """A local SMTP server (aiosmtpd) that accepts and counts the reply notifications."""

    received: int = 0
    controller: Any = field(default=None, repr=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received += 1
        return "250 Message accepted"

    def start(self) -> int:
        from aiosmtpd.controller import Controller

        port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()
        return port

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def logged_in(app: Any, username: str) -> Any:
    client = app.test_client()
    if username:
        response = client.post("/login", data={"username": username})
        assert response.status_code == 302, f"could not log in as {username}"
    return client


def csrf_token(client: Any) -> str:
    match = CSRF_FIELD.search(client.get("/ticket/submit").get_data(as_text=True))
    assert match, "no CSRF token on the submit page"
    return match.group(1)


def restoring_ticket(app: Any, ticket_id: int, username: str) -> Callable[[], None]:
    """Undo the bench's reply POSTs afterwards, so a re-used database stays as seeded."""
    models = app.extensions["flasket"].models
    ticket, reply, follow, user = models.Ticket, models.Reply, models.Follow, models.user
    with app.app_context():
        user_id = db.session.scalar(sa.select(user.id).where(user.username == username))
        kept = ("reply_count", "follower_count", "updated_at", "status", AWAITING)
        saved = (
            db.session.execute(
                sa.select(*(getattr(ticket, name) for name in kept)).where(ticket.id == ticket_id)
            )
            .one()
            ._asdict()
        )
        last_reply = db.session.scalar(sa.select(sa.func.max(reply.id))) or 0
        followed = db.session.scalar(
            sa.select(sa.func.count()).where(
                follow.ticket_id == ticket_id, follow.user_id == user_id
            )
        )

    def restore() -> None:
        with app.app_context():
            db.session.execute(
                sa.delete(reply).where(reply.ticket_id == ticket_id, reply.id > last_reply)
            )
            if not followed:
                db.session.execute(
                    sa.delete(follow).where(
                        follow.ticket_id == ticket_id, follow.user_id == user_id
                    )
                )
            db.session.execute(sa.update(ticket).where(ticket.id == ticket_id).values(**saved))
            db.session.commit()

    return restore


#: Timed requests of a page are spread over this many rounds, each round timing every page in
#: turn: a machine that speeds up or slows down while the bench runs (a shared host does)
#: then weighs on every page alike, and pages compare with each other and with the floors.
ROUNDS = 10


def measure(
    app: Any,
    pages: Sequence[Probe],
    warmup: int,
    requests: int,
    say: Callable[[str], None] = print,
    rounds: int = ROUNDS,
) -> list[Result]:
    """Time each page ``requests`` times after ``warmup`` requests, counting SQL statements.

    The warm-up requests go first, page by page; the timed ones in ``rounds`` rounds of
    about ``requests / rounds`` per page, every page in each round (:data:`ROUNDS`). Pages
    that POST come last, each on its own: their mail is sent in the background.
    """
    with app.app_context():
        engine = db.engine
    statements = [0]

    requester = threading.get_ident()

    def count(*args: Any) -> None:
        # The request's own statements; background mail delivery runs in its own thread.
        if threading.get_ident() == requester:
            statements[0] += 1

    clients = {name: logged_in(app, name) for name in {p.user for p in pages}}
    timed: dict[Probe, tuple[list[float], list[int]]] = {page: ([], []) for page in pages}

    def run(page: Probe, untimed: int, times: int) -> None:
        client = clients[page.user]
        send: Callable[[], Any]
        expected = 200
        restore: Callable[[], None] | None = None
        if page.method == "POST":
            token = csrf_token(client)
            data = {"body": "Any news on this? It still happens.", "csrf_token": token}
            restore = restoring_ticket(app, int(page.url.rsplit("/", 1)[1]), page.user)
            expected = 303
            send = functools.partial(client.post, page.url, data=data)
        else:
            send = functools.partial(client.get, page.url)
        try:
            for n in range(untimed + times):
                statements[0] = 0
                began = time.perf_counter()
                response = send()
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != expected:
                    raise RuntimeError(f"{page.url} answered {response.status_code}")
                if n >= untimed:
                    timed[page][0].append(elapsed)
                    timed[page][1].append(statements[0])
        finally:
            if restore is not None:
                restore()

    # A POST's mail goes out in a background thread after the response, which would slow
    # whatever page came next: the POSTs are timed after the rounds, one page at a time.
    reads = [page for page in pages if page.method == "GET"]
    writes = [page for page in pages if page.method != "GET"]
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for page in reads:
            run(page, warmup, 0)
        rounds = max(1, min(rounds, requests))
        for round_number in range(rounds):
            for page in reads:
                share = requests // rounds + (round_number < requests % rounds)
                run(page, 0, share)
        for page in writes:  # one restore for all: the first reply after it differs
            run(page, warmup, requests)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    results = [Result(page, *timed[page]) for page in pages]
    for result in results:
        say(f"  {result.probe.name}: {result.median:.2f} ms")
    return results


def markdown_table(results: Sequence[Result]) -> str:
    lines = [
        "| page | request | as | median ms | p95 ms | SQL queries |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in results:
        p = r.probe
        who = p.user or "-"
        timing = f"{r.median:.2f} | {r.p95:.2f}"
        lines.append(f"| {p.name} | `{p.method} {p.url}` | {who} | {timing} | {r.query_text} |")
    return "\n".join(lines)


def explain(app: Any, page: Probe) -> None:
    """Print the plan of each statement a request of ``page`` runs (EXPLAIN ANALYZE on PG)."""
    with app.app_context():
        engine = db.engine
    captured: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        captured.append((statement, parameters))

    client = logged_in(app, page.user)
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        client.get(page.url)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    prefix = (
        "EXPLAIN (ANALYZE, BUFFERS) "
        if engine.dialect.name == "postgresql"
        else "EXPLAIN QUERY PLAN "
    )
    raw = engine.raw_connection()
    try:
        for statement, parameters in captured:
            cursor = raw.cursor()
            cursor.execute(prefix + statement, parameters)
            print(statement, parameters, sep="\n")
            print(
                "\n".join(
                    "    " + str(row[-1] if len(row) > 1 else row[0]) for row in cursor.fetchall()
                )
            )
            print()
    finally:
        raw.close()


# --- over HTTP ----------------------------------------------------------------------------


@dataclass
class HttpResult:
    probe: Probe
    requests_per_second: float
    latency_ms: dict[str, float]
    errors: int


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(output: str) -> tuple[float, dict[str, float], int]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = {
        pct: _ms(value)
        for pct, value in re.findall(r"^\s+(50|90|99)%\s+(\S+)", output, re.MULTILINE)
    }
    avg = re.search(r"Latency\s+(\S+)", output)
    if avg:
        latency["avg"] = _ms(avg.group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, latency, int(errors.group(1)) if errors else 0


def _request(
    port: int, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def run_http(
    url: str, pages: Sequence[Probe], duration: int, say: Callable[[str], None] = print
) -> list[HttpResult]:
    """Start gunicorn (2 workers, 127.0.0.1), run wrk -t2 -c8 on each page, stop gunicorn."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [
            str(gunicorn),
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.wsgi:app",
        ],
        cwd=ROOT,
        env={**os.environ, "FLASKET_BENCH_DB": url},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _request(port, "GET", "/bench/floor")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        login = _request(
            port,
            "POST",
            "/login",
            body=f"username={NORMAL_USER}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        cookie = (login.getheader("Set-Cookie") or "").split(";", 1)[0]
        check = _request(port, "GET", "/ticket/", headers={"Cookie": cookie})
        if check.status != 200:
            raise RuntimeError(f"the session cookie did not log in (status {check.status})")
        results = []
        for page in pages:
            command = ["wrk", "-t2", "-c8", f"-d{duration}s", "--latency"]
            if page.user:
                command += ["-H", f"Cookie: {cookie}"]
            output = subprocess.run(
                [*command, f"http://127.0.0.1:{port}{page.url}"],
                capture_output=True,
                text=True,
                check=True,
                timeout=duration + 30,
            ).stdout
            rps, latency, errors = parse_wrk(output)
            say(f"  {page.name}: {rps:.0f} requests/s")
            results.append(HttpResult(page, rps, latency, errors))
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def http_table(results: Sequence[HttpResult]) -> str:
    lines = [
        "| page | URL | requests/s | latency avg ms | p50 ms | p99 ms | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lat = r.latency_ms
        lines.append(
            f"| {r.probe.name} | `{r.probe.url}` | {r.requests_per_second:.0f} | "
            f"{lat.get('avg', 0):.2f} | {lat.get('50', 0):.2f} | {lat.get('99', 0):.2f} | "
            f"{r.errors} |"
        )
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Examples: bench/bench.py --db postgresql --tickets 1000000; "
        "bench/bench.py --db sqlite --tickets 100000 --http",
    )
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--tickets", type=int, default=10_000, help="tickets to seed (default 10000)"
    )
    parser.add_argument(
        "--reseed",
        action="store_true",
        help="seed again even if a seeded database of this size exists",
    )
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed requests per page (default 10)"
    )
    parser.add_argument(
        "--requests", type=int, default=200, help="timed requests per page (default 200)"
    )
    parser.add_argument(
        "--only", metavar="TEXT", action="append", help="time only pages whose name has TEXT"
    )
    parser.add_argument(
        "--skip",
        metavar="TEXT",
        action="append",
        default=[],
        help="skip pages whose name has TEXT",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print each selected page's query plans instead of timing",
    )
    parser.add_argument(
        "--http",
        action="store_true",
        help="also run gunicorn (2 workers) and wrk -t2 -c8 on the main pages",
    )
    parser.add_argument(
        "--http-duration", type=int, default=10, help="seconds of wrk per page (default 10)"
    )
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help=f"PostgreSQL database to use (default {DEFAULT_PG_URL}); one schema per size",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DATA_DIR,
        help="where SQLite files go (default bench/.data)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    url = database_url(args.db, args.tickets, args.pg_url, args.data_dir)
    info = seed(url, args.tickets, args.reseed)
    plan = Plan(args.tickets)
    pages = [p for p in probes(plan) if not args.only or any(t in p.name for t in args.only)]
    pages = [p for p in pages if not any(t in p.name for t in args.skip)]
    mailbox = Mailbox()
    app = build_app(url, smtp_port=mailbox.start())
    try:
        if args.explain:
            for page in pages:
                print(f"## {page.name}")
                explain(app, page)
            return 0
        print(f"Timing {len(pages)} pages: {args.warmup} warm-up + {args.requests} timed each")
        results = measure(app, pages, args.warmup, args.requests)
    finally:
        # The last reply's notifications may still be on their way to the local server.
        delivery.wait_for_idle(timeout=60)
        mailbox.stop()
        with app.app_context():
            db.engine.dispose()
    version = ""
    if args.db == "postgresql":
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            version = " " + str(conn.exec_driver_sql("SHOW server_version").scalar())
        engine.dispose()
    print()
    print(
        f"### {args.db}{version}, {info.tickets:,} tickets, {info.replies:,} replies, "
        f"{info.follows:,} follows, {USERS:,} users and {len(STAFF_USERS)} staff "
        f"({'re-used database seeded' if info.reused else 'seeded'} in {info.seconds:.0f} s)"
    )
    print()
    print(
        f"In-process (Flask test client), {args.requests} timed requests per page after "
        f"{args.warmup} warm-up; '{COMMON_WORD}' is in {info.common_word_tickets:,} tickets, "
        f"'{RARE_WORD}' in {info.tickets // plan.rare_every}. Reply notifications went to a local "
        f"aiosmtpd server ({mailbox.received} messages received)."
    )
    print()
    print(markdown_table(results))
    if args.http:
        print()
        print(
            f"Over HTTP: gunicorn -w 2 (sync workers) on 127.0.0.1, "
            f"wrk -t2 -c8 -d{args.http_duration}s on the same machine"
        )
        http_results = run_http(url, [p for p in pages if p.http], args.http_duration)
        print()
        print(http_table(http_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
