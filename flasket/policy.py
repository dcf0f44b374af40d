"""Who may read, reply to, follow, close, reopen, set the status of and assign a ticket, who
reads and writes its internal notes, and who works the staff queues: the one place that
decides.

Views ask these functions before they change or show anything; templates only
use the answers to decide which buttons to draw. Each ``may_*`` function takes
Flasket's :class:`~flasket.models.Models`, the user (the host's user object, or
None / an anonymous user, who may do nothing) and the ticket, and needs an app
context for the ``FLASKET_*`` options it reads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from .config import DUPLICATE, RESOLUTIONS, Status, config_value
from .models import CLOSED, OPEN, Models, ReplyBase, TicketBase, utcnow
from .proxies import current_flasket


def is_staff(user: Any) -> bool:
    """Whether ``user`` is staff: logged in, and ``FLASKET_IS_STAFF`` says so."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(current_flasket.settings().is_staff(user))


def is_author(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Whether ``user`` wrote ``ticket`` (its requester)."""
    return bool(ticket.author_id == models.user_id(user))


def may_read(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Logged-in users read every ticket with ``FLASKET_VISIBILITY = "all"``; with
    ``"own"``, only their own, and staff every ticket."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if config_value("visibility") == "all":
        return True
    return is_author(models, user, ticket) or is_staff(user)


def may_reply(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Readers may reply while the ticket is open; a closed ticket takes no replies."""
    return ticket.state == OPEN and may_read(models, user, ticket)


def may_follow(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Whoever may read a ticket may follow it, closed or not."""
    return may_read(models, user, ticket)


def may_change_status(models: Models, user: Any, ticket: TicketBase) -> bool:
    """The author and staff may close and reopen a ticket."""
    return may_read(models, user, ticket) and (is_author(models, user, ticket) or is_staff(user))


def may_close(models: Models, user: Any, ticket: TicketBase) -> bool:
    """:func:`may_change_status`, for an open ticket."""
    return ticket.state == OPEN and may_change_status(models, user, ticket)


def may_reopen(models: Models, user: Any, ticket: TicketBase) -> bool:
    """:func:`may_change_status`, for a closed ticket; a duplicate only by staff (its
    conversation goes on in the original)."""
    if ticket.duplicate_of_id is not None and not is_staff(user):
        return False
    return ticket.state == CLOSED and may_change_status(models, user, ticket)


def may_send_reopen(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Whether a reopen request from ``user`` is theirs to send: :func:`may_change_status`,
    and for a closed ticket :func:`may_reopen` (one already open is answered "already
    open")."""
    if ticket.state == CLOSED:
        return may_reopen(models, user, ticket)
    return may_change_status(models, user, ticket)


def settable_statuses(models: Models, user: Any, ticket: TicketBase) -> list[Status]:
    """The statuses ``user`` may move ``ticket`` to, in configured order (never its own).

    Staff may set any configured status. The requester may only close an open ticket
    (the first status of kind closed) and reopen a closed one (the first of kind open):
    waiting for the requester, and the other statuses, are staff's to set. Nobody else
    may set any.

    :param models: the current Flasket's models.
    :param user: the host user, or None / an anonymous user.
    :param ticket: the ticket.
    :return: the statuses; empty when the user may set none.
    """
    if not may_change_status(models, user, ticket):
        return []
    statuses = current_flasket.statuses()
    if is_staff(user):
        return [s for s in statuses if s.name != ticket.status]
    if ticket.state == CLOSED and not may_reopen(models, user, ticket):
        return []
    wanted = CLOSED if ticket.state == OPEN else OPEN
    return [current_flasket.first_status(wanted)]


def may_set_status(models: Models, user: Any, ticket: TicketBase, name: str) -> bool:
    """Whether ``user`` may move ``ticket`` to the status called ``name``
    (:func:`settable_statuses`)."""
    return any(s.name == name for s in settable_statuses(models, user, ticket))


def settable_resolutions(user: Any) -> list[str]:
    """The resolutions ``user`` may close a ticket with: every one for staff
    (``config.RESOLUTIONS``) but "duplicate", which closing as a duplicate sets
    (:func:`may_mark_duplicate`); "solved" for the requester, who closes what is solved
    for them.

    :param user: the host user.
    :return: resolution keys, the default first.
    """
    if not is_staff(user):
        return ["solved"]
    return [key for key in RESOLUTIONS if key != DUPLICATE]


def may_mark_duplicate(
    models: Models, user: Any, ticket: TicketBase, original: TicketBase | None = None
) -> bool:
    """Staff close a ticket they may read as a duplicate of another they may read.

    :param models: the current Flasket's models.
    :param user: the host user.
    :param ticket: the ticket to close as a duplicate.
    :param original: the ticket it duplicates, or None to ask about ``ticket`` alone.
    """
    if not (is_staff(user) and may_read(models, user, ticket)):
        return False
    return original is None or may_read(models, user, original)


def may_assign(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Staff assign, reassign and unassign the tickets they may read; nobody else does."""
    return is_staff(user) and may_read(models, user, ticket)


def may_be_assigned(models: Models, candidate: Any, ticket: TicketBase) -> bool:
    """Whether ``candidate`` may be a ticket's assignee: a staff member who may read it.

    ``FLASKET_ASSIGNABLE_STAFF`` only says whom the assign control offers; any staff member
    may be assigned (a form naming one who is not offered is still checked here).

    :param models: the current Flasket's models.
    :param candidate: the host user to assign, or None.
    :param ticket: the ticket.
    """
    return is_staff(candidate) and may_read(models, candidate, ticket)


def may_edit_ticket(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Staff who may read a ticket edit its title and categories."""
    return is_staff(user) and may_read(models, user, ticket)


def may_edit_text(
    models: Models, user: Any, ticket: TicketBase, reply: ReplyBase | None = None
) -> bool:
    """Authors edit their own ticket's description, or their own reply (``reply``), for
    ``FLASKET_EDIT_WINDOW`` seconds after writing it (None: always; 0: never). A hidden
    reply is not its author's to edit.

    :param models: the current Flasket's models.
    :param user: the host user.
    :param ticket: the ticket (whose description, or whose reply).
    :param reply: the reply, or None for the description.
    """
    if not may_read(models, user, ticket):
        return False
    written = ticket if reply is None else reply
    if written.author_id is None or written.author_id != models.user_id(user):
        return False
    if reply is not None and reply.hidden_at is not None:
        return False
    window = config_value("edit_window")
    if window is None:
        return True
    return bool(utcnow() - written.created_at <= timedelta(seconds=window))


def may_read_versions(models: Models, user: Any, ticket: TicketBase) -> bool:
    """The earlier versions of edited texts, and hidden replies, are for staff."""
    return is_staff(user) and may_read(models, user, ticket)


def may_hide_reply(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Staff who may read a ticket hide its replies (and show them again)."""
    return is_staff(user) and may_read(models, user, ticket)


def may_read_notes(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Internal notes are staff's: staff read a ticket's notes; nobody else learns of them."""
    return is_staff(user) and may_read(models, user, ticket)


def may_add_note(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Staff who may read a ticket add internal notes to it, open or closed."""
    return may_read_notes(models, user, ticket)


def may_use_queues(user: Any) -> bool:
    """The staff queues (mine, unassigned, waiting on staff...) and bulk actions are staff's."""
    return is_staff(user)


def reads_every_ticket(user: Any) -> bool:
    """Whether ``user`` may read every ticket (queries then skip the readability join)."""
    return bool(config_value("visibility") == "all" or is_staff(user))


def readable_tickets(models: Models, user: Any, key: Any = None) -> sa.ColumnElement[bool]:
    """A WHERE clause matching exactly the tickets ``user`` may read: the SQL twin of
    :func:`may_read`, which lists and counts use.

    :param models: the current Flasket's models.
    :param user: the host user reading.
    :param key: an SQL expression standing for ``user``'s primary key (a bound parameter,
        in a statement built once for many readers); None compares with the key itself.
    :return: a condition on ``models.Ticket``; ``sa.true()`` for a user who reads them all.
    """
    if reads_every_ticket(user):
        return sa.true()
    own: sa.ColumnElement[bool] = models.Ticket.author_id == (
        models.user_id(user) if key is None else key
    )
    return own
