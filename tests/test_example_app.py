"""The microblog demo in examples/ integrates Flasket the way an integrator would."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import StrictUndefined
from werkzeug.security import generate_password_hash

from flasket import delivery

CSRF_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
DEMO_PASSWORD = "demo"
SEEDED_TITLES = ("Password reset e-mail never arrives", "Dark mode for the desktop app?")


@pytest.fixture
def app(
    microblog: ModuleType, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[Flask]:
    # Still a real salted hash, just not scrypt's deliberately slow one.
    fast_hash = functools.partial(generate_password_hash, method="pbkdf2:sha256:1000")
    monkeypatch.setattr(microblog.models, "generate_password_hash", fast_hash)
    app: Flask = microblog.create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "MAIL_SERVER": None,
            "SHOW_DEMO_LOGINS": False,
        }
    )
    app.jinja_env.undefined = StrictUndefined
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert "password 'demo'" in result.output
    yield app
    # Background deliveries (fan-outs included) must not race the tables' removal.
    assert delivery.wait_for_idle(timeout=30)
    db = microblog.extensions.db
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)))


def csrf_token(client: FlaskClient, url: str) -> str:
    match = CSRF_TOKEN.search(client.get(url).get_data(as_text=True))
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def log_in(
    client: FlaskClient, username: str, password: str = DEMO_PASSWORD, next_url: str = ""
) -> Any:
    url = "/auth/login" + (f"?next={next_url}" if next_url else "")
    return client.post(
        url,
        data={"username": username, "password": password, "csrf_token": csrf_token(client, url)},
    )


def test_seed_fills_the_demo_once_and_a_second_run_changes_nothing(
    app: Flask, microblog: ModuleType
) -> None:
    models = microblog.models
    tickets = app.extensions["flasket"].models
    before = {
        "users": count(app, models.User),
        "posts": count(app, models.Post),
        "tickets": count(app, tickets.Ticket),
        "replies": count(app, tickets.Reply),
        "follows": count(app, tickets.Follow),
        "mails": count(app, models.DemoMail),
    }
    assert before["users"] == 6
    assert before["tickets"] == 11
    assert count(app, tickets.Ticket, tickets.Ticket.status == "closed") == 3
    assert before["replies"] >= 5
    assert before["follows"] > before["tickets"]
    assert count(app, models.DemoMail, models.DemoMail.recipient == "admin@example.com") >= 8

    again = app.test_cli_runner().invoke(args=["seed"])

    assert again.exit_code == 0
    assert "demo data already present" in again.output
    assert before == {
        "users": count(app, models.User),
        "posts": count(app, models.Post),
        "tickets": count(app, tickets.Ticket),
        "replies": count(app, tickets.Reply),
        "follows": count(app, tickets.Follow),
        "mails": count(app, models.DemoMail),
    }


def test_register_stores_a_hashed_password_then_log_in_and_log_out_work(
    app: Flask, microblog: ModuleType
) -> None:
    client = app.test_client()
    response = client.post(
        "/auth/register",
        data={
            "username": "dave",
            "email": "dave@example.com",
            "password": "s3cret-words",
            "password2": "s3cret-words",
            "csrf_token": csrf_token(client, "/auth/register"),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    with app.app_context():
        db = microblog.extensions.db
        dave = db.session.scalar(sa.select(microblog.models.User).filter_by(username="dave"))
        assert dave is not None
        assert dave.password_hash
        assert "s3cret-words" not in dave.password_hash
        assert dave.check_password("s3cret-words")

    response = log_in(client, "dave", "s3cret-words")
    assert response.status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert "Signed in as <strong>dave</strong>" in home

    response = client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302
    assert client.get("/mailbox").status_code == 302
    assert "Signed in as" not in client.get("/").get_data(as_text=True)


def test_register_explains_a_taken_username_and_mismatched_passwords(app: Flask) -> None:
    client = app.test_client()
    response = client.post(
        "/auth/register",
        data={
            "username": "Alice",
            "email": "new@example.com",
            "password": "abcd",
            "password2": "abce",
            "csrf_token": csrf_token(client, "/auth/register"),
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "That username is taken" in page
    assert "The two passwords differ." in page
    assert 'aria-invalid="true"' in page


def test_wrong_password_shows_a_clear_error_and_logs_nobody_in(app: Flask) -> None:
    client = app.test_client()
    response = log_in(client, "alice", "not-the-password")
    assert response.status_code == 200
    assert "Invalid username or password" in response.get_data(as_text=True)
    assert client.get("/mailbox").status_code == 302


def test_login_follows_a_local_next_but_never_another_site(app: Flask) -> None:
    client = app.test_client()
    response = log_in(client, "alice", next_url="/ticket/index")
    assert response.headers["Location"] == "/ticket/index"

    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = log_in(app.test_client(), "alice", next_url=target)
        assert response.headers["Location"] == "/", target


def test_logged_out_visit_to_tickets_goes_to_the_host_login_page(app: Flask) -> None:
    response = app.test_client().get("/ticket/index")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")
    assert "ticket" in response.headers["Location"]


def test_ticket_pages_show_seeded_tickets_inside_the_host_layout(app: Flask) -> None:
    client = app.test_client()
    log_in(client, "alice")
    response = client.get("/ticket/index")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for title in SEEDED_TITLES:
        assert title in page
    assert '<nav class="site-nav" aria-label="Main">' in page
    assert '<a href="/ticket/" aria-current="page">Tickets</a>' in page
    assert "/static/microblog.css" in page
    assert "flasket-standalone" not in page
    assert "<title>Overview · Tickets · Microblog</title>" in page


def test_submitted_ticket_is_stored_and_its_mail_reaches_the_admin_mailbox(
    app: Flask, microblog: ModuleType
) -> None:
    alice = app.test_client()
    log_in(alice, "alice")
    response = alice.post(
        "/ticket/submit",
        data={
            "title": "Cannot <b>upload</b> avatars",
            "body": "The upload button does nothing.",
            "urgency": "Medium",
            "application": "Website",
            "topic": "Bug report",
            "csrf_token": csrf_token(alice, "/ticket/submit"),
        },
    )
    assert response.status_code == 303
    ticket_id = int(response.headers["Location"].rsplit("/", 1)[1])
    tickets = app.extensions["flasket"].models
    assert count(app, tickets.Ticket, tickets.Ticket.id == ticket_id) == 1
    DemoMail = microblog.models.DemoMail
    assert delivery.wait_for_idle(timeout=30), "the mail goes out after the response"
    assert count(app, DemoMail, DemoMail.subject.contains(f"[Ticket #{ticket_id}]")) == 1

    admin = app.test_client()
    log_in(admin, "admin")
    mailbox = admin.get("/mailbox").get_data(as_text=True)
    newest = re.search(r'class="mail__subject">([^<]*)</h2>', mailbox)
    assert newest is not None
    assert f"[Ticket #{ticket_id}] Cannot &lt;b&gt;upload&lt;/b&gt; avatars" in newest.group(1)
    assert "To admin@example.com" in mailbox
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="&lt;base' in mailbox
    assert "<b>upload</b>" not in mailbox

    assert f"[Ticket #{ticket_id}]" not in alice.get("/mailbox").get_data(as_text=True)


def test_mailbox_shows_a_user_only_their_own_mail(app: Flask) -> None:
    bob = app.test_client()
    log_in(bob, "bob")
    page = bob.get("/mailbox").get_data(as_text=True)
    recipients = set(re.findall(r"To (\S+@example\.com)", page))
    assert recipients == {"bob@example.com"}


def test_logged_in_user_posts_a_message_on_the_home_page(app: Flask) -> None:
    client = app.test_client()
    log_in(client, "carol")
    response = client.post(
        "/post", data={"post": "Hello <world>", "csrf_token": csrf_token(client, "/")}
    )
    assert response.status_code == 303
    page = client.get("/").get_data(as_text=True)
    assert "Hello &lt;world&gt;" in page
    assert "Your post is live!" in page
