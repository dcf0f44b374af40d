"""The databases the suite runs against, and a fresh, isolated one for each test.

``FLASKET_TEST_DATABASES`` picks the backends (default ``sqlite,postgresql,mariadb``);
``FLASKET_TEST_POSTGRESQL_URL`` and ``FLASKET_TEST_MARIADB_URL`` say where the
servers are. Each test gets its own PostgreSQL schema or MariaDB database,
dropped afterwards; a server that cannot be reached skips its tests with one
line saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4",
}
BACKENDS = ("sqlite", "postgresql", "mariadb")


def selected_backends() -> list[str]:
    names = os.environ.get("FLASKET_TEST_DATABASES", ",".join(BACKENDS))
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = set(chosen) - set(BACKENDS)
    if unknown:
        raise ValueError(f"FLASKET_TEST_DATABASES: unknown backend(s) {sorted(unknown)}")
    return chosen


def one_database_backend() -> str:
    """Where a test marked ``one_database`` runs: SQLite when selected, else the first chosen."""
    chosen = selected_backends()
    return "sqlite" if "sqlite" in chosen else chosen[0]


def server_url(backend: str) -> str:
    return os.environ.get(f"FLASKET_TEST_{backend.upper()}_URL", DEFAULT_URLS[backend])


@cache
def unreachable(backend: str) -> str | None:
    """Why the backend's server cannot be used, or None when it can."""
    if backend == "sqlite":
        return None
    url = make_url(server_url(backend))
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as error:  # any driver error means "not available here"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        where = f"{url.host}:{url.port}"
        return f"{backend} at {where} is not reachable ({first_line[:120]})"
    finally:
        engine.dispose()
    return None


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """The URL of an empty database (or schema) that only the caller uses."""
    if backend == "sqlite":
        yield "sqlite://"
        return
    name = f"flasket_t_{uuid.uuid4().hex[:12]}"
    base = make_url(server_url(backend))
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if backend == "postgresql":
                connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
                url = base.update_query_dict({"options": f"-csearch_path={name}"})
            else:
                charset = "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                connection.execute(sa.text(f"CREATE DATABASE `{name}` {charset}"))
                url = base.set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            if backend == "postgresql":
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            else:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
