"""Hand the outbox events of a commit to ``FLASKET_DELIVERY``: a short-lived thread, or not.

:mod:`flasket.actions` calls :func:`after_commit` once a change and its outbox events
are committed. In the ``after_request`` mode a background thread (kept by
:mod:`flasket.threads`) runs :func:`flasket.delivery.deliver` on them; in ``worker``
mode nothing happens here (``flask flasket deliver`` sends them); in ``hook`` mode the
host's ``FLASKET_DELIVERY_HOOK`` gets the ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import Flask
from sqlalchemy.pool import StaticPool

from . import delivery, threads
from .config import config_value
from .proxies import current_flasket
from .sql import app_object

log = logging.getLogger("flasket.notify")


def after_commit(ids: Sequence[int]) -> None:
    """Hand the outbox events just committed to ``FLASKET_DELIVERY``; never raises.

    On an in-memory SQLite database (one connection shared by every thread) the
    delivery runs here, in the caller's thread; errors are logged, not raised.

    :param ids: ``flasket_outbox_event`` ids, committed already; none is a no-op.
    """
    if not ids:
        return
    mode = config_value("delivery")
    if mode == "worker":
        return
    if mode == "hook":
        try:
            config_value("delivery_hook")(list(ids))
        except Exception:
            log.exception("FLASKET_DELIVERY_HOOK failed; %d event(s) wait for a worker", len(ids))
        return
    app: Flask = app_object()
    if isinstance(current_flasket.db.engine.pool, StaticPool):
        # One connection shared by every thread (in-memory SQLite): deliver here, after the commit.
        _deliver_now(list(ids))
        return
    try:
        threads.start(_deliver_in_background, (app, list(ids)), "flasket-delivery")
    except RuntimeError:
        # No thread to be had (the process is at its limit): the events wait for a worker,
        # or for the next event's mail.
        log.exception("could not start a delivery thread; %d event(s) wait", len(ids))


def _deliver_now(ids: list[int]) -> None:
    try:
        delivery.deliver(ids)
        # Opportunistic: retries that are due go out with the next event's mail.
        delivery.deliver_due(max_batches=1)
    except Exception:
        log.exception("Delivering %d outbox event(s) failed; they stay in the outbox", len(ids))


def _deliver_in_background(app: Flask, ids: list[int]) -> None:
    with app.app_context():
        _deliver_now(ids)
