"""Read-only queries behind the pages: each runs a fixed number of SQL statements."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import (
    Session,
    contains_eager,
    defer,
    joinedload,
    selectinload,
    with_expression,
)

from . import policy, search
from .config import config_value, default_is_staff
from .i18n import lazy_gettext
from .models import CLOSED, OPEN, FollowBase, Models, ReplyBase, TicketBase, utcnow
from .pagination import (
    COUNT_CAP,
    INTERSECTED_COUNT_CAP,
    JOINED_COUNT_CAP,
    PERSONAL_COUNT_CAP,
    Page,
    count_many,
    counts_statement,
    page_of_known_size,
    paginate,
    paginate_uncounted,
    read_counts,
)
from .proxies import current_flasket

#: The orders a ticket list offers: the ``sort`` query parameter's value, and its label.
SORTS = {
    "updated": lazy_gettext("Recently updated"),
    "created": lazy_gettext("Newest"),
    "oldest": lazy_gettext("Oldest"),
}
#: The values of a ticket list's ``status`` query parameter that are not one status: the kinds
#: (every status of kind open, of kind closed) and every ticket.
STATUS_FILTERS = ("open", "closed", "all")
#: Followers the ticket page names at most (:func:`followers`); the rest are counted.
FOLLOWERS_SHOWN = 20
#: The staff queues, in the order the staff overview shows them (``?queue=``): open tickets
#: assigned to the viewer, open tickets assigned to nobody, open tickets whose last public
#: word is not staff's (the requester's, or another user's) and that do not wait on the
#: requester, tickets in a status that waits on the requester, and tickets closed in the
#: last :data:`RECENTLY_CLOSED_DAYS` days.
QUEUES = ("mine", "unassigned", "waiting_on_staff", "waiting_on_requester", "recently_closed")
#: How far back the "recently closed" queue looks, in days.
RECENTLY_CLOSED_DAYS = 7
#: A queue, and a list of one assignee's tickets or of nobody's, stops counting here: a desk
#: reads "1,000+", and every count stays index-bound.
QUEUE_COUNT_CAP = 1_000
#: The assign control offers at most this many staff members (:func:`assignable_staff`).
ASSIGNABLE_SHOWN = 200
#: The ``assignee`` filter's value for tickets assigned to nobody.
UNASSIGNED = "none"


@dataclass(frozen=True)
class TicketFilter:
    """What a ticket list shows: the filters and order of its query parameters."""

    #: ``"open"`` or ``"closed"`` (every status of that kind), ``"all"``
    #: (:data:`STATUS_FILTERS`), or the name of one configured status (``"waiting"``).
    status: str = "open"
    #: Maps a category's name to the one value a ticket must have; all must match.
    categories: Mapping[str, str] = field(default_factory=dict)
    #: Only this author's tickets (a user primary key), or None for anyone's.
    author_id: Any = None
    #: Search words, as typed (:func:`flasket.search.matches`); ``""`` for no search.
    query: str = ""
    #: A key of :data:`SORTS`; anything else sorts as ``"updated"``.
    sort: str = "updated"
    #: Only tickets assigned to this user (a primary key), or None for anyone's.
    assignee_id: Any = None
    #: Only tickets assigned to nobody (``?assignee=none``).
    unassigned: bool = False
    #: One of :data:`QUEUES`, whose conditions take the place of ``status``; ``""`` for none.
    queue: str = ""


#: The aggregate that gathers a ticket's categories into one JSON object, per database.
#: Not SQLite's json_group_object: SQLite computes a row's columns before it sorts, so a list
#: it sorts (one filtered by category) would build the object for every match, not for 25.
_JSON_OBJECT_AGGREGATES = {
    "postgresql": "json_object_agg",
    "mysql": "json_objectagg",
    "mariadb": "json_objectagg",
}


def _ticket_rows(session: Session, models: Models) -> sa.Select[Any]:
    """Tickets for a list: with author and categories, without the description."""
    return _list_rows(models, dialect_name(session))


@functools.cache
def _list_rows(models: Models, dialect: str) -> sa.Select[Any]:
    """:func:`_ticket_rows`, built once per database: every list page starts from it.

    On PostgreSQL and MariaDB/MySQL the categories come as one JSON column of the ticket's row
    (``listed_categories``, read through ``category_values()``): a list takes no second
    statement and builds no object per category. Flasket's lists don't show the description;
    a host template that does still works, one query per row, as does one that reads
    ``ticket.categories``.
    """
    ticket = models.Ticket
    rows = sa.select(ticket).options(
        defer(ticket.body), joinedload(ticket.author), joinedload(ticket.assignee)
    )
    listed = _listed_categories(models, dialect)
    if listed is None:
        return rows.options(selectinload(ticket.categories))
    return rows.options(with_expression(ticket.listed_categories, listed))


def _listed_categories(models: Models, dialect: str) -> Any:
    """The ticket's categories as one JSON object of its row (``listed_categories``), on the
    databases that aggregate to JSON; None on the others."""
    ticket = models.Ticket
    aggregate = _JSON_OBJECT_AGGREGATES.get(dialect)
    if aggregate is None:
        return None
    category = models.TicketCategory
    listed = (
        sa.select(getattr(sa.func, aggregate)(category.name, category.value))
        .where(category.ticket_id == ticket.id)
        .scalar_subquery()
    )
    # No category gives NULL on PostgreSQL and MariaDB: an empty object, not "not loaded".
    found = sa.func.coalesce(listed, sa.literal_column("'{}'"))
    return sa.type_coerce(found, sa.JSON)


def _order(models: Models, sort: str) -> tuple[Any, ...]:
    ticket = models.Ticket
    if sort == "created":
        return (ticket.id.desc(),)
    if sort == "oldest":
        return (ticket.id.asc(),)
    return (ticket.updated_at.desc(), ticket.id.desc())


_T = TypeVar("_T")

#: Statements built once and run for every reader of a kind, by what shapes each
#: (:func:`_kept`).
_KEPT: dict[tuple[Any, ...], Any] = {}


def _kept(shape: tuple[Any, ...], build: Callable[[], _T]) -> _T:
    """What ``build`` returns, built the first time ``shape`` is asked for and kept.

    For statements whose form depends on things that are not hashable or not arguments
    (the reader's kind, decided by policy): ``shape`` names the statement and everything
    that shapes it; what differs from one reader to the next must be a bound parameter.
    """
    found = _KEPT.get(shape)
    if found is None:
        found = _KEPT[shape] = build()
    return cast(_T, found)


def forget_statements() -> None:
    """Drop every statement this module built once and kept: they are built again when next
    asked for. For code that changes what shapes them while running (tests that patch this
    module's constants)."""
    for cached in (_list_rows, _ticket_with_details, _timeline_statements, _reply_page):
        cached.cache_clear()
    _default_staff.cache_clear()
    _KEPT.clear()


def dialect_name(session: Session) -> str:
    """The SQLAlchemy dialect name of the database ``session`` uses.

    :param session: the session the statements will run in.
    :return: ``"postgresql"``, ``"sqlite"``, ``"mysql"``, ``"mariadb"``, ...
    """
    return str(session.get_bind().dialect.name)


def ticket_conditions(
    session: Session, models: Models, viewer: Any, filters: TicketFilter
) -> list[Any]:
    """The WHERE conditions of a ticket list: readable by ``viewer`` and matching ``filters``.

    Builds the conditions only; a search on PostgreSQL may read its index statistics
    (:func:`flasket.search.matches`).

    :param session: the session the statements will run in (its database decides the
        search's form, and a PostgreSQL search reads its index statistics through it).
    :param models: the current Flasket's models.
    :param viewer: the host user looking, or an anonymous one.
    :param filters: the list's filters (its ``sort`` is not used here).
    :return: conditions on ``models.Ticket``, to combine with AND.
    """
    ticket, category = models.Ticket, models.TicketCategory
    conditions: list[Any] = [policy.readable_tickets(models, viewer)]
    if filters.queue:
        conditions.extend(queue_conditions(models, viewer, filters.queue))
    elif filters.status in (OPEN, CLOSED):
        conditions.append(ticket.state == filters.status)
    elif filters.status != "all":
        conditions.append(ticket.status == filters.status)
    if filters.unassigned:
        conditions.append(ticket.assignee_id.is_(None))
    elif filters.assignee_id is not None:
        conditions.append(ticket.assignee_id == filters.assignee_id)
    for name, value in filters.categories.items():
        conditions.append(
            ticket.id.in_(
                sa.select(category.ticket_id).where(category.name == name, category.value == value)
            )
        )
    if filters.author_id is not None:
        conditions.append(ticket.author_id == filters.author_id)
    if filters.query:
        conditions.append(search.matches(dialect_name(session), models, filters.query, session))
    return conditions


def queue_conditions(
    models: Models, viewer: Any, queue: str, me: Any = None, since: Any = None
) -> list[Any]:
    """The WHERE conditions of one staff queue (:data:`QUEUES`), as ``viewer`` works it.

    Each is read through an index in its list's order: the assignee's
    (``assignee_id, state, updated_at, id``), the "waiting on staff" one (``state,
    awaiting_staff, updated_at, id``), the status's and the kind's.

    :param models: the current Flasket's models.
    :param viewer: the host user looking ("mine" is theirs).
    :param queue: one of :data:`QUEUES`.
    :param me: an SQL expression standing for ``viewer``'s primary key (a bound parameter,
        in a statement built once), or None for the key itself.
    :param since: the same for the start of "recently closed", or None for
        :data:`RECENTLY_CLOSED_DAYS` days ago.
    :return: conditions on ``models.Ticket``, to combine with AND.
    :raises ValueError: for a name that is no queue.
    """
    ticket = models.Ticket
    waiting = [s.name for s in current_flasket.statuses() if s.waiting_on_requester]
    if queue == "mine":
        return [
            ticket.assignee_id == (models.user_id(viewer) if me is None else me),
            ticket.state == OPEN,
        ]
    if queue == "unassigned":
        return [ticket.assignee_id.is_(None), ticket.state == OPEN]
    if queue == "waiting_on_staff":
        conditions = [ticket.state == OPEN, ticket.awaiting_staff.is_(True)]
        if waiting:
            conditions.append(ticket.status.not_in(waiting))
        return conditions
    if queue == "waiting_on_requester":
        return [ticket.status.in_(waiting)] if waiting else [sa.false()]
    if queue == "recently_closed":
        if since is None:
            since = recently_closed_since()
        return [ticket.state == CLOSED, ticket.closed_at >= since]
    raise ValueError(f"no queue is called {queue!r}")


def recently_closed_since() -> Any:
    """The start of the "recently closed" queue: :data:`RECENTLY_CLOSED_DAYS` days ago (UTC)."""
    return utcnow() - timedelta(days=RECENTLY_CLOSED_DAYS)


def queue_counts(session: Session, models: Models, viewer: Any) -> dict[str, tuple[int, bool]]:
    """The count of every staff queue (:data:`QUEUES`) ``viewer`` may read, in one statement.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param viewer: the staff member looking.
    :return: maps each queue to ``(count, capped)``, each at most :data:`QUEUE_COUNT_CAP`.
    """
    readable = policy.readable_tickets(models, viewer)
    counts = count_many(session, _queue_selects(models, viewer, readable))
    return {name: counts[f"queue_{name}"] for name in QUEUES}


def _queue_selects(
    models: Models, viewer: Any, readable: Any
) -> dict[str, tuple[sa.Select[Any], int]]:
    """Each queue's ids and cap for :func:`~flasket.pagination.count_many`, keyed
    ``queue_<name>``."""
    ids = sa.select(models.Ticket.id)
    return {
        f"queue_{name}": (
            ids.where(readable, *queue_conditions(models, viewer, name)),
            QUEUE_COUNT_CAP,
        )
        for name in QUEUES
    }


def assignable_staff(session: Session, models: Models) -> list[Any]:
    """The staff members the assign control offers, by name, at most :data:`ASSIGNABLE_SHOWN`.

    ``FLASKET_ASSIGNABLE_STAFF``, a callable taking no arguments, gives them when set.
    Otherwise, with the default ``FLASKET_IS_STAFF``, the users whose mapped ``is_admin``
    (or ``admin``) column is true are read in one statement; with a host's own
    ``FLASKET_IS_STAFF`` and no list, nobody is offered but the reader ("Assign to me").
    Either way only users ``FLASKET_IS_STAFF`` calls staff are kept.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :return: host users, in the order given (the default list: by name).
    """
    chosen = config_value("assignable_staff")
    if chosen is not None:
        users = list(itertools.islice(chosen(), ASSIGNABLE_SHOWN))
    else:
        column = _default_staff_column(models)
        if column is None:
            return []
        statement = _default_staff(models, column, config_value("user_name_attr"))
        users = list(session.scalars(statement))
    return [user for user in users if policy.is_staff(user)]


@functools.cache
def _default_staff(models: Models, column: Any, name_attr: str) -> sa.Select[Any]:
    """:func:`assignable_staff`'s default statement, built once per app and column."""
    name = getattr(models.user, name_attr)
    return (
        sa.select(models.user)
        .where(column.is_(True))
        .order_by(name, getattr(models.user, models.user_pk))
        .limit(ASSIGNABLE_SHOWN)
    )


def _default_staff_column(models: Models) -> Any:
    """The user model's boolean ``is_admin`` or ``admin`` column, when the default
    ``FLASKET_IS_STAFF`` reads it; else None."""
    if current_flasket.settings().is_staff is not default_is_staff:
        return None
    columns = sa.inspect(models.user).columns
    for attr in ("is_admin", "admin"):
        column = columns.get(attr)
        if column is not None and isinstance(column.type, sa.Boolean):
            return getattr(models.user, attr)
    return None


@dataclass(frozen=True)
class ListQuery:
    """A list's rows in order, the same filter selecting only keys (to count), and its cap.

    What :func:`list_page` pages; see :func:`flasket.pagination.paginate`.
    """

    #: The ordered SELECT of the list's entities (tickets or replies).
    rows: sa.Select[Any]
    #: The same filter selecting only the primary key, unordered, for counting.
    ids: sa.Select[Any]
    #: The most rows to count (:data:`flasket.pagination.COUNT_CAP` and friends).
    cap: int
    #: ``ids`` in the order of ``rows``, for deep pages.
    keys: sa.Select[Any] | None = None


def ticket_list(session: Session, models: Models, viewer: Any, filters: TicketFilter) -> ListQuery:
    """The tickets ``viewer`` may read that match ``filters``, in the order they ask for.

    Builds the statements only. The count stops at the cap that fits the filter:
    :data:`~flasket.pagination.INTERSECTED_COUNT_CAP` for two or more categories,
    :data:`~flasket.pagination.JOINED_COUNT_CAP` for one,
    :data:`~flasket.pagination.PERSONAL_COUNT_CAP` for one author,
    :data:`QUEUE_COUNT_CAP` for a queue and for one assignee or nobody (the queues'
    lists by another name: ``?assignee=none`` is the unassigned queue), else
    :data:`~flasket.pagination.COUNT_CAP`.

    :param session: the session the statements will run in (see :func:`ticket_conditions`).
    :param models: the current Flasket's models.
    :param viewer: the host user looking, or an anonymous one.
    :param filters: the list's filters and order.
    :return: the list's statements; tickets come with their author and categories,
        without their description.
    """
    conditions = ticket_conditions(session, models, viewer, filters)
    order = _order(models, filters.sort)
    if filters.queue == "recently_closed" and filters.sort == "updated":
        # Last closed first, down the (state, closed_at, id) index: ordering a week's
        # closings by their last update would read and sort them all.
        order = (models.Ticket.closed_at.desc(), models.Ticket.id.desc())
    ids = sa.select(models.Ticket.id).where(*conditions)
    if len(filters.categories) > 1:
        cap = INTERSECTED_COUNT_CAP
    elif filters.categories:
        cap = JOINED_COUNT_CAP
    elif filters.author_id is not None:
        cap = PERSONAL_COUNT_CAP
    elif filters.queue or filters.unassigned or filters.assignee_id is not None:
        cap = QUEUE_COUNT_CAP
    else:
        cap = COUNT_CAP
    return ListQuery(
        rows=_ticket_rows(session, models).where(*conditions).order_by(*order),
        ids=ids,
        cap=cap,
        keys=ids.order_by(*order),
    )


def ticket_page(
    session: Session,
    models: Models,
    viewer: Any,
    filters: TicketFilter,
    page: int,
    per_page: int,
) -> Page[TicketBase]:
    """One page of :func:`ticket_list`: a bounded count, then the page's rows.

    With a search there is no count (no index counts the matches of a common word): the
    page reads one row more to tell whether more follow
    (:func:`flasket.pagination.paginate_uncounted`).

    :param session: the session to run the statements in.
    :param models: the current Flasket's models.
    :param viewer: the host user looking, or an anonymous one.
    :param filters: the list's filters and order.
    :param page: the page number, from 1.
    :param per_page: tickets per page, at least 1.
    :return: the page of tickets.
    :raises flasket.pagination.PageNotFound: when ``page`` is past the last page.
    """
    query = ticket_list(session, models, viewer, filters)
    if filters.query:
        # No index counts the matches of a common word; the page only says whether more follow.
        return paginate_uncounted(session, query.rows, page, per_page, keys=query.keys)
    return list_page(session, query, page, per_page)


@dataclass(frozen=True)
class IndexCounts:
    """The overview's counts, as the index template receives them (:func:`index_counts`).

    Each count stops at its cap; its ``_capped`` twin is True when more match.
    """

    #: Open tickets the viewer may read (at most :data:`~flasket.pagination.COUNT_CAP`).
    open: int
    #: More open tickets match than ``open`` says.
    open_capped: bool
    #: Closed tickets the viewer may read (at most :data:`~flasket.pagination.COUNT_CAP`).
    closed: int
    #: More closed tickets match than ``closed`` says.
    closed_capped: bool
    #: The viewer's own open tickets (at most :data:`~flasket.pagination.PERSONAL_COUNT_CAP`).
    mine_open: int
    #: The viewer's own closed tickets (at most
    #: :data:`~flasket.pagination.PERSONAL_COUNT_CAP`).
    mine_closed: int
    #: Tickets the viewer follows and may read (at most
    #: :data:`~flasket.pagination.PERSONAL_COUNT_CAP`).
    following: int
    #: More of the viewer's open tickets match than ``mine_open`` says.
    mine_open_capped: bool = False
    #: More of the viewer's closed tickets match than ``mine_closed`` says.
    mine_closed_capped: bool = False
    #: More followed tickets match than ``following`` says.
    following_capped: bool = False
    #: For staff, each queue's ``(count, capped)`` (:data:`QUEUES`, at most
    #: :data:`QUEUE_COUNT_CAP`); empty for everyone else.
    queues: Mapping[str, tuple[int, bool]] = field(default_factory=dict)


def index_counts(
    session: Session, models: Models, viewer: Any, queues: bool = False
) -> IndexCounts:
    """Every overview count in one statement, each bounded like the list it links to.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param viewer: the logged-in host user.
    :param queues: whether to count the staff queues too (:func:`queue_counts`), in the
        same statement.
    :return: the counts.
    """
    waiting = tuple(s.name for s in current_flasket.statuses() if s.waiting_on_requester)
    limits = (COUNT_CAP, PERSONAL_COUNT_CAP, QUEUE_COUNT_CAP)
    shape = ("index_counts", models, policy.reads_every_ticket(viewer), queues, waiting, limits)
    statement, caps = _kept(shape, lambda: _index_counts(models, queues, viewer))
    params = {"flasket_me": models.user_id(viewer)}
    if queues:
        params["flasket_since"] = recently_closed_since()
    counts = read_counts(session.execute(statement, params).one(), caps)
    return IndexCounts(
        open=counts["open"][0],
        open_capped=counts["open"][1],
        closed=counts["closed"][0],
        closed_capped=counts["closed"][1],
        mine_open=counts["mine_open"][0],
        mine_open_capped=counts["mine_open"][1],
        mine_closed=counts["mine_closed"][0],
        mine_closed_capped=counts["mine_closed"][1],
        following=counts["following"][0],
        following_capped=counts["following"][1],
        queues={name: counts[f"queue_{name}"] for name in QUEUES} if queues else {},
    )


def _index_counts(
    models: Models, queues: bool, viewer: Any
) -> tuple[sa.Select[Any], dict[str, int]]:
    """:func:`index_counts`' statement and caps, built for the first reader of each kind
    (by the models, whether the reader reads every ticket, whether the queues are counted,
    the statuses that wait on the requester, and the caps) and run for every one: the
    reader's key and the start of "recently closed" are the bound parameters
    ``flasket_me`` and ``flasket_since``."""
    ticket = models.Ticket
    me: Any = sa.bindparam("flasket_me")
    readable = policy.readable_tickets(models, viewer, key=me)
    mine = ticket.author_id == me
    selects = {
        "open": (sa.select(ticket.id).where(readable, ticket.state == OPEN), COUNT_CAP),
        "closed": (sa.select(ticket.id).where(readable, ticket.state == CLOSED), COUNT_CAP),
        "mine_open": (sa.select(ticket.id).where(mine, ticket.state == OPEN), PERSONAL_COUNT_CAP),
        "mine_closed": (
            sa.select(ticket.id).where(mine, ticket.state == CLOSED),
            PERSONAL_COUNT_CAP,
        ),
        "following": (followed_ids(models, viewer, viewer, key=me), PERSONAL_COUNT_CAP),
    }
    if queues:
        since = sa.bindparam("flasket_since", type_=ticket.closed_at.type)
        ids = sa.select(ticket.id)
        for name in QUEUES:
            conditions = queue_conditions(models, viewer, name, me=me, since=since)
            selects[f"queue_{name}"] = (ids.where(readable, *conditions), QUEUE_COUNT_CAP)
    return counts_statement(selects), {name: cap for name, (_, cap) in selects.items()}


def followed_ids(models: Models, viewer: Any, user: Any, key: Any = None) -> sa.Select[Any]:
    """Ids of the tickets ``user`` follows that ``viewer`` may read (no join when all are).

    :param models: the current Flasket's models.
    :param viewer: the host user looking.
    :param user: the host user whose follows are wanted.
    :param key: an SQL expression standing for both users' primary key (a bound parameter,
        when ``viewer`` is ``user`` in a statement built once), or None for the keys.
    :return: an unordered SELECT of ``flasket_follow.ticket_id``; nothing is run.
    """
    follow: type[FollowBase] = models.Follow
    followed = sa.select(follow.ticket_id).where(
        follow.user_id == (models.user_id(user) if key is None else key)
    )
    if policy.reads_every_ticket(viewer):
        return followed
    ticket = models.Ticket
    return followed.join(ticket, ticket.id == follow.ticket_id).where(
        policy.readable_tickets(models, viewer, key=key)
    )


#: The lists of the overview (:func:`overview_tickets`): every ticket the reader may read,
#: the open tickets assigned to them, the tickets they submitted.
OVERVIEW_LISTS = ("recent", "assigned", "submitted")


def overview_tickets(
    session: Session, models: Models, viewer: Any, which: str, limit: int
) -> list[TicketBase]:
    """One of the overview's short lists, last updated first, in one statement, built once
    per kind of reader (the reader's key is the bound parameter ``flasket_me``).

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param viewer: the logged-in host user.
    :param which: one of :data:`OVERVIEW_LISTS`.
    :param limit: the most tickets to return.
    :return: tickets with their author, assignee and categories, without their description.
    :raises ValueError: for a ``which`` that is no overview list.
    """
    if which not in OVERVIEW_LISTS:
        raise ValueError(f"no overview list is called {which!r}")

    def build() -> sa.Select[Any]:
        me: Any = sa.bindparam("flasket_me")
        conditions = [policy.readable_tickets(models, viewer, key=me)]
        if which == "assigned":
            conditions.extend(queue_conditions(models, viewer, "mine", me=me))
        elif which == "submitted":
            conditions.append(models.Ticket.author_id == me)
        rows = _ticket_rows(session, models).where(*conditions)
        return rows.order_by(*_order(models, "updated")).limit(limit)

    reads_all = policy.reads_every_ticket(viewer)
    shape = ("overview", models, dialect_name(session), reads_all, which, limit)
    statement = _kept(shape, build)
    found = session.scalars(statement, {"flasket_me": models.user_id(viewer)})
    return list(found.unique())


def ticket_with_details(
    session: Session, models: Models, ticket_id: int, viewer: Any, for_page: bool = False
) -> TicketBase | None:
    """Ticket ``ticket_id`` with its author, closer, assignee, original and categories, if
    ``viewer`` may read it.

    Readability is part of the query: a ticket the viewer may not read is not found, by the
    same statements as a missing one, so neither the answer nor the work done to give it
    tells the two apart.

    :param session: the session to run the statements in.
    :param models: the current Flasket's models.
    :param ticket_id: the ticket's number.
    :param viewer: the host user looking, or an anonymous one.
    :param for_page: load what the ticket page asks besides, in the same statement:
        ``viewer_follows``, ``has_duplicates`` and (on PostgreSQL and MariaDB/MySQL) the
        categories as ``listed_categories``; one statement instead of four.
    :return: the ticket, or None when it does not exist or ``viewer`` may not read it.
    """
    ticket = models.Ticket
    following = for_page and bool(getattr(viewer, "is_authenticated", False))
    rows = _ticket_with_details(models, dialect_name(session), for_page, following)
    params = {"flasket_viewer_id": models.user_id(viewer)} if following else {}
    found: TicketBase | None = session.scalars(
        rows.where(ticket.id == ticket_id, policy.readable_tickets(models, viewer)), params
    ).first()
    return found


@functools.cache
def _ticket_with_details(
    models: Models, dialect: str, for_page: bool, following: bool
) -> sa.Select[Any]:
    """:func:`ticket_with_details`'s statement but its WHERE clause, built once per database
    and kind (the reader's key is the bound parameter ``flasket_viewer_id``)."""
    ticket = models.Ticket
    loads: list[Any] = [
        joinedload(ticket.author),
        joinedload(ticket.closed_by),
        joinedload(ticket.assignee),
        joinedload(ticket.duplicate_of).load_only(
            ticket.id, ticket.title, ticket.author_id, ticket.state, ticket.status
        ),
    ]
    listed = _listed_categories(models, dialect) if for_page else None
    if listed is None:
        loads.append(selectinload(ticket.categories))
    else:
        loads.append(with_expression(ticket.listed_categories, listed))
    if for_page:
        duplicate = sa.orm.aliased(ticket)
        duplicates = sa.select(duplicate.id).where(duplicate.duplicate_of_id == ticket.id)
        loads.append(with_expression(ticket.has_duplicates, duplicates.exists()))
    if following:
        follows = sa.select(models.Follow.ticket_id).where(
            models.Follow.ticket_id == ticket.id,
            models.Follow.user_id == sa.bindparam("flasket_viewer_id"),
        )
        loads.append(with_expression(ticket.viewer_follows, follows.exists()))
    return sa.select(ticket).options(*loads)


#: The duplicates a ticket page names at most.
DUPLICATES_SHOWN = 20


def duplicates_of(
    session: Session, models: Models, ticket: TicketBase, viewer: Any
) -> list[TicketBase]:
    """The tickets closed as duplicates of ``ticket`` that ``viewer`` may read, in one
    statement: the first :data:`DUPLICATES_SHOWN` by number.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param ticket: the original.
    :param viewer: the host user looking.
    :return: the duplicates, without their descriptions.
    """
    found = models.Ticket
    return list(
        session.scalars(
            sa.select(found)
            .where(found.duplicate_of_id == ticket.id, policy.readable_tickets(models, viewer))
            .options(defer(found.body))
            .order_by(found.id)
            .limit(DUPLICATES_SHOWN)
        )
    )


def reply_position(session: Session, models: Models, reply: ReplyBase) -> int:
    """A reply's place among its ticket's replies, 1 for the first, in one statement.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param reply: the reply.
    :return: how many of the ticket's replies are not newer than it.
    """
    Reply = models.Reply
    found = session.scalar(
        sa.select(sa.func.count()).where(Reply.ticket_id == reply.ticket_id, Reply.id <= reply.id)
    )
    return int(found or 1)


def revisions(
    session: Session, models: Models, ticket: TicketBase, reply: ReplyBase | None
) -> list[Any]:
    """The earlier texts of a ticket's description (``reply`` None) or of a reply, newest
    first, with their editors, in one statement.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param ticket: the ticket.
    :param reply: the reply, or None for the description.
    :return: ``flasket_revision`` rows.
    """
    revision = models.Revision
    which = revision.reply_id.is_(None) if reply is None else revision.reply_id == reply.id
    return list(
        session.scalars(
            sa.select(revision)
            .where(revision.ticket_id == ticket.id, which)
            .options(joinedload(revision.editor))
            .order_by(revision.id.desc())
        )
    )


def tickets_by_numbers(
    session: Session, models: Models, numbers: list[int], viewer: Any
) -> dict[int, TicketBase]:
    """The tickets of ``numbers`` that ``viewer`` may read, in one statement.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param numbers: ticket numbers.
    :param viewer: the host user looking.
    :return: maps each number found (and readable) to its ticket, with author and assignee.
    """
    if not numbers:
        return {}
    ticket = models.Ticket
    found = session.scalars(
        sa.select(ticket)
        .where(ticket.id.in_(numbers), policy.readable_tickets(models, viewer))
        .options(defer(ticket.body), joinedload(ticket.author), joinedload(ticket.assignee))
    ).unique()
    return {t.id: t for t in found}


def reply_page(
    session: Session, models: Models, ticket: TicketBase, page: int, per_page: int
) -> Page[ReplyBase]:
    """One page of a ticket's replies, oldest first, with their authors, in one statement.

    The total is the ticket's stored ``reply_count``, so nothing is counted.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param ticket: the ticket, already read (its readability checked).
    :param page: the page number, from 1.
    :param per_page: replies per page, at least 1.
    :return: the page of replies.
    :raises flasket.pagination.PageNotFound: when ``page`` is past the last page.
    """
    params = {
        "flasket_ticket_id": ticket.id,
        "flasket_limit": per_page,
        "flasket_offset": (page - 1) * per_page,
    }
    items = list(session.scalars(_reply_page(models), params))
    return page_of_known_size(items, page, per_page, ticket.reply_count)


@functools.cache
def _reply_page(models: Models) -> sa.Select[Any]:
    """:func:`reply_page`'s statement, built once; bound parameters ``flasket_ticket_id``,
    ``flasket_limit``, ``flasket_offset``."""
    reply = models.Reply
    return (
        sa.select(reply)
        .where(reply.ticket_id == sa.bindparam("flasket_ticket_id"))
        .options(joinedload(reply.author))
        .order_by(reply.id)
        .limit(sa.bindparam("flasket_limit", type_=sa.Integer))
        .offset(sa.bindparam("flasket_offset", type_=sa.Integer))
    )


#: An entry of a ticket's thread between its replies: ``("note", note)`` or
#: ``("change", change)``.
ThreadEntry = tuple[str, Any]


def timeline_for_page(
    session: Session,
    models: Models,
    ticket: TicketBase,
    replies: Page[ReplyBase],
    notes: bool,
    staff_changes: bool,
) -> dict[int | None, list[ThreadEntry]]:
    """The history entries and internal notes shown on one page of a ticket's replies.

    Each follows the reply that was the ticket's last when it happened (``after_reply_id``):
    the page of that reply shows it; page 1 also shows those from before any reply (under
    the key None). The changes are one statement, the notes another; what the reader may
    see is the caller's to say (:func:`flasket.policy.may_read_notes`).

    :param session: the session to run the statements in.
    :param models: the current Flasket's models.
    :param ticket: the ticket.
    :param replies: the page of replies shown.
    :param notes: whether to read the internal notes (staff only).
    :param staff_changes: whether to read the changes only staff may know of too.
    :return: maps a reply's id (or None) to the entries after it, in the order they
        happened, with their users loaded; empty when there are none.
    """
    found: dict[int | None, list[tuple[Any, int, ThreadEntry]]] = {}
    in_range, before_replies = bool(replies.items), replies.page == 1
    if not in_range and not before_replies:
        return {}
    changes, notes_statement = _timeline_statements(
        models, in_range, before_replies, staff_changes
    )
    params: dict[str, Any] = {"flasket_ticket_id": ticket.id}
    if in_range:
        params.update(flasket_first=replies.items[0].id, flasket_last=replies.items[-1].id)
    for entry in session.scalars(changes, params):
        found.setdefault(entry.after_reply_id, []).append((entry.created_at, 1, ("change", entry)))
    if notes:
        for row in session.scalars(notes_statement, params):
            found.setdefault(row.after_reply_id, []).append((row.created_at, 0, ("note", row)))
    return {
        key: [entry for _, _, entry in sorted(entries, key=lambda e: (e[0], e[1]))]
        for key, entries in found.items()
    }


@functools.cache
def _timeline_statements(
    models: Models, in_range: bool, before_replies: bool, staff_changes: bool
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """:func:`timeline_for_page`'s two statements (changes, notes), built once per kind of
    page; bound parameters ``flasket_ticket_id``, ``flasket_first``, ``flasket_last``."""

    def placed(column: Any) -> Any:
        where = []
        if in_range:
            where.append(
                column.between(sa.bindparam("flasket_first"), sa.bindparam("flasket_last"))
            )
        if before_replies:
            where.append(column.is_(None))
        return sa.or_(*where)

    change, note = models.Change, models.Note
    conditions = [
        change.ticket_id == sa.bindparam("flasket_ticket_id"),
        placed(change.after_reply_id),
    ]
    if not staff_changes:
        conditions.append(change.staff_only.is_(False))
    changes = (
        sa.select(change)
        .where(*conditions)
        .options(
            joinedload(change.actor), joinedload(change.old_user), joinedload(change.new_user)
        )
        .order_by(change.id)
    )
    notes = (
        sa.select(note)
        .where(note.ticket_id == sa.bindparam("flasket_ticket_id"), placed(note.after_reply_id))
        .options(joinedload(note.author))
        .order_by(note.id)
    )
    return changes, notes


@dataclass(frozen=True)
class Followers:
    """The first few followers of a ticket (iterate over them) and how many follow it in all.

    ``len()`` is the number shown, not ``total``.
    """

    #: The host users shown, at most :data:`FOLLOWERS_SHOWN`, in the order they followed.
    shown: list[Any]
    #: How many follow the ticket in all.
    total: int

    def __iter__(self) -> Iterator[Any]:
        return iter(self.shown)

    def __len__(self) -> int:
        return len(self.shown)


def followers(session: Session, models: Models, ticket: TicketBase) -> Followers:
    """The first :data:`FOLLOWERS_SHOWN` followers, for the ticket page, and their number.

    The number is counted from ``flasket_follow`` in the same statement (an uncorrelated
    subquery, run once, on the follow index), not read from ``ticket.follower_count``: a host
    that deletes users deletes their follows without Flasket knowing, and the stored counter
    would go on counting them.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param ticket: the ticket.
    :return: the followers shown, in the order they followed, and their number.
    """
    follow = models.Follow
    user_pk = getattr(models.user, models.user_pk)
    total = (
        sa.select(sa.func.count())
        .select_from(follow)
        .where(follow.ticket_id == ticket.id)
        .scalar_subquery()
    )
    found = session.execute(
        sa.select(models.user, total)
        .join(follow, follow.user_id == user_pk)
        .where(follow.ticket_id == ticket.id)
        .order_by(follow.created_at, follow.user_id)
        .limit(FOLLOWERS_SHOWN)
    ).all()
    return Followers(shown=[row[0] for row in found], total=found[0][1] if found else 0)


def is_following(session: Session, models: Models, ticket: TicketBase, user: Any) -> bool:
    """Whether ``user`` follows ``ticket``, in one statement.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param ticket: the ticket.
    :param user: a host user (logged in).
    :return: True when a ``flasket_follow`` row joins them.
    """
    found = session.scalar(
        sa.select(sa.literal(True)).where(
            models.Follow.ticket_id == ticket.id,
            models.Follow.user_id == models.user_id(user),
        )
    )
    return bool(found)


def user_by_key(session: Session, models: Models, key: Any) -> Any:
    """The user whose primary key is ``key`` (already of the key's Python type), or None.

    :param session: the session to look in (the identity map first, else one statement).
    :param models: the current Flasket's models.
    :param key: the primary key, of its Python type (see :func:`flasket.unfollow.user_key`).
    :return: the host user, or None when there is none.
    """
    return session.get(models.user, key)


#: Users a name lookup returns at most: the author filter lists them to choose from.
NAMESAKES_SHOWN = 20


def users_named(session: Session, models: Models, name: str) -> list[Any]:
    """The users called ``name`` (exactly, else in another case), by primary key, at most 20.

    Names need not be unique in the host's table, so a name may stand for several users;
    the author filter then asks which one is meant instead of picking one. The exact lookup
    uses the name's index; the case-blind one cannot, so it runs only when the exact name
    matches nobody. SQLite's ``lower()`` folds ASCII letters only.

    :param session: the session to run the statements in (one or two).
    :param models: the current Flasket's models.
    :param name: the name, compared with the ``FLASKET_USER_NAME_ATTR`` column.
    :return: at most :data:`NAMESAKES_SHOWN` host users, by primary key; empty when none.
    """
    attribute = getattr(models.user, config_value("user_name_attr"))
    by_key = getattr(models.user, models.user_pk)
    rows = sa.select(models.user).order_by(by_key).limit(NAMESAKES_SHOWN)
    found = list(session.scalars(rows.where(attribute == name)))
    if not found:
        any_case = sa.func.lower(attribute) == sa.func.lower(sa.literal(name, sa.String))
        found = list(session.scalars(rows.where(any_case)))
    return found


#: The lists of the user page, one shown at a time.
USER_LISTS = ("tickets", "following", "replies")


def _user_tickets(models: Models, user: Any) -> TicketFilter:
    return TicketFilter(status="all", author_id=models.user_id(user))


def _user_replies(models: Models, user: Any) -> sa.ColumnElement[bool]:
    written: sa.ColumnElement[bool] = models.Reply.author_id == models.user_id(user)
    return written


def _user_reply_ids(models: Models, viewer: Any, user: Any) -> sa.Select[Any]:
    """Ids of ``user``'s replies to tickets ``viewer`` may read (no join when all are)."""
    ticket, reply = models.Ticket, models.Reply
    ids = sa.select(reply.id).where(_user_replies(models, user))
    if policy.reads_every_ticket(viewer):
        return ids
    return ids.join(ticket, ticket.id == reply.ticket_id).where(
        policy.readable_tickets(models, viewer)
    )


def user_list_counts(
    session: Session, models: Models, viewer: Any, user: Any
) -> dict[str, tuple[int, bool]]:
    """The bounded count of each of ``user``'s lists (:data:`USER_LISTS`), in one statement.

    Only what ``viewer`` may read is counted, each list at most
    :data:`~flasket.pagination.PERSONAL_COUNT_CAP`.

    :param session: the session to run the statement in.
    :param models: the current Flasket's models.
    :param viewer: the host user looking.
    :param user: the host user whose page it is.
    :return: maps each name of :data:`USER_LISTS` to its ``(count, capped)``.
    """
    tickets = ticket_conditions(session, models, viewer, _user_tickets(models, user))
    ids = {
        "tickets": sa.select(models.Ticket.id).where(*tickets),
        "following": followed_ids(models, viewer, user),
        "replies": _user_reply_ids(models, viewer, user),
    }
    return count_many(session, {name: (ids[name], PERSONAL_COUNT_CAP) for name in USER_LISTS})


def user_list(session: Session, models: Models, viewer: Any, user: Any, name: str) -> ListQuery:
    """One of ``user``'s lists: their tickets, the tickets they follow, or their replies.

    Only what ``viewer`` may read. Their tickets come last updated first, followed
    tickets last followed first (by ticket number), replies newest first with their
    ticket. Builds the statements only.

    :param session: the session the statements will run in (see :func:`ticket_conditions`).
    :param models: the current Flasket's models.
    :param viewer: the host user looking.
    :param user: the host user whose page it is.
    :param name: one of :data:`USER_LISTS`; anything but ``"tickets"`` and
        ``"following"`` gives the replies.
    :return: the list's statements, counted to
        :data:`~flasket.pagination.PERSONAL_COUNT_CAP`.
    """
    ticket, reply, follow = models.Ticket, models.Reply, models.Follow
    readable = policy.readable_tickets(models, viewer)
    if name == "tickets":
        return ticket_list(session, models, viewer, _user_tickets(models, user))
    if name == "following":
        # Newest followed ticket first, straight down the follow index. In order of last
        # update, a person who follows a few thousand of a million tickets made each page
        # walk tens of thousands of tickets to find 25 of theirs.
        followed = followed_ids(models, viewer, user)
        return ListQuery(
            rows=_ticket_rows(session, models)
            .join(follow, follow.ticket_id == ticket.id)
            .where(follow.user_id == models.user_id(user), readable)
            .order_by(follow.ticket_id.desc()),
            ids=followed,
            cap=PERSONAL_COUNT_CAP,
            keys=followed.order_by(follow.ticket_id.desc()),
        )
    return ListQuery(
        rows=sa.select(reply)
        .join(ticket, ticket.id == reply.ticket_id)
        .where(_user_replies(models, user), readable)
        .options(contains_eager(reply.ticket).defer(ticket.body))
        .order_by(reply.id.desc()),
        ids=_user_reply_ids(models, viewer, user),
        cap=PERSONAL_COUNT_CAP,
    )


def list_page(
    session: Session,
    query: ListQuery,
    page: int,
    per_page: int,
    counted: tuple[int, bool] | None = None,
) -> Page[Any]:
    """One page of ``query``: :func:`flasket.pagination.paginate` with its statements and cap.

    :param session: the session to run the statements in.
    :param query: the list, from :func:`ticket_list` or :func:`user_list`.
    :param page: the page number, from 1.
    :param per_page: rows per page, at least 1.
    :param counted: the list's ``(count, capped)`` when it is known already
        (:func:`user_list_counts`); then no count runs.
    :return: the page.
    :raises flasket.pagination.PageNotFound: when ``page`` is past the last page.
    """
    return paginate(
        session,
        query.rows,
        query.ids,
        page,
        per_page,
        keys=query.keys,
        cap=query.cap,
        counted=counted,
    )
