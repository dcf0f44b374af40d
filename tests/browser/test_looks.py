"""Both looks: Flasket inside the host's layout without restyling it, or its own page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.browser.conftest import Visitor
from tests.browser.live import LiveDemo, ticket_id
from tests.browser.test_pages import OPEN_TICKET, SCREENS, show

FLASKET_PAGES = ("/ticket/", "/ticket/submit", "/ticket/{open}", "/ticket/all", "/ticket/user/bob")
STYLESHEET = "/ticket/static/flasket/flasket.css"
#: The host's own elements outside the Flasket content, and what may not change about them.
HOST_ELEMENTS = (
    "body",
    ".skip-link",
    ".site-header",
    ".site-header__inner",
    ".brand",
    ".site-nav",
    ".site-nav ul",
    ".site-nav li",
    '.site-nav a[href="/mailbox"]',  # neither page is the mailbox: the same link state
    ".site-nav__user",
    ".site-nav .link-button",
    ".badge",
    ".site-main",
    ".flashes",
    ".site-footer",
    ".site-footer p",
)
#: Elements of the demo's home page content, restyled by nothing but the demo's stylesheet.
HOME_CONTENT = ("h1", "h2", ".card", ".button", ".field label", "textarea", ".post", ".lead")
PROPERTIES = (
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-weight",
    "line-height",
    "margin",
    "padding",
    "border",
    "border-radius",
    "display",
    "box-sizing",
    "max-width",
    "width",
    "list-style-type",
    "text-decoration-line",
    "outline-style",
    "box-shadow",
)
COMPUTED = """([selectors, properties]) => {
    const styles = {};
    for (const selector of selectors) {
        document.querySelectorAll(selector).forEach((el, index) => {
            const style = getComputedStyle(el);
            styles[`${selector} #${index}`] =
                Object.fromEntries(properties.map(p => [p, style.getPropertyValue(p)]));
        });
    }
    return styles;
}"""


def computed(page: Any, selectors: tuple[str, ...]) -> dict[str, dict[str, str]]:
    styles: dict[str, dict[str, str]] = page.evaluate(COMPUTED, [list(selectors), PROPERTIES])
    return styles


def differences(
    before: dict[str, Any], after: dict[str, Any], ignore: tuple[str, ...] = ()
) -> list[str]:
    found = [f"{key}: missing on one page" for key in before.keys() ^ after.keys()]
    for key in before.keys() & after.keys():
        found += [
            f"{key} {name}: {before[key][name]!r} became {after[key][name]!r}"
            for name in PROPERTIES
            if name not in ignore and before[key][name] != after[key][name]
        ]
    return sorted(found)


def test_flasket_pages_wear_the_hosts_navigation_and_footer(
    visitor: Visitor, demo: LiveDemo
) -> None:
    page = visitor.page(demo, "alice")
    for path in FLASKET_PAGES:
        page.goto(demo.url + path.format(open=ticket_id(demo, OPEN_TICKET)))
        host_nav = page.get_by_role("navigation", name="Main")
        for link in ("Home", "Tickets", "Mailbox"):
            expect(host_nav.get_by_role("link", name=link, exact=True)).to_be_visible()
        expect(host_nav.get_by_role("link", name="Tickets")).to_have_attribute(
            "aria-current", "page"
        )
        expect(host_nav.get_by_role("button", name="Log out")).to_be_visible()
        expect(page.get_by_role("navigation", name="Tickets", exact=True)).to_be_visible()
        expect(page.locator(".site-footer")).to_contain_text("Microblog is a demo host app.")
        expect(page.locator(".site-main > .flasket")).to_have_count(1)
        assert page.title().endswith("· Tickets · Microblog"), page.title()


def test_the_standalone_look_is_flaskets_own_page(
    visitor: Visitor, demos: dict[str, LiveDemo]
) -> None:
    demo = demos["standalone"]
    page = visitor.page(demo, "alice")
    for path in FLASKET_PAGES:
        page.goto(demo.url + path.format(open=ticket_id(demo, OPEN_TICKET)))
        expect(page.locator("body.flasket-standalone")).to_have_count(1)
        expect(page.locator(".flasket-masthead")).to_contain_text("Signed in as alice")
        expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
        expect(page.get_by_role("navigation", name="Tickets", exact=True)).to_be_visible()
        sheets = page.evaluate("[...document.styleSheets].map(s => s.href)")
        assert sheets == [demo.url + STYLESHEET]


def test_the_flasket_stylesheet_does_not_restyle_the_host_outside_flasket(
    visitor: Visitor, demo: LiveDemo
) -> None:
    page = visitor.page(demo, "alice")
    page.goto(demo.url + "/")
    host_before = computed(page, HOST_ELEMENTS)
    content_before = computed(page, HOME_CONTENT)
    assert len(host_before) >= 15
    assert len(content_before) >= 8

    page.add_style_tag(url=demo.url + STYLESHEET)
    rules = page.evaluate(
        "href => [...document.styleSheets].find(s => s.href === href).cssRules.length",
        demo.url + STYLESHEET,
    )
    assert rules > 50, "the Flasket stylesheet did not load"
    assert differences(host_before, computed(page, HOST_ELEMENTS)) == []
    assert differences(content_before, computed(page, HOME_CONTENT)) == []

    # A Flasket page in the host look: the host's header, nav and footer are untouched too
    # (widths aside: the nav shows a different current link in bold).
    page.goto(demo.url + "/ticket/")
    expect(page.locator(f'link[href="{STYLESHEET}"]')).to_have_count(1)
    assert differences(host_before, computed(page, HOST_ELEMENTS), ignore=("width",)) == []


def test_no_page_loads_anything_from_another_host(
    visitor: Visitor, demos: dict[str, LiveDemo]
) -> None:
    for look, demo in demos.items():
        for name, screen in SCREENS.items():
            if screen.flasket or look == "host":
                show(visitor, demo, name)
    hosts = {urlsplit(url).hostname for url in visitor.requests}
    assert hosts == {"127.0.0.1"}
    paths = {urlsplit(url).path for url in visitor.requests}
    assert {STYLESHEET, "/static/microblog.css", "/ticket/", "/auth/login"} <= paths
