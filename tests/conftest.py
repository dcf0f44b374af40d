"""Fixtures for the whole suite; the helpers they build on live in tests/helpers.py.

Every test that uses a database (through ``app``, ``database_url`` or ``backend``) runs once
per selected backend (``FLASKET_TEST_DATABASES``, see tests/databases.py): SQLite,
PostgreSQL and MariaDB by default.

A test marked ``@pytest.mark.one_database`` (or a module with
``pytestmark = pytest.mark.one_database``) runs on one backend only: SQLite when it is
selected, else the first one selected. Mark a test so only when nothing it checks can depend
on the database: no SQL it causes can behave differently on another server. That holds for
config validation, escaping and HTML rendering of fixed content, template rendering, mail
header formatting, bad input refused before any query, static files, response headers and
CLI argument errors, where the database only holds the fixture's users and a ticket stored
the same way many other tests check on every backend. It does not hold for anything that
queries, searches, counts, pages, stores or reads data whose handling may differ (text
length, case, accents, NUL, four-byte characters, large numbers, ids and keys), deletes,
migrates, runs concurrently or goes through the outbox: those stay on every backend. When in
doubt, leave the test on every backend.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from flasket import delivery
from tests.databases import fresh_database, one_database_backend, selected_backends, unreachable
from tests.helpers import EXAMPLE_DIR, Client, Inbox, OwnApps, SMTPHandler, free_port
from tests.hostapp import User, create_app, db


def parametrizes_backend(metafunc: pytest.Metafunc) -> bool:
    """Whether the test chose its backends itself, with ``@pytest.mark.parametrize``."""
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs["argnames"]
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",")]
        if "backend" in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each database test on every selected backend, or on one if marked ``one_database``."""
    if "backend" not in metafunc.fixturenames or parametrizes_backend(metafunc):
        return
    if metafunc.definition.get_closest_marker("one_database"):
        backends = [one_database_backend()]
    else:
        backends = selected_backends()
    metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture(scope="module")
def microblog() -> ModuleType:
    """The demo's package, imported from examples/ (which is not on sys.path)."""
    loaded = sys.modules.get("microblog")
    if loaded is None:
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(EXAMPLE_DIR))
            loaded = importlib.import_module("microblog")
    assert Path(loaded.__file__ or "").parent == EXAMPLE_DIR / "microblog", (
        f"another module called 'microblog' was imported: {loaded.__file__}"
    )
    return loaded


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(SMTPHandler(inbox), hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def inbox(smtp_server: tuple[Inbox, int]) -> Iterator[Inbox]:
    smtp_server[0].clear()
    yield smtp_server[0]
    smtp_server[0].clear()


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The host's extra config: override in a module, or parametrize (directly or indirectly)."""
    return dict(getattr(request, "param", {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per database server the run could not use, next to pytest's own summary."""
    for name in selected_backends():
        reason = unreachable(name)
        if reason:
            terminalreporter.write_line(f"SKIPPED every {name} test: {reason}", yellow=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test run: sqlite, postgresql or mariadb.

    Parametrized by :func:`pytest_generate_tests` (or by the test itself, indirectly).
    """
    name: str = request.param
    reason = unreachable(name)
    if reason:
        pytest.skip(reason)
    return name


@pytest.fixture
def database_url(backend: str) -> Iterator[str]:
    """An empty database of the current backend that only this test uses."""
    with fresh_database(backend) as url:
        yield url


@pytest.fixture
def own_apps(database_url: str) -> Iterator[OwnApps]:
    """The database for apps a test builds itself; their engines close before it is dropped."""
    found = OwnApps(database_url)
    yield found
    found.dispose()


@pytest.fixture
def app(
    smtp_server: tuple[Inbox, int],
    inbox: Inbox,
    app_config: dict[str, Any],
    database_url: str,
) -> Iterator[Flask]:
    config = {"SQLALCHEMY_DATABASE_URI": database_url, **app_config}
    app = create_app(smtp_port=smtp_server[1], **config)
    with app.app_context():
        db.create_all()
        db.session.add_all(
            [
                User(username="alice", email="alice@example.test"),
                User(username="bob", email="bob@example.test"),
                User(username="carol", email="carol@example.test"),
                User(username="admin", email="admin@example.test", is_admin=True),
            ]
        )
        db.session.commit()
    yield app
    delivery.wait_for_idle(timeout=30)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def login(app: Flask) -> Callable[[str | None], Client]:
    def make(username: str | None) -> Client:
        return Client(app, username)

    return make


@pytest.fixture
def alice(login: Callable[[str | None], Client]) -> Client:
    return login("alice")


@pytest.fixture
def bob(login: Callable[[str | None], Client]) -> Client:
    return login("bob")


@pytest.fixture
def admin(login: Callable[[str | None], Client]) -> Client:
    return login("admin")


@pytest.fixture
def carol(login: Callable[[str | None], Client]) -> Client:
    return login("carol")


@pytest.fixture
def followed_ticket(alice: Client, bob: Client, carol: Client, inbox: Inbox) -> int:
    """Alice's ticket, followed by bob and carol; the inbox starts empty."""
    ticket_id = alice.submit("Printer is on fire")
    for client in (bob, carol):
        assert client.post(f"/ticket/{ticket_id}/follow").status_code == 303
    inbox.messages.clear()
    return ticket_id
