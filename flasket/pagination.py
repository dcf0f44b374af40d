"""Page-number pagination whose count stays cheap on very large tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

T = TypeVar("T")

#: Counts stop here: a list shows "more than 10,000" instead of scanning a million rows.
COUNT_CAP = 10_000
#: Lists filtered by category join another table for every row counted, so they stop sooner;
#: so do one person's lists (their tickets, follows, replies), which seldom come near it.
JOINED_COUNT_CAP = 1_000
#: Two or more category filters intersect their lists for every row counted and check each
#: match's status: ten pages' worth (3 ms at a million tickets, against 10 ms for 1,000).
INTERSECTED_COUNT_CAP = 250
#: One person's lists (their tickets, follows, replies) stop counting here.
PERSONAL_COUNT_CAP = 1_000
#: From this many rows deep, a page first reads only its keys from the index, then its rows.
DEFERRED_JOIN_OFFSET = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, as the list templates receive it (``page``).

    Made by :func:`paginate`, :func:`paginate_uncounted` and :func:`page_of_known_size`;
    immutable.
    """

    #: The rows of this page, in list order; at most ``per_page`` of them.
    items: list[T]
    #: The page number, counted from 1.
    page: int
    #: How many rows a full page holds, at least 1.
    per_page: int
    #: How many rows match, counted no further than the list's cap (see ``capped``).
    total: int
    #: True when there are more than ``total`` matches (the count stopped at its cap).
    capped: bool = False

    @property
    def pages(self) -> int:
        """The number of pages ``total`` fills, at least 1 (an empty list has one page)."""
        return page_holding(self.total, self.per_page)

    @property
    def first(self) -> int:
        """The position of this page's first row in the whole list, from 1; 0 when empty."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        """The position of this page's last row in the whole list, from 1; 0 when empty."""
        return self.first + len(self.items) - 1 if self.items else 0

    @property
    def has_prev(self) -> bool:
        """Whether a page comes before this one."""
        return self.page > 1

    @property
    def has_next(self) -> bool:
        """Whether a page may follow: one within ``total``, or, when the count stopped at its
        cap, this page is full."""
        return self.page < self.pages or (self.capped and len(self.items) == self.per_page)


class PageNotFound(LookupError):
    """The page number lies past the last page.

    Its one argument is the page number asked for; the views answer it with 404.
    """


def count_many(
    session: Session, selects: dict[str, tuple[sa.Select[Any], int]]
) -> dict[str, tuple[int, bool]]:
    """Several bounded counts (:func:`count_column`) in one statement: one round trip.

    :param session: the session to run the statement in.
    :param selects: maps a name to the SELECT of keys to count and the cap to count to,
        as :func:`count_column` takes them; at least one entry.
    :return: maps each name of ``selects`` to its ``(count, capped)``: the count, at most
        its cap, and whether more rows match.
    """
    row = session.execute(counts_statement(selects)).one()
    return read_counts(row, {name: cap for name, (_, cap) in selects.items()})


def counts_statement(selects: dict[str, tuple[sa.Select[Any], int]]) -> sa.Select[Any]:
    """:func:`count_many`'s statement: one column per count, named as in ``selects``, each
    counting to one more than its cap.

    :param selects: as :func:`count_many` takes them.
    :return: the SELECT; nothing is run.
    """
    return sa.select(*(count_column(ids, cap).label(name) for name, (ids, cap) in selects.items()))


def read_counts(row: Any, caps: dict[str, int]) -> dict[str, tuple[int, bool]]:
    """The counts of a :func:`counts_statement` row, each with whether it hit its cap.

    :param row: the row, one count per name of ``caps``, in its order.
    :param caps: maps each count's name to its cap.
    :return: maps each name to ``(count, capped)``.
    """
    return {
        name: (min(total, cap), total > cap)
        for (name, cap), total in zip(caps.items(), row, strict=True)
    }


def page_rows(
    rows: sa.Select[Any], keys: sa.Select[Any] | None, offset: int, limit: int
) -> sa.Select[Any]:
    """``rows`` from ``offset``, at most ``limit`` of them.

    Deep pages skip ``offset`` rows in ``keys`` (the same filter and order, selecting only the
    primary key, so an index alone answers it) and read the full rows of just that page.

    :param rows: the ordered SELECT of full rows.
    :param keys: ``rows``' filter and order selecting only the primary key, or None to
        always use ``OFFSET`` on ``rows``.
    :param offset: rows to skip, at least 0; from :data:`DEFERRED_JOIN_OFFSET` on,
        ``keys`` (when given) does the skipping.
    :param limit: the most rows to return, at least 1.
    :return: the SELECT to run; nothing is run here.
    """
    if keys is None or offset < DEFERRED_JOIN_OFFSET:
        return rows.limit(limit).offset(offset)
    page_keys = keys.limit(limit).offset(offset).subquery()
    key = keys.selected_columns[0]
    return rows.where(key.in_(sa.select(page_keys.c[0])))


def paginate(
    session: Session,
    rows: sa.Select[Any],
    ids: sa.Select[Any],
    page: int,
    per_page: int,
    keys: sa.Select[Any] | None = None,
    cap: int = COUNT_CAP,
    counted: tuple[int, bool] | None = None,
) -> Page[Any]:
    """One page of ``rows``; ``ids`` is the same filter selecting only the key, for counting.

    The bounded count (:func:`count_column`) rides in the page's own statement, as an
    uncorrelated subquery the database answers once: one round trip for the page and its
    count. A page with no rows needs no count: on page 1 there are none to count (the same
    statement, so the same snapshot), and a later page is past the end.

    :param session: the session to run the one statement in.
    :param rows: the ordered SELECT of the list's entities.
    :param ids: ``rows``' filter selecting only the key, for the count.
    :param page: the page number, from 1.
    :param per_page: rows per page, at least 1.
    :param keys: ``ids`` in the order of ``rows``, for deep pages (:func:`page_rows`).
    :param cap: the most rows to count (:data:`COUNT_CAP` and friends).
    :param counted: the bounded ``(count, capped)`` when it is known already
        (:func:`count_many`); then nothing is counted.
    :return: the page; page 1 of an empty list has no items.
    :raises PageNotFound: when ``page`` is past the last page.
    """
    offset = (page - 1) * per_page
    if counted is not None:
        total, capped = counted
        if page > 1 and not capped and offset >= total:
            raise PageNotFound(page)
        items = list(session.scalars(page_rows(rows, keys, offset, per_page)).unique())
    else:
        statement = page_rows(rows, keys, offset, per_page).add_columns(
            count_column(ids, cap).label("flasket_count")
        )
        found = session.execute(statement).unique().all()
        items = [row[0] for row in found]
        total, capped = (min(found[0][1], cap), found[0][1] > cap) if found else (0, False)
    if page > 1 and not items:
        raise PageNotFound(page)
    return Page(items=items, page=page, per_page=per_page, total=total, capped=capped)


def count_column(ids: sa.Select[Any], cap: int) -> sa.ScalarSelect[Any]:
    """How many rows ``ids`` selects, counted to one more than ``cap``, as a scalar subquery
    to put in another statement's columns.

    :param ids: a SELECT of the matching rows' keys; its ORDER BY is dropped.
    :param cap: the most rows to count, at least 0 (one more tells that more match).
    :return: the subquery; nothing is run.
    """
    bounded = ids.order_by(None).limit(cap + 1).subquery()
    return sa.select(sa.func.count()).select_from(bounded).scalar_subquery()


def paginate_uncounted(
    session: Session,
    rows: sa.Select[Any],
    page: int,
    per_page: int,
    keys: sa.Select[Any] | None = None,
) -> Page[Any]:
    """One page of ``rows`` and whether more follow, without counting all matches.

    For filters no index can count (a common search word matches a third of the tickets):
    the page reads one extra row instead, and the total shown is "more than" what was seen.

    :param session: the session to run the one statement in.
    :param rows: the ordered SELECT of the list's entities.
    :param page: the page number, from 1.
    :param per_page: rows per page, at least 1.
    :param keys: ``rows``' filter and order selecting only the key, for deep pages
        (:func:`page_rows`).
    :return: the page, whose ``total`` counts the rows up to its end and whose
        ``capped`` says whether more follow.
    :raises PageNotFound: when ``page`` is past the last page.
    """
    offset = (page - 1) * per_page
    found = list(session.scalars(page_rows(rows, keys, offset, per_page + 1)).unique())
    items, more = found[:per_page], len(found) > per_page
    if page > 1 and not items:
        raise PageNotFound(page)
    total = (page - 1) * per_page + len(items)
    return Page(items=items, page=page, per_page=per_page, total=total, capped=more)


def page_of_known_size(items: list[T], page: int, per_page: int, total: int) -> Page[T]:
    """A page whose total is already known (a counter column), so no count query runs.

    :param items: the page's rows, already read.
    :param page: the page number, from 1.
    :param per_page: rows per page, at least 1.
    :param total: how many rows the whole list has.
    :return: the page, never capped.
    :raises PageNotFound: when ``page`` is past the last page.
    """
    if page > 1 and (page - 1) * per_page >= total:
        raise PageNotFound(page)
    return Page(items=items, page=page, per_page=per_page, total=total)


def page_holding(position: int, per_page: int) -> int:
    """The page, counted from 1, that holds the row at ``position`` of a list.

    :param position: the row's place in the list, counted from 1; 0 or less is on page 1.
    :param per_page: rows a page holds, at least 1.
    :return: the page number, at least 1.
    """
    return max(1, -(-position // per_page))
