"""FLASKET_LOOK = "bootstrap5": Flasket's pages made of Bootstrap 5's own components.

The Bootstrap host of tests/hosts serves Bootstrap from node_modules (never a CDN) and sets
the look. On a desktop and a phone, in Bootstrap's light and dark colour modes, every page is
accessible and fits; its buttons, fields, tables, badges, tabs and pager are Bootstrap's; and
Flasket's own stylesheet gives way to flasket-bootstrap.css, which holds only what Bootstrap
lacks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.checks import (
    assert_landmarks,
    assert_no_serious_axe_violations,
    assert_sensible_headings,
    horizontal_overflow,
    unlabelled_controls,
)
from tests.browser.conftest import Visitor
from tests.browser.live import LiveDemo, missing_tools, serve_host, ticket_id
from tests.browser.test_pages import DESKTOP, PHONE
from tests.hosts import app as hosts

HOST = "bootstrap5"
LOOK = "bootstrap5"
OPEN_TICKET = hosts.TICKETS[0][1]  # alice's, two replies by others
CLOSED_TICKET = hosts.TICKETS[2][1]  # alice's, closed
AUTHOR_REPLIED = hosts.TICKETS[3][1]  # bob's, with a reply of his own
STATIC = "/ticket/static/flasket/"
#: Classes on Flasket's elements that no stylesheet styles: hooks for a host's own CSS.
HOOKS = {
    "flasket",
    "flasket-nav",
    "flasket-ticket",
    "flasket-ticket-header",
    # A history entry and the note form: Bootstrap's utilities style them; the names are
    # there for a host's own rules.
    "flasket-change",
    "flasket-note-form",
}


def submit_empty_form(page: Any) -> None:
    page.get_by_role("button", name="Submit ticket").click()
    page.get_by_role("alert").first.wait_for()


#: name -> (path, what the visitor does there): the pages a person reaches.
PAGES: dict[str, tuple[str, Callable[[Any], None] | None]] = {
    "overview": ("/ticket/", None),
    "all-paged": ("/ticket/all?status=all&per_page=2", None),
    "all-no-match": ("/ticket/all?status=closed&q=zebra", None),
    "ticket-with-replies": ("/ticket/{open}", None),
    "ticket-closed": ("/ticket/{closed}", None),
    "ticket-as-staff": ("/ticket/{open}", None),
    "one-status": ("/ticket/all?status=waiting", None),
    "ticket-author-replied": ("/ticket/{author_replied}", None),
    "submit-with-errors": ("/ticket/submit", submit_empty_form),
    "user": ("/ticket/user/alice", None),
    "user-replies": ("/ticket/user/bob?show=replies", None),
    "not-found": ("/ticket/999999", None),
}
THEMES = ("light", "dark")
SET_THEME = "theme => document.documentElement.setAttribute('data-bs-theme', theme)"
#: The relative luminance (WCAG 2.x) of an element's computed colour or background colour.
LUMINANCE = """([selector, property]) => [...document.querySelectorAll(selector)]
    .filter(el => el.getClientRects().length)
    .map(el => {
        const value = getComputedStyle(el)[property];
        const [r, g, b] = value.match(/[\\d.]+/g).slice(0, 3).map(Number).map(c => {
            c /= 255;
            return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    })"""
#: Every class on an element of Flasket's content, and every class some stylesheet names.
CLASSES = """() => {
    const used = new Set();
    document.querySelectorAll('.flasket, .flasket *').forEach(el => {
        el.classList.forEach(name => used.add(name));
    });
    const styled = new Set();
    const walk = rules => {
        for (const rule of rules) {
            if (rule.selectorText) {
                for (const found of rule.selectorText.matchAll(/\\.(-?[_a-zA-Z][\\w-]*)/g)) {
                    styled.add(found[1]);
                }
            }
            if (rule.cssRules) walk(rule.cssRules);
        }
    };
    for (const sheet of document.styleSheets) walk(sheet.cssRules);
    return [[...used].sort(), [...styled]];
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    """The Bootstrap host with FLASKET_LOOK = "bootstrap5", seeded, for this module."""
    reason = missing_tools() or hosts.missing_files(HOST)
    if reason:
        pytest.skip(reason)
    with serve_host(tmp_path_factory.mktemp("bootstrap-look"), HOST, LOOK) as host:
        yield host


@pytest.fixture
def open_page(visitor: Visitor, site: LiveDemo) -> Callable[..., Any]:
    """``open_page("overview", width=375, theme="dark")``: a page of PAGES, as alice."""

    def open_at(name: str, width: int = DESKTOP, theme: str = "light") -> Any:
        path, then = PAGES[name]
        # Without motion, Bootstrap has no colour transitions: a new theme applies at once.
        user = "admin" if name == "ticket-as-staff" else "alice"
        page = visitor.page(site, user, width=width, reduced_motion="reduce")
        page.goto(
            site.url
            + path.format(
                open=ticket_id(site, OPEN_TICKET),
                closed=ticket_id(site, CLOSED_TICKET),
                author_replied=ticket_id(site, AUTHOR_REPLIED),
            )
        )
        if then is not None:
            then(page)
        page.evaluate(SET_THEME, theme)
        return page

    return open_at


def luminance(page: Any, selector: str, property: str = "backgroundColor") -> list[float]:
    found: list[float] = page.evaluate(LUMINANCE, [selector, property])
    assert found, f"{page.url}: nothing visible matches {selector}"
    return found


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("width", [DESKTOP, PHONE])
@pytest.mark.parametrize("name", list(PAGES))
def test_page_is_accessible_and_fits(
    open_page: Callable[..., Any], name: str, width: int, theme: str
) -> None:
    page = open_page(name, width=width, theme=theme)
    assert_landmarks(page)
    assert_sensible_headings(page)
    assert unlabelled_controls(page) == []
    assert horizontal_overflow(page) is None, f"{width}px wide"
    assert page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    assert_no_serious_axe_violations(page)


@pytest.mark.parametrize("name", list(PAGES))
def test_flaskets_stylesheet_gives_way_to_the_bootstrap_additions(
    open_page: Callable[..., Any], site: LiveDemo, name: str
) -> None:
    page = open_page(name)
    sheets = page.evaluate("[...document.styleSheets].map(s => new URL(s.href).pathname)")
    assert sheets == [
        "/vendor/bootstrap/dist/css/bootstrap.min.css",
        STATIC + "flasket-bootstrap.css",
    ]
    # No second design system: each class is Bootstrap's or the additions', or a bare hook.
    used, styled = page.evaluate(CLASSES)
    assert set(used) - set(styled) <= HOOKS, sorted(set(used) - set(styled))


def test_the_additions_are_small_and_scoped(visitor: Visitor, site: LiveDemo) -> None:
    page = visitor.page(site, "alice")
    page.goto(site.url + "/ticket/")
    selectors: list[str] = page.evaluate(
        """() => {
            const sheet = [...document.styleSheets].find(s => s.href.endsWith('-bootstrap.css'));
            // Split a selector list at its own commas, not those inside :is(...).
            const split = text => text.split(/,(?![^(]*\\))/).map(s => s.trim());
            const walk = rules => [...rules].flatMap(rule => rule.selectorText
                ? split(rule.selectorText) : walk(rule.cssRules || []));
            return walk(sheet.cssRules);
        }"""
    )
    assert 0 < len(selectors) < 40
    scoped = re.compile(r'(\[data-bs-theme="dark"\] )?\.flasket([ :.]|$)')
    assert [selector for selector in selectors if not scoped.match(selector)] == []


def test_controls_are_bootstraps(open_page: Callable[..., Any]) -> None:
    page = open_page("submit-with-errors")
    flasket = page.locator(".flasket")
    assert flasket.locator("button").count() >= 1
    expect(flasket.locator("button:not(.btn)")).to_have_count(0)
    expect(flasket.locator("a.btn.btn-primary", has_text="Submit a ticket")).to_have_count(1)
    fields = flasket.locator("input:not([type=hidden], [type=radio], .form-control)")
    expect(fields).to_have_count(0)
    expect(flasket.locator("input[type=text].form-control")).to_have_count(1)
    expect(flasket.locator("textarea.form-control")).to_have_count(1)
    expect(flasket.locator("select:not(.form-select)")).to_have_count(0)
    expect(flasket.locator(".form-check > input[type=radio].form-check-input")).to_have_count(3)
    expect(flasket.locator(".form-check > label.form-check-label")).to_have_count(3)
    expect(flasket.locator("label:not(.form-label, .form-check-label)")).to_have_count(0)
    expect(flasket.locator("p.alert.alert-danger[role=alert]")).to_be_visible()


def test_field_errors_are_bootstraps_invalid_feedback_tied_to_their_field(
    open_page: Callable[..., Any],
) -> None:
    page = open_page("submit-with-errors")
    for field in ("title", "application", "topic", "body"):
        control = page.locator(f"#{field}")
        expect(control).to_have_class(re.compile(r"(^|\s)is-invalid(\s|$)"))
        expect(control).to_have_attribute("aria-invalid", "true")
        error = page.locator(f"#{field}-error.invalid-feedback")
        expect(error).to_be_visible()
        described = (control.get_attribute("aria-describedby") or "").split()
        assert f"{field}-error" in described, described
    expect(page.locator("#title-hint.form-text")).to_be_visible()
    assert "title-hint" in (page.locator("#title").get_attribute("aria-describedby") or "")


def test_lists_use_bootstraps_tables_badges_tabs_and_pagination(
    open_page: Callable[..., Any], site: LiveDemo
) -> None:
    page = open_page("all-paged")
    expect(page.locator(".flasket table.table.table-hover")).to_have_count(1)
    expect(page.locator(".flasket .badge.text-bg-success").first).to_contain_text("Open")
    tabs = page.locator(".flasket ul.nav.nav-tabs")
    expect(tabs.locator("a.nav-link")).to_have_count(3)
    expect(tabs.locator("a.nav-link.active[aria-current=page]")).to_have_text("All")
    pager = page.locator(".flasket nav ul.pagination")
    expect(pager.locator("a.page-link[rel=next]")).to_be_visible()
    expect(pager.locator(".page-item.disabled")).to_have_text("← Previous")
    expect(pager.locator(".page-item.active [aria-current=page]")).to_contain_text("Page 1 of 3")
    expect(page.locator(".flasket form[role=search] .row.g-3 .form-select")).to_have_count(5)
    expect(page.locator(".flasket .nav.nav-pills a.nav-link.active")).to_have_text(
        "Browse tickets"
    )
    page.goto(site.url + "/ticket/user/alice")
    expect(page.locator(".flasket .nav-tabs a.active .badge")).to_have_text("2")
    page.goto(site.url + "/ticket/")
    expect(page.locator(".flasket ul.row .card")).to_have_count(4)
    expect(page.locator(".flasket .badge.text-bg-secondary").first).to_contain_text("Closed")


def test_a_ticket_and_its_replies_are_cards(open_page: Callable[..., Any]) -> None:
    page = open_page("ticket-author-replied")
    cards = page.locator(".flasket .card")
    expect(cards).to_have_count(4)  # the description and three replies
    expect(cards.locator("> .card-header")).to_have_count(4)
    expect(cards.locator("> .card-body")).to_have_count(4)
    by_author = page.locator(".flasket li.card.border-primary")
    expect(by_author).to_have_count(1)
    expect(by_author.locator(".card-header .badge")).to_have_text("author")
    expect(page.locator(".flasket .btn.btn-outline-secondary", has_text="Follow")).to_be_visible()
    body = page.locator(".flasket .card-body").first
    assert body.evaluate("el => getComputedStyle(el).whiteSpace") == "pre-wrap"


def test_headings_keep_bootstraps_sizes(open_page: Callable[..., Any]) -> None:
    page = open_page("overview")
    sizes = page.evaluate(
        """() => ['h1', 'h2'].map(tag => {
            const probe = document.createElement(tag);
            document.querySelector('main').append(probe);
            const own = getComputedStyle(probe).fontSize;
            probe.remove();
            return [own, getComputedStyle(document.querySelector(`.flasket ${tag}`)).fontSize];
        })"""
    )
    for own, flaskets in sizes:
        assert flaskets == own


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_ticket_tables_become_cards_on_a_phone(open_page: Callable[..., Any], width: int) -> None:
    page = open_page("overview", width=width)
    row = page.locator(".flasket-tickets tbody tr").first
    header = page.locator(".flasket-tickets thead").first
    if width == PHONE:
        assert row.evaluate("el => getComputedStyle(el).display") == "block"
        assert header.evaluate("el => el.getBoundingClientRect().height") <= 1
        label = row.locator("td").nth(1).evaluate("el => getComputedStyle(el, '::before').content")
        assert label == '"Status: "'
    else:
        assert row.evaluate("el => getComputedStyle(el).display") == "table-row"
        expect(header).to_be_visible()


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
@pytest.mark.parametrize("name", ["overview", "ticket-with-replies", "all-paged"])
def test_the_bootstrap_look_follows_the_dark_colour_mode(
    open_page: Callable[..., Any], name: str, width: int
) -> None:
    page = open_page(name, width=width, theme="dark")
    assert max(luminance(page, "body")) < 0.05
    assert min(luminance(page, ".flasket h1", "color")) > 0.6
    surfaces = ".flasket-tickets td" if name != "ticket-with-replies" else ".flasket .card"
    if width == PHONE and name != "ticket-with-replies":
        surfaces = ".flasket-tickets tr"
    assert max(luminance(page, surfaces)) < 0.05, surfaces
    assert min(luminance(page, f"{surfaces} *:not(a, .badge, .badge *)", "color")) > 0.3
    page.evaluate(SET_THEME, "light")
    assert min(luminance(page, "body")) > 0.9
    assert min(luminance(page, surfaces)) > 0.9


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_right_to_left_the_additions_mirror_with_the_page(
    open_page: Callable[..., Any], site: LiveDemo, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setitem(site.app.config, "FLASKET_DEFAULT_LOCALE", "ar")
    page = open_page("overview", width=width)
    page.goto(site.url + "/ticket/submit")
    expect(page.locator(".flasket[dir=rtl]")).to_have_count(1)
    assert horizontal_overflow(page) is None
    # A radio button before (right of) its label; "Submit a ticket" at the end (left).
    radio = page.locator(".form-check-input").first.bounding_box()
    label = page.locator(".form-check-label").first.bounding_box()
    assert radio["x"] >= label["x"] + label["width"] - 0.5, (radio, label)
    end = page.locator(".flasket-nav-end").bounding_box()
    first = page.locator(".flasket-nav .nav-item").first.bounding_box()
    assert end["x"] < first["x"]
    assert_no_serious_axe_violations(page)


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_right_to_left_lists_start_at_the_right_edge(
    open_page: Callable[..., Any], site: LiveDemo, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """Bootstrap's left-to-right build clears only the left padding: no indent on the right."""
    monkeypatch.setitem(site.app.config, "FLASKET_DEFAULT_LOCALE", "ar")
    page = open_page("overview", width=width)
    for selector in (".flasket-nav .nav", ".flasket .list-unstyled"):
        lists = page.locator(selector)
        for index in range(lists.count()):
            padding = lists.nth(index).evaluate(
                "el => parseFloat(getComputedStyle(el).paddingRight)"
            )
            assert padding == 0, (selector, index, padding)
