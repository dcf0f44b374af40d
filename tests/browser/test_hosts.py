"""Flasket inside hosts unlike the demo: Bootstrap 5, a classless stylesheet, none at all.

Each host (tests/hosts) is a small Flask app with its own base.html; the demo is the fourth.
Whatever the host's CSS does to bare elements (legend, fieldset, buttons, selects, nav, tables),
the host's <title> names the Flasket page and Flasket's components keep their own layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.checks import broken_text, clipped_selects, horizontal_overflow, sticking_out
from tests.browser.conftest import Visitor
from tests.browser.live import LiveDemo, missing_tools, serve_host, ticket_id
from tests.browser.test_pages import DESKTOP, OPEN_TICKET, PHONE
from tests.hosts import app as hosts

TABLET = 768
SITES = (*hosts.LOOKS, "demo")
#: The demo's look is "host": its own layout (tests/browser/live.py).
DEMO_LOOK = "host"
#: How each host's <title> wears a Flasket page title ("Overview · Tickets").
TITLES = {
    "bootstrap5": "{} - Acme",  # <title>{% if title %}{{ title }} - Acme{% else %}...
    "classless": "{} | Acme",  # <title>{% block title %}Home{% endblock %} | Acme</title>
    "plain": "{}",  # <title>{{ title }}</title>
    DEMO_LOOK: "{} · Microblog",  # <title>{% block title %}...{% endblock %} · Microblog</title>
}
#: The <title> of each host's own home page: Flasket's title does not leak into it.
HOME_TITLES = {"bootstrap5": "Home - Acme", "classless": "Home | Acme", "plain": "Home"}
#: A seeded open ticket with replies, by site.
TICKETS = {DEMO_LOOK: OPEN_TICKET, **dict.fromkeys(hosts.LOOKS, hosts.TICKETS[0][1])}
#: A list page long enough to show the pager.
PAGED_LIST = "/ticket/all?status=all&per_page=2"
#: Properties host CSS commonly sets on bare elements, which Flasket's components hold.
HELD = (
    "display",
    "float",
    "box-sizing",
    "white-space",
    "font-size",
    "line-height",
    "margin-top",
    "margin-bottom",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border-top-width",
    "border-bottom-width",
    "min-width",
    "min-height",
    "height",
    "text-transform",
    "letter-spacing",
    "appearance",
    "list-style-type",
)
#: Flasket's components on each page, checked in every host against the same page without
#: the host's stylesheets.
COMPONENTS = {
    "/ticket/": (
        ".flasket-nav ul",
        ".flasket-nav li",
        ".flasket-nav a",
        ".flasket-button",
        ".flasket h1",
        ".flasket h2",
        ".flasket-counts",
        ".flasket-counts a",
        ".flasket-counts strong",
        ".flasket-tickets",
        ".flasket-tickets th",
        ".flasket-tickets td",
        ".flasket-tags",
        ".flasket-tags li",
        ".flasket-status",
    ),
    "/ticket/submit": (
        ".flasket-field",
        ".flasket-field > label",
        ".flasket-field fieldset",
        ".flasket-field legend",
        ".flasket-hint",
        ".flasket-choices",
        ".flasket-choice",
        ".flasket-choice input",
        ".flasket input[type=text]",
        ".flasket select",
        ".flasket textarea",
        ".flasket-form .flasket-button",
    ),
    "/ticket/{open}": (
        ".flasket-meta",
        ".flasket-categories dt",
        ".flasket-categories dd",
        ".flasket-actions",
        ".flasket-actions .flasket-button",
        ".flasket-post",
        ".flasket-post-meta",
        ".flasket-body",
        ".flasket-replies",
        ".flasket-followers",
        ".flasket h2",
    ),
    PAGED_LIST: (
        ".flasket-tabs ul",
        ".flasket-tabs li",
        ".flasket-tabs a",
        ".flasket-filters",
        ".flasket-filter label",
        ".flasket-filter input",
        ".flasket-filter select",
        ".flasket-filter--submit .flasket-button",
        ".flasket-filter--submit a",
        ".flasket-result-count",
        ".flasket-pager",
        ".flasket-pager a",
    ),
    "/ticket/user/alice": (".flasket-tabs a", ".flasket-tab-count"),
}
#: Each component's computed HELD properties, with and without the host's stylesheets. The
#: root font size stays the host's (Flasket's sizes are in rem and may follow it).
COMPARE_WITHOUT_HOST_CSS = """([selectors, properties]) => {
    const measure = () => {
        const found = {};
        for (const selector of selectors) {
            [...document.querySelectorAll(selector)]
                .filter(el => !el.closest('.flasket-visually-hidden'))
                .slice(0, 3)
                .forEach((el, index) => {
                    const style = getComputedStyle(el);
                    // A block's height follows its width, which is the host's; a control's is
                    // fixed. Only list items show a list marker.
                    const fixed = el.matches('input, select, button, .flasket-button');
                    const item = style.display === 'list-item';
                    const shown = p => (p !== 'height' || fixed)
                        && (p !== 'list-style-type' || item);
                    found[`${selector} #${index}`] = Object.fromEntries(properties
                        .filter(shown).map(p => [p, style.getPropertyValue(p)]));
                });
        }
        return found;
    };
    const own = sheet => (sheet.href || '').split('?')[0].endsWith('/flasket/flasket.css');
    const hostSheets = [...document.styleSheets].filter(sheet => !own(sheet));
    const root = document.documentElement;
    const withHost = measure();
    const rootSize = getComputedStyle(root).fontSize;
    hostSheets.forEach(sheet => { sheet.disabled = true; });
    root.style.fontSize = rootSize;
    const without = measure();
    root.style.fontSize = '';
    hostSheets.forEach(sheet => { sheet.disabled = false; });
    return [withHost, without, hostSheets.length];
}"""


@pytest.fixture(scope="module", params=SITES)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveDemo]:
    """One seeded server per host for this module; the demo is the session's."""
    look = str(request.param)
    if look == "demo":
        yield request.getfixturevalue("demos")[DEMO_LOOK]
        return
    reason = missing_tools() or hosts.missing_files(look)
    if reason:
        pytest.skip(reason)
    with serve_host(tmp_path_factory.mktemp(look), look) as host:
        yield host


@pytest.fixture
def open_page(visitor: Visitor, site: LiveDemo) -> Callable[..., Any]:
    """``open_page("/ticket/", width=375)``: a page of ``site``, logged in as alice."""

    def open_at(path: str, width: int = DESKTOP) -> Any:
        page = visitor.page(site, "alice", width=width)
        page.goto(site.url + path.format(open=ticket_id(site, TICKETS[site.look])))
        return page

    return open_at


def test_the_host_title_names_every_flasket_page(
    visitor: Visitor, site: LiveDemo, open_page: Callable[..., Any]
) -> None:
    number = ticket_id(site, TICKETS[site.look])
    expected = {
        "/ticket/": "Overview",
        "/ticket/submit": "Submit a ticket",
        f"/ticket/{number}": f"#{number} {TICKETS[site.look]}",
        "/ticket/all": None,  # named after its heading ("Open tickets", ...)
        "/ticket/user/alice": "alice · Submitted",
        "/ticket/999999": "Not found",
    }
    page = open_page("/ticket/")
    for path, name in expected.items():
        page.goto(site.url + path)
        if name is None:
            name = page.locator(".flasket h1").inner_text()
        assert page.title() == TITLES[site.look].format(f"{name} · Tickets"), path
    if site.look in HOME_TITLES:
        page.goto(site.url + "/")
        assert page.title() == HOME_TITLES[site.look]


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_a_choice_legend_looks_like_the_other_field_labels(
    open_page: Callable[..., Any], width: int
) -> None:
    page = open_page("/ticket/submit", width=width)
    legend, label = page.evaluate(
        """() => [document.querySelector('.flasket-field legend'),
                  document.querySelector('.flasket-field > label')].map(el => {
            const style = getComputedStyle(el);
            return {fontSize: style.fontSize, fontWeight: style.fontWeight,
                    lineHeight: style.lineHeight, float: style.float,
                    marginBottom: style.marginBottom};
        })"""
    )
    assert legend == {**label, "float": "none"}, f"legend {legend} but label {label}"
    # The legend stands on its own line, above the choices, like a label above its input.
    legend_box = page.locator(".flasket-field legend").first.bounding_box()
    choice_box = page.locator(".flasket-choice").first.bounding_box()
    assert legend_box["y"] + legend_box["height"] <= choice_box["y"] + 0.5


@pytest.mark.parametrize("width", [DESKTOP, TABLET, PHONE])
def test_the_filter_box_keeps_every_control_whole(
    open_page: Callable[..., Any], width: int
) -> None:
    page = open_page("/ticket/all", width=width)
    assert broken_text(page, ".flasket-filters :is(label, button, a)") == []
    assert clipped_selects(page, ".flasket-filters select") == []
    assert sticking_out(page, ".flasket-filter > *", ".flasket-filters") == []
    assert sticking_out(page, ".flasket-filters", ".flasket") == []
    assert horizontal_overflow(page) is None


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_navigation_tabs_and_buttons_keep_their_words_on_one_line(
    open_page: Callable[..., Any], site: LiveDemo, width: int
) -> None:
    page = open_page("/ticket/{open}", width=width)
    for path in ("/ticket/{open}", "/ticket/all", "/ticket/user/alice"):
        page.goto(site.url + path.format(open=ticket_id(site, TICKETS[site.look])))
        assert broken_text(page, ".flasket-nav a, .flasket-tabs a, .flasket-button") == [], path


@pytest.mark.parametrize("path", ["/ticket/", PAGED_LIST, "/ticket/user/alice"])
def test_ticket_tables_fit_a_phone(open_page: Callable[..., Any], path: str) -> None:
    page = open_page(path, width=PHONE)
    assert page.locator(".flasket-tickets").count() >= 1
    assert sticking_out(page, ".flasket-tickets", ".flasket") == []
    assert horizontal_overflow(page) is None


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_flasket_components_hold_their_layout_against_the_host_css(
    open_page: Callable[..., Any], site: LiveDemo, width: int
) -> None:
    overridden = []
    page = open_page("/ticket/", width=width)
    for path, selectors in COMPONENTS.items():
        page.goto(site.url + path.format(open=ticket_id(site, TICKETS[site.look])))
        with_host, without, host_sheets = page.evaluate(
            COMPARE_WITHOUT_HOST_CSS, [list(selectors), list(HELD)]
        )
        assert with_host, f"{path}: no Flasket component found"
        assert with_host.keys() == without.keys()
        overridden += [
            f"{path} {element} {name}: {without[element][name]} became {value}"
            for element, styles in with_host.items()
            for name, value in styles.items()
            if value != without[element][name]
        ]
    assert host_sheets == (0 if site.look == "plain" else 1)
    assert overridden == [], "\n".join(overridden)
