"""Links built from the request (pagers, tabs, filters, redirects) carry only what Flasket reads.

A query parameter Flasket does not read is ignored: never copied into a link, never passed to
``url_for`` (to which ``endpoint``, ``_external``, ``_scheme``, ``_anchor`` and ``_method``
mean something), never echoed back. One it reads but cannot use is a 400 with a message.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from flask import Flask

from tests.helpers import Client

#: Names url_for or the routes give a meaning to, and names nobody reads.
FOREIGN_NAMES = [
    "endpoint",
    "_external",
    "_scheme",
    "_anchor",
    "_method",
    "values",
    "name",
    "ticket_id",
    "token",
    "utm_source",
]
#: What each page reads, for a test that no other name shows up in its links.
KNOWN = {
    "/ticket/all": {"q", "status", "sort", "author", "page", "per_page", "urgency"},
    "/ticket/user/1": {"show", "page", "per_page"},
    "ticket": {"page"},
}
HREF = re.compile(r'href="([^"]+)"')
HUGE = "x" * 100_000


@pytest.fixture
def app_config() -> dict[str, Any]:
    # One reply a page, so a ticket with two replies has a pager too.
    return {"FLASKET_REPLIES_PER_PAGE": 1}


@pytest.fixture
def ticket_id(alice: Client) -> int:
    """Alice's tickets fill two pages of every list at per_page=1; the last has two replies."""
    alice.submit("First ticket")
    found = alice.submit("Second ticket")
    for body in ("One reply", "Another reply"):
        assert alice.reply(found, body).status_code == 303
    return found


def page_links(response: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every link of the page under /ticket (not its CSS), as (path, query pairs)."""
    links = []
    for href in HREF.findall(response.get_data(as_text=True)):
        url = urlsplit(html.unescape(href))
        if url.path.startswith("/ticket") and "/static/" not in url.path:
            links.append((url.path, parse_qsl(url.query, keep_blank_values=True)))
    return links


def pages(ticket_id: int) -> dict[str, str]:
    return {
        "/ticket/all": "/ticket/all?per_page=1&status=all&q=ticket&urgency=High",
        "/ticket/user/1": "/ticket/user/1?per_page=1&show=tickets",
        "ticket": f"/ticket/{ticket_id}?page=1",
    }


@pytest.mark.parametrize("name", FOREIGN_NAMES)
@pytest.mark.parametrize("page", list(KNOWN))
def test_a_parameter_flasket_does_not_read_is_ignored_and_never_copied_into_a_link(
    alice: Client, ticket_id: int, page: str, name: str
) -> None:
    url = pages(ticket_id)[page]
    for value in ("x", "1", "POST", "javascript", ""):
        response = alice.get(f"{url}&{name}={value}")

        assert response.status_code == 200, (name, value)
        links = page_links(response)
        assert any(("page", "2") in query for _, query in links), "the page has no pager"
        for path, query in links:
            assert {key for key, _ in query} <= KNOWN[page] | {"show", "status", "author"}, path
            assert path.startswith("/ticket"), path


def test_the_pager_keeps_every_filter_the_list_read(alice: Client, ticket_id: int) -> None:
    response = alice.get("/ticket/all?q=ticket&status=all&sort=created&per_page=1&endpoint=x")

    next_link = re.search(r'<a rel="next" href="([^"]+)"', response.get_data(as_text=True))
    assert next_link
    url = urlsplit(html.unescape(next_link.group(1)))
    assert url.path == "/ticket/all"
    assert dict(parse_qsl(url.query)) == {
        "status": "all",
        "q": "ticket",
        "sort": "created",
        "per_page": "1",
        "page": "2",
    }


def test_the_status_tabs_keep_the_filters_and_drop_everything_else(
    alice: Client, ticket_id: int
) -> None:
    response = alice.get("/ticket/all?q=ticket&per_page=1&page=2&_anchor=x&_external=1")

    tabs = [
        dict(query)
        for path, query in page_links(response)
        if path == "/ticket/all" and ("status", "closed") in query
    ]
    assert tabs == [{"status": "closed", "q": "ticket", "per_page": "1"}]


def test_the_user_tabs_keep_per_page_and_drop_everything_else(
    alice: Client, ticket_id: int
) -> None:
    response = alice.get("/ticket/user/1?per_page=1&page=2&endpoint=x&_method=POST")

    tabs = re.findall(
        r'<li><a href="([^"]+)"[^>]*>(?:Submitted|Following|Replies) ', response.get_data(True)
    )
    assert [html.unescape(tab) for tab in tabs] == [
        "/ticket/user/1?per_page=1",
        "/ticket/user/1?show=following&per_page=1",
        "/ticket/user/1?show=replies&per_page=1",
    ]


@pytest.mark.parametrize("name", FOREIGN_NAMES)
def test_a_user_name_in_another_case_redirects_with_only_the_parameters_flasket_read(
    alice: Client, ticket_id: int, name: str
) -> None:
    response = alice.get(f"/ticket/user/ALICE?show=following&per_page=1&{name}=x")

    assert response.status_code == 302
    assert response.headers["Location"] == "/ticket/user/1?show=following&per_page=1"


def test_a_user_name_in_another_case_with_a_bad_parameter_is_400_not_a_redirect(
    alice: Client, ticket_id: int
) -> None:
    response = alice.get("/ticket/user/ALICE?per_page=1000")

    assert response.status_code == 400
    assert "“per_page” must be a whole number from 1 to 100." in response.get_data(True)


@pytest.mark.one_database
@pytest.mark.parametrize("url", ["/ticket/", "/ticket/index", "/ticket/submit"])
@pytest.mark.parametrize("name", FOREIGN_NAMES)
def test_pages_without_parameters_ignore_any_parameter(
    alice: Client, ticket_id: int, url: str, name: str
) -> None:
    response = alice.get(f"{url}?{name}=x&page=2&per_page=1")

    assert response.status_code == 200
    for path, query in page_links(response):
        assert name not in dict(query), path


@pytest.mark.one_database
@pytest.mark.parametrize(
    "query",
    ["per_page=1&per_page=2", "status=all&status=open", "endpoint=x&endpoint=y", "q=a&q=b"],
)
def test_a_repeated_parameter_is_400_with_a_message(
    alice: Client, ticket_id: int, query: str
) -> None:
    response = alice.get(f"/ticket/all?{query}")

    assert response.status_code == 400
    name = query.partition("=")[0]
    assert f"The parameter “{name}” was given more than once." in response.get_data(True)


@pytest.mark.parametrize("page", ["/ticket/all", "/ticket/user/1", "ticket", "/ticket/"])
def test_an_unknown_parameter_with_a_huge_value_is_ignored_and_not_echoed(
    alice: Client, ticket_id: int, page: str
) -> None:
    url = pages(ticket_id).get(page, page + "?")

    response = alice.get(f"{url}&endpoint={HUGE}")

    assert response.status_code == 200
    assert HUGE[:1000] not in response.get_data(True)


@pytest.mark.one_database
@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/ticket/all?q=", "q"),
        ("/ticket/all?author=", "author"),
        ("/ticket/all?status=", "status"),
        ("/ticket/all?sort=", "sort"),
        ("/ticket/all?urgency=", "urgency"),
        ("/ticket/all?per_page=", "per_page"),
        ("/ticket/all?page=", "page"),
        ("/ticket/user/1?show=", "show"),
        ("/ticket/user/1?page=", "page"),
        ("/ticket/{id}?page=", "page"),
    ],
)
def test_a_known_parameter_with_a_huge_value_is_400_and_not_echoed(
    alice: Client, ticket_id: int, url: str, name: str
) -> None:
    response = alice.get(url.format(id=ticket_id) + HUGE)

    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert f"“{name}”" in body
    assert HUGE[:1000] not in body
    assert len(body) < 20_000


def test_an_unknown_user_with_a_huge_name_is_404_and_the_name_not_echoed(
    alice: Client, ticket_id: int
) -> None:
    response = alice.get(f"/ticket/user/{HUGE}")

    assert response.status_code == 404
    assert "There is no such user." in response.get_data(True)
    assert HUGE[:1000] not in response.get_data(True)


def test_an_unknown_user_is_not_echoed_either(alice: Client, ticket_id: int) -> None:
    response = alice.get(f"/ticket/user/{quote('nobody here')}")

    assert response.status_code == 404
    assert "There is no such user." in response.get_data(True)
    assert "nobody here" not in response.get_data(True)


def test_a_reply_page_link_keeps_only_the_page(app: Flask, alice: Client, ticket_id: int) -> None:
    response = alice.get(f"/ticket/{ticket_id}?_anchor=x&endpoint=y&per_page=1")

    prev_or_next = re.findall(r'<a rel="(?:next|prev)" href="([^"]+)"', response.get_data(True))
    assert [html.unescape(link) for link in prev_or_next] == [f"/ticket/{ticket_id}?page=2"]
