"""Flasket hooks into the host only where it must, and its pages work whatever order the
host sets its extensions up in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from flasket import views
from tests.helpers import Client, Inbox
from tests.hostapp import User, create_app, db

pytestmark = pytest.mark.one_database

UNFOLLOW_LINK = re.compile(r"http://host\.test/ticket/unfollow/([A-Za-z0-9_.\-]+)")


def protect(app: Flask) -> None:
    CSRFProtect(app).exempt("tests.hostapp.login_page")  # the test host's login form


def host(database_url: str, smtp_port: int, before: Callable[[Flask], Any] | None) -> Flask:
    app = create_app(
        smtp_port=smtp_port, SQLALCHEMY_DATABASE_URI=database_url, before_flasket=before
    )
    if before is None:
        protect(app)
    with app.app_context():
        db.create_all()
        db.session.add_all(
            [User(username="alice", email="a@example.test"), User(username="bob", email="b@t.t")]
        )
        db.session.commit()
    return app


@pytest.fixture(params=["csrf-before-flasket", "csrf-after-flasket"])
def csrf_host(
    request: pytest.FixtureRequest, database_url: str, smtp_server: tuple[Inbox, int]
) -> Iterator[Flask]:
    before = protect if request.param == "csrf-before-flasket" else None
    app = host(database_url, smtp_server[1], before)
    yield app
    from flasket import delivery

    delivery.wait_for_idle(30)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_one_click_unfollow_needs_no_csrf_token_whenever_csrf_protect_was_set_up(
    csrf_host: Flask, inbox: Inbox
) -> None:
    alice, bob = Client(csrf_host, "alice"), Client(csrf_host, "bob")
    ticket_id = alice.submit()
    bob.reply(ticket_id)
    match = UNFOLLOW_LINK.search(inbox.to("a@example.test")[0].part("plain"))
    assert match
    anonymous = csrf_host.test_client()
    # Every other form of Flasket's, and the host's own, still needs its token.
    assert anonymous.post(f"/ticket/{ticket_id}/follow").status_code == 400
    answer = anonymous.post(
        f"/ticket/unfollow/{match.group(1)}", data={"List-Unsubscribe": "One-Click"}
    )
    assert answer.status_code == 200


def test_flasket_adds_one_app_wide_hook_and_it_leaves_routed_requests_alone(
    database_url: str, smtp_server: tuple[Inbox, int]
) -> None:
    app = host(database_url, smtp_server[1], before=None)
    flasket_hooks = [
        function
        for function in app.before_request_funcs.get(None, [])
        if getattr(function, "__module__", "").startswith("flasket")
    ]
    # Unrouted paths under the prefix never reach a blueprint, so only an app-wide hook can
    # answer them; CSRF exemption and login checks are the blueprint's own.
    assert flasket_hooks == [views.answer_unrouted_paths]
    with app.test_request_context("/host-page"):
        assert views.answer_unrouted_paths() is None
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_settings_are_parsed_once_at_init_and_found_through_a_proxy_too() -> None:
    from flask import current_app

    from flasket.config import Category

    app = create_app(
        FLASKET_CATEGORIES=[{"name": "area", "choices": ["Billing", "Login"]}],
        FLASKET_RESPONSE_HEADERS={"X-Frame-Options": "DENY"},
    )
    extension = app.extensions["flasket"]
    with app.app_context():
        parsed = extension.settings()
        assert extension.settings(app) is parsed
        assert extension.settings(current_app) is parsed
        assert [category.name for category in parsed.categories] == ["area"]
        assert isinstance(parsed.categories[0], Category)
        assert parsed.response_headers["X-Frame-Options"] == "DENY"
    # Changing the config afterwards changes nothing: the docs say to set these first.
    app.config["FLASKET_CATEGORIES"] = []
    with app.app_context():
        assert extension.settings().categories == parsed.categories
    with Flask(__name__).app_context(), pytest.raises(RuntimeError, match="init_flasket"):
        extension.settings()
