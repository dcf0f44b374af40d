"""The long-running deliverer behind ``flask flasket deliver``: poll, wait out outages, stop.

A worker sends what is due, sleeps the poll interval and starts again, until
SIGTERM or Ctrl-C. When the database goes away (a killed connection, a restart)
it logs the loss, drops its session and its pooled connections, waits 1 s, then
twice as long each time up to ``FLASKET_WORKER_BACKOFF_CAP``, and carries on; the
first round that works again is logged too. An error no wait will mend (see
:mod:`flasket.db_errors`) stops it with :class:`WorkerStopped`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.pool import StaticPool

from . import delivery
from .config import config_value
from .db_errors import describe, is_transient
from .proxies import current_flasket

log = logging.getLogger("flasket.worker")

#: The first wait after losing the database, in seconds; each next wait is twice as long.
FIRST_BACKOFF = 1.0


class WorkerStopped(Exception):
    """The worker met an error that waiting will not mend (a configuration error).

    Raised by :func:`run`; the message is :func:`flasket.db_errors.describe` of the error,
    which is chained as ``__cause__``.
    """


def backoff_delays(cap: float) -> Callable[[], float]:
    """A function giving 1 s, 2 s, 4 s ... up to ``cap`` seconds, one wait per call.

    :param cap: the longest wait, in seconds (``FLASKET_WORKER_BACKOFF_CAP``); a cap below
        :data:`FIRST_BACKOFF` makes every wait ``cap``.
    :return: a function of no arguments returning the next wait in seconds, doubled at
        each call until it reaches ``cap``.
    """
    state = {"next": min(FIRST_BACKOFF, cap)}

    def next_delay() -> float:
        delay = state["next"]
        state["next"] = min(cap, delay * 2)
        return delay

    return next_delay


def run(
    pause: float,
    stop: threading.Event,
    report: Callable[[delivery.Outcome], None] = lambda outcome: None,
) -> delivery.Outcome:
    """Deliver what is due every ``pause`` seconds until ``stop`` is set; return the totals.

    Needs an app context with Flasket registered. A transient database error
    (:func:`flasket.db_errors.is_transient`) is logged and waited out, with waits from
    :func:`backoff_delays` capped at ``FLASKET_WORKER_BACKOFF_CAP`` seconds.

    :param pause: seconds to wait after each round that worked.
    :param stop: set it (from a signal handler or another thread) to end the loop; a
        round in progress stops before its next batch, and waits end at once.
    :param report: called with each round's :class:`flasket.delivery.Outcome`.
    :return: the sum of every round's outcome.
    :raises WorkerStopped: on a database error that is not transient, or any other error.
    """
    total = delivery.Outcome()
    cap = float(config_value("worker_backoff_cap"))
    next_delay = backoff_delays(cap)
    failures = 0
    while not stop.is_set():
        try:
            outcome = delivery.deliver_due(should_stop=stop.is_set)
        except Exception as error:
            forget_connections()
            if not is_transient(error):
                raise WorkerStopped(describe(error)) from error
            failures += 1
            wait = next_delay()
            log.warning(
                "Lost the database (%s); the worker carries on in %.0f s (failure %d in a row)",
                describe(error),
                wait,
                failures,
            )
            stop.wait(wait)
            continue
        if failures:
            log.warning("The database is back after %d failed round(s)", failures)
            failures = 0
            next_delay = backoff_delays(cap)
        total.add(outcome)
        report(outcome)
        stop.wait(pause)
    return total


def forget_connections() -> None:
    """Roll back and drop the session, and close the pool's connections (dead or not).

    Connections a killed server left in the pool fail only when next used;
    closing them all now means the next round opens fresh ones, with or
    without the host's ``pool_pre_ping``. A single shared connection
    (in-memory SQLite) is kept: closing it would lose the database.

    Needs an app context with Flasket registered. A rollback that fails is logged at
    debug level, not raised.
    """
    database = current_flasket.db
    try:
        database.session.rollback()
    except Exception:
        log.debug("Rolling back after a database error failed too", exc_info=True)
    database.session.remove()
    engine = database.engine
    if not isinstance(engine.pool, StaticPool):
        engine.dispose()
