"""The registry of Flasket's background threads, so tests and shutdown can wait for them.

:mod:`flasket.background` starts each delivery thread through :func:`start`, which
keeps it in a set until it ends; :func:`wait_for_idle` joins the threads started so
far. Kept apart from :mod:`flasket.background` so that :mod:`flasket.delivery`, which
hosts import :func:`wait_for_idle` from, need not import the module that runs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .models import utcnow

_threads: set[threading.Thread] = set()
_threads_lock = threading.Lock()


def start(target: Callable[..., object], args: tuple[Any, ...], name: str) -> None:
    """Run ``target(*args)`` in a new thread that :func:`wait_for_idle` waits for.

    :param target: what the thread runs; what it returns is dropped.
    :param args: the positional arguments of ``target``.
    :param name: the thread's name (``threading.Thread.name``).
    :raises RuntimeError: when no thread can be started (the process is at its limit);
        the thread is then not kept, so :func:`wait_for_idle` does not join it.
    """
    thread = threading.Thread(target=_run_tracked, args=(target, args), name=name)
    with _threads_lock:
        _threads.add(thread)
    try:
        thread.start()
    except RuntimeError:
        with _threads_lock:
            _threads.discard(thread)
        raise


def _run_tracked(target: Callable[..., object], args: tuple[Any, ...]) -> None:
    try:
        target(*args)
    finally:
        with _threads_lock:
            _threads.discard(threading.current_thread())


def wait_for_idle(timeout: float | None = None) -> bool:
    """Wait until the background deliveries started so far have finished (tests, shutdown).

    :param timeout: the most seconds to wait in all; None to wait as long as it takes.
    :return: True when they have all finished; False if some were still running when
        ``timeout`` seconds had passed.
    """
    with _threads_lock:
        running = list(_threads)
    deadline = None if timeout is None else utcnow() + timedelta(seconds=timeout)
    for thread in running:
        left = None if deadline is None else max(0.0, (deadline - utcnow()).total_seconds())
        thread.join(left)
    with _threads_lock:
        return not any(thread.is_alive() for thread in running)
