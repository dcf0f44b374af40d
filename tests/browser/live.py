"""The seeded microblog demo served over real HTTP, and the headless Chromium that visits it.

Shared by the browser tests (tests/browser/) and ``scripts/screenshots``.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from flask import Flask
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from tests.hosts import app as hosts

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = ROOT / "examples" / "microblog_app"
AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path(os.environ.get("FLASKET_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEMO_PASSWORD = "demo"
#: FLASKET_BASE_TEMPLATE of each look: the demo's own layout, or Flasket's standalone page.
LOOKS = {"host": "base.html", "standalone": "flasket/base.html"}


def missing_tools() -> str | None:
    """Why the browser tests cannot run here, in one line; None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (scripts/test installs Debian's chromium when run as root)"
    if shutil.which(str(CHROMIUM)) is None:
        return f"{CHROMIUM} is not executable"
    return None


def import_microblog() -> ModuleType:
    """The demo's package, imported from examples/ (which is not on sys.path)."""
    loaded = sys.modules.get("microblog")
    if loaded is None:
        sys.path.insert(0, str(EXAMPLE_DIR))
        try:
            loaded = importlib.import_module("microblog")
        finally:
            sys.path.remove(str(EXAMPLE_DIR))
    if Path(loaded.__file__ or "").parent != EXAMPLE_DIR / "microblog":
        raise RuntimeError(f"another module called 'microblog' was imported: {loaded.__file__}")
    return loaded


@dataclass
class LiveDemo:
    """One running, seeded demo app: ``url`` is its root, without a trailing slash."""

    app: Flask
    url: str
    look: str

    def db(self) -> Any:
        return self.app.extensions["sqlalchemy"]


@contextmanager
def serve(app: Flask, name: str, seed: Callable[[str], None] | None = None) -> Iterator[str]:
    """Serve ``app`` on a free loopback port and yield its root URL (no trailing slash).

    ``seed(url)`` runs once the URL is known and before the first request is served.
    """
    # Requests are logged by werkzeug on stderr; the tests report failures themselves.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    # Join the request threads on close, so no connection socket outlives the server.
    server.daemon_threads = False  # type: ignore[attr-defined]  # threaded=True: ThreadingMixIn
    server.block_on_close = True  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{server.port}"
    try:
        if seed is not None:
            seed(url)
    except BaseException:
        server.server_close()
        raise
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db = app.extensions["sqlalchemy"]
            db.session.remove()
            db.engine.dispose()


@contextmanager
def serve_demo(directory: Path, look: str = "host") -> Iterator[LiveDemo]:
    """Serve a freshly seeded demo (SQLite file in ``directory``) on a free loopback port."""
    microblog = import_microblog()
    app: Flask = microblog.create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory / 'demo.db'}",
            "MAIL_SERVER": None,
            "FLASKET_BASE_TEMPLATE": LOOKS[look],
        }
    )

    def seed(url: str) -> None:
        result = app.test_cli_runner().invoke(args=["seed", "--base-url", url])
        if result.exit_code != 0:
            raise RuntimeError(f"seeding the demo failed:\n{result.output}")

    with serve(app, f"demo-{look}", seed) as url:
        yield LiveDemo(app=app, url=url, look=look)


@contextmanager
def serve_host(directory: Path, look: str, flasket_look: str = "flasket") -> Iterator[LiveDemo]:
    """Serve a freshly seeded host of ``tests/hosts`` (SQLite file in ``directory``), with
    Flasket's pages in ``flasket_look`` (``FLASKET_LOOK``)."""
    app = hosts.create_host_app(look, f"sqlite:///{directory / 'host.db'}", flasket_look)
    with serve(app, f"host-{look}", lambda url: hosts.seed(app)) as url:
        yield LiveDemo(app=app, url=url, look=look)


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless and quiet (no update checks, sync or QUIC)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def log_in(page: Any, demo: LiveDemo, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the demo's login form, like a person."""
    page.goto(f"{demo.url}/auth/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text(f"Signed in as {username}").wait_for()


def ticket_id(demo: LiveDemo, title: str) -> int:
    """The number of the ticket called ``title`` (seeded or made by a test)."""
    with demo.app.app_context():
        models = demo.app.extensions["flasket"].models
        found = demo.db().session.scalar(
            select(models.Ticket.id).where(models.Ticket.title == title).limit(1)
        )
        demo.db().session.remove()
    if found is None:
        raise LookupError(f"no ticket called {title!r}")
    return int(found)
