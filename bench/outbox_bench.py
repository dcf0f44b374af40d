"""How the outbox behaves under load: prints a table, asserts nothing.

    .venv/bin/python bench/outbox_bench.py            # PostgreSQL at 127.0.0.1:5432
    FLASKET_BENCH_DATABASE=mariadb .venv/bin/python bench/outbox_bench.py

1. Reply POST latency (median, p95) in ``after_request`` mode with 1, 100 and
   1,000 followers, through the in-process test client. Background delivery is
   awaited between requests and not counted: the request renders the mail once
   and writes one event row; the fan-out to each follower and the SMTP
   conversation happen in the background thread.
2. Delivery throughput (messages per second) to a local aiosmtpd server, from
   one worker and from two workers (each with its own app and connection pool)
   draining the same outbox.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from email import message_from_bytes
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flasket import delivery
from tests.conftest import CSRF_FIELD, free_port
from tests.databases import fresh_database, unreachable
from tests.hostapp import User, create_app, db

BACKEND = os.environ.get("FLASKET_BENCH_DATABASE", "postgresql")
FOLLOWERS = (1, 100, 1000)
REPLIES = {1: 40, 100: 20, 1000: 10}
THROUGHPUT_MESSAGES = 2000


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message_from_bytes(envelope.content)
        with self.lock:
            self.count += 1
        return "250 OK"


def seed(app: Any, followers: int) -> int:
    models = app.extensions["flasket"].models
    now = datetime.now(timezone.utc)
    with app.app_context():
        db.create_all()
        db.session.add_all([User(username="author", email="author@example.test")])
        db.session.execute(
            sa.insert(User),
            [{"username": f"u{n}", "email": f"u{n}@example.test"} for n in range(followers)],
        )
        author = db.session.scalar(sa.select(User.id).filter_by(username="author"))
        ticket = models.Ticket(
            author_id=author,
            title="Load",
            body="Benchmark",
            status="open",
            created_at=now,
            updated_at=now,
            reply_count=0,
            follower_count=followers,
        )
        db.session.add(ticket)
        db.session.flush()
        ids = db.session.scalars(sa.select(User.id).where(User.username.like("u%"))).all()
        db.session.execute(
            sa.insert(models.Follow),
            [{"ticket_id": ticket.id, "user_id": uid, "created_at": now} for uid in ids],
        )
        db.session.commit()
        return int(ticket.id)


def reply_latency(port: int, followers: int) -> tuple[float, float]:
    with fresh_database(BACKEND) as url:
        app = create_app(smtp_port=port, SQLALCHEMY_DATABASE_URI=url)
        ticket_id = seed(app, followers)
        client = app.test_client()
        client.post("/login", data={"username": "author"})
        token_page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
        match = CSRF_FIELD.search(token_page)
        assert match
        token = match.group(1)
        timings = []
        for n in range(REPLIES[followers] + 2):
            started = time.perf_counter()
            response = client.post(
                f"/ticket/{ticket_id}", data={"body": f"Reply {n}", "csrf_token": token}
            )
            elapsed = time.perf_counter() - started
            assert response.status_code == 303, response.status_code
            assert delivery.wait_for_idle(600)
            if n >= 2:  # the first requests warm up templates and the pool
                timings.append(elapsed)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings) * 1000, p95 * 1000


def throughput(port: int, workers: int, counter: Counter) -> float:
    with fresh_database(BACKEND) as url:
        config = {"SQLALCHEMY_DATABASE_URI": url, "FLASKET_DELIVERY": "worker"}
        app = create_app(smtp_port=port, **config)
        ticket_id = seed(app, THROUGHPUT_MESSAGES // 2)
        client = app.test_client()
        client.post("/login", data={"username": "author"})
        match = CSRF_FIELD.search(client.get(f"/ticket/{ticket_id}").get_data(as_text=True))
        assert match
        for n in range(2):
            client.post(
                f"/ticket/{ticket_id}", data={"body": f"Reply {n}", "csrf_token": match.group(1)}
            )
        apps = [create_app(smtp_port=port, **config) for _ in range(workers)]
        before = counter.count
        barrier = threading.Barrier(workers + 1)

        def work(worker_app: Any) -> None:
            with worker_app.app_context():
                barrier.wait()
                delivery.deliver_due()

        threads = [threading.Thread(target=work, args=(a,)) for a in apps]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        delivered = counter.count - before
        assert delivered == THROUGHPUT_MESSAGES, delivered
        for each in [app, *apps]:
            with each.app_context():
                db.session.remove()
                db.engine.dispose()
    return delivered / elapsed


def main() -> None:
    reason = unreachable(BACKEND)
    if reason:
        sys.exit(reason)
    counter = Counter()
    port = free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        print(f"Flasket outbox benchmark on {BACKEND}, local aiosmtpd SMTP server\n")
        print("Reply POST latency, FLASKET_DELIVERY = after_request")
        print(f"{'followers':>10} {'replies':>8} {'median ms':>10} {'p95 ms':>8}")
        for followers in FOLLOWERS:
            median, p95 = reply_latency(port, followers)
            print(f"{followers:>10} {REPLIES[followers]:>8} {median:>10.1f} {p95:>8.1f}")
        print(f"\nDelivery throughput, {THROUGHPUT_MESSAGES} messages")
        print(f"{'workers':>10} {'messages/s':>11}")
        for workers in (1, 2):
            print(f"{workers:>10} {throughput(port, workers, counter):>11.0f}")
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
