"""Every page, in both looks, on a phone and a desktop: accessible, structured, no overflow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser.checks import (
    assert_landmarks,
    assert_no_serious_axe_violations,
    assert_sensible_headings,
    horizontal_overflow,
    unlabelled_controls,
)
from tests.browser.conftest import Visitor
from tests.browser.live import LOOKS, LiveDemo, ticket_id

OPEN_TICKET = "Password reset e-mail never arrives"  # alice's, with replies and a follower
CLOSED_TICKET = "How do I export my posts?"  # alice's, closed by alice
PHONE, DESKTOP = 375, 1280


def submit_empty_form(page: Any) -> None:
    page.get_by_role("button", name="Submit ticket").click()
    page.get_by_role("alert").first.wait_for()


def forge_close(page: Any) -> None:
    """Post the page's own CSRF token to the close action, as a crafted form would."""
    with page.expect_navigation():
        page.evaluate(
            """() => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = location.pathname + '/close';
                form.append(document.querySelector('input[name=csrf_token]').cloneNode());
                document.body.append(form);
                form.submit();
            }"""
        )


@dataclass(frozen=True)
class Screen:
    """A page as a person reaches it: who, where, and what they did there."""

    user: str | None
    path: str
    then: Callable[[Any], None] | None = None
    status: int = 200
    #: Flasket pages exist in both looks; the demo's own pages only in its layout.
    flasket: bool = True


SCREENS = {
    "overview": Screen("alice", "/ticket/"),
    "submit": Screen("alice", "/ticket/submit"),
    "submit-with-errors": Screen("alice", "/ticket/submit", submit_empty_form, status=400),
    "ticket-open": Screen("alice", "/ticket/{open}"),
    "ticket-closed": Screen("alice", "/ticket/{closed}"),
    "ticket-as-other-user": Screen("bob", "/ticket/{open}"),
    "ticket-as-staff": Screen("admin", "/ticket/{open}"),
    "all-one-status": Screen("admin", "/ticket/all?status=waiting"),
    "all": Screen("alice", "/ticket/all"),
    "all-filtered": Screen(
        "alice", "/ticket/all?status=all&application=Website&sort=created&q=password"
    ),
    "all-no-match": Screen("alice", "/ticket/all?status=closed&q=zebra"),
    "all-unknown-author": Screen("alice", "/ticket/all?status=all&author=nobody"),
    "user": Screen("alice", "/ticket/user/alice"),
    "user-following": Screen("alice", "/ticket/user/alice?show=following"),
    "user-replies": Screen("alice", "/ticket/user/alice?show=replies"),
    "user-admin": Screen("admin", "/ticket/user/bob"),
    "error-403": Screen("bob", "/ticket/{open}", forge_close, status=403),
    "error-404": Screen("alice", "/ticket/999999", status=404),
    "demo-home": Screen("alice", "/", flasket=False),
    "demo-home-logged-out": Screen(None, "/", flasket=False),
    "demo-login": Screen(None, "/auth/login", flasket=False),
    "demo-register": Screen(None, "/auth/register", flasket=False),
    "demo-mailbox": Screen("alice", "/mailbox", flasket=False),
    "demo-404": Screen("alice", "/no/such/page", status=404, flasket=False),
}
CASES = [
    pytest.param(look, name, id=f"{look}-{name}")
    for look in LOOKS
    for name, screen in SCREENS.items()
    if screen.flasket or look == "host"
]


def show(visitor: Visitor, demo: LiveDemo, name: str, width: int = DESKTOP) -> Any:
    screen = SCREENS[name]
    page = visitor.page(demo, screen.user, width=width)
    path = screen.path.format(
        open=ticket_id(demo, OPEN_TICKET), closed=ticket_id(demo, CLOSED_TICKET)
    )
    statuses: list[int] = []
    page.on(
        "response",
        lambda r: statuses.append(r.status) if r.request.is_navigation_request() else None,
    )
    page.goto(demo.url + path)
    if screen.then is not None:
        screen.then(page)
    assert statuses[-1] == screen.status, f"{name}: {page.url} answered {statuses[-1]}"
    return page


@pytest.mark.parametrize(("look", "name"), CASES)
def test_page_is_accessible_structured_and_fits_phone_and_desktop(
    visitor: Visitor, demos: dict[str, LiveDemo], look: str, name: str
) -> None:
    page = show(visitor, demos[look], name, width=DESKTOP)
    assert_landmarks(page)
    assert_sensible_headings(page)
    assert unlabelled_controls(page) == []
    assert horizontal_overflow(page) is None, f"{DESKTOP}px wide"
    assert_no_serious_axe_violations(page)
    page.set_viewport_size({"width": PHONE, "height": 800})
    assert horizontal_overflow(page) is None, f"{PHONE}px wide"
    assert_no_serious_axe_violations(page)
