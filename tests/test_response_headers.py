"""Flasket's responses carry protective headers; the host's pages and headers stay the host's."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response

from flasket import queries, unfollow
from flasket.config import ConfigError, parse_response_headers
from tests.helpers import Client, ext_models, rows
from tests.hostapp import create_app

#: Response headers cannot differ by database; the pages behind them run on every backend
#: elsewhere.
pytestmark = pytest.mark.one_database

DEFAULTS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
}


def protective(response: Any) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in DEFAULTS}


def header_lines(response: Any, name: str) -> list[str]:
    return response.headers.getlist(name)  # type: ignore[no-any-return]


@pytest.fixture
def ticket_id(alice: Client) -> int:
    return alice.submit("Printer is on fire")


def unfollow_url(app: Flask, ticket_id: int, username: str) -> str:
    models = ext_models(app)
    ticket = rows(app, models.Ticket, id=ticket_id)[0]
    user_id = next(user.id for user in rows(app, models.user) if user.username == username)
    with app.app_context():
        return f"/ticket/unfollow/{unfollow.make_token(ticket.mail_key, user_id)}"


GET_PAGES = [
    "/ticket/",
    "/ticket/index",
    "/ticket/submit",
    "/ticket/{id}",
    "/ticket/all",
    "/ticket/user/1",
    "/ticket/user/ALICE",
    "/ticket/99999",
    "/ticket/all?page=abc",
    "/ticket/no-such-page",
    "/ticket/{id}/close",
]


@pytest.mark.parametrize("url", GET_PAGES)
def test_every_flasket_page_of_a_logged_in_user_has_the_protective_headers(
    alice: Client, ticket_id: int, url: str
) -> None:
    response = alice.get(url.format(id=ticket_id))

    assert protective(response) == DEFAULTS, response.status


def test_redirects_and_refusals_after_a_post_have_the_protective_headers(
    alice: Client, bob: Client, ticket_id: int
) -> None:
    responses = {
        "reply": alice.reply(ticket_id, "More smoke"),
        "follow": bob.post(f"/ticket/{ticket_id}/follow"),
        "empty reply": alice.reply(ticket_id, ""),
        "expired token": alice.post(f"/ticket/{ticket_id}/close", {"csrf_token": "stale"}),
        "json body": alice.http.post("/ticket/submit", json={"title": 1}),
    }

    statuses = {name: response.status_code for name, response in responses.items()}
    assert statuses == {
        "reply": 303,
        "follow": 303,
        "empty reply": 400,
        "expired token": 400,
        "json body": 415,
    }
    for name, response in responses.items():
        assert protective(response) == DEFAULTS, name


def test_the_unfollow_link_pages_have_the_protective_headers(
    app: Flask, alice: Client, ticket_id: int
) -> None:
    url = unfollow_url(app, ticket_id, "alice")
    anonymous = app.test_client()

    for response in (
        anonymous.get(url),
        anonymous.post(url),
        anonymous.get("/ticket/unfollow/not-a-token"),
    ):
        assert protective(response) == DEFAULTS


def test_the_log_in_redirect_of_a_ticket_page_has_the_protective_headers(
    app: Flask, ticket_id: int
) -> None:
    response = app.test_client().get(f"/ticket/{ticket_id}")

    assert response.status_code == 302
    assert protective(response) == DEFAULTS


def test_the_hosts_own_pages_get_none_of_them(app: Flask, alice: Client) -> None:
    for response in (alice.get("/"), alice.get("/login"), alice.get("/no-such-host-page")):
        assert protective(response) == dict.fromkeys(DEFAULTS), response.request.path


def test_flaskets_css_keeps_flasks_caching(alice: Client) -> None:
    with alice.get("/ticket/static/flasket/flasket.css") as response:
        assert response.status_code == 200
        assert "no-store" not in (response.headers.get("Cache-Control") or "")
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "FLASKET_RESPONSE_HEADERS": {
                "x-frame-options": None,
                "Content-Security-Policy": "frame-ancestors 'self' https://intranet.test",
                "cache-control": "no-store",
            }
        }
    ],
    indirect=True,
)
def test_the_setting_is_merged_over_the_defaults(alice: Client, ticket_id: int) -> None:
    response = alice.get(f"/ticket/{ticket_id}")

    assert "X-Frame-Options" not in response.headers
    assert header_lines(response, "Cache-Control") == ["no-store"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == (
        "frame-ancestors 'self' https://intranet.test"
    )


@pytest.mark.parametrize("app_config", [{"FLASKET_RESPONSE_HEADERS": False}], indirect=True)
def test_false_sends_none_of_them(alice: Client, ticket_id: int) -> None:
    response = alice.get(f"/ticket/{ticket_id}")

    assert protective(response) == dict.fromkeys(DEFAULTS)


def test_a_header_the_hosts_after_request_sets_wins(app: Flask) -> None:
    @app.after_request
    def deny_framing(response: Response) -> Response:
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-cache"
        return response

    alice = Client(app, "alice")
    response = alice.get(f"/ticket/{alice.submit()}")

    assert header_lines(response, "X-Frame-Options") == ["DENY"]
    assert header_lines(response, "Cache-Control") == ["no-cache"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_header_the_response_already_has_is_kept(app: Flask) -> None:
    """Flasket adds headers; it never replaces one (here, set by a host's 500 on a Flasket URL)."""

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int, dict[str, str]]:
        return "host's 500 page", 500, {"X-Frame-Options": "DENY"}

    app.config["PROPAGATE_EXCEPTIONS"] = False
    alice = Client(app, "alice")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(queries, "index_counts", broken)
        response = alice.get("/ticket/")

    assert response.status_code == 500
    assert header_lines(response, "X-Frame-Options") == ["DENY"]
    assert response.headers["Cache-Control"] == "private, no-store"


def test_a_host_using_flask_talisman_keeps_its_headers(app: Flask) -> None:
    talisman = pytest.importorskip("flask_talisman")
    talisman.Talisman(
        app,
        force_https=False,
        frame_options="DENY",
        content_security_policy={"default-src": "'self'"},
    )
    alice = Client(app, "alice")

    page = alice.get(f"/ticket/{alice.submit()}")
    host = alice.get("/")

    assert header_lines(page, "X-Frame-Options") == ["DENY"]
    assert header_lines(page, "X-Content-Type-Options") == ["nosniff"]
    assert header_lines(page, "Content-Security-Policy") == ["default-src 'self'"]
    assert header_lines(page, "Cache-Control") == ["private, no-store"]
    assert "Cache-Control" not in host.headers


# The setting itself: checked at start-up


def test_the_defaults() -> None:
    assert parse_response_headers({}) == DEFAULTS
    assert parse_response_headers(False) == {}
    assert parse_response_headers({"X-Frame-Options": "DENY"}) == {
        **DEFAULTS,
        "X-Frame-Options": "DENY",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "FLASKET_RESPONSE_HEADERS must be a dict"),
        (None, "FLASKET_RESPONSE_HEADERS must be a dict"),
        ([("X-Frame-Options", "DENY")], "FLASKET_RESPONSE_HEADERS must be a dict"),
        ({"X Frame": "DENY"}, "'X Frame' is not a header name"),
        ({"": "DENY"}, "'' is not a header name"),
        ({1: "DENY"}, "1 is not a header name"),
        ({"X-Frame-Options": "DENY\r\nSet-Cookie: a=b"}, "the value of X-Frame-Options"),
        ({"X-Frame-Options": 1}, "the value of X-Frame-Options"),
        ({"X-Frame-Options": False}, "the value of X-Frame-Options"),
        ({"Content-Security-Policy": "frame-ancestors \u2018self\u2019"}, "line of ASCII text"),
    ],
)
def test_a_setting_flasket_cannot_use_stops_the_app_at_start_up(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        create_app(FLASKET_BASE_URL="https://example.test", FLASKET_RESPONSE_HEADERS=value)
