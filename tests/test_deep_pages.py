"""Deep pages read their keys from the index first; searches are not counted past the page."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from flasket import pagination, queries
from tests.helpers import Client

LINK = re.compile(r'class="flasket-ticket-link" href="/ticket/(\d+)"')


def listed(client: Client, url: str) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200, url
    return [int(n) for n in LINK.findall(response.get_data(as_text=True))]


@pytest.mark.parametrize("sort", ["updated", "created", "oldest"])
def test_a_deep_page_lists_the_same_tickets_as_a_plain_offset(
    app: Flask, alice: Client, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    for n in range(7):
        alice.submit(title=f"Printer number {n}")
    urls = [f"/ticket/all?status=all&sort={sort}&per_page=2&page={p}" for p in (1, 2, 3, 4)]
    plain = [listed(alice, url) for url in urls]
    monkeypatch.setattr(pagination, "DEFERRED_JOIN_OFFSET", 0)
    assert [listed(alice, url) for url in urls] == plain
    every = [ticket for page in plain for ticket in page]
    assert len(every) == len(set(every)) == 7


@pytest.mark.parametrize("tab", ["tickets", "following"])
def test_a_deep_page_of_a_user_tab_lists_the_same_tickets_as_a_plain_offset(
    app: Flask, alice: Client, bob: Client, monkeypatch: pytest.MonkeyPatch, tab: str
) -> None:
    for n in range(7):
        ticket_id = bob.submit(title=f"Printer number {n}")
        if n % 3:
            assert alice.post(f"/ticket/{ticket_id}/follow").status_code == 303
        alice.submit(title=f"Scanner number {n}")
    pages = 4 if tab == "tickets" else 6
    urls = [f"/ticket/user/1?show={tab}&per_page=2&page={p}" for p in range(1, pages + 1)]
    plain = [listed(alice, url) for url in urls]
    monkeypatch.setattr(pagination, "DEFERRED_JOIN_OFFSET", 0)
    assert [listed(alice, url) for url in urls] == plain
    every = [ticket for page in plain for ticket in page]
    assert len(every) == len(set(every)) == (7 if tab == "tickets" else 11)
    if tab == "following":
        assert every == sorted(every, reverse=True)


def test_search_results_say_more_follow_instead_of_counting_them(
    app: Flask, alice: Client
) -> None:
    for n in range(3):
        alice.submit(title=f"Printer number {n}")
    first = alice.get("/ticket/all?q=printer&per_page=2").get_data(as_text=True)
    assert "1\N{EN DASH}2 of more than 2 open tickets" in first
    assert 'rel="next"' in first
    last = alice.get("/ticket/all?q=printer&per_page=2&page=2").get_data(as_text=True)
    assert "3\N{EN DASH}3 of 3 open tickets" in last
    assert 'rel="next"' not in last
    assert alice.get("/ticket/all?q=printer&per_page=2&page=3").status_code == 404


def test_counts_stop_at_their_caps_and_the_list_still_pages_on(
    app: Flask, alice: Client, bob: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everyone's lists count to COUNT_CAP, one person's to PERSONAL_COUNT_CAP."""
    monkeypatch.setattr(queries, "COUNT_CAP", 5)
    monkeypatch.setattr(queries, "PERSONAL_COUNT_CAP", 3)
    for n in range(4):
        alice.submit(title=f"Printer number {n}")
        bob.submit(title=f"Scanner number {n}")

    everyone = alice.get("/ticket/all?per_page=2").get_data(as_text=True)
    assert "1\N{EN DASH}2 of more than 5 open tickets" in everyone
    assert "Page 1 of 3+" in everyone
    assert len(listed(alice, "/ticket/all?per_page=2&page=4")) == 2
    assert alice.get("/ticket/all?per_page=2&page=5").status_code == 404

    mine = alice.get("/ticket/all?author=alice&per_page=2").get_data(as_text=True)
    assert "1\N{EN DASH}2 of more than 3 open tickets" in mine
    assert len(listed(alice, "/ticket/all?author=alice&per_page=2&page=2")) == 2
    assert alice.get("/ticket/all?author=alice&per_page=2&page=3").status_code == 404

    overview = alice.get("/ticket/").get_data(as_text=True)
    assert "<strong>5+</strong> open" in overview
    assert "<strong>3+</strong> of mine open" in overview
    assert "<strong>3+</strong> followed" in overview

    for tab, listed_as in (("tickets", "submitted"), ("following", "followed")):
        page = alice.get(f"/ticket/user/1?show={tab}&per_page=2").get_data(as_text=True)
        assert f"1\N{EN DASH}2 of more than 3 {listed_as} tickets" in page, tab
        assert page.count('<span class="flasket-tab-count">3+</span>') == 2, tab
        assert len(listed(alice, f"/ticket/user/1?show={tab}&per_page=2&page=2")) == 2


def test_category_filters_count_to_their_caps(
    app: Flask, alice: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One category counts to JOINED_COUNT_CAP; two or more, intersected, to a lower cap."""
    monkeypatch.setattr(queries, "JOINED_COUNT_CAP", 4)
    monkeypatch.setattr(queries, "INTERSECTED_COUNT_CAP", 2)
    for n in range(5):
        alice.submit(title=f"Printer number {n}", application="API", topic="Account")
    alice.submit(title="Scanner", application="API", topic="Question")

    one = alice.get("/ticket/all?application=API&per_page=2").get_data(as_text=True)
    assert "1\N{EN DASH}2 of more than 4 open tickets" in one
    two = "/ticket/all?application=API&topic=Account&per_page=2"
    assert "1\N{EN DASH}2 of more than 2 open tickets" in alice.get(two).get_data(as_text=True)
    pages = [listed(alice, f"{two}&page={page}") for page in (1, 2, 3)]
    assert sorted(ticket for page in pages for ticket in page) == list(range(1, 6))
    assert alice.get(f"{two}&page=4").status_code == 404
    monkeypatch.setattr(queries, "INTERSECTED_COUNT_CAP", 250)
    assert "1\N{EN DASH}2 of 5 open tickets" in alice.get(two).get_data(as_text=True)


def test_assignee_filters_count_to_the_queues_cap(
    app: Flask, alice: Client, admin: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One assignee's tickets and nobody's are the queues' lists by another name: they count
    to QUEUE_COUNT_CAP, not to COUNT_CAP."""
    monkeypatch.setattr(queries, "QUEUE_COUNT_CAP", 3)
    monkeypatch.setattr(queries, "COUNT_CAP", 100)
    for n in range(5):
        alice.submit(title=f"Printer number {n}")
    for url in ("/ticket/all?assignee=none&per_page=2", "/ticket/all?queue=unassigned&per_page=2"):
        assert "1\N{EN DASH}2 of more than 3 " in admin.get(url).get_data(as_text=True), url
    assert "1\N{EN DASH}2 of 5 open tickets" in admin.get("/ticket/all?per_page=2").get_data(
        as_text=True
    )
    pages = [listed(admin, f"/ticket/all?assignee=none&per_page=2&page={n}") for n in (1, 2, 3)]
    assert sorted(ticket for page in pages for ticket in page) == list(range(1, 6))
