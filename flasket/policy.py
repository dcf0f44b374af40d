"""Who may read, reply to, follow, close and reopen a ticket: the one place that decides.

Views ask these functions before they change or show anything; templates only
use the answers to decide which buttons to draw.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .config import config_value, is_staff_callable
from .models import CLOSED, OPEN, Models, TicketBase


def is_staff(user: Any) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(is_staff_callable()(user))


def is_author(models: Models, user: Any, ticket: TicketBase) -> bool:
    return bool(ticket.author_id == models.user_id(user))


def may_read(models: Models, user: Any, ticket: TicketBase) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if config_value("visibility") == "all":
        return True
    return is_author(models, user, ticket) or is_staff(user)


def may_reply(models: Models, user: Any, ticket: TicketBase) -> bool:
    """Readers may reply while the ticket is open; a closed ticket takes no replies."""
    return ticket.status == OPEN and may_read(models, user, ticket)


def may_follow(models: Models, user: Any, ticket: TicketBase) -> bool:
    return may_read(models, user, ticket)


def may_change_status(models: Models, user: Any, ticket: TicketBase) -> bool:
    """The author and staff may close and reopen a ticket."""
    return may_read(models, user, ticket) and (is_author(models, user, ticket) or is_staff(user))


def may_close(models: Models, user: Any, ticket: TicketBase) -> bool:
    return ticket.status == OPEN and may_change_status(models, user, ticket)


def may_reopen(models: Models, user: Any, ticket: TicketBase) -> bool:
    return ticket.status == CLOSED and may_change_status(models, user, ticket)


def reads_every_ticket(user: Any) -> bool:
    """Whether ``user`` may read every ticket (queries then skip the readability join)."""
    return bool(config_value("visibility") == "all" or is_staff(user))


def readable_tickets(models: Models, user: Any) -> sa.ColumnElement[bool]:
    """A WHERE clause matching exactly the tickets ``user`` may read."""
    if reads_every_ticket(user):
        return sa.true()
    own: sa.ColumnElement[bool] = models.Ticket.author_id == models.user_id(user)
    return own
