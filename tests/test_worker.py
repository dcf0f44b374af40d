"""``flask flasket deliver`` as a worker: it waits out database outages, stops on bad settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from flasket import delivery, worker
from flasket.db_errors import is_transient
from tests.databases import server_url
from tests.helpers import ROOT, Client, Inbox
from tests.hostapp import create_app, db
from tests.test_outbox import WORKER_APP, shared_database_host, stop, wait_for

WORKER_NAME = "flasket-worker-under-test"


def wrapped(
    driver_error: Exception,
    kind: type[sa.exc.DBAPIError] = sa.exc.OperationalError,
    invalidated: bool = False,
) -> sa.exc.DBAPIError:
    return kind("SELECT 1", {}, driver_error, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (
            wrapped(psycopg.OperationalError("server closed the connection"), invalidated=True),
            True,
        ),
        (wrapped(pymysql.err.InterfaceError(0, ""), sa.exc.InterfaceError), True),
        (wrapped(pymysql.err.OperationalError(2013, "Lost connection to server")), True),
        (wrapped(pymysql.err.OperationalError(1213, "Deadlock found")), True),
        (wrapped(psycopg.OperationalError("the database system is starting up")), True),
        (wrapped(pymysql.err.OperationalError(1045, "Access denied for user 'root'")), False),
        (wrapped(pymysql.err.OperationalError(1049, "Unknown database 'desk'")), False),
        (
            wrapped(
                psycopg.OperationalError('FATAL: password authentication failed for user "x"')
            ),
            False,
        ),
        (wrapped(psycopg.OperationalError('FATAL: database "desk" does not exist')), False),
        (wrapped(psycopg.errors.UndefinedTable("no table"), sa.exc.ProgrammingError), False),
        (
            wrapped(
                pymysql.err.ProgrammingError(1146, "Table doesn't exist"), sa.exc.ProgrammingError
            ),
            False,
        ),
        (wrapped(ValueError("no such table: flasket_outbox")), False),
        (wrapped(ValueError("duplicate key"), sa.exc.IntegrityError), False),
        (RuntimeError("a bug"), False),
    ],
    ids=lambda value: value if isinstance(value, bool) else str(getattr(value, "orig", value)),
)
def test_disconnects_and_busy_servers_are_transient_but_bad_settings_are_not(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient


def first_error(url: str, statement: str = "SELECT 1") -> BaseException:
    timeout = {} if url.startswith("sqlite") else {"connect_timeout": 3}
    engine = sa.create_engine(url, connect_args=timeout)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(statement))
    except sa.exc.DBAPIError as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError(f"{statement} worked on {url}")


def test_the_errors_real_servers_give_are_classified(backend: str, database_url: str) -> None:
    """A server that does not answer is waited for; a missing table or database is not."""
    missing_table = first_error(database_url, "SELECT id FROM flasket_outbox")
    assert not is_transient(missing_table)
    if backend == "sqlite":
        return
    url = make_url(server_url(backend))
    assert is_transient(first_error(url.set(port=1).render_as_string(hide_password=False)))
    no_database = url.set(database="flasket_no_such_database")
    assert not is_transient(first_error(no_database.render_as_string(hide_password=False)))
    if backend == "mariadb":
        wrong = url.set(password="not-the-password").render_as_string(hide_password=False)
        assert not is_transient(first_error(wrong))


def test_backoff_starts_at_a_second_and_doubles_up_to_the_cap() -> None:
    delays = worker.backoff_delays(60)
    assert [delays() for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    short = worker.backoff_delays(0.5)
    assert [short(), short()] == [0.5, 0.5]


@pytest.fixture
def worker_app() -> Iterator[Flask]:
    """A host whose worker waits 50 ms after a database error (in-memory SQLite)."""
    app = create_app(FLASKET_DELIVERY="worker", FLASKET_WORKER_BACKOFF_CAP=0.05)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def scripted(steps: list[BaseException | None]) -> Callable[..., delivery.Outcome]:
    """A ``deliver_due`` that raises or succeeds as told, then sends SIGTERM to this process."""
    left = list(steps)

    def deliver_due(**kwargs: Any) -> delivery.Outcome:
        step = left.pop(0)
        if not left:
            os.kill(os.getpid(), signal.SIGTERM)
        if step is not None:
            raise step
        return delivery.Outcome(sent=1)

    return deliver_due


def test_a_worker_carries_on_through_lost_connections_until_sigterm(
    worker_app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lost = wrapped(psycopg.OperationalError("terminating connection"), invalidated=True)
    refused = wrapped(pymysql.err.OperationalError(2003, "Can't connect to MySQL server"))
    monkeypatch.setattr(delivery, "deliver_due", scripted([lost, refused, None, lost, None]))

    result = worker_app.test_cli_runner().invoke(args=["flasket", "deliver", "--interval", "0.1"])

    assert result.exit_code == 0, (result.output, result.exception)
    assert "Stopped. sent 2, to retry 0, failed 0, released 0" in result.output
    losses = [r.getMessage() for r in caplog.records if "Lost the database" in r.getMessage()]
    assert len(losses) == 3, losses
    assert "terminating connection" in losses[0]
    assert "The database is back after 2 failed round(s)" in caplog.text


@pytest.mark.parametrize(
    "error",
    [
        wrapped(psycopg.errors.UndefinedTable("flasket_outbox"), sa.exc.ProgrammingError),
        wrapped(pymysql.err.OperationalError(1045, "Access denied for user 'desk'")),
    ],
    ids=["missing table", "wrong password"],
)
def test_a_worker_stops_with_status_1_on_a_configuration_error(
    worker_app: Flask, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    monkeypatch.setattr(delivery, "deliver_due", scripted([error, None]))

    result = worker_app.test_cli_runner().invoke(args=["flasket", "deliver"])

    assert result.exit_code == 1
    assert "The worker stopped: " in result.output
    assert str(error.orig) in result.output  # type: ignore[attr-defined]


def test_a_worker_on_a_database_without_flaskets_tables_stops_at_once(
    tmp_path: Path, database_url: str
) -> None:
    """A real process on a real, empty database: no table is a configuration error."""
    if database_url == "sqlite://":
        database_url = f"sqlite:///{tmp_path / 'empty.db'}"
    process = start_worker(tmp_path, database_url, 1, {"FLASKET_DELIVERY": "worker"})
    try:
        process.wait(timeout=60)
    finally:
        stop(process)
    output = (tmp_path / "worker.log").read_text(encoding="utf-8")
    assert process.returncode == 1, output
    assert "The worker stopped: " in output, output


def start_worker(
    tmp_path: Path, url: str, smtp_port: int, config: dict[str, Any], *options: str
) -> subprocess.Popen[str]:
    """``flask flasket deliver`` in its own process, writing what it says to worker.log."""
    (tmp_path / "worker_app.py").write_text(WORKER_APP, encoding="utf-8")
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "PYTHONUNBUFFERED": "1",
        "WORKER_SMTP_PORT": str(smtp_port),
        "WORKER_DATABASE_URL": url,
        "WORKER_CONFIG": json.dumps(config),
    }
    command = [sys.executable, "-m", "flask", "--app", "worker_app:app", "flasket", "deliver"]
    with (tmp_path / "worker.log").open("w", encoding="utf-8") as log:
        return subprocess.Popen(
            [*command, *options],
            cwd=tmp_path,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def worker_url(backend: str, url: str) -> str:
    """The database URL, named so that the worker's PostgreSQL sessions can be told apart."""
    if backend != "postgresql":
        return url
    return (
        make_url(url)
        .update_query_dict({"application_name": WORKER_NAME})
        .render_as_string(hide_password=False)
    )


def kill_worker_connections(backend: str, url: str) -> int:
    """Kill the worker's sessions as the server would on a restart; return how many."""
    admin = sa.create_engine(server_url(backend), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if backend == "postgresql":
                return len(
                    connection.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE application_name = :name AND pid <> pg_backend_pid()"
                        ),
                        {"name": WORKER_NAME},
                    ).all()
                )
            ids = connection.scalars(
                sa.text(
                    "SELECT id FROM information_schema.processlist"
                    " WHERE db = :name AND id <> CONNECTION_ID()"
                ),
                {"name": make_url(url).database},
            ).all()
            for session_id in ids:
                connection.execute(sa.text(f"KILL {int(session_id)}"))
            return len(ids)
    finally:
        admin.dispose()


def test_a_worker_process_survives_killed_connections_and_delivers_afterwards(
    tmp_path: Path, backend: str, database_url: str, smtp_server: tuple[Inbox, int]
) -> None:
    """A real ``flask flasket deliver`` whose sessions the server kills while it polls: it
    logs the loss, keeps running, sends the mail queued after the kill, and exits 0 on
    SIGTERM."""
    if backend == "sqlite":
        pytest.skip("SQLite has no server to lose")
    inbox, port = smtp_server
    inbox.clear()
    config = {"FLASKET_DELIVERY": "worker", "FLASKET_STAFF_RECIPIENTS": ["help@example.test"]}
    host = shared_database_host(database_url, port, config)
    url = host.config["SQLALCHEMY_DATABASE_URI"]
    log = tmp_path / "worker.log"
    process = start_worker(tmp_path, worker_url(backend, url), port, config, "--interval", "0.2")
    try:
        Client(host, "alice").submit(title="Printer on fire")
        wait_for(lambda: inbox.to("help@example.test"), "the worker sent the first mail", 60)

        assert kill_worker_connections(backend, url) >= 1
        with host.app_context():
            db.engine.dispose()  # on MariaDB the host's own sessions were killed too
        wait_for(lambda: "Lost the database" in log.read_text("utf-8"), "the worker saw it", 60)
        assert process.poll() is None, log.read_text("utf-8")

        Client(host, "alice").submit(title="Still on fire")
        wait_for(lambda: len(inbox.to("help@example.test")) == 2, "the mail after the kill", 60)
        assert process.poll() is None, log.read_text("utf-8")
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        stop(process)
        with host.app_context():
            db.session.remove()
            db.engine.dispose()
    output = log.read_text("utf-8")
    assert process.returncode == 0, output
    assert "The database is back" in output, output
    assert "Stopped. sent 2, to retry 0, failed 0, released 0" in output, output
    subjects = sorted(m.subject for m in inbox.to("help@example.test"))
    assert [s.rsplit("] ", 1)[1] for s in subjects] == ["Printer on fire", "Still on fire"]
