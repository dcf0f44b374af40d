"""Blinker signals sent after each ticket event has been committed.

The sender is the application; the models are keyword arguments::

    from flasket.signals import ticket_replied

    @ticket_replied.connect
    def on_reply(app, ticket, reply, user):
        ...
"""

from blinker import Namespace

_signals = Namespace()

#: ``ticket``, ``user`` (the author)
ticket_created = _signals.signal("ticket-created")
#: ``ticket``, ``reply``, ``user`` (who replied)
ticket_replied = _signals.signal("ticket-replied")
#: ``ticket``, ``user`` (who closed it)
ticket_closed = _signals.signal("ticket-closed")
#: ``ticket``, ``user`` (who reopened it)
ticket_reopened = _signals.signal("ticket-reopened")
#: ``ticket``, ``user`` (who now follows it)
ticket_followed = _signals.signal("ticket-followed")
