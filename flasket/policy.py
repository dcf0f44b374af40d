"""Who may read, reply to, follow, close, reopen and set the status of a ticket: the one
place that decides.

Views ask these functions before they change or show anything; templates only
use the answers to decide which buttons to draw. Each ``may_*`` function takes
Flasket's :class:`~flasket.models.Models`, the user (the host's user object, or
None / an anonymous user, who may do nothing) and the ticket, and needs an app
context for the ``FLASKET_*`` options it reads.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .config import RESOLUTIONS, Status, config_value
from .models import CLOSED, OPEN, Models, TicketBase
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
    """:func:`may_change_status`, for a closed ticket."""
    return ticket.state == CLOSED and may_change_status(models, user, ticket)


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
    wanted = CLOSED if ticket.state == OPEN else OPEN
    return [current_flasket.first_status(wanted)]


def may_set_status(models: Models, user: Any, ticket: TicketBase, name: str) -> bool:
    """Whether ``user`` may move ``ticket`` to the status called ``name``
    (:func:`settable_statuses`)."""
    return any(s.name == name for s in settable_statuses(models, user, ticket))


def settable_resolutions(user: Any) -> list[str]:
    """The resolutions ``user`` may close a ticket with: every one for staff
    (``config.RESOLUTIONS``); "solved" for the requester, who closes what is solved for them.

    :param user: the host user.
    :return: resolution keys, the default first.
    """
    return list(RESOLUTIONS) if is_staff(user) else ["solved"]


def reads_every_ticket(user: Any) -> bool:
    """Whether ``user`` may read every ticket (queries then skip the readability join)."""
    return bool(config_value("visibility") == "all" or is_staff(user))


def readable_tickets(models: Models, user: Any) -> sa.ColumnElement[bool]:
    """A WHERE clause matching exactly the tickets ``user`` may read: the SQL twin of
    :func:`may_read`, which lists and counts use.

    :return: a condition on ``models.Ticket``; ``sa.true()`` for a user who reads them all.
    """
    if reads_every_ticket(user):
        return sa.true()
    own: sa.ColumnElement[bool] = models.Ticket.author_id == models.user_id(user)
    return own
