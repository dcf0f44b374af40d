"""Links in mail come from configuration the integrator controls, never from the request.

A logged-in user chooses the ``Host`` header of their own requests (and, behind a
proxy that trusts it, ``X-Forwarded-Host``). Each follower's mail carries a link
to the ticket and a signed unfollow link; built from the request, a reply sent
with ``Host: evil.test`` would hand every follower's token to evil.test. These
tests send such requests and read what the real SMTP server received.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix

from flasket import actions, delivery
from flasket.config import LinkRoot, link_root, parse_base_url
from tests.helpers import CSRF_FIELD, Inbox, Received
from tests.hostapp import User, db
from tests.test_host_requirements import start_up_error

URL = re.compile(r"[a-z]+://[^\s\"'<>]+")
EVIL = "http://evil.test"


@pytest.fixture
def database_url() -> str:
    """Where a link points cannot differ by database: these tests run once, on SQLite."""
    return "sqlite://"


def settings(**values: Any) -> pytest.MarkDecorator:
    """Run a test with these host config keys (overrides the ``app_config`` fixture)."""
    return pytest.mark.parametrize("app_config", [values], ids=["config"])


def logged_in(app: Flask, username: str, base_url: str, **request: Any) -> FlaskClient:
    """A test client logged in as ``username`` through ``base_url`` (with ``request`` extras)."""
    http = app.test_client()
    response = http.post("/login", data={"username": username}, base_url=base_url, **request)
    assert response.status_code == 302
    return http


def ticket_with_followers(app: Flask) -> int:
    """Alice's ticket, which carol follows too; both get mail when someone else acts."""
    with app.app_context():
        alice, carol = (
            db.session.execute(db.select(User).filter_by(username=n)).scalar_one()
            for n in ("alice", "carol")
        )
        categories = {"urgency": "High", "application": "Website", "topic": "Bug report"}
        ticket = actions.create_ticket(alice, "Printer is on fire", "Flames.", categories)
        actions.follow_ticket(ticket, carol)
        return int(ticket.id)


def reply_from(app: Flask, ticket_id: int, base_url: str, **request: Any) -> None:
    """Bob replies to the ticket, every request sent to ``base_url`` with ``request`` extras."""
    bob = logged_in(app, "bob", base_url, **request)
    form = bob.get(f"/ticket/{ticket_id}", base_url=base_url, **request).get_data(as_text=True)
    token = CSRF_FIELD.search(form)
    assert token, "no CSRF token on the ticket page"
    response = bob.post(
        f"/ticket/{ticket_id}",
        data={"body": "Any news?", "csrf_token": token[1]},
        base_url=base_url,
        **request,
    )
    assert response.status_code == 303, response.get_data(as_text=True)


def links_in(received: Received) -> list[str]:
    """Every URL of a message: both parts and the List-Unsubscribe header."""
    header = str(received.message["List-Unsubscribe"] or "")
    return [
        *URL.findall(received.part("plain")),
        *URL.findall(received.part("html")),
        *URL.findall(header),
    ]


def assert_links_point_at(inbox: Inbox, root: str, ticket_id: int) -> None:
    """Alice and carol each got one message whose every link starts at ``root``."""
    assert sorted(r for m in inbox.messages for r in m.envelope_to) == [
        "alice@example.test",
        "carol@example.test",
    ]
    for received in inbox.messages:
        links = links_in(received)
        assert f"{root}/ticket/{ticket_id}#reply-" in received.part("plain")
        assert f'href="{root}/ticket/{ticket_id}#reply-' in received.part("html")
        unfollow = re.findall(
            rf"{re.escape(root)}/ticket/unfollow/[\w.\-]+", received.part("plain")
        )
        assert len(unfollow) == 1
        assert str(received.message["List-Unsubscribe"]) == f"<{unfollow[0]}>"
        assert links
        assert all(link.startswith(root + "/") for link in links), links
        assert "evil.test" not in received.message.as_string()


@settings(SERVER_NAME=None, FLASKET_BASE_URL="https://help.example.com")
def test_a_reply_sent_with_a_foreign_host_header_mails_links_to_the_configured_site(
    app: Flask, inbox: Inbox
) -> None:
    ticket_id = ticket_with_followers(app)
    inbox.clear()
    reply_from(app, ticket_id, EVIL)
    assert_links_point_at(inbox, "https://help.example.com", ticket_id)


@settings(SERVER_NAME=None, FLASKET_BASE_URL="https://help.example.com")
def test_a_host_header_alone_changes_no_link(app: Flask, inbox: Inbox) -> None:
    ticket_id = ticket_with_followers(app)
    inbox.clear()
    reply_from(app, ticket_id, "http://localhost", headers={"Host": "evil.test"})
    assert_links_point_at(inbox, "https://help.example.com", ticket_id)


@settings(SERVER_NAME=None, FLASKET_BASE_URL="https://example.com/app/")
def test_an_app_mounted_under_a_path_links_under_that_path(app: Flask, inbox: Inbox) -> None:
    ticket_id = ticket_with_followers(app)
    inbox.clear()
    # The request arrives under another mount point too (SCRIPT_NAME /elsewhere).
    reply_from(app, ticket_id, f"{EVIL}/elsewhere")
    assert_links_point_at(inbox, "https://example.com/app", ticket_id)


@settings(SERVER_NAME=None, FLASKET_BASE_URL="https://help.example.com:8443")
def test_forwarded_headers_a_proxy_fix_trusts_change_no_mail_link(
    app: Flask, inbox: Inbox
) -> None:
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]
    ticket_id = ticket_with_followers(app)
    inbox.clear()
    forwarded = {"X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "http"}
    reply_from(app, ticket_id, "http://localhost", headers=forwarded)
    assert_links_point_at(inbox, "https://help.example.com:8443", ticket_id)


@settings(
    SERVER_NAME="host.test",
    PREFERRED_URL_SCHEME="https",
    APPLICATION_ROOT="/desk",
    SESSION_COOKIE_PATH="/",
)
def test_server_name_with_its_scheme_and_root_makes_the_links(app: Flask, inbox: Inbox) -> None:
    ticket_id = ticket_with_followers(app)
    inbox.clear()
    # Requests arrive over plain http at /; the links say what the configuration says.
    reply_from(app, ticket_id, "http://host.test")
    assert_links_point_at(inbox, "https://host.test/desk", ticket_id)


@settings(SERVER_NAME="ignored.test", FLASKET_BASE_URL="https://help.example.com")
def test_the_base_url_wins_over_server_name(app: Flask, inbox: Inbox) -> None:
    ticket_id = ticket_with_followers(app)
    inbox.clear()
    reply_from(app, ticket_id, "http://ignored.test")
    assert_links_point_at(inbox, "https://help.example.com", ticket_id)


@settings(SERVER_NAME=None, FLASKET_BASE_URL="https://help.example.com/app")
def test_mail_rendered_outside_any_request_links_to_the_configured_site(
    app: Flask, inbox: Inbox
) -> None:
    ticket_id = ticket_with_followers(app)
    inbox.clear()
    # A CLI command or a job queue: an app context and no request at all.
    with app.app_context():
        bob = db.session.execute(db.select(User).filter_by(username="bob")).scalar_one()
        ticket = db.session.get(app.extensions["flasket"].models.Ticket, ticket_id)
        assert ticket is not None
        actions.post_reply(ticket, bob, "Any news?")
        delivery.wait_for_idle(timeout=30)
    assert_links_point_at(inbox, "https://help.example.com/app", ticket_id)


def test_a_host_without_a_site_address_does_not_start_even_with_mail_suppressed() -> None:
    message = start_up_error(FLASKET_BASE_URL=None, MAIL_SUPPRESS_SEND=True)
    assert "Links in e-mails (to a ticket, to unfollow it) need the address" in message
    assert "never takes it from a request" in message
    assert "Set FLASKET_BASE_URL" in message
    assert 'SERVER_NAME ("example.com") with PREFERRED_URL_SCHEME ("https")' in message


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("example.com", "is not an absolute http:// or https:// URL"),
        ("//example.com", "is not an absolute http:// or https:// URL"),
        ("ftp://example.com", "is not an absolute http:// or https:// URL"),
        ("https://", "is not an absolute http:// or https:// URL"),
        ("https://:443", "has no host name"),
        ("https://example.com/?from=mail", "has a query or a fragment"),
        ("https://example.com?", "has a query or a fragment"),
        ("https://example.com/#top", "has a query or a fragment"),
        ("https://admin:secret@example.com", "holds a user name or password"),
        ("https://example.com:99999", "has a port that is not a number from 1 to 65535"),
        ("https://example.com:0", "has port 0"),
        ("https://example.com/a b", "holds a space or a control character"),
        ("https://example.com\r\nBcc: x@example.test", "holds a space or a control character"),
        ("", "is not an absolute http:// or https:// URL"),
        (("https", "example.com"), "is not a string"),
    ],
)
def test_a_base_url_that_is_not_an_absolute_http_url_is_refused(value: Any, why: str) -> None:
    message = start_up_error(FLASKET_BASE_URL=value)
    assert f"FLASKET_BASE_URL = {value!r} {why}." in message
    assert 'for example "https://example.com"' in message


@pytest.mark.parametrize(
    ("value", "root"),
    [
        ("https://example.com", LinkRoot("https", "example.com", "/")),
        ("HTTPS://Example.COM/", LinkRoot("https", "example.com", "/")),
        ("http://127.0.0.1:8080", LinkRoot("http", "127.0.0.1:8080", "/")),
        ("https://[::1]:8443/app", LinkRoot("https", "[::1]:8443", "/app")),
        ("https://example.com/app/", LinkRoot("https", "example.com", "/app")),
        ("https://example.com/caf%C3%A9/ü", LinkRoot("https", "example.com", "/caf%C3%A9/%C3%BC")),
    ],
)
def test_a_base_url_is_read_as_scheme_host_and_mount_path(value: str, root: LinkRoot) -> None:
    assert parse_base_url(value) == root


@pytest.mark.parametrize(
    ("config", "url"),
    [
        ({"SERVER_NAME": "host.test"}, "http://host.test"),
        (
            {"SERVER_NAME": "host.test:8443", "PREFERRED_URL_SCHEME": "https"},
            "https://host.test:8443",
        ),
        (
            {
                "SERVER_NAME": "host.test",
                "PREFERRED_URL_SCHEME": "https",
                "APPLICATION_ROOT": "/d/",
            },
            "https://host.test/d",
        ),
    ],
)
def test_server_name_is_accepted_with_its_scheme_and_root(
    config: dict[str, Any], url: str
) -> None:
    app = Flask(__name__)
    app.config.update(config)
    assert link_root(app).url == url


@pytest.mark.parametrize(
    ("config", "why"),
    [
        (
            {"SERVER_NAME": "host.test", "PREFERRED_URL_SCHEME": "ftp"},
            'need PREFERRED_URL_SCHEME "https" or "http"',
        ),
        ({"SERVER_NAME": "https://host.test"}, "make no URL"),
        ({"SERVER_NAME": "host.test", "APPLICATION_ROOT": "desk"}, "make no URL"),
        ({"SERVER_NAME": "host.test:http"}, "has a port that is not a number from 1 to 65535"),
    ],
)
def test_a_server_name_that_makes_no_url_is_refused_at_start_up(
    config: dict[str, Any], why: str
) -> None:
    message = start_up_error(FLASKET_BASE_URL=None, **config)
    assert "which links in e-mails are built from" in message
    assert why in message
    assert "Or set FLASKET_BASE_URL" in message
