"""Ticket search: the database's full-text indexes, over tickets and their replies.

Every database answers the same question: "tickets the reader may read where each word of
the query starts a word of the title, the description, or one of the ticket's replies".
Each word on its own: ``printer paper`` finds a ticket titled "Printer" with "paper" only in
a reply, as users expect of a conversation. A reply never makes a ticket visible: the
reader's own condition (policy.readable_tickets) applies to the ticket, and a list shows
no reply text.

Words are compared folded, the same on every database and whatever its locale: Unicode
lower case, NFD with the combining marks U+0300-U+036F removed, Greek final sigma as sigma
(:func:`words`), so ``élan``, ``ÉLAN``, ``elan`` and a decomposed ``e\u0301lan`` are one
word, as are ``İstanbul`` and ``istanbul``, ``ΣΟΦΟΣ`` and ``σοφος``. A query word with
``ß`` or ``ss`` also looks for the other spelling (``straße``, ``STRASSE``).

- PostgreSQL: GIN indexes on ``to_tsvector('simple', ...)`` of the folded ticket text
  (search_index.SEARCH_DOCUMENT) and reply text (search_index.REPLY_SEARCH_DOCUMENT). The
  folding is SQL (ICU's root-locale ``lower()``, ``normalize()``, ``regexp_replace()``), so
  the database's lc_ctype, which decides how to_tsvector() lowercases, plays no part. ASCII
  punctuation is a space there, so ``alice@example.com``, ``docs/install`` and ``2.0.1``
  find what holds them; a word is a prefix (``to_tsquery('word:*')``).
- SQLite: FTS5 tables over ticket and reply text (search_index.sqlite_search_ddl: the
  ``unicode61 remove_diacritics 2`` tokenizer, kept in step by triggers), queried with
  prefix phrases (``"word"*``). That tokenizer removes the diacritics of Latin letters only:
  ``σοφός`` stays ``σοφός`` in the index. The query looks for the word as typed too, so
  ``Σοφός`` finds it, but ``σοφος`` does not (on the other databases it does).
- MariaDB/MySQL: FULLTEXT indexes on (title, body) and on reply body, in boolean mode; the
  columns' collation folds case and accents (any ``_ci`` collation). A word the index leaves
  out (under three characters, or an InnoDB stopword such as "the") must start a word of the
  ticket or of a reply (a regular expression), checked on the tickets the other words found;
  a query with no indexed word falls back to the bounded scan. InnoDB reads ``_`` as part of
  a word, so in the query ``foo_bar``, ``bar`` is checked by the regular expression, but a
  query of ``bar`` alone does not find ``foo_bar`` there.

A rare word's tickets are read from the indexes, then sorted; a common word's list is read
in its own order, each ticket checked until the page is full, which is faster than sorting
a large share of the tickets. Which is which, the database tells: PostgreSQL's statistics
of its GIN indexes (read once every ``STATISTICS_TTL`` seconds per app), SQLite's FTS5
tables (one statement per search, counted up to a cap); MariaDB's optimizer decides by
itself.

Two kinds of query do not use the indexes but a bounded scan of the newest ``SCAN_LIMIT``
tickets (and their replies), so that a search never reads the whole table:

- a word in a script written without spaces between words (Chinese, Japanese, Thai, ...),
  which every index keeps as one long token: it is matched as a substring;
- a query with no letters or digits (``%``, ``_``, ``\\``), matched literally, as a
  substring, case-insensitively for ASCII letters.
"""

from __future__ import annotations

import bisect
import functools
import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators

from .models import Models
from .search_index import (
    REPLY_SEARCH_DOCUMENT,
    REPLY_SEARCH_SOURCE,
    REPLY_SEARCH_TEXT,
    SEARCH_DOCUMENT,
    SEARCH_MARKS,
    SEARCH_SOURCE,
    SEARCH_TEXT,
)

SCAN_LIMIT = 100_000
MARIADB_MIN_WORD = 3
MARIADB_MAX_WORD = 84
#: InnoDB's default full-text stopwords: never in the index, so "+the*" would match nothing.
MARIADB_STOPWORDS = frozenset(
    {
        *("a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for"),
        *("from", "how", "i", "in", "is", "it", "la", "of", "on", "or", "that", "the"),
        *("this", "to", "und", "was", "what", "when", "where", "who", "will", "with", "www"),
    }
)
MAX_WORDS = 10

SIMPLE: sa.ColumnElement[Any] = sa.literal_column("'simple'")
_WORD = re.compile(r"[^\W_]+")
#: Combining marks removed and final sigma written as sigma, as search_index.search_folded()
#: does.
_FOLD = {ord(mark): None for mark in SEARCH_MARKS} | {0x3C2: "\u03c3"}
#: Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, Hiragana,
#: Katakana, CJK ideographs (and their extensions), half-width Katakana.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)


def words(query: str) -> list[str]:
    """The words of ``query`` as search compares them: at most ``MAX_WORDS``, folded.

    Folding: Unicode lower case (``str.lower``, full case mapping), NFD, the combining
    marks U+0300-U+036F removed, final sigma as sigma, then NFC again. Words are runs of
    Unicode letters and digits (``_`` and punctuation separate them).

    :param query: what the user typed.
    :return: the folded words, in query order.
    """
    folded = unicodedata.normalize("NFD", query.lower()).translate(_FOLD)
    return _WORD.findall(unicodedata.normalize("NFC", folded))[:MAX_WORDS]


#: A word as typed: letters and digits with the combining marks among them.
_TYPED_WORD = re.compile(r"(?:[^\W_]|[\u0300-\u036f])+")


def typed_forms(query: str) -> dict[str, str]:
    """Each folded word of ``query`` (:func:`words`) with its lower-case NFC form as typed.

    SQLite's tokenizer removes the diacritics of Latin letters only: ``σοφός`` stays
    ``σοφός`` in its index, so SQLite also looks for the word as it was typed.

    :param query: what the user typed.
    :return: folded word to the word as typed (lower case, NFC), in query order.
    """
    typed: dict[str, str] = {}
    for token in _TYPED_WORD.findall(unicodedata.normalize("NFC", query.lower())):
        folded = words(token)
        if len(folded) == 1:
            typed.setdefault(folded[0], token)
    return typed


def spellings(word: str) -> list[str]:
    """``word`` and its other spelling with ``ß`` for ``ss`` or ``ss`` for ``ß``, if any.

    German writes ``ß`` as ``SS`` in capitals; Unicode lower case does not turn it back.

    :param word: a folded word (:func:`words`).
    :return: ``[word]``, or ``[word, other spelling]``.
    """
    found = [word, word.replace("ß", "ss"), word.replace("ss", "ß")]
    return list(dict.fromkeys(found))


def is_unspaced(word: str) -> bool:
    """Whether ``word`` holds letters of a script written without spaces (Thai, Japanese ...).

    :param word: a folded word (:func:`words`).
    :return: True when a substring search must stand in for the word index.
    """
    return _UNSPACED.search(word) is not None


#: A query whose rarest word matches fewer tickets than this share is answered from the
#: indexes (PostgreSQL's GIN, SQLite's FTS5); otherwise the list is read in its own order.
RARE_SHARE = 0.01


def matches(
    dialect: str, models: Models, query: str, session: Session | None = None
) -> sa.ColumnElement[bool]:
    """The WHERE clause of tickets matching ``query`` (see the module's docstring).

    :param dialect: the database's SQLAlchemy dialect name.
    :param models: Flasket's models.
    :param query: what the user typed.
    :param session: PostgreSQL only: with one, the index statistics (read at most once per
        ``STATISTICS_TTL`` per app) tell which words are rare, and a query with a rare word
        reads its matches from the GIN indexes first.
    :return: the condition, to combine with the reader's and the filters'.
    """
    found = words(query)
    unspaced = [word for word in found if is_unspaced(word)]
    indexed = [word for word in found if not is_unspaced(word)]
    if not found:
        return bounded_scan(models, query)
    if dialect == "postgresql" and indexed:
        condition = postgresql_matches(models, indexed, session)
    elif dialect == "sqlite" and indexed:
        typed = typed_forms(query)
        fts_queries = [sqlite_query(word, typed.get(word, word)) for word in indexed]
        condition = sqlite_matches(models, fts_queries, session)
    elif dialect in {"mysql", "mariadb"} and mariadb_index_words(query):
        condition = mariadb_matches(models, query, indexed)
    else:
        return bounded_scan(models, query)
    if unspaced:
        scanned = [contains(models, word, case_insensitive=False) for word in unspaced]
        return sa.and_(condition, newest_tickets(models), *scanned)
    return condition


def postgresql_query(word: str) -> sa.ColumnElement[Any]:
    """``to_tsquery`` of ``word`` (folded) as a prefix, in each spelling, in NFD as the index.

    :param word: a folded word (:func:`words`).
    :return: the ``tsquery`` expression.
    """
    terms = " | ".join(f"{unicodedata.normalize('NFD', each)}:*" for each in spellings(word))
    return sa.func.to_tsquery(SIMPLE, terms)


#: Built expressions kept per (models, word): building one costs more than running it.
_EXPRESSIONS_KEPT = 512


@functools.lru_cache(maxsize=_EXPRESSIONS_KEPT)
def postgresql_word(models: Models, word: str) -> sa.ColumnElement[bool]:
    """``word`` in the ticket's document or in one of its replies' (GIN-indexed expressions).

    A common word's list checks this on each ticket it reads, computing the documents: first
    whether the text holds the word at all (:func:`holds`, far cheaper than the document,
    and most tickets and replies fail it), then the document. ``OFFSET 0`` keeps PostgreSQL
    from reading every reply with the word into a hash table instead (0.4 s for "error").

    :param models: Flasket's models.
    :param word: a folded word (:func:`words`).
    :return: the condition on ``flasket_ticket``.
    """
    ticket, reply = models.Ticket, models.Reply
    tsquery = postgresql_query(word)
    in_reply = (
        sa.select(reply.id)
        .where(
            reply.ticket_id == ticket.id,
            holds(REPLY_SEARCH_SOURCE, REPLY_SEARCH_TEXT, word),
            reply_document().bool_op("@@")(tsquery),
        )
        .offset(sa.literal_column("0"))
        .exists()
    )
    in_ticket = sa.and_(
        holds(SEARCH_SOURCE, SEARCH_TEXT, word), postgresql_document().bool_op("@@")(tsquery)
    )
    return sa.or_(in_ticket, in_reply)


def holds(source: str, folded_text: str, word: str) -> sa.ColumnElement[bool]:
    """Whether a text has ``word`` in it, in any of its spellings, once folded: true of every
    text whose document has a word starting so.

    A text all in ASCII (as many bytes as characters: the database is in UTF-8, which
    ``normalize()`` requires) folds to its ASCII lower case, with punctuation, which no word
    holds, as spaces: it is looked in as it is, lowercased, at a tenth of the cost of folding.

    :param source: the text as written (search_index.SEARCH_SOURCE or REPLY_SEARCH_SOURCE).
    :param folded_text: the same folded (search_index.SEARCH_TEXT or REPLY_SEARCH_TEXT).
    :param word: a folded word (:func:`words`).
    :return: the condition (SQL on the text's own table).
    """
    written: Any = sa.literal_column(source)
    folded: Any = sa.literal_column(folded_text)
    ascii_lower = sa.func.lower(written.collate("C"))
    forms = [unicodedata.normalize("NFD", each) for each in spellings(word)]
    return sa.case(
        (
            sa.func.octet_length(written) == sa.func.char_length(written),
            sa.or_(*(sa.func.strpos(ascii_lower, form) > 0 for form in forms)),
        ),
        else_=sa.or_(*(sa.func.strpos(folded, form) > 0 for form in forms)),
    )


def postgresql_matches(
    models: Models, found: list[str], session: Session | None
) -> sa.ColumnElement[bool]:
    """Every word of ``found`` in the ticket or its replies; a rare word read from the indexes.

    With a ``session``, each word's share comes from the indexes' statistics
    (:func:`postgresql_shares`);
    when the rarest is under ``RARE_SHARE``, its tickets come from the two GIN indexes first
    (a materialised CTE) and only those are checked for the other words (not for that one
    again, which would compute each one's documents). Otherwise the list is read in its own
    order and each ticket checked until the page is full.

    :param models: Flasket's models.
    :param found: folded words (:func:`words`), at least one.
    :param session: the session to read the statistics with; None to read the list in its
        own order.
    :return: the condition on ``flasket_ticket``.
    """
    if session is None:
        return sa.and_(*(postgresql_word(models, word) for word in found))
    shares = postgresql_shares(session, found)
    rarest = min(range(len(found)), key=shares.__getitem__)
    if shares[rarest] >= RARE_SHARE:
        return sa.and_(*(postgresql_word(models, word) for word in found))
    others = [
        postgresql_word(models, word) for number, word in enumerate(found) if number != rarest
    ]
    return sa.and_(from_gin_indexes(models, found[rarest]), *others)


@functools.lru_cache(maxsize=_EXPRESSIONS_KEPT)
def from_gin_indexes(models: Models, word: str) -> sa.ColumnElement[bool]:
    """Tickets with ``word`` in their text or a reply, read once through the GIN indexes.

    :param models: Flasket's models.
    :param word: a folded word (:func:`words`).
    :return: the condition on ``flasket_ticket`` (an ``IN`` a materialised CTE).
    """
    ticket, reply = models.Ticket, models.Reply
    tsquery = postgresql_query(word)
    in_tickets = sa.select(ticket.id.label("id")).where(
        postgresql_document().bool_op("@@")(tsquery)
    )
    in_replies = sa.select(reply.ticket_id.label("id")).where(
        reply_document().bool_op("@@")(tsquery)
    )
    found = sa.union(in_tickets, in_replies).cte("search_matches").prefix_with("MATERIALIZED")
    return ticket.id.in_(sa.select(found.c.id))


#: How long PostgreSQL's word statistics are kept per app before they are read again, in
#: seconds. They change only when ANALYZE runs (autovacuum does, after enough writes); stale
#: ones can only choose the slower of the two plans, never change what a search finds.
STATISTICS_TTL = 300.0
_STATISTICS_KEY = "flasket.search_statistics"


@dataclass(frozen=True)
class WordStatistics:
    """The words PostgreSQL's statistics know in the two search indexes, with their shares.

    ``words`` is sorted, so the words starting with a prefix are one run of it (a word in
    both indexes is in it twice, once per index, as the shares add up).
    """

    words: tuple[str, ...]
    shares: tuple[float, ...]
    read_at: float

    def share(self, prefixes: list[str]) -> float:
        """The sum of the shares of the words starting with any of ``prefixes``, each once.

        :param prefixes: folded words, in NFD as the index holds them.
        :return: a share of the rows, 0.0 and up (more than 1.0 is possible).
        """
        taken: set[int] = set()
        for prefix in prefixes:
            position = bisect.bisect_left(self.words, prefix)
            while position < len(self.words) and self.words[position].startswith(prefix):
                taken.add(position)
                position += 1
        return sum(self.shares[position] for position in taken)


def read_word_statistics(session: Session) -> WordStatistics:
    """One statement: the most common elements of both GIN indexes and their frequencies.

    :param session: a session on PostgreSQL.
    :return: the statistics, read now.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """
    rows = session.execute(
        sa.text(
            "SELECT element.word, element.share"
            " FROM pg_stats, unnest(most_common_elems::text::text[], most_common_elem_freqs)"
            " AS element(word, share)"
            " WHERE tablename IN ('ix_flasket_ticket_search', 'ix_flasket_reply_search')"
            " AND schemaname = ANY (current_schemas(false))"
            # most_common_elem_freqs ends with extra figures (min, max, nulls): unnest()
            # pairs them with no word.
            " AND element.word IS NOT NULL"
        )
    ).all()
    ordered = sorted((str(word), float(share or 0.0)) for word, share in rows)
    return WordStatistics(
        words=tuple(word for word, _ in ordered),
        shares=tuple(share for _, share in ordered),
        read_at=time.monotonic(),
    )


def word_statistics(session: Session) -> WordStatistics:
    """The current app's :class:`WordStatistics`, read again once ``STATISTICS_TTL`` passed.

    :param session: a session on PostgreSQL, used when the statistics are read again.
    :return: the statistics, at most ``STATISTICS_TTL`` seconds old.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """
    extensions = current_app.extensions
    found: WordStatistics | None = extensions.get(_STATISTICS_KEY)
    if found is None or time.monotonic() - found.read_at >= STATISTICS_TTL:
        found = extensions[_STATISTICS_KEY] = read_word_statistics(session)
    return found


def postgresql_shares(session: Session, found: list[str]) -> list[float]:
    """Each word's share of tickets (as a prefix, in any spelling), from PostgreSQL's statistics.

    The share in tickets plus the share in replies (an overestimate: a ticket has about two).
    Its planner guesses as much as 0.5% for a word missing from those statistics, enough to
    read a million tickets in list order, computing each one's document, to find twenty.
    The statistics are read at most once per ``STATISTICS_TTL`` per app
    (:func:`word_statistics`), so most searches run no statement for them.

    :param session: a session on PostgreSQL.
    :param found: folded words (:func:`words`).
    :return: one share per word, 0.0 to 1.0 and more.
    """
    statistics = word_statistics(session)
    return [
        statistics.share([unicodedata.normalize("NFD", each) for each in spellings(word)])
        for word in found
    ]


def postgresql_document() -> sa.ColumnElement[Any]:
    """The GIN index's own expression (search_index.SEARCH_DOCUMENT), so PostgreSQL uses it.

    :return: the ``tsvector`` expression on ``flasket_ticket``.
    """
    return sa.literal_column(SEARCH_DOCUMENT)


def reply_document() -> sa.ColumnElement[Any]:
    """The reply GIN index's expression (search_index.REPLY_SEARCH_DOCUMENT).

    :return: the ``tsvector`` expression on ``flasket_reply``.
    """
    return sa.literal_column(REPLY_SEARCH_DOCUMENT)


def sqlite_query(word: str, typed: str) -> str:
    """The FTS5 query of ``word`` as a prefix, in each spelling, folded and as ``typed``:
    ``("straße"* OR "strasse"*)``. Words hold no ``"`` (only letters, digits and marks).

    :param word: a folded word (:func:`words`).
    :param typed: the same word as typed (:func:`typed_forms`).
    :return: the FTS5 query text.
    """
    each = dict.fromkeys([*spellings(word), *spellings(typed)])
    return "(" + " OR ".join(f'"{spelling}"*' for spelling in each) + ")"


#: SQLite: how many index entries (tickets plus replies) :func:`sqlite_counts` counts at most.
SQLITE_COUNT_CAP = 5_000


#: SQLite: the newest tickets (and their share of replies) whose matches a common word's
#: list reads first; a ticket or reply older than these makes it read all the word's matches.
SQLITE_RECENT = 10_000


@dataclass(frozen=True)
class SqliteCounts:
    """What one statement tells of the FTS5 tables (:func:`sqlite_counts`)."""

    #: Each FTS5 query's entries, tickets plus replies, as a share of the tickets.
    shares: list[float]
    newest_ticket: int
    newest_reply: int


def sqlite_matches(
    models: Models, fts_queries: list[str], session: Session | None
) -> sa.ColumnElement[bool]:
    """Every FTS5 query of ``fts_queries`` in the ticket or one of its replies.

    With a ``session``, one statement counts each word's entries in the two FTS5 tables (up
    to ``SQLITE_COUNT_CAP``). The rarest word, under ``RARE_SHARE`` of the tickets, gives the
    tickets to read (:func:`sqlite_found`); the other words, or all of them when none is
    rare, are checked on each ticket the list reads in its own order (:func:`sqlite_checked`):
    SQLite then reads its first page of tickets, not every ticket with a common word, which
    it would have to sort (0.1 s for "error" at 100,000 tickets).

    :param models: Flasket's models.
    :param fts_queries: FTS5 queries (:func:`sqlite_query`), at least one.
    :param session: the session to count with; None to check every word ticket by ticket.
    :return: the condition on ``flasket_ticket``.
    """
    if session is None:
        return sa.and_(*(sqlite_found(models, fts_query) for fts_query in fts_queries))
    counts = sqlite_counts(session, models, fts_queries)
    shares = counts.shares
    rarest = min(range(len(fts_queries)), key=shares.__getitem__)
    conditions = [
        sqlite_found(models, fts_query)
        if number == rarest and shares[rarest] < RARE_SHARE
        else sqlite_checked(models, fts_query, counts)
        for number, fts_query in enumerate(fts_queries)
    ]
    return sa.and_(*conditions)


def _sqlite_search(name: str, fts_query: str, after: int | None = None) -> sa.Select[Any]:
    """The rowids of the FTS5 table ``name`` matching ``fts_query`` (and above ``after``)."""
    found = sa.table(name, sa.column("rowid"))
    search = sa.select(found.c.rowid).where(sa.literal_column(name).op("MATCH")(fts_query))
    return search if after is None else search.where(found.c.rowid > after)


def sqlite_counts(session: Session, models: Models, fts_queries: list[str]) -> SqliteCounts:
    """Each FTS5 query's entries, tickets plus replies, as a share of the tickets, and the
    highest ticket and reply numbers (one statement; a share is an overestimate when a
    ticket has the word in several replies, and 0.0 without tickets).

    :param session: a session on SQLite.
    :param models: Flasket's models.
    :param fts_queries: FTS5 queries (:func:`sqlite_query`).
    :return: the shares, in query order, and the highest numbers.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """

    def count(name: str, fts_query: str) -> Any:
        entries = _sqlite_search(name, fts_query).limit(SQLITE_COUNT_CAP).subquery()
        return sa.select(sa.func.count()).select_from(entries).scalar_subquery()

    per_query = [
        count("flasket_ticket_search", fts_query) + count("flasket_reply_search", fts_query)
        for fts_query in fts_queries
    ]
    # The highest ticket number stands for the count of tickets (an index's last entry).
    tickets = sa.select(sa.func.max(models.Ticket.id)).scalar_subquery()
    replies = sa.select(sa.func.max(models.Reply.id)).scalar_subquery()
    newest_ticket, newest_reply, *found = session.execute(
        sa.select(tickets, replies, *per_query)
    ).one()
    newest_ticket, newest_reply = int(newest_ticket or 0), int(newest_reply or 0)
    shares = [int(entries) / max(newest_ticket, 1) for entries in found]
    return SqliteCounts(shares, newest_ticket, newest_reply)


def sqlite_found(models: Models, fts_query: str) -> sa.ColumnElement[bool]:
    """Tickets with ``fts_query`` in their FTS5 row or a reply's, listed by the FTS5 tables
    (search_index.sqlite_search_ddl): SQLite reads these tickets, then sorts them.

    :param models: Flasket's models.
    :param fts_query: an FTS5 query (:func:`sqlite_query`).
    :return: the condition on ``flasket_ticket``.
    """
    ticket, reply = models.Ticket, models.Reply
    in_replies = sa.select(reply.ticket_id).where(
        reply.id.in_(_sqlite_search("flasket_reply_search", fts_query))
    )
    return ticket.id.in_(
        sa.union_all(_sqlite_search("flasket_ticket_search", fts_query), in_replies)
    )


def _unindexed(column: Any) -> Any:
    """SQLite's unary ``+``: the column's value, which the planner does not look up by index."""
    return sa.UnaryExpression(column, operator=operators.custom_op("+"), type_=sa.Integer())


def _in_search(column: Any, name: str, fts_query: str, after: int) -> sa.ColumnElement[bool]:
    """``column`` (a ticket's or reply's number) among the FTS5 table's matches: those above
    ``after`` when it is above, all of them otherwise. SQLite reads each set into memory the
    first time it needs it: a list of recent tickets never reads the older matches."""
    number = _unindexed(column)
    return sa.or_(
        sa.and_(number > after, number.in_(_sqlite_search(name, fts_query, after))),
        sa.and_(number <= after, number.in_(_sqlite_search(name, fts_query))),
    )


def sqlite_checked(models: Models, fts_query: str, counts: SqliteCounts) -> sa.ColumnElement[bool]:
    """:func:`sqlite_found`'s condition checked ticket by ticket, in the list's own order.

    Each FTS5 table's matches are read once into a set, the newest ``SQLITE_RECENT``
    tickets' and their replies' first (``_in_search``); each ticket is looked up in the
    first and each of its replies, through their ticket's index, in the second. The unary
    ``+`` keeps SQLite from reading the sets' tickets instead, and sorting them all.

    :param models: Flasket's models.
    :param fts_query: an FTS5 query (:func:`sqlite_query`).
    :param counts: what :func:`sqlite_counts` found (the highest numbers).
    :return: the condition on ``flasket_ticket``.
    """
    ticket, reply = models.Ticket, models.Reply
    recent_share = min(SQLITE_RECENT / max(counts.newest_ticket, 1), 1.0)
    ticket_after = counts.newest_ticket - SQLITE_RECENT
    reply_after = counts.newest_reply - round(counts.newest_reply * recent_share)
    in_reply = (
        sa.select(reply.id)
        .where(
            reply.ticket_id == ticket.id,
            _in_search(reply.id, "flasket_reply_search", fts_query, reply_after),
        )
        .exists()
    )
    in_ticket = _in_search(ticket.id, "flasket_ticket_search", fts_query, ticket_after)
    return sa.or_(in_ticket, in_reply)


def mariadb_matches(models: Models, query: str, found: list[str]) -> sa.ColumnElement[bool]:
    """MariaDB/MySQL: each word in the ticket's FULLTEXT index or its replies'; the words the
    index leaves out by a regular expression on the tickets and replies the others found.

    :param models: Flasket's models.
    :param query: what the user typed.
    :param found: its folded words (:func:`words`), at least one.
    :return: the condition on ``flasket_ticket``.
    """
    ticket, reply = models.Ticket, models.Reply
    indexed = mariadb_index_words(query)
    title: Any = ticket.title
    body: Any = ticket.body
    reply_body: Any = reply.body
    conditions: list[sa.ColumnElement[bool]] = []
    for word in indexed:
        against = "+(" + " ".join(f"{each}*" for each in spellings(word)) + ")"
        in_ticket = mysql.match(title, body, against=against).in_boolean_mode()
        in_replies = sa.select(reply.ticket_id).where(
            mysql.match(reply_body, against=against).in_boolean_mode()
        )
        conditions.append(sa.or_(in_ticket, ticket.id.in_(in_replies)))
    for word in found:
        if word not in indexed:
            conditions.append(starts_a_word(models, word))
    return sa.and_(*conditions)


def mariadb_index_words(query: str) -> list[str]:
    """The words of ``query`` that InnoDB's full-text index can find as the start of a word.

    Its words run on across ``_``: "bar" starts no word of "foo_bar" there, so a word after
    an underscore is left to the regular expression (:func:`starts_a_word`).

    :param query: what the user typed.
    :return: folded words (:func:`words`), in query order.
    """
    lowered = query.lower()
    after_underscore = {
        found.group()
        for found in _WORD.finditer(lowered)
        if lowered[found.start() - 1 : found.start()] == "_"
    }
    return [
        word
        for word in words(query)
        if mariadb_indexes(word) and not is_unspaced(word) and word not in after_underscore
    ]


def mariadb_indexes(word: str) -> bool:
    """Whether InnoDB's full-text index holds ``word`` (with its default settings).

    :param word: a folded word (:func:`words`).
    :return: False for a stopword and for a word under ``MARIADB_MIN_WORD`` or over
        ``MARIADB_MAX_WORD`` characters.
    """
    return MARIADB_MIN_WORD <= len(word) <= MARIADB_MAX_WORD and word not in MARIADB_STOPWORDS


def starts_a_word(models: Models, word: str) -> sa.ColumnElement[bool]:
    """``word`` (letters and digits only) at the start of a word of the title, the body or a
    reply (MariaDB/MySQL regular expressions, case-insensitive by the column's collation).

    :param models: Flasket's models.
    :param word: a folded word (:func:`words`).
    :return: the condition on ``flasket_ticket``.
    """
    pattern = f"(^|[^[:alnum:]]){word}"
    ticket, reply = models.Ticket, models.Reply
    in_reply = (
        sa.select(reply.id)
        .where(reply.ticket_id == ticket.id, reply.body.regexp_match(pattern, flags="i"))
        .exists()
    )
    return sa.or_(
        ticket.title.regexp_match(pattern, flags="i"),
        ticket.body.regexp_match(pattern, flags="i"),
        in_reply,
    )


def newest_tickets(models: Models) -> sa.ColumnElement[bool]:
    """The newest ``SCAN_LIMIT`` tickets by number: what a scan may read.

    :param models: Flasket's models.
    :return: the condition on ``flasket_ticket``.
    """
    ticket = models.Ticket
    newest: Any = sa.select(sa.func.max(ticket.id)).scalar_subquery()
    oldest_scanned: sa.ColumnElement[int] = newest - SCAN_LIMIT
    return ticket.id > oldest_scanned


def bounded_scan(models: Models, query: str) -> sa.ColumnElement[bool]:
    """``query`` as a literal substring of the newest ``SCAN_LIMIT`` tickets or their replies.

    :param models: Flasket's models.
    :param query: what the user typed.
    :return: the condition on ``flasket_ticket``.
    """
    return sa.and_(newest_tickets(models), contains(models, query))


def contains(models: Models, text: str, case_insensitive: bool = True) -> sa.ColumnElement[bool]:
    """``text`` anywhere in the title, the body or a reply, ``%``, ``_`` and ``\\`` literal.

    :param models: Flasket's models.
    :param text: the text to look for.
    :param case_insensitive: compare with ``lower()``, which folds ASCII letters only on
        SQLite; False for text without case (the unspaced scripts).
    :return: the condition on ``flasket_ticket``.
    """
    ticket, reply = models.Ticket, models.Reply

    def holds(column: Any) -> sa.ColumnElement[bool]:
        if case_insensitive:
            return column.icontains(text, autoescape=True)  # type: ignore[no-any-return]
        return column.contains(text, autoescape=True)  # type: ignore[no-any-return]

    in_reply = sa.select(reply.id).where(reply.ticket_id == ticket.id, holds(reply.body)).exists()
    return sa.or_(holds(ticket.title), holds(ticket.body), in_reply)
