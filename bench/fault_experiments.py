"""How the outbox behaves under load and faults: prints a table per database, asserts nothing.

    .venv/bin/python bench/fault_experiments.py                  # every experiment, both databases
    .venv/bin/python bench/fault_experiments.py --database postgresql --only load,smtp-down
    .venv/bin/python bench/fault_experiments.py --duration 60 --clients 20

Each experiment gets a fresh database (``tests.databases.fresh_database``) with 30
users and 10 tickets they follow, the test host app (``tests.hostapp``) with
``FLASKET_DELIVERY = "worker"``, two ``flask flasket deliver --interval 0.2``
processes, and an aiosmtpd server on loopback, run in a process of its own so the
load's threads do not slow it down, that writes down every message it receives:
envelope recipient, Message-ID and time. Twenty client threads, each with its own
test client and user, use the site in the bench process for ``--duration`` seconds
(default 60): new tickets, replies, follows, closing and reopening their own
tickets, page views. When the load stops, the script waits for the outbox to drain,
then compares the ``flasket_outbox`` rows (one per recipient per event) with what
the server received: mail never received, copies received more than once, mail
still pending or failed, the delay from the event's creation to its receipt, and
the delay from an event's creation to its fan-out.

1. ``load``: the mixed load against a healthy mail server.
2. ``smtp-down``: no mail server for the first half of the run; it starts on the
   same port at half time. Reports how long after that the backlog was cleared.
3. ``smtp-hang``: ``slow@example.test``, a staff recipient of every new ticket,
   makes the server hang after RCPT TO far longer than ``FLASKET_SMTP_TIMEOUT``;
   every other recipient is answered at once. Reports the other recipients'
   delays and the attempts made on the hanging address (its mail is never sent).
4. ``db-restart``: the database server restarts at half time (PostgreSQL with
   ``pg_ctlcluster``; MariaDB, which runs here without an init system that can
   stop it, with ``mariadb-admin shutdown`` and a new ``mariadbd``). Reports
   whether the workers survived it and their exit codes after SIGTERM.
   ``FLASKET_FAULTS_RESTART_POSTGRESQL`` / ``..._MARIADB`` replace the command.
5. ``worker-kill``: the server takes 50 ms per message, so batches take a while
   (and the clients pause five times longer, to stay under the 40 messages a second
   two workers then send); at half time one worker is killed with SIGKILL while it
   holds claimed rows and a replacement starts. Its rows wait for their lease to run
   out; the message in flight at the kill may arrive twice (the server had it, the
   worker never heard).

Waiting for the outbox to drain gives up after ``--drain-timeout`` s (180), or after
60 s in which nothing was sent. Each experiment's notes end with how busy the machine
was (the figures are only as good as the CPUs left to the run) and a hash of the
``flasket/`` sources, which says whether the code changed while the experiment ran.

Delivery settings: ``FLASKET_SMTP_TIMEOUT`` 3 s, ``FLASKET_DELIVERY_LEASE`` 20 s,
retries after 1 s doubling up to 8 s, 50 attempts, ``FLASKET_WORKER_BACKOFF_CAP``
5 s. Each worker's output, the SMTP servers' records and the bench app's log go to
``--logs`` (a new directory under /tmp by default). The database restart restarts
the shared server on 127.0.0.1 (as root): anyone else using it sees their connections
drop, so run one instance at a time on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import platform
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from tests.conftest import CSRF_FIELD, free_port  # noqa: E402
from tests.databases import fresh_database, server_url  # noqa: E402
from tests.hostapp import User, create_app, db  # noqa: E402

BACKENDS = ("postgresql", "mariadb")
EXPERIMENTS = ("load", "smtp-down", "smtp-hang", "db-restart", "worker-kill")
STAFF = ["help@example.test", "desk@example.test"]
SLOW = "slow@example.test"
SEEDED_TICKETS = 10
SEEDED_FOLLOWERS = 12
#: The SMTP server's time per message in ``worker-kill``: a batch of 100 takes 5 s.
KILL_PAUSE = 0.05
#: ``worker-kill``'s clients think this many times longer: 50 ms a message is 40 messages
#: a second for two workers, less than the mixed load writes.
KILL_THINK_FACTOR = 5.0
#: Waiting for the outbox to drain gives up after this many seconds without progress.
STALLED = 60

DELIVERY_CONFIG: dict[str, Any] = {
    "FLASKET_DELIVERY": "worker",
    "FLASKET_SMTP_TIMEOUT": 3,
    "FLASKET_DELIVERY_LEASE": 20,
    "FLASKET_DELIVERY_RETRY_BASE": 1,
    "FLASKET_DELIVERY_RETRY_CAP": 8,
    "FLASKET_DELIVERY_MAX_ATTEMPTS": 50,
    "FLASKET_WORKER_BACKOFF_CAP": 5,
}

WORKER_APP = """
import json
import logging
import os
import sys

logging.basicConfig(
    level=logging.INFO,
    stream=sys.stderr,
    format="%(asctime)s.%(msecs)03d pid=%(process)d %(name)s %(levelname)s: %(message)s",
    datefmt="%H:%M:%S",
)

from tests.hostapp import create_app

app = create_app(
    smtp_port=int(os.environ["WORKER_SMTP_PORT"]),
    SQLALCHEMY_DATABASE_URI=os.environ["WORKER_DATABASE_URL"],
    **json.loads(os.environ["WORKER_CONFIG"]),
)
print("worker app loaded", flush=True)
"""

log = logging.getLogger("fault_experiments")


# --- statistics -------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def spread(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """Median, 95th percentile and maximum (None for no values)."""
    if not values:
        return None, None, None
    return statistics.median(values), percentile(values, 0.95), max(values)


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def compact(message_id: str) -> str:
    """A Message-ID without the white space that folding may have put into it."""
    return "".join(message_id.split())


# --- the SMTP server, in a process of its own ------------------------------------------


class Recorder:
    """aiosmtpd's handler: one JSON line per message and recipient, written as it arrives."""

    def __init__(self, out: TextIO, hang: str | None, pause: float) -> None:
        self.out = out
        self.hang = hang.lower() if hang else None
        self.pause = pause
        self.lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.out.write(json.dumps(record) + "\n")
            self.out.flush()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.hang and address.lower() == self.hang:
            self.write({"t": time.time(), "hang": address})
            await asyncio.sleep(3600)  # the client gives up long before; others are served
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = time.time()
        headers = BytesHeaderParser().parsebytes(envelope.content)
        message_id = compact(str(headers.get("Message-ID", "")))
        for recipient in envelope.rcpt_tos:
            self.write({"t": received, "id": message_id, "to": recipient})
        if self.pause:
            # The message is in (a real server has queued it); the reply comes late.
            await asyncio.sleep(self.pause)
        return "250 OK"


def serve_smtp(port: int, record: str, hang: str | None, pause: float) -> None:
    """``--serve-smtp``: run the recording server until SIGTERM."""
    from aiosmtpd.controller import Controller

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with open(record, "a", encoding="utf-8") as out:
        controller = Controller(Recorder(out, hang, pause), hostname="127.0.0.1", port=port)
        controller.start()
        print("ready", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        finally:
            controller.stop()


class SmtpServer:
    """The recording SMTP server as a child process, started and stopped at will."""

    def __init__(
        self, port: int, record: Path, log_path: Path, hang: str | None = None, pause: float = 0
    ) -> None:
        self.port = port
        self.record = record
        self.log_path = log_path
        self.hang = hang
        self.pause = pause
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> float:
        """Start it and wait until it listens; returns when it did (``time.time()``)."""
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-smtp",
            str(self.port),
            "--record",
            str(self.record),
            "--pause",
            str(self.pause),
        ]
        if self.hang:
            command += ["--hang", self.hang]
        with open(self.log_path, "a", encoding="utf-8") as log_file:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log_file, text=True
            )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the SMTP server did not start; see {self.log_path}")
        return time.time()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


@dataclass
class Receipts:
    """What the SMTP server wrote down."""

    times: dict[tuple[str, str], list[float]]
    hangs: list[float]

    @classmethod
    def read(cls, path: Path) -> Receipts:
        times: dict[tuple[str, str], list[float]] = {}
        hangs: list[float] = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if "hang" in record:
                    hangs.append(record["t"])
                else:
                    key = (record["id"], record["to"].strip().lower())
                    times.setdefault(key, []).append(record["t"])
        return cls(times, hangs)


# --- worker processes ---------------------------------------------------------------------


class Worker:
    """``flask flasket deliver --interval 0.2`` in a process of its own, output to a file."""

    def __init__(self, name: str, logs: Path, url: str, smtp_port: int, config: dict[str, Any]):
        self.name = name
        self.log_path = logs / f"{name}.log"
        (logs / "worker_app.py").write_text(WORKER_APP, encoding="utf-8")
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(logs), str(ROOT)]),
            "PYTHONUNBUFFERED": "1",
            "WORKER_SMTP_PORT": str(smtp_port),
            "WORKER_DATABASE_URL": url,
            "WORKER_CONFIG": json.dumps(config),
        }
        command = [sys.executable, "-m", "flask", "--app", "worker_app:app", "flasket", "deliver"]
        with open(self.log_path, "w", encoding="utf-8") as out:
            self.process = subprocess.Popen(
                [*command, "--interval", "0.2"],
                cwd=logs,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.exit_code: int | None = None
        self.stopped_by_kill = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "worker app loaded" not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start; see {self.log_path}")
            time.sleep(0.05)
        time.sleep(0.3)  # from loading the app to the first poll

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout: float = 60) -> int | None:
        """SIGTERM and wait; SIGKILL if it has not stopped after ``timeout`` s. The exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stopped_by_kill = True
                self.process.kill()
                self.process.wait()
        self.exit_code = self.process.returncode
        return self.exit_code

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.exit_code = self.process.returncode

    def count(self, text: str) -> int:
        return self.output().count(text)


# --- database servers ---------------------------------------------------------------------


def server_answers(backend: str) -> bool:
    engine = sa.create_engine(server_url(backend), connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def wait_for_server(backend: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server_answers(backend):
            return True
        time.sleep(0.2)
    return False


def server_version(backend: str) -> str:
    engine = sa.create_engine(server_url(backend), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            found = str(connection.scalar(sa.text("SELECT version()")))
        return found.split(" on ")[0] if backend == "postgresql" else f"MariaDB {found}"
    except Exception as error:
        return f"{backend}: not reachable ({type(error).__name__})"
    finally:
        engine.dispose()


def postgresql_cluster() -> tuple[str, str] | None:
    """The version and name of the Debian cluster on the configured port (pg_lsclusters)."""
    if not shutil.which("pg_lsclusters"):
        return None
    port = str(make_url(server_url("postgresql")).port or 5432)
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    ).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == port:
            return parts[0], parts[1]
    return None


def mariadb_admin() -> list[str]:
    url = make_url(server_url("mariadb"))
    command = [shutil.which("mariadb-admin") or "mysqladmin", f"-u{url.username or 'root'}"]
    if url.password:
        command.append(f"-p{url.password}")
    return [*command, f"-h{url.host or '127.0.0.1'}", f"-P{url.port or 3306}"]


def mariadbd() -> str:
    return shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"


def start_mariadb() -> None:
    """Start ``mariadbd`` detached (it reads my.cnf and becomes the mysql user), as here."""
    subprocess.run(
        ["setsid", "-f", mariadbd()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )


def restart_server(backend: str) -> str:
    """Restart the database server; returns what was run. Raises if it does not come back."""
    override = os.environ.get(f"FLASKET_FAULTS_RESTART_{backend.upper()}")
    if override:
        subprocess.run(override, shell=True, check=True)  # noqa: S602 (the operator's command)
        done = override
    elif backend == "postgresql":
        cluster = postgresql_cluster()
        if cluster:
            subprocess.run(["pg_ctlcluster", *cluster, "restart"], check=True)
            done = f"pg_ctlcluster {' '.join(cluster)} restart"
        else:
            subprocess.run(["service", "postgresql", "restart"], check=True)
            done = "service postgresql restart"
    else:
        subprocess.run([*mariadb_admin(), "shutdown"], check=True)
        deadline = time.monotonic() + 60
        while server_answers(backend) and time.monotonic() < deadline:
            time.sleep(0.1)
        start_mariadb()
        done = f"{' '.join(mariadb_admin())} shutdown; setsid -f {mariadbd()}"
    if not wait_for_server(backend, 60):
        raise RuntimeError(f"{backend} did not come back after: {done}")
    return done


def ensure_server_up(backend: str) -> None:
    """After a restart experiment, whatever happened: start the server if it is down."""
    if server_answers(backend):
        return
    print(f"  ! {backend} is down: starting it", flush=True)
    if backend == "postgresql":
        cluster = postgresql_cluster()
        if cluster:
            subprocess.run(["pg_ctlcluster", *cluster, "start"], check=False)
        else:
            subprocess.run(["service", "postgresql", "start"], check=False)
    else:
        start_mariadb()
    if not wait_for_server(backend, 60):
        print(f"  ! {backend} is still down", flush=True)


# --- the host app and its users ------------------------------------------------------------


def host_config(staff: list[str], clients: int) -> dict[str, Any]:
    return {
        **DELIVERY_CONFIG,
        "FLASKET_STAFF_RECIPIENTS": staff,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": clients + 5, "max_overflow": 10},
    }


def seed(app: Flask, users: int, rng: random.Random) -> list[tuple[int, str]]:
    """Users ``u00``...; tickets by the last users, each followed by some. (id, author) pairs."""
    models = app.extensions["flasket"].models
    names = [f"u{n:02d}" for n in range(users)]
    now = datetime.now(timezone.utc)
    with app.app_context():
        db.create_all()
        db.session.execute(
            sa.insert(User),
            [{"username": name, "email": f"{name}@example.test"} for name in names],
        )
        ids: dict[str, int] = dict(db.session.execute(sa.select(User.username, User.id)).all())
        tickets = []
        for n in range(SEEDED_TICKETS):
            author = names[-1 - n % max(1, users // 3)]
            followers = {author, *rng.sample(names, min(users, SEEDED_FOLLOWERS - 1))}
            ticket = models.Ticket(
                author_id=ids[author],
                title=f"Seeded ticket {n}",
                body="Everybody follows this one.",
                status="open",
                created_at=now,
                updated_at=now,
                reply_count=0,
                follower_count=len(followers),
            )
            db.session.add(ticket)
            db.session.flush()
            db.session.execute(
                sa.insert(models.Follow),
                [
                    {"ticket_id": ticket.id, "user_id": ids[name], "created_at": now}
                    for name in sorted(followers)
                ],
            )
            tickets.append((int(ticket.id), author))
        db.session.commit()
        db.session.remove()
    return tickets


def dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- the load ----------------------------------------------------------------------------


@dataclass
class LoadStats:
    requests: int = 0
    errors: int = 0
    conflicts: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    error_times: list[float] = field(default_factory=list)


class Load:
    """Client threads using the site through the test client until stopped."""

    WEIGHTS = (("reply", 50), ("view", 20), ("follow", 12), ("toggle", 10), ("submit", 8))

    def __init__(
        self,
        app: Flask,
        usernames: list[str],
        tickets: list[tuple[int, str]],
        think: float,
        seed_value: int,
    ) -> None:
        self.app = app
        self.usernames = usernames
        self.think = think
        self.seed_value = seed_value
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.open: dict[int, bool] = {ticket_id: True for ticket_id, _ in tickets}
        self.authors: dict[int, str] = dict(tickets)
        self.stats = LoadStats()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for index, name in enumerate(self.usernames):
            thread = threading.Thread(
                target=self._run, args=(name, random.Random(self.seed_value + index)), daemon=True
            )
            self.threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(120)

    def _count(self, action: str, status: int | None) -> None:
        with self.lock:
            self.stats.requests += 1
            self.stats.actions[action] += 1
            self.stats.statuses[str(status) if status is not None else "exception"] += 1
            if status == 409:
                self.stats.conflicts += 1
            elif status is None or status >= 400:
                self.stats.errors += 1
                self.stats.error_times.append(time.time())

    def _request(self, action: str, call: Callable[[], Any]) -> Any:
        try:
            response = call()
        except Exception:
            log.exception("%s raised", action)
            self._count(action, None)
            return None
        self._count(action, response.status_code)
        return response

    def _token(self, http: FlaskClient) -> str | None:
        response = self._request("view", lambda: http.get("/ticket/submit"))
        if response is None or response.status_code != 200:
            return None
        match = CSRF_FIELD.search(response.get_data(as_text=True))
        return match.group(1) if match else None

    def _run(self, name: str, rng: random.Random) -> None:
        http = self.app.test_client()
        token = None
        logged_in = False
        actions = [a for a, _ in self.WEIGHTS]
        weights = [w for _, w in self.WEIGHTS]
        while not self.stop_event.wait(rng.expovariate(1 / self.think) if self.think else 0):
            if not logged_in:
                response = self._request(
                    "login", lambda: http.post("/login", data={"username": name})
                )
                logged_in = response is not None and response.status_code == 302
                continue
            if token is None:
                token = self._token(http)
                continue
            action = rng.choices(actions, weights)[0]
            getattr(self, f"_{action}")(http, name, token, rng)

    def _pick(self, rng: random.Random, only_open: bool = True, author: str | None = None) -> int:
        with self.lock:
            found = [
                ticket_id
                for ticket_id, is_open in self.open.items()
                if (is_open or not only_open)
                and (author is None or self.authors[ticket_id] == author)
            ]
        return rng.choice(found) if found else 0

    def _reply(self, http: FlaskClient, name: str, token: str, rng: random.Random) -> None:
        ticket_id = self._pick(rng)
        if ticket_id:
            data = {"body": f"{name} says {rng.random():.6f}", "csrf_token": token}
            self._request("reply", lambda: http.post(f"/ticket/{ticket_id}", data=data))

    def _view(self, http: FlaskClient, name: str, token: str, rng: random.Random) -> None:
        ticket_id = self._pick(rng, only_open=False)
        url = f"/ticket/{ticket_id}" if ticket_id and rng.random() < 0.7 else "/ticket/"
        self._request("view", lambda: http.get(url))

    def _follow(self, http: FlaskClient, name: str, token: str, rng: random.Random) -> None:
        ticket_id = self._pick(rng, only_open=False)
        if ticket_id:
            data = {"csrf_token": token}
            self._request("follow", lambda: http.post(f"/ticket/{ticket_id}/follow", data=data))

    def _toggle(self, http: FlaskClient, name: str, token: str, rng: random.Random) -> None:
        ticket_id = self._pick(rng, only_open=False, author=name)
        if not ticket_id:
            self._submit(http, name, token, rng)
            return
        with self.lock:
            is_open = self.open[ticket_id]
        verb = "close" if is_open else "reopen"
        data = {"csrf_token": token}
        response = self._request(verb, lambda: http.post(f"/ticket/{ticket_id}/{verb}", data=data))
        if response is not None and response.status_code == 303:
            with self.lock:
                self.open[ticket_id] = not is_open

    def _submit(self, http: FlaskClient, name: str, token: str, rng: random.Random) -> None:
        data = {
            "title": f"{name}'s printer is on fire ({rng.randrange(10**6)})",
            "body": "Flames everywhere.",
            "urgency": "High",
            "application": "Website",
            "topic": "Bug report",
            "csrf_token": token,
        }
        response = self._request("submit", lambda: http.post("/ticket/submit", data=data))
        if response is not None and response.status_code == 303:
            ticket_id = int(response.headers["Location"].rsplit("/", 1)[1])
            with self.lock:
                self.open[ticket_id] = True
                self.authors[ticket_id] = name


# --- watching the outbox -------------------------------------------------------------------


class Outbox:
    """Reads the outbox tables over an engine of its own (a new transaction each time)."""

    def __init__(self, app: Flask, url: str) -> None:
        models = app.extensions["flasket"].models
        self.rows = models.Outbox.__table__
        self.events = models.OutboxEvent.__table__
        self.engine = sa.create_engine(url, connect_args={"connect_timeout": 3})

    def close(self) -> None:
        self.engine.dispose()

    def waiting(self, exclude: str | None = None) -> tuple[int, int] | None:
        """Pending rows (but ``exclude``'s) and events not fanned out; None if unreadable."""
        rows, events = self.rows, self.events
        pending = sa.select(sa.func.count()).where(rows.c.status == "pending")
        if exclude:
            pending = pending.where(sa.func.lower(rows.c.recipient) != exclude)
        unfanned = sa.select(sa.func.count()).where(
            events.c.fanned_out_at.is_(None), events.c.failed_at.is_(None)
        )
        try:
            with self.engine.connect() as connection:
                return int(connection.scalar(pending) or 0), int(connection.scalar(unfanned) or 0)
        except sa.exc.DBAPIError:
            return None

    def wait_drained(self, timeout: float, exclude: str | None = None) -> tuple[float | None, str]:
        """Wait until nothing is left to send: when that was (``time.time()``), or None and why.

        Gives up after ``timeout`` s, or after :data:`STALLED` s in which the count of pending
        rows and waiting events did not go down.
        """
        began = time.monotonic()
        best: tuple[int, int] | None = None
        progressed = began
        left: tuple[int, int] | None = None
        while True:
            left = self.waiting(exclude) or left
            if left == (0, 0):
                return time.time(), ""
            if left is not None and (best is None or sum(left) < sum(best)):
                best, progressed = left, time.monotonic()
            now = time.monotonic()
            state = "unknown" if left is None else f"{left[0]} rows pending, {left[1]} events"
            if now - progressed > STALLED:
                return None, f"no progress for {STALLED} s, gave up ({state} left)"
            if now - began > timeout:
                return None, f"still {state} left {timeout:.0f} s after the load stopped"
            time.sleep(0.25)

    def claimed_by(self, pid: int) -> list[int]:
        rows = self.rows
        query = sa.select(rows.c.id).where(
            rows.c.status == "pending", rows.c.claimed_by.like(f"%:{pid}:%")
        )
        try:
            with self.engine.connect() as connection:
                return list(connection.scalars(query))
        except sa.exc.DBAPIError:
            return []

    def snapshot(self) -> tuple[list[Any], list[Any]]:
        with self.engine.connect() as connection:
            events = connection.execute(
                sa.select(
                    self.events.c.id,
                    self.events.c.created_at,
                    self.events.c.fanned_out_at,
                    self.events.c.failed_at,
                )
            ).all()
            rows = connection.execute(
                sa.select(
                    self.rows.c.id,
                    self.rows.c.event_id,
                    self.rows.c.recipient,
                    self.rows.c.message_id,
                    self.rows.c.status,
                    self.rows.c.attempts,
                    self.rows.c.last_error,
                    self.rows.c.claimed_by,
                )
            ).all()
        return list(events), list(rows)


# --- one experiment --------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    events: int = 0
    expected: int = 0
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    pending: int = 0
    failed: int = 0
    delay: tuple[float | None, float | None, float | None] = (None, None, None)
    fan_out: tuple[float | None, float | None, float | None] = (None, None, None)
    requests: int = 0
    errors: int = 0
    notes: list[str] = field(default_factory=list)
    crashed: str | None = None


@dataclass
class Options:
    duration: float
    clients: int
    users: int
    workers: int
    think: float
    drain_timeout: float
    logs: Path
    seed: int


@dataclass
class Context:
    """What an experiment's fault hooks need."""

    backend: str
    outbox: Outbox
    smtp: SmtpServer
    workers: list[Worker]
    start_worker: Callable[[str], Worker]
    result: Result
    marks: dict[str, float] = field(default_factory=dict)
    killed_rows: list[int] = field(default_factory=list)


def code_fingerprint() -> str:
    """A short hash of flasket/'s Python files: says whether the code changed during a run."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "flasket").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def cpu_times() -> tuple[float, float]:
    """Busy and total jiffies of the machine so far (/proc/stat)."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def run_experiment(backend: str, name: str, options: Options) -> Result:
    result = Result(name)
    code = code_fingerprint()
    busy, total = cpu_times()
    try:
        _run_experiment(backend, name, options, result)
    finally:
        busy_after, total_after = cpu_times()
        share = (busy_after - busy) / (total_after - total) if total_after > total else 0.0
        result.notes.append(
            f"machine: CPUs {share:.0%} busy, load average {os.getloadavg()[0]:.1f} at the end;"
            f" flasket/ code {code}"
            + (
                ""
                if code_fingerprint() == code
                else f", CHANGED to {code_fingerprint()} meanwhile"
            )
        )
    return result


def _run_experiment(backend: str, name: str, options: Options, result: Result) -> None:
    try:
        with experiment_database(backend, result.notes) as url:
            try:
                run_in(url, backend, name, options, result)
            except Exception as error:
                log.exception("%s on %s failed", name, backend)
                result.crashed = f"{type(error).__name__}: {error}"
    except Exception as error:
        log.exception("%s on %s: the database could not be made or dropped", name, backend)
        result.crashed = f"{type(error).__name__}: {error}"
    finally:
        if name == "db-restart":
            ensure_server_up(backend)


@contextmanager
def experiment_database(backend: str, notes: list[str]) -> Iterator[str]:
    """``fresh_database``, dropped again if its own drop fails.

    Its admin engine keeps the connection that created the database in a pool, and a
    database restart kills that connection, so the drop at the end fails.
    """
    finished = False
    given: list[str] = []
    try:
        with fresh_database(backend) as url:
            given.append(url)
            yield url
            finished = True
    except sa.exc.DBAPIError as error:
        if not finished or not given:
            raise
        drop_database(backend, given[0])
        notes.append(
            f"fresh_database's drop failed ({type(error.orig).__name__}: its connection died"
            " in the restart); dropped with a new connection"
        )


def drop_database(backend: str, url: str) -> None:
    parsed = make_url(url)
    admin = sa.create_engine(server_url(backend), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if backend == "postgresql":
                options = parsed.query.get("options", "")
                name = str(options).split("search_path=", 1)[1]
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            else:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{parsed.database}`"))
    finally:
        admin.dispose()


def run_in(url: str, backend: str, name: str, options: Options, result: Result) -> None:
    """One experiment on the database at ``url``: set up, load, fault, drain, measure."""
    rng = random.Random(options.seed)
    prefix = f"{backend}-{name}"
    logs = options.logs
    staff = [*STAFF, SLOW] if name == "smtp-hang" else list(STAFF)
    pause = KILL_PAUSE if name == "worker-kill" else 0.0
    think = options.think * (KILL_THINK_FACTOR if name == "worker-kill" else 1.0)
    port = free_port()
    record = logs / f"{prefix}-smtp.jsonl"
    smtp = SmtpServer(
        port,
        record,
        logs / f"{prefix}-smtp.log",
        hang=SLOW if name == "smtp-hang" else None,
        pause=pause,
    )
    workers: list[Worker] = []
    config = host_config(staff, options.clients)
    app = create_app(smtp_port=port, SQLALCHEMY_DATABASE_URI=url, **config)
    outbox: Outbox | None = None
    load: Load | None = None
    try:
        tickets = seed(app, options.users, rng)
        outbox = Outbox(app, app.config["SQLALCHEMY_DATABASE_URI"])
        worker_config = {k: v for k, v in config.items() if k.startswith("FLASKET_")}
        worker_url = app.config["SQLALCHEMY_DATABASE_URI"]
        serial = iter(range(1, 100))

        def start_worker(label: str = "") -> Worker:
            worker = Worker(
                f"{prefix}-worker{next(serial)}{label}", logs, worker_url, port, worker_config
            )
            workers.append(worker)
            return worker

        if name != "smtp-down":
            smtp.start()
        for _ in range(options.workers):
            start_worker()
        for worker in workers:
            worker.wait_ready()
        context = Context(backend, outbox, smtp, workers, start_worker, result)
        usernames = [f"u{n:02d}" for n in range(min(options.clients, options.users))]
        load = Load(app, usernames, tickets, think, options.seed)
        started = time.time()
        context.marks["load_started"] = started
        load.start()
        time.sleep(max(0.0, started + options.duration / 2 - time.time()))
        FAULTS.get(name, no_fault)(context)
        time.sleep(max(0.0, started + options.duration - time.time()))
        load.stop()
        stopped = time.time()
        context.marks["load_stopped"] = stopped
        result.requests = load.stats.requests
        result.errors = load.stats.errors
        exclude = SLOW if name == "smtp-hang" else None
        drained, why = outbox.wait_drained(options.drain_timeout, exclude)
        context.marks["drained"] = drained or 0.0
        if drained is None:
            result.notes.append(f"NOT drained: {why}")
        else:
            result.notes.append(f"drained {drained - stopped:.1f} s after the load stopped")
        AFTER.get(name, no_fault)(context)
        for worker in workers:
            if worker.exit_code is None:
                worker.terminate()
        measure(context, Receipts.read(record), load.stats)
    finally:
        if load is not None:
            load.stop()
        for worker in workers:
            if worker.alive():
                worker.terminate(30)
        smtp.stop()
        if outbox is not None:
            outbox.close()
        dispose(app)


def measure(context: Context, receipts: Receipts, stats: LoadStats) -> None:
    """Compare the outbox with what the server received; fill in the result."""
    result = context.result
    events, rows = context.outbox.snapshot()
    created = {event.id: event.created_at.timestamp() for event in events}
    result.events = len(events)
    result.expected = len(rows)
    fan_out = [
        (event.fanned_out_at - event.created_at).total_seconds()
        for event in events
        if event.fanned_out_at is not None
    ]
    result.fan_out = spread(fan_out)
    unfanned = sum(1 for e in events if e.fanned_out_at is None and e.failed_at is None)
    given_up = sum(1 for e in events if e.fanned_out_at is None and e.failed_at is not None)
    if unfanned or given_up:
        result.notes.append(f"events not fanned out: {unfanned} waiting, {given_up} given up")
    expected_keys = set()
    delays: list[float] = []
    slow_rows = []
    lost_ids = []
    for row in rows:
        recipient = row.recipient.strip().lower()
        key = (compact(row.message_id), recipient)
        expected_keys.add(key)
        if recipient == SLOW:
            slow_rows.append(row)
        times = receipts.times.get(key)
        if row.status == "pending":
            result.pending += 1
        elif row.status == "failed":
            result.failed += 1
        if times:
            result.received += 1
            result.duplicated += len(times) - 1
            if recipient != SLOW:
                delays.append(min(times) - created[row.event_id])
        elif row.status == "sent":
            result.lost += 1
            lost_ids.append(row.id)
    result.delay = spread(delays)
    result.notes.append(
        "median delay by 10 s of the run (event time): "
        + timeline(context, rows, receipts, created)
    )
    unexpected = sum(len(t) for key, t in receipts.times.items() if key not in expected_keys)
    if unexpected:
        result.notes.append(f"{unexpected} message(s) received that match no outbox row")
    if lost_ids:
        result.notes.append(f"rows marked sent but never received: {lost_ids[:10]}")
    if result.failed:
        errors = Counter(
            (row.last_error or "")[:80] for row in rows if row.status == "failed"
        ).most_common(2)
        result.notes.append(f"failed rows, commonest errors: {errors}")
    dupes = [key for key, t in receipts.times.items() if len(t) > 1]
    if dupes:
        result.notes.append(f"duplicated: {len(dupes)} pair(s), e.g. {dupes[0][1]}")
    if stats.conflicts:
        result.notes.append(f"{stats.conflicts} reply/close conflicts (409, not errors)")
    if stats.errors:
        codes = {
            k: v
            for k, v in stats.statuses.items()
            if k == "exception" or (int(k) >= 400 and k != "409")
        }
        result.notes.append(f"request errors by status: {dict(sorted(codes.items()))}")
    name = result.name
    marks = context.marks
    if name == "smtp-down":
        up = marks["smtp_up"]
        backlog = [
            min(receipts.times[key])
            for key, row in _keys(rows)
            if created[row.event_id] < up and key in receipts.times
        ]
        if backlog:
            result.notes.append(
                f"{len(backlog)} mails written while the server was down; the last of them"
                f" arrived {max(backlog) - up:.1f} s after it came back"
            )
        if marks.get("drained"):
            result.notes.append(
                f"outbox drained {marks['drained'] - up:.1f} s after the server came back"
                f" (the load ran {marks['load_stopped'] - up:.1f} s more)"
            )
    if name == "smtp-hang":
        attempts = [row.attempts for row in slow_rows]
        result.notes.append(
            f"{SLOW}: {len(slow_rows)} rows, {sum(1 for r in slow_rows if r.status == 'sent')}"
            f" sent; attempts per row median {statistics.median(attempts) if attempts else 0},"
            f" max {max(attempts, default=0)}; the server saw {len(receipts.hangs)} RCPT TO"
            f" for it"
        )
        errors = Counter((row.last_error or "")[:90] for row in slow_rows).most_common(1)
        if errors:
            result.notes.append(f"{SLOW} last error: {errors[0][0]!r}")
        others = [r for r in rows if r.status == "pending" and r.recipient.lower() != SLOW]
        pending_slow = sum(1 for r in slow_rows if r.status == "pending")
        result.notes.append(
            f"delays are of the other recipients; pending at the end: {pending_slow} to"
            f" {SLOW}, {len(others)} to others"
            + (
                f" ({marks['others_claimed']:.0f} claimed at the end of the wait,"
                if others
                else ""
            )
            + (f" {sum(1 for r in others if r.attempts)} ever tried)" if others else "")
        )
    if name == "worker-kill" and context.killed_rows:
        killed = set(context.killed_rows)
        kill_time = marks["killed"]
        waits = []
        twice = 0
        for key, row in _keys(rows):
            if row.id in killed:
                times = receipts.times.get(key) or []
                if times:
                    waits.append(max(times) - kill_time)
                    twice += len(times) - 1
        low, high = (min(waits), max(waits)) if waits else (None, None)
        result.notes.append(
            f"{len(killed)} row(s) claimed by the killed worker; received {seconds(low)}"
            f"-{seconds(high)} s after the kill (lease 20 s); {twice} of them twice"
        )


def timeline(
    context: Context,
    rows: list[Any],
    receipts: Receipts,
    created: dict[int, float],
) -> str:
    """The median delay of the mail of events written in each 10 s of the run."""
    start = context.marks["load_started"]
    buckets: dict[int, list[float]] = {}
    for key, row in _keys(rows):
        times = receipts.times.get(key)
        if times and key[1] != SLOW:
            when = created[row.event_id]
            buckets.setdefault(int((when - start) // 10), []).append(min(times) - when)
    return " ".join(f"{10 * n}s:{statistics.median(buckets[n]):.1f}" for n in sorted(buckets))


def _keys(rows: list[Any]) -> Iterator[tuple[tuple[str, str], Any]]:
    for row in rows:
        yield (compact(row.message_id), row.recipient.strip().lower()), row


# --- the faults --------------------------------------------------------------------------------


def no_fault(context: Context) -> None:
    return None


def smtp_comes_up(context: Context) -> None:
    context.marks["smtp_up"] = context.smtp.start()


def database_restarts(context: Context) -> None:
    backend = context.backend
    began = time.time()
    try:
        done = restart_server(backend)
    except Exception as error:
        context.result.notes.append(f"restart FAILED: {error}")
        ensure_server_up(backend)
        return
    ended = time.time()
    context.marks["restarted"] = ended
    context.result.notes.append(f"{done}: took {ended - began:.1f} s")
    time.sleep(5)
    alive = [worker.alive() for worker in context.workers]
    context.result.notes.append(f"workers alive 5 s after the restart: {alive}")


def after_restart(context: Context) -> None:
    alive = [worker.alive() for worker in context.workers]
    codes = [worker.terminate() for worker in context.workers]
    lost = [worker.count("Lost the database") for worker in context.workers]
    back = [worker.count("The database is back") for worker in context.workers]
    killed = [worker.stopped_by_kill for worker in context.workers]
    context.result.notes.append(
        f"workers alive at the end: {alive}; exit codes after SIGTERM: {codes}"
        + (f" (had to SIGKILL: {killed})" if any(killed) else "")
    )
    context.result.notes.append(
        f"'Lost the database' lines per worker: {lost}; 'database is back': {back}"
    )


def hang_over(context: Context) -> None:
    """Before the workers stop (and release their claims): who holds the others' rows."""
    rows = context.outbox.rows
    query = sa.select(sa.func.count()).where(
        rows.c.status == "pending",
        sa.func.lower(rows.c.recipient) != SLOW,
        rows.c.claimed_by.is_not(None),
    )
    with context.outbox.engine.connect() as connection:
        context.marks["others_claimed"] = float(connection.scalar(query) or 0)


def worker_dies(context: Context) -> None:
    victim = context.workers[0]
    deadline = time.monotonic() + 20
    held: list[int] = []
    while time.monotonic() < deadline:
        held = context.outbox.claimed_by(victim.pid)
        if len(held) >= 2:
            break
        time.sleep(0.02)
    victim.kill()
    context.marks["killed"] = time.time()
    context.killed_rows = context.outbox.claimed_by(victim.pid)
    context.result.notes.append(
        f"SIGKILLed {victim.name} (pid {victim.pid}, exit {victim.exit_code}) holding"
        f" {len(context.killed_rows)} claimed row(s)"
        + ("" if held else " (it held none when the wait ran out)")
    )
    replacement = context.start_worker("-replacement")
    replacement.wait_ready()


def after_kill(context: Context) -> None:
    others = [worker for worker in context.workers if worker.exit_code is None]
    codes = [worker.terminate() for worker in others]
    context.result.notes.append(f"exit codes of the other workers after SIGTERM: {codes}")


FAULTS: dict[str, Callable[[Context], None]] = {
    "smtp-down": smtp_comes_up,
    "db-restart": database_restarts,
    "worker-kill": worker_dies,
}
AFTER: dict[str, Callable[[Context], None]] = {
    "smtp-hang": hang_over,
    "db-restart": after_restart,
    "worker-kill": after_kill,
}


# --- output --------------------------------------------------------------------------------------


COLUMNS = (
    ("experiment", 11),
    ("events", 6),
    ("mails", 6),
    ("received", 8),
    ("lost", 4),
    ("dup", 3),
    ("pend/fail", 9),
    ("delay med/p95/max s", 19),
    ("fan-out p95/max s", 17),
    ("requests", 8),
    ("errors", 6),
)


def table(backend: str, results: list[Result]) -> str:
    head = " ".join(f"{title:>{width}}" for title, width in COLUMNS)
    lines = [f"{backend}", head, "-" * len(head)]
    for r in results:
        if r.crashed and not r.events:
            lines.append(f"{r.name:>11} CRASHED: {r.crashed}")
            continue
        cells = (
            r.name,
            r.events,
            r.expected,
            r.received,
            r.lost,
            r.duplicated,
            f"{r.pending}/{r.failed}",
            "/".join(seconds(v) for v in r.delay),
            "/".join(seconds(v) for v in r.fan_out[1:]),
            r.requests,
            r.errors,
        )
        lines.append(
            " ".join(f"{cell!s:>{width}}" for cell, (_, width) in zip(cells, COLUMNS, strict=True))
        )
    lines.append("")
    for r in results:
        for note in ([f"CRASHED: {r.crashed}"] if r.crashed else []) + r.notes:
            lines.append(f"  {r.name}: {note}")
    return "\n".join(lines)


def machine_facts(backends: Sequence[str]) -> str:
    facts = [
        f"CPUs: {os.cpu_count()}, {platform.platform()}, Python {platform.python_version()}",
        f"SQLAlchemy {version('sqlalchemy')}, Flask {version('flask')},"
        f" aiosmtpd {version('aiosmtpd')}",
    ]
    facts += [f"{backend}: {server_version(backend)}" for backend in backends]
    return "\n".join(facts)


def other_instances() -> list[int]:
    """Other runs of this script on the machine: they share the CPUs and restart the servers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"fault_experiments.py") for part in command) and (
            b"--serve-smtp" not in command
        ):
            found.append(int(entry.name))
    return found


def result_line(result: Result) -> str:
    if result.crashed and not result.events:
        return f"CRASHED: {result.crashed}"
    return (
        f"events {result.events}, mails {result.expected}, received {result.received},"
        f" lost {result.lost}, duplicated {result.duplicated},"
        f" pending/failed {result.pending}/{result.failed},"
        f" delay {'/'.join(seconds(v) for v in result.delay)} s,"
        f" requests {result.requests} ({result.errors} errors)"
    )


@contextmanager
def app_log(path: Path) -> Iterator[None]:
    """The bench process's own logging (Flask's 500s, Flasket's messages) to a file."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s: %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument(
        "--only", default=",".join(EXPERIMENTS), help=f"comma-separated: {','.join(EXPERIMENTS)}"
    )
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (60)")
    parser.add_argument("--clients", type=int, default=20, help="client threads (20)")
    parser.add_argument("--users", type=int, default=30, help="users (30)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument(
        "--think", type=float, default=0.5, help="mean pause of a client between requests (0.5 s)"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=180, help="wait this long for the outbox (180 s)"
    )
    parser.add_argument("--logs", type=Path, default=None, help="where the logs go")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve-smtp", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--record", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--hang", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--pause", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    if arguments.serve_smtp is not None:
        serve_smtp(arguments.serve_smtp, arguments.record, arguments.hang, arguments.pause)
        return
    chosen = [e.strip() for e in arguments.only.split(",") if e.strip()]
    unknown = set(chosen) - set(EXPERIMENTS)
    if unknown:
        sys.exit(f"unknown experiment(s): {', '.join(sorted(unknown))}")
    backends = list(BACKENDS) if arguments.database == "all" else [arguments.database]
    logs = arguments.logs or Path(tempfile.mkdtemp(prefix="flasket-faults-", dir="/tmp"))
    logs.mkdir(parents=True, exist_ok=True)
    options = Options(
        duration=arguments.duration,
        clients=arguments.clients,
        users=max(arguments.users, arguments.clients),
        workers=arguments.workers,
        think=arguments.think,
        drain_timeout=arguments.drain_timeout,
        logs=logs,
        seed=arguments.seed,
    )
    began = time.monotonic()
    print("Flasket outbox under load and faults\n")
    print(machine_facts(backends))
    print(
        f"{options.clients} clients (mean pause {options.think} s), {options.users} users,"
        f" {options.workers} workers, {options.duration:.0f} s of load per experiment;"
        f" logs in {logs}\n",
        flush=True,
    )
    others = other_instances()
    if others:
        print(
            f"WARNING: fault_experiments.py is running already (pid {others}): the runs share"
            " the CPUs and each one's database restarts hit the other.\n",
            flush=True,
        )
    tables: list[str] = []
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with app_log(logs / "bench-app.log"):
            for backend in backends:
                if not server_answers(backend):
                    tables.append(f"{backend}: not reachable at {server_url(backend)}")
                    continue
                results: list[Result] = []
                try:
                    for name in chosen:
                        print(f"{backend} {name} ...", flush=True)
                        started = time.monotonic()
                        result = run_experiment(backend, name, options)
                        results.append(result)
                        took = time.monotonic() - started
                        print(f"  {result_line(result)} [{took:.0f} s]", flush=True)
                        for note in result.notes:
                            print(f"    {note}", flush=True)
                finally:
                    if results:
                        tables.append(table(backend, results))
    except KeyboardInterrupt:
        print("\nInterrupted: the tables below hold the experiments that finished.")
    print()
    print("\n\n".join(tables))
    print(f"\nTotal runtime {time.monotonic() - began:.0f} s; logs in {logs}", flush=True)


def interrupt(signum: int, frame: Any) -> None:
    """SIGTERM: stop like Ctrl-C, so workers, servers and databases are cleaned up."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
