"""Every error under the prefix gets Flasket's page with the right code; elsewhere the host's."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.helpers import Client, text

FLASKET_PAGE = '<div class="flasket" lang="en" dir="ltr">'
HOST_HANDLED = "the host's own error page"
#: Which error page answers cannot differ by database; the lookups behind the 404s run on every
#: backend in tests/test_bad_input.py and tests/test_pages.py.
pytestmark = pytest.mark.one_database


@pytest.fixture(params=["host without handlers", "host with its own handlers"])
def host(app: Flask, request: pytest.FixtureRequest) -> Flask:
    """The test host, with or without error pages of its own (404, 405, 400, 413)."""
    if request.param == "host with its own handlers":
        for code in (400, 404, 405, 413):
            app.register_error_handler(code, lambda error: (HOST_HANDLED, error.code))
    return app


@pytest.fixture
def person(host: Flask) -> Client:
    return Client(host, "alice")


@pytest.fixture
def ticket(person: Client) -> int:
    return person.submit()


@pytest.mark.parametrize(
    ("method", "url", "code", "message"),
    [
        ("GET", "/ticket/nope", 404, "That page does not exist."),
        ("GET", "/ticket/nope/deeper/", 404, "That page does not exist."),
        ("GET", "/ticket/{id}/close/extra", 404, "That page does not exist."),
        ("GET", "/ticket/99999", 404, "There is no ticket #99999."),
        ("GET", "/ticket/user/nobody", 404, "There is no such user."),
        ("GET", "/ticket/all?page=9", 404, "There is no page 9 of this list."),
        ("GET", "/ticket/{id}?page=9", 404, "Ticket #{id} has no page 9 of replies."),
        ("GET", "/ticket/{id}/close", 405, "That action is not available here."),
        ("DELETE", "/ticket/all", 405, "That action is not available here."),
        ("POST", "/ticket/all", 405, "That action is not available here."),
        (
            "GET",
            "/ticket/all?status=deleted",
            400,
            "“status” must be one of: open, closed, all, waiting.",
        ),
    ],
)
def test_every_error_under_the_prefix_is_flaskets_page_with_its_code(
    person: Client, ticket: int, method: str, url: str, code: int, message: str
) -> None:
    response = person.http.open(url.format(id=ticket), method=method)

    assert response.status_code == code
    page = text(response)
    assert FLASKET_PAGE in page
    assert message.format(id=ticket) in page
    assert HOST_HANDLED not in page
    if code == 405:
        assert method not in response.headers["Allow"]


def test_a_get_on_a_button_route_names_the_allowed_method(person: Client, ticket: int) -> None:
    response = person.get(f"/ticket/{ticket}/close")

    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert FLASKET_PAGE in text(response)


def test_an_oversized_post_is_flaskets_413_page(person: Client) -> None:
    body = "x" * 600_000
    response = person.post("/ticket/submit", {"title": "Big", "body": body})

    assert response.status_code == 413
    assert "What you sent is too large. Shorten it and try again." in text(response)
    assert HOST_HANDLED not in text(response)


def test_a_stale_button_token_is_flaskets_400_page(person: Client, ticket: int) -> None:
    response = person.post(f"/ticket/{ticket}/close", {"csrf_token": "stale"}, csrf=False)

    assert response.status_code == 400
    assert FLASKET_PAGE in text(response)
    assert HOST_HANDLED not in text(response)


@pytest.mark.parametrize("url", ["/nope", "/ticketing", "/ticket-desk/1", "/static-x/ticket/1"])
def test_errors_outside_the_prefix_stay_the_hosts(host: Flask, person: Client, url: str) -> None:
    response = person.get(url)

    assert response.status_code == 404
    assert FLASKET_PAGE not in text(response)
    if host.error_handler_spec[None].get(404):
        assert text(response) == HOST_HANDLED


def test_a_method_the_hosts_own_page_refuses_stays_the_hosts(host: Flask, person: Client) -> None:
    response = person.http.delete("/login")

    assert response.status_code == 405
    assert FLASKET_PAGE not in text(response)


def test_the_prefix_without_its_slash_still_redirects(person: Client) -> None:
    response = person.get("/ticket")

    assert response.status_code == 308
    assert response.headers["Location"].endswith("/ticket/")


def test_a_visitor_who_is_not_logged_in_gets_the_page_without_the_ticket_menu(
    host: Flask,
) -> None:
    response = host.test_client().get("/ticket/nope")

    assert response.status_code == 404
    page = text(response)
    assert FLASKET_PAGE in page
    assert "That page does not exist." in page
    assert '<nav class="flasket-nav"' not in page


@pytest.mark.parametrize("app_config", [{"FLASKET_URL_PREFIX": "/help/desk"}])
def test_another_prefix_is_honoured(host: Flask, person: Client) -> None:
    inside = person.get("/help/desk/nope")
    outside = person.get("/help/nope")

    assert inside.status_code == outside.status_code == 404
    assert FLASKET_PAGE in text(inside)
    assert FLASKET_PAGE not in text(outside)
