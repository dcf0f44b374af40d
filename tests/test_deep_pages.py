"""Deep pages read their keys from the index first; searches are not counted past the page."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from flasket import pagination
from tests.conftest import Client

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


def test_search_results_say_more_follow_instead_of_counting_them(
    app: Flask, alice: Client
) -> None:
    for n in range(3):
        alice.submit(title=f"Printer number {n}")
    first = alice.get("/ticket/all?q=printer&per_page=2").get_data(as_text=True)
    assert "1\N{EN DASH}2 of more than 2 tickets" in first
    assert 'rel="next"' in first
    last = alice.get("/ticket/all?q=printer&per_page=2&page=2").get_data(as_text=True)
    assert "3\N{EN DASH}3 of 3 tickets" in last
    assert 'rel="next"' not in last
    assert alice.get("/ticket/all?q=printer&per_page=2&page=3").status_code == 404
