"""Flasket: a ticket system for an existing Flask app, under ``/ticket``.

::

    from flasket import init_flasket

    init_flasket(app, db, User)
"""

import importlib.metadata

from .config import ConfigError
from .extension import Flasket, init_flasket
from .proxies import current_flasket
from .signals import (
    note_added,
    ticket_assigned,
    ticket_closed,
    ticket_created,
    ticket_edited,
    ticket_followed,
    ticket_reopened,
    ticket_replied,
    ticket_status_changed,
)

__all__ = [
    "ConfigError",
    "Flasket",
    "current_flasket",
    "init_flasket",
    "note_added",
    "ticket_assigned",
    "ticket_closed",
    "ticket_created",
    "ticket_edited",
    "ticket_followed",
    "ticket_reopened",
    "ticket_replied",
    "ticket_status_changed",
]


def __getattr__(name: str) -> str:
    """``flasket.__version__``: the installed distribution's (``flasket-desk``) version.

    Read on first use, so importing a source tree that is not installed still works.

    :raises importlib.metadata.PackageNotFoundError: when asked for the version of a
        source tree that is not installed.
    :raises AttributeError: for any other missing name.
    """
    if name == "__version__":
        return importlib.metadata.version("flasket-desk")
    raise AttributeError(f"module 'flasket' has no attribute {name!r}")
