"""Blinker signals sent after each ticket event has been committed.

The sender is the application; the models are keyword arguments::

    from flasket.signals import ticket_replied

    @ticket_replied.connect
    def on_reply(app, ticket, reply, user):
        ...

Flasket sends them with :func:`send`: each receiver runs on its own, so one that
raises is logged and cannot undo, hide or fail the change it was told about.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from blinker import Namespace, Signal

log = logging.getLogger("flasket")

_signals = Namespace()

#: Sent after a new ticket is committed, with ``ticket`` and ``user`` (the author).
ticket_created = _signals.signal("ticket-created")
#: Sent after a reply is committed, with ``ticket``, ``reply`` and ``user`` (who replied).
ticket_replied = _signals.signal("ticket-replied")
#: Sent after a ticket is closed, with ``ticket`` and ``user`` (who closed it).
ticket_closed = _signals.signal("ticket-closed")
#: Sent after a ticket is reopened, with ``ticket`` and ``user`` (who reopened it).
ticket_reopened = _signals.signal("ticket-reopened")
#: Sent when a ticket moves to another status of the same kind (open to waiting for the
#: requester, say); keyword arguments ``ticket`` and ``user``. Closing and reopening send
#: :data:`ticket_closed` and :data:`ticket_reopened`.
ticket_status_changed = _signals.signal("ticket-status-changed")
#: Sent after staff assign, reassign or unassign a ticket, with ``ticket``, ``user`` (who
#: did it) and ``assignee`` (the host user now assigned, or None when unassigned).
ticket_assigned = _signals.signal("ticket-assigned")
#: Sent after staff edit a ticket's title or categories, with ``ticket``, ``user`` and
#: ``changes`` (the names of what changed: ``"title"`` and category names).
ticket_edited = _signals.signal("ticket-edited")
#: Sent after staff add an internal note, with ``ticket``, ``note`` and ``user``. Its own
#: signal, not :data:`ticket_replied`: a receiver that publishes replies must not publish
#: notes.
note_added = _signals.signal("note-added")
#: Sent after someone starts following a ticket, with ``ticket`` and ``user`` (who now
#: follows it). Nothing is sent when they stop.
ticket_followed = _signals.signal("ticket-followed")


def send(signal: Signal, sender: Any, /, **kwargs: Any) -> int:
    """Call each receiver of ``signal`` for ``sender`` on its own; the number that raised.

    As :meth:`blinker.Signal.send` does (the receivers of ``sender`` and of any sender,
    weakly referenced ones still alive, none while the signal is muted), except that a
    receiver's exception is logged on the ``flasket`` logger and the next receiver still
    runs: the change was committed before the signal went out. A coroutine receiver,
    which blinker's ``send`` refuses, is logged the same way and skipped.

    :param signal: one of this module's signals (any :class:`blinker.Signal` works).
    :param sender: the sender receivers are chosen by; Flasket passes the app object.
    :param kwargs: passed to every receiver as keyword arguments.
    :return: how many receivers raised, 0 when all ran; 0 when the signal is muted.
    """
    if getattr(signal, "is_muted", False):
        return 0
    failed = 0
    for receiver in signal.receivers_for(sender):
        try:
            if inspect.iscoroutinefunction(receiver):
                raise TypeError("Flasket's signals are sent synchronously: no coroutine receivers")
            receiver(sender, **kwargs)
        except Exception:
            failed += 1
            name = getattr(signal, "name", signal)
            log.exception("A receiver of the %s signal failed: %r", name, receiver)
    return failed
