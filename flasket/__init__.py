"""Flasket: a ticket system for an existing Flask app, under ``/ticket``.

::

    from flasket import init_flasket

    init_flasket(app, db, User)
"""

from .extension import Flasket, current_flasket, init_flasket
from .signals import (
    ticket_closed,
    ticket_created,
    ticket_followed,
    ticket_reopened,
    ticket_replied,
)

__all__ = [
    "Flasket",
    "current_flasket",
    "init_flasket",
    "ticket_closed",
    "ticket_created",
    "ticket_followed",
    "ticket_reopened",
    "ticket_replied",
]
__version__ = "0.1.0"
