"""Pruning the outbox: old sent and failed mail, and events with no copies left.

``flask flasket prune`` (daily from cron) deletes, in transactions of at most
``FLASKET_OUTBOX_PRUNE_BATCH`` rows so a large table is never locked for long:

- sent rows sent more than ``FLASKET_OUTBOX_KEEP_SENT_DAYS`` ago;
- failed rows whose last attempt was due more than ``FLASKET_OUTBOX_KEEP_FAILED_DAYS``
  ago (kept longer, so someone can look at them);
- events with no copy left, fanned out more than the sent rows' keep time ago, or
  given up more than the failed rows' keep time ago.

Pending rows, and events that still have a copy, are never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from .config import config_value
from .models import FAILED, SENT, utcnow
from .proxies import current_flasket


@dataclass
class Pruned:
    """How many rows one :func:`prune` deleted, by kind."""

    #: Sent outbox rows.
    sent: int = 0
    #: Failed outbox rows.
    failed: int = 0
    #: Outbox events with no copy left.
    events: int = 0


def prune(
    keep_sent_days: float | None = None,
    keep_failed_days: float | None = None,
    batch: int | None = None,
    now: datetime | None = None,
) -> Pruned:
    """Delete what has outlived its keep time; each argument defaults to its setting.

    Needs an app context with Flasket registered.

    :param keep_sent_days: keep sent rows this many days (``FLASKET_OUTBOX_KEEP_SENT_DAYS``);
        also the keep time of events that were fanned out.
    :param keep_failed_days: keep failed rows this many days
        (``FLASKET_OUTBOX_KEEP_FAILED_DAYS``); also the keep time of events given up.
    :param batch: rows deleted per transaction, at least 1 (``FLASKET_OUTBOX_PRUNE_BATCH``).
    :param now: the time to count back from, timezone-aware UTC (default: now).
    :return: how many rows of each kind were deleted.
    :raises RuntimeError: outside an app context, or in an app without Flasket.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; the batches committed
        before stay deleted.
    """
    now = now or utcnow()
    sent_days = (
        keep_sent_days if keep_sent_days is not None else config_value("outbox_keep_sent_days")
    )
    failed_days = (
        keep_failed_days
        if keep_failed_days is not None
        else config_value("outbox_keep_failed_days")
    )
    size = batch if batch is not None else int(config_value("outbox_prune_batch"))
    sent_before = now - timedelta(days=float(sent_days))
    failed_before = now - timedelta(days=float(failed_days))
    outbox = current_flasket.models.Outbox.__table__
    events = current_flasket.models.OutboxEvent.__table__
    # A row is due before it is tried, so next_attempt_at <= sent_at: the first condition
    # adds nothing but lets the (status, next_attempt_at) index find the rows.
    old_sent = sa.and_(
        outbox.c.status == SENT,
        outbox.c.next_attempt_at < sent_before,
        outbox.c.sent_at < sent_before,
    )
    old_failed = sa.and_(outbox.c.status == FAILED, outbox.c.next_attempt_at < failed_before)
    no_copies = ~sa.exists().where(outbox.c.event_id == events.c.id)
    old_events = sa.and_(
        no_copies,
        sa.or_(events.c.fanned_out_at < sent_before, events.c.failed_at < failed_before),
    )
    return Pruned(
        sent=delete_in_batches(outbox, old_sent, size),
        failed=delete_in_batches(outbox, old_failed, size),
        events=delete_in_batches(events, old_events, size),
    )


def delete_in_batches(table: sa.Table, where: sa.ColumnElement[bool], size: int) -> int:
    """Delete the rows matching ``where``, at most ``size`` per transaction; return the count.

    The ids are read first and the condition checked again in the DELETE: MariaDB
    cannot take a LIMIT inside ``IN (...)``, and a row may have changed meanwhile. Each
    batch commits on its own connection from ``current_flasket.db.engine``.

    :param table: a table with an ``id`` column.
    :param where: the condition on ``table``'s columns that selects the rows to delete.
    :param size: rows per transaction, at least 1.
    :return: how many rows were deleted in all.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; the batches committed
        before stay deleted.
    """
    engine: sa.Engine = current_flasket.db.engine
    total = 0
    while True:
        with engine.begin() as connection:
            ids = list(connection.scalars(sa.select(table.c.id).where(where).limit(size)))
            if not ids:
                return total
            done = connection.execute(sa.delete(table).where(table.c.id.in_(ids), where))
            total += done.rowcount
        if len(ids) < size:
            return total
