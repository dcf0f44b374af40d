"""A ticket a reader may not read answers exactly like a missing one.

Same status, same body, same headers and the same statements run, on every route that names
a ticket, for every method, and for a reader who could read the ticket once (staff who are
staff no more) following the links of the mail they got then.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import delivery
from tests.helpers import Client, Inbox, counting_queries, ext_models
from tests.hostapp import User, db

OWN = pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}])

#: Requests that name a ticket: (method, path after /ticket/<id>, form fields).
ROUTES = [
    ("GET", "", None),
    ("GET", "?page=2", None),
    ("GET", "?page=1&per_page=5", None),
    ("HEAD", "", None),
    ("POST", "", {"body": "Let me in"}),
    ("POST", "", {"body": ""}),
    ("POST", "/close", {}),
    ("POST", "/reopen", {}),
    ("POST", "/follow", {}),
    ("POST", "/unfollow", {}),
    ("POST", "/close", None),
    ("GET", "/close", None),
    ("PUT", "", None),
]


def answer(client: Client, method: str, url: str, form: dict[str, str] | None) -> Any:
    data = None if form is None else {"csrf_token": client.csrf(), **form}
    return client.http.open(url, method=method, data=data)


def comparable(response: Any, number: int) -> tuple[int, str, list[tuple[str, str]]]:
    """Status, body and headers with the ticket number written as ``N``."""
    number_in = re.compile(rf"(?<=[#/]){number}(?!\d)")
    body = number_in.sub("N", response.get_data(as_text=True))
    headers = [
        (name, number_in.sub("N", value))
        for name, value in response.headers
        if name.lower() not in {"set-cookie", "vary"}
    ]
    return response.status_code, body, sorted(headers)


def statements(app: Flask, client: Client, method: str, url: str, form: Any) -> list[str]:
    """The statements the request ran, numbers as ``N``; the mail deliverer's are not counted."""
    data = None if form is None else {"csrf_token": client.csrf(), **form}
    delivery.wait_for_idle(timeout=30)
    here = threading.get_ident()
    with counting_queries(app) as seen, counting_threads() as threads:
        client.http.open(url, method=method, data=data)
    return [
        re.sub(r"\d+", "N", statement)
        for statement, thread in zip(seen, threads, strict=True)
        if thread == here
    ]


@contextmanager
def counting_threads() -> Iterator[list[int]]:
    """The thread of each statement, in the order counting_queries records them."""
    threads: list[int] = []

    def record(*args: Any) -> None:
        threads.append(threading.get_ident())

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        yield threads
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def missing_number_like(app: Flask, number: int) -> int:
    """A ticket number nobody has, with as many digits as ``number``."""
    with app.app_context():
        models = ext_models(app)
        taken = set(db.session.scalars(sa.select(models.Ticket.id)))
    candidate = int("9" * len(str(number)))
    while candidate in taken:
        candidate -= 1
    return candidate


@OWN
@pytest.mark.parametrize(("method", "suffix", "form"), ROUTES)
def test_an_unreadable_ticket_answers_like_a_missing_one(
    app: Flask,
    alice: Client,
    bob: Client,
    method: str,
    suffix: str,
    form: dict[str, str] | None,
) -> None:
    hidden = alice.submit(title="Secret payroll question")
    for n in range(6):
        alice.reply(hidden, f"Reply {n}")
    missing = missing_number_like(app, hidden)

    seen = answer(bob, method, f"/ticket/{hidden}{suffix}", form)
    absent = answer(bob, method, f"/ticket/{missing}{suffix}", form)

    assert comparable(seen, hidden) == comparable(absent, missing)
    assert seen.status_code in {404, 405}
    assert "Secret payroll" not in seen.get_data(as_text=True)
    assert statements(app, bob, method, f"/ticket/{hidden}{suffix}", form) == statements(
        app, bob, method, f"/ticket/{missing}{suffix}", form
    )


@OWN
def test_a_refused_request_changes_nothing(app: Flask, alice: Client, bob: Client) -> None:
    hidden = alice.submit()
    models = ext_models(app)
    before = snapshot(app, models)
    for method, suffix, form in ROUTES:
        answer(bob, method, f"/ticket/{hidden}{suffix}", form)
    assert snapshot(app, models) == before


def snapshot(app: Flask, models: Any) -> dict[str, Any]:
    with app.app_context():
        return {
            "tickets": [
                (t.id, t.status, t.reply_count, t.updated_at)
                for t in db.session.scalars(sa.select(models.Ticket))
            ],
            "replies": db.session.scalar(sa.select(sa.func.count()).select_from(models.Reply)),
            "follows": sorted(
                (f.ticket_id, f.user_id) for f in db.session.scalars(sa.select(models.Follow))
            ),
            "events": db.session.scalar(
                sa.select(sa.func.count()).select_from(models.OutboxEvent)
            ),
        }


@OWN
def test_staff_who_lose_their_role_learn_nothing_from_the_links_they_kept(
    app: Flask, alice: Client, login: Any, inbox: Inbox
) -> None:
    with app.app_context():
        db.session.add(User(username="dana", email="dana@example.test", is_admin=True))
        db.session.commit()
    dana = login("dana")
    hidden = alice.submit(title="Salary review")
    assert dana.reply(hidden, "Looking into it").status_code == 303
    dana.get("/ticket/")  # shows the reply's confirmation, so no page later does
    alice.reply(hidden, "Thanks")
    # The links dana's mail gave her while she was staff.
    [mail] = inbox.to("dana@example.test")
    links = sorted(
        set(re.findall(r"https?://[^\s\"<>]+/ticket/\d+[^\s\"<>]*", mail.part("plain")))
    )
    assert links, "the mail links the ticket"

    with app.app_context():
        person = db.session.scalar(sa.select(User).filter_by(username="dana"))
        assert person is not None
        person.is_admin = False
        db.session.commit()
    missing = missing_number_like(app, hidden)
    for link in links:
        path = re.sub(r"^https?://[^/]+", "", link).split("#")[0]
        kept = dana.get(path)
        gone = dana.get(path.replace(f"/ticket/{hidden}", f"/ticket/{missing}"))
        assert comparable(kept, hidden) == comparable(gone, missing), link
        assert "Salary review" not in kept.get_data(as_text=True)
