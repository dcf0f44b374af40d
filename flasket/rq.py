"""Deliver Flasket's mail from an RQ queue (``pip install 'flasket-desk[rq]'``).

In the app factory::

    from redis import Redis
    from rq import Queue
    from flasket.rq import enqueue_delivery

    app.config["FLASKET_DELIVERY"] = "hook"
    app.config["FLASKET_DELIVERY_HOOK"] = enqueue_delivery(Queue("mail", connection=Redis()))
    app.config["FLASKET_RQ_APP_FACTORY"] = "myapp:create_app"

and run ``rq worker mail`` where ``myapp`` can be imported. Each job builds the
app once per worker process from ``FLASKET_RQ_APP_FACTORY`` and delivers the
outbox events it was given (fans them out, then sends their rows). Rows that
fail wait for their retry time; run ``flask flasket deliver --once`` from cron
(or enqueue :func:`deliver_due_job` on a schedule) to send those.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from flask import Flask

from . import delivery
from .config import ConfigError, config_value

__all__ = ["Queue", "deliver_due_job", "deliver_job", "enqueue_delivery"]


class Queue(Protocol):
    """What :func:`enqueue_delivery` needs of a queue: an ``rq.Queue``, or anything with its
    ``enqueue``."""

    def enqueue(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        """Put a job calling ``f(*args, **kwargs)`` on the queue, as ``rq.Queue.enqueue`` does.

        :param f: the job function (Flasket passes :func:`deliver_job`).
        :param args: its positional arguments, which must pickle.
        :param kwargs: its keyword arguments (or RQ's own job options).
        :return: the queued job; Flasket ignores it.
        """


def enqueue_delivery(queue: Queue, app_factory: str | None = None) -> Callable[[list[int]], None]:
    """A ``FLASKET_DELIVERY_HOOK`` that enqueues a :func:`deliver_job` on ``queue``.

    Flasket calls the hook after each commit that wrote outbox events, with their ids;
    it enqueues one job for them all. An exception the hook raises is logged by Flasket
    and the events wait for a worker or a :func:`deliver_due_job`.

    :param queue: an ``rq.Queue`` (see :class:`Queue`).
    :param app_factory: ``"package.module:create_app"``, importable by the RQ worker;
        defaults to ``FLASKET_RQ_APP_FACTORY``, read when the hook runs.
    :return: the hook, a function of a list of outbox event ids that returns nothing and
        raises :class:`flasket.config.ConfigError` when no app factory is set.
    """

    def hook(ids: list[int]) -> None:
        factory = app_factory or config_value("rq_app_factory")
        if not factory:
            raise ConfigError("Set FLASKET_RQ_APP_FACTORY so RQ workers can build the app.")
        queue.enqueue(deliver_job, list(ids), factory)

    return hook


def deliver_job(ids: Sequence[int], app_factory: str) -> dict[str, int]:
    """The RQ job: fan out these outbox events and send their mail.

    :param ids: outbox event ids, as :func:`enqueue_delivery`'s hook was given them.
    :param app_factory: ``"package.module:create_app"`` (see ``app_for``).
    :return: the counts of :class:`flasket.delivery.Outcome`: ``sent``, ``retrying``,
        ``failed``, ``released`` and ``overtaken`` rows, which RQ stores as the result.
    :raises flasket.config.ConfigError: when ``app_factory`` does not give a Flask app.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails (RQ marks the job
        failed; the events wait for the next delivery).
    """
    with app_for(app_factory).app_context():
        return _counts(delivery.deliver(list(ids)))


def deliver_due_job(app_factory: str) -> dict[str, int]:
    """An RQ job for a schedule: send every row that is due, retries included.

    :param app_factory: ``"package.module:create_app"`` (see ``app_for``).
    :return: the counts of :class:`flasket.delivery.Outcome`, as :func:`deliver_job`
        returns them.
    :raises flasket.config.ConfigError: when ``app_factory`` does not give a Flask app.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """
    with app_for(app_factory).app_context():
        return _counts(delivery.deliver_due())


def _counts(outcome: delivery.Outcome) -> dict[str, int]:
    return {
        "sent": outcome.sent,
        "retrying": outcome.retrying,
        "failed": outcome.failed,
        "released": outcome.released,
        "overtaken": outcome.overtaken,
    }


_apps: dict[str, Flask] = {}
_apps_lock = threading.Lock()


def app_for(app_factory: str) -> Flask:
    """The app built by ``"module:function"``, once per worker process.

    The first call for an ``app_factory`` imports the module and calls the function with
    no arguments; later calls, from any thread, return the same app.

    :param app_factory: ``"package.module:create_app"``.
    :return: the app the factory built.
    :raises flasket.config.ConfigError: when ``app_factory`` has no ``:`` between a
        module and a function, or the function does not return a :class:`flask.Flask`.
    :raises ImportError: when the module cannot be imported.
    :raises AttributeError: when the module has no such function.
    """
    with _apps_lock:
        app = _apps.get(app_factory)
        if app is None:
            module_name, _, function = app_factory.partition(":")
            if not module_name or not function:
                raise ConfigError(f"{app_factory!r} is not a 'package.module:create_app' path.")
            factory = getattr(importlib.import_module(module_name), function)
            app = factory()
            if not isinstance(app, Flask):
                raise ConfigError(f"{app_factory} did not return a Flask app.")
            _apps[app_factory] = app
        return app
