"""``flask flasket ...``: the click commands that deliver the outbox and look after it.

Only the commands and what they print live here: delivery runs are
:mod:`flasket.delivery` and :mod:`flasket.worker`, the outbox's queries and requeueing
:mod:`flasket.outbox`, pruning :mod:`flasket.retention`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from . import delivery, outbox, retention, worker
from .config import config_value
from .db_errors import describe
from .i18n import gettext, ngettext, pgettext
from .models import FAILED, PENDING
from .proxies import current_flasket

flasket_cli = AppGroup("flasket", help="Flasket's ticket system: deliver and inspect its mail.")


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and Ctrl-C set ``stop`` while the block runs (main thread only), so the
    loop ends after the batch in hand; the previous handlers come back afterwards.

    :param stop: the event the worker loop checks between batches.
    :return: a context manager; outside the main thread it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@flasket_cli.command("deliver")
@click.option("--once", is_flag=True, help="Send what is due, then exit (for cron).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds between polls (default FLASKET_DELIVERY_POLL_INTERVAL).",
)
def deliver_command(once: bool, interval: float | None) -> None:
    """Send the outbox's due mail; without --once, keep polling until SIGTERM or Ctrl-C.

    A looping worker waits out database outages (see FLASKET_WORKER_BACKOFF_CAP) and
    exits with status 1 only on an error waiting cannot mend, such as a missing table.
    \f

    :param once: ``--once``: one pass, for cron.
    :param interval: ``--interval``: seconds between polls; None for
        ``FLASKET_DELIVERY_POLL_INTERVAL``.
    :raises click.ClickException: when the database fails (``--once``) or the worker stops.
    """
    if once:
        try:
            outcome = delivery.deliver_due()
        except sa.exc.DBAPIError as error:
            raise click.ClickException(
                gettext("The database failed: %(error)s", error=describe(error))
            ) from error
        if outcome.claimed:
            click.echo(_summary(outcome))
        return
    pause = interval if interval is not None else float(config_value("delivery_poll_interval"))
    stop = threading.Event()
    with stop_on_signals(stop):
        try:
            total = worker.run(pause, stop, report=_echo_if_busy)
        except worker.WorkerStopped as error:
            raise click.ClickException(
                gettext("The worker stopped: %(error)s", error=error)
            ) from error
    click.echo(gettext("Stopped. %(summary)s", summary=_summary(total)))


def _echo_if_busy(outcome: delivery.Outcome) -> None:
    if outcome.claimed:
        click.echo(_summary(outcome))


def _summary(outcome: delivery.Outcome) -> str:
    counts = {
        "sent": outcome.sent,
        "retrying": outcome.retrying,
        "failed": outcome.failed,
        "released": outcome.released,
        "overtaken": outcome.overtaken,
    }
    if outcome.overtaken:
        return gettext(
            "sent %(sent)s, to retry %(retrying)s, failed %(failed)s, released %(released)s,"
            " overtaken %(overtaken)s (another worker held them: see the log)",
            **counts,
        )
    return gettext(
        "sent %(sent)s, to retry %(retrying)s, failed %(failed)s, released %(released)s", **counts
    )


@flasket_cli.command("outbox")
@click.option("--retry", "retry_ids", type=int, multiple=True, metavar="ID", help="Requeue a row.")
@click.option(
    "--retry-event",
    "event_ids",
    type=int,
    multiple=True,
    metavar="ID",
    help="Requeue an event whose fan-out was given up.",
)
@click.option("--retry-failed", is_flag=True, help="Requeue every failed row and event.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.argument("more_ids", type=int, nargs=-1)
def outbox_command(
    retry_ids: tuple[int, ...],
    event_ids: tuple[int, ...],
    retry_failed: bool,
    limit: int,
    more_ids: tuple[int, ...],
) -> None:
    """List pending and failed mail and given-up events; --retry ID..., --retry-event ID...
    or --retry-failed requeue them now.

    Requeued rows and events start again with a full set of attempts.
    \f

    :param retry_ids: ``--retry``: outbox row ids to requeue.
    :param event_ids: ``--retry-event``: event ids whose fan-out to requeue.
    :param retry_failed: ``--retry-failed``: requeue every failed row and event.
    :param limit: ``--limit``: the most rows to list.
    :param more_ids: further row ids after ``--retry``.
    :raises click.UsageError: for row ids given without ``--retry``.
    """
    ids = [*retry_ids, *more_ids]
    if more_ids and not retry_ids:
        raise click.UsageError(
            gettext("Give row ids with --retry: flask flasket outbox --retry 3 4")
        )
    if ids or event_ids or retry_failed:
        count = outbox.requeue(ids, retry_failed) if ids or retry_failed else 0
        events = (
            outbox.requeue_events(list(event_ids), retry_failed)
            if event_ids or retry_failed
            else 0
        )
        messages = ngettext("%(num)s message", "%(num)s messages", count)
        if event_ids or events:
            done = gettext(
                "Requeued %(messages)s and %(events)s.",
                messages=messages,
                events=ngettext("%(num)s event", "%(num)s events", events),
            )
        else:
            done = gettext("Requeued %(messages)s.", messages=messages)
        click.echo(done)
        return
    _list_events()
    found = outbox.pending_and_failed_rows(limit)
    if not found:
        click.echo(gettext("The outbox is empty: every message was sent."))
        return
    heading = (
        gettext("id"),
        gettext("status"),
        gettext("tries"),
        gettext("next attempt"),
        gettext("recipient"),
        gettext("subject"),
        gettext("last error"),
    )
    click.echo(
        f"{heading[0]:>6}  {heading[1]:<8} {heading[2]:>5}  {heading[3]:<20} "
        f"{heading[4]:<28} {heading[5]:<36} {heading[6]}"
    )
    for row in found:
        when = _when(row.next_attempt_at) if row.status == PENDING else "-"
        click.echo(
            f"{row.id:>6}  {_status(row.status):<8} {row.attempts:>5}  {when:<20} "
            f"{_cut(row.recipient, 28):<28} {_cut(row.subject, 36):<36} "
            f"{_cut(row.last_error or '', 80)}"
        )


def _list_events() -> None:
    """Say how many events wait for their fan-out, and list those given up."""
    waiting = outbox.waiting_event_count()
    if waiting:
        click.echo(
            ngettext(
                "%(num)s event not fanned out to its recipients yet.",
                "%(num)s events not fanned out to their recipients yet.",
                waiting,
            )
        )
    given_up = outbox.given_up_events()
    if not given_up:
        return
    click.echo(
        ngettext(
            "%(num)s event whose fan-out was given up (--retry-event ID):",
            "%(num)s events whose fan-out was given up (--retry-event ID):",
            len(given_up),
        )
    )
    heading = (
        gettext("event"),
        gettext("tries"),
        gettext("given up"),
        gettext("subject"),
        gettext("last error"),
    )
    click.echo(f"{heading[0]:>6}  {heading[1]:>5}  {heading[2]:<20} {heading[3]:<36} {heading[4]}")
    for row in given_up:
        click.echo(
            f"{row.id:>6}  {row.attempts:>5}  {_when(row.failed_at):<20} "
            f"{_cut(row.subject, 36):<36} {_cut(row.last_error or '', 80)}"
        )


@flasket_cli.command("prune")
@click.option(
    "--keep-sent-days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Delete sent mail older than this (default FLASKET_OUTBOX_KEEP_SENT_DAYS).",
)
@click.option(
    "--keep-failed-days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Delete failed mail older than this (default FLASKET_OUTBOX_KEEP_FAILED_DAYS).",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=None,
    help="Rows per transaction (default FLASKET_OUTBOX_PRUNE_BATCH).",
)
def prune_command(
    keep_sent_days: float | None, keep_failed_days: float | None, batch: int | None
) -> None:
    """Delete old sent and failed mail, and events with no mail left; never pending mail.
    \f

    :param keep_sent_days: ``--keep-sent-days``, in days; None for the configured value.
    :param keep_failed_days: ``--keep-failed-days``, in days; None for the configured value.
    :param batch: ``--batch``: rows per transaction; None for the configured value.
    """
    pruned = retention.prune(keep_sent_days, keep_failed_days, batch)
    click.echo(
        gettext(
            "Pruned %(sent)s, %(failed)s and %(events)s.",
            sent=ngettext("%(num)s sent message", "%(num)s sent messages", pruned.sent),
            failed=ngettext("%(num)s failed message", "%(num)s failed messages", pruned.failed),
            events=ngettext("%(num)s event", "%(num)s events", pruned.events),
        )
    )


def _status(status: str) -> str:
    if status == PENDING:
        return pgettext("outbox status", "pending")
    if status == FAILED:
        return pgettext("outbox status", "failed")
    return status


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@flasket_cli.command("search-index")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Create SQLite's FTS5 search tables and triggers if missing, and refill them.",
)
def search_index_command(rebuild: bool) -> None:
    """SQLite: create and fill the full-text search tables of a database from before them.

    Other databases keep their search indexes up to date themselves; there is nothing to do.
    On PostgreSQL the command checks that the server has ICU's root collation, which the
    search indexes' expressions use (a server built without ICU cannot create them).
    \f

    :param rebuild: ``--rebuild``: needed on SQLite, to do the work.
    :raises click.ClickException: on a PostgreSQL without the ICU collation.
    :raises click.UsageError: on SQLite without ``--rebuild``.
    """
    from .migrations import sqlite_search_sql

    session = current_flasket.session
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and not session.scalar(
        sa.text("SELECT EXISTS (SELECT FROM pg_collation WHERE collname = 'und-x-icu')")
    ):
        raise click.ClickException(
            gettext(
                'This PostgreSQL has no "und-x-icu" collation (it was built without ICU):'
                " Flasket's search indexes fold case with it. Use a PostgreSQL built with ICU,"
                " as Debian's, Ubuntu's and the official Docker images are."
            )
        )
    if dialect != "sqlite":
        click.echo(
            gettext(
                "Nothing to do on %(database)s: its full-text indexes follow every write.",
                database=dialect,
            )
        )
        return
    if not rebuild:
        raise click.UsageError(
            gettext("Pass --rebuild to create and fill SQLite's search tables.")
        )
    for statement in sqlite_search_sql():
        session.execute(sa.text(statement))
    session.commit()
    click.echo(gettext("Rebuilt SQLite's search tables."))
