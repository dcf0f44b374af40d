"""The main journey in German and in Arabic, in Flasket's standalone layout and in a host's.

A member logs in, files a ticket (first with a mistake), finds it in the list, replies,
unfollows and follows it, closes and reopens it. Every page on the way is checked in real
Chromium: axe-core finds nothing serious, nothing sticks out sideways on a desktop or a
phone, the words are the catalog's (read from the ``.po`` file, never written here), the
``lang`` and ``dir`` attributes name the language, and right to left the layout is the
mirror image of left to right. The selectors are ids, classes and URLs: no English words.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from playwright.sync_api import expect

import flasket
from flasket.config import validate
from tests.browser.checks import (
    assert_landmarks,
    assert_no_serious_axe_violations,
    assert_sensible_headings,
    horizontal_overflow,
)
from tests.browser.conftest import Visitor
from tests.browser.live import LiveDemo, missing_tools, serve
from tests.browser.test_pages import DESKTOP, PHONE
from tests.hosts import app as hosts

TRANSLATIONS = Path(flasket.__file__).resolve().parent / "translations"
#: The languages walked through, and the direction each is written in.
LANGUAGES = {"de": "ltr", "ar": "rtl"}
#: Each layout: the host of tests/hosts that serves it, and its FLASKET_BASE_TEMPLATE.
LAYOUTS = {
    "standalone": ("plain", "flasket/base.html"),
    "bootstrap5": ("bootstrap5", "base.html"),
}
#: What the member writes, in each language: a title, a word of it to search for, a reply.
WRITING = {
    "de": (
        "Zebrastreifen fehlen auf der Profilseite",
        "Zebrastreifen",
        "Auch auf der mobilen Seite.",
    ),
    "ar": (
        "خطوط الحمار الوحشي مفقودة من صفحة الملف الشخصي",
        "الوحشي",
        "وكذلك في موقع الجوال.",
    ),
}
#: How far apart two edges may be and still count as the same, in CSS pixels.
TOLERANCE = 1.0


@functools.cache
def catalog(language: str) -> Catalog:
    """Flasket's shipped ``.po`` catalog of ``language``."""
    path = TRANSLATIONS / language / "LC_MESSAGES" / "flasket.po"
    with path.open("rb") as file:
        return read_po(file, locale=language, domain="flasket")


def translated(language: str, msgid: str, context: str | None = None, **values: Any) -> str:
    """The catalog's translation of ``msgid``, its placeholders filled in with ``values``."""
    message = catalog(language).get(msgid, context=context)
    assert message is not None, f"{language}: {msgid!r} is not in the catalog"
    assert isinstance(message.string, str), f"{language}: {msgid!r} has plural forms"
    assert message.string, f"{language}: {msgid!r} is not translated"
    assert not message.fuzzy, f"{language}: the translation of {msgid!r} is fuzzy"
    return message.string % values if values else message.string


@dataclass(frozen=True)
class Site:
    """A seeded host speaking ``language`` in ``layout``."""

    demo: LiveDemo
    language: str
    layout: str

    @property
    def direction(self) -> str:
        return LANGUAGES[self.language]

    @property
    def rtl(self) -> bool:
        return self.direction == "rtl"

    def text(self, msgid: str, context: str | None = None, **values: Any) -> str:
        return translated(self.language, msgid, context, **values)


@contextmanager
def serve_in(directory: Path, language: str, layout: str) -> Iterator[Site]:
    """A host of tests/hosts in ``layout``, its Flasket pages in ``language`` site-wide."""
    look, base_template = LAYOUTS[layout]
    app = hosts.create_host_app(look, f"sqlite:///{directory / 'host.db'}")
    # Read on every request: set here as a host would set them before init_flasket, and
    # checked the way init_flasket checks them.
    app.config.update(FLASKET_DEFAULT_LOCALE=language, FLASKET_BASE_TEMPLATE=base_template)
    validate(app.config)
    with serve(app, f"{layout}-{language}", lambda url: hosts.seed(app)) as url:
        yield Site(LiveDemo(app=app, url=url, look=look), language, layout)


@pytest.fixture(
    scope="module",
    params=[(language, layout) for language in LANGUAGES for layout in LAYOUTS],
    ids=lambda param: "-".join(param),
)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    language, layout = request.param
    reason = missing_tools() or hosts.missing_files(LAYOUTS[layout][0])
    if reason:
        pytest.skip(reason)
    with serve_in(tmp_path_factory.mktemp(f"{layout}-{language}"), language, layout) as served:
        yield served


def box(page: Any, selector: str) -> dict[str, float]:
    """The bounding box of the first element matching ``selector``, with its right edge."""
    found: dict[str, float] | None = page.locator(selector).first.bounding_box()
    assert found is not None, f"{page.url}: {selector} is not shown"
    return {**found, "right": found["x"] + found["width"]}


def assert_same_edge(first: float, second: float, what: str) -> None:
    assert abs(first - second) <= TOLERANCE, f"{what}: {first:.1f} and {second:.1f}px differ"


def assert_direction(page: Any, site: Site) -> None:
    """``lang`` and ``dir`` name the language, on the page or on Flasket's part of the host's."""
    tag = site.language.replace("_", "-")
    flasket_root = page.locator("div.flasket[dir]")
    expect(flasket_root).to_have_count(1)
    expect(flasket_root).to_have_attribute("lang", tag)
    expect(flasket_root).to_have_attribute("dir", site.direction)
    direction = flasket_root.evaluate("el => getComputedStyle(el).direction")
    assert direction == site.direction, f"{page.url}: Flasket's part is laid out {direction}"
    html = page.locator("html")
    if site.layout == "standalone":
        expect(html).to_have_attribute("lang", tag)
        expect(html).to_have_attribute("dir", site.direction)
    else:  # The host's page stays the host's; only Flasket's part is in the language.
        expect(html).to_have_attribute("lang", "en")


def assert_nav_in_language(page: Any, site: Site) -> None:
    nav = page.locator(".flasket-nav")
    for href, msgid in (
        ("/ticket/", "Overview"),
        ("/ticket/all", "Browse tickets"),
        ("/ticket/submit", "Submit a ticket"),
    ):
        expect(nav.locator(f'a[href$="{href}"]')).to_have_text(site.text(msgid))
    expect(nav.locator("li:nth-child(3) a")).to_have_text(site.text("My tickets"))


def assert_nav_mirrors(page: Any, site: Site) -> None:
    """The last item ("Submit a ticket") ends the line: at the right, or at the left in RTL."""
    row = box(page, ".flasket-nav ul")
    first = box(page, ".flasket-nav li:first-child a")
    last = box(page, ".flasket-nav li:last-child a")
    if site.rtl:
        assert last["x"] < first["x"], (
            f"RTL: the nav's last item is right of its first ({page.url})"
        )
        assert_same_edge(last["x"], row["x"], f"RTL: the nav's last item at the left ({page.url})")
        assert_same_edge(first["right"], row["right"], f"RTL: the first at the right ({page.url})")
    else:
        assert last["x"] > first["x"], (
            f"LTR: the nav's last item is left of its first ({page.url})"
        )
        assert_same_edge(
            last["right"], row["right"], f"LTR: the nav's last item at the right ({page.url})"
        )
        assert_same_edge(first["x"], row["x"], f"LTR: the first at the left ({page.url})")


def assert_masthead_mirrors(page: Any, site: Site) -> None:
    """The standalone masthead: the site's name at the start, who is signed in at the end."""
    brand = box(page, ".flasket-masthead .flasket-brand")
    signed_in = box(page, ".flasket-masthead .flasket-signed-in")
    if site.rtl:
        assert brand["x"] > signed_in["x"], f"RTL: the masthead's name is not right ({page.url})"
    else:
        assert brand["x"] < signed_in["x"], f"LTR: the masthead's name is not left ({page.url})"


def assert_phone_nav_reads_in_order(page: Any, site: Site) -> None:
    """On a phone the nav wraps and its last item loses its push to the far end: it follows
    the item before it on the same line (to its left, right to left), or starts a new line
    at the start edge."""
    row = box(page, ".flasket-nav ul")
    before = box(page, ".flasket-nav li:nth-last-child(2) a")
    last = box(page, ".flasket-nav li:last-child a")
    same_line = (
        last["y"] < before["y"] + before["height"] and before["y"] < last["y"] + last["height"]
    )
    where = f"{site.direction} phone, nav ({page.url})"
    if same_line and site.rtl:
        assert last["right"] <= before["x"] + TOLERANCE, (
            f"{where}: last item not left of the one before"
        )
    elif same_line:
        assert last["x"] >= before["right"] - TOLERANCE, (
            f"{where}: last item not right of the one before"
        )
    elif site.rtl:
        assert_same_edge(last["right"], row["right"], f"{where}: last item at the right")
    else:
        assert_same_edge(last["x"], row["x"], f"{where}: last item at the left")


def assert_table_mirrors(page: Any, site: Site) -> None:
    """A ticket table's first column (the ticket) is at the start: right in RTL."""
    table = box(page, ".flasket-tickets")
    first = box(page, ".flasket-tickets th:first-child")
    last = box(page, ".flasket-tickets th:last-child")
    if site.rtl:
        assert first["x"] > last["x"], f"RTL: the ticket column is not right ({page.url})"
        assert_same_edge(first["right"], table["right"], f"RTL: first column ({page.url})")
    else:
        assert first["x"] < last["x"], f"LTR: the ticket column is not left ({page.url})"
        assert_same_edge(first["x"], table["x"], f"LTR: first column ({page.url})")
    # The cells' text starts at the column's start edge too.
    align = page.locator(".flasket-tickets td").first.evaluate(
        "el => getComputedStyle(el).textAlign"
    )
    assert align in ("start", "right" if site.rtl else "left"), f"{page.url}: td {align}"


def assert_start_border(page: Any, site: Site, selector: str) -> None:
    """A message's thick edge (border-inline-start) is on the side the text starts."""
    start, end = ("right", "left") if site.rtl else ("left", "right")
    widths = page.locator(selector).first.evaluate(
        """(el, sides) => sides.map(side =>
            parseFloat(getComputedStyle(el).getPropertyValue(`border-${side}-width`)))""",
        [start, end],
    )
    assert widths[0] > widths[1], f"{page.url}: {selector} borders {start}/{end} are {widths}"


def check_page(page: Any, site: Site, *texts: str) -> None:
    """Everything the test asks of each page, at a desktop's width and a phone's."""
    for text in texts:
        expect(page.locator("body")).to_contain_text(text)
    assert_direction(page, site)
    assert_nav_in_language(page, site)
    assert_landmarks(page)
    assert_sensible_headings(page)
    assert_no_serious_axe_violations(page)
    assert horizontal_overflow(page) is None
    assert_nav_mirrors(page, site)
    if site.layout == "standalone":
        assert_masthead_mirrors(page, site)
    if page.locator(".flasket-tickets").count():
        assert_table_mirrors(page, site)
    page.set_viewport_size({"width": PHONE, "height": 800})
    try:
        assert horizontal_overflow(page) is None
        assert_phone_nav_reads_in_order(page, site)
    finally:
        page.set_viewport_size({"width": DESKTOP, "height": 800})


def press(page: Any, selector: str) -> None:
    """Click the button ``selector`` and wait for the page it leads to."""
    with page.expect_navigation():
        page.locator(selector).click()


def status_of(page: Any) -> Any:
    return page.locator(".flasket-ticket-header .flasket-status")


def test_the_main_journey_reads_in_the_language_and_mirrors_right_to_left(
    visitor: Visitor, site: Site
) -> None:
    title, search_word, reply = WRITING[site.language]
    page = visitor.page(site.demo, "alice", width=DESKTOP)
    page.goto(site.demo.url + "/ticket/")
    expect(page.locator(".flasket h1")).to_have_text(site.text("Tickets"))
    check_page(page, site, site.text("My recent tickets"), site.text("Recently updated"))

    # A ticket without a title: the form comes back with the reason, in the language.
    page.locator('.flasket-nav a[href$="/ticket/submit"]').click()
    expect(page.locator(".flasket h1")).to_have_text(site.text("Submit a ticket"))
    assert site.text("%(page)s · Tickets", page=site.text("Submit a ticket")) in page.title()
    page.locator("#body").fill(reply)
    press(page, "form.flasket-form button[type=submit]")
    alert = page.locator(".flasket [role=alert]")
    expect(alert).to_have_text(
        site.text("Please correct the marked fields; nothing was submitted yet.")
    )
    expect(page.locator("#title-error")).to_contain_text(site.text("Give your ticket a title."))
    expect(page.locator("#title")).to_have_attribute("aria-invalid", "true")
    check_page(page, site)
    assert_start_border(page, site, ".flasket [role=alert]")
    # A select's arrow and the room kept for it are at its end: the left, right to left.
    padding = page.locator("#application").evaluate(
        """el => [getComputedStyle(el).paddingLeft, getComputedStyle(el).paddingRight]
            .map(parseFloat)"""
    )
    arrow_side = page.locator("#application").evaluate(
        "el => getComputedStyle(el).backgroundPositionX"
    )
    # Chromium gives the arrow's two strokes as "12.8px, 17.6px" from the left edge, or as
    # "calc(100% - 17.6px), calc(100% - 12.8px)" from the right one.
    from_right = ["100%" in layer for layer in str(arrow_side).split(", ")]
    if site.rtl:
        assert padding[0] > padding[1], f"RTL: the select keeps its room on the right {padding}"
        assert not any(from_right), f"RTL: the arrow is at {arrow_side}, not at the left"
    else:
        assert padding[1] > padding[0], f"LTR: the select keeps its room on the left {padding}"
        assert all(from_right), f"LTR: the arrow is at {arrow_side}, not at the right"

    # Now complete: the ticket page, with the flash saying so.
    page.locator("#title").fill(title)
    page.locator('input[name=urgency][value="High"]').check()
    page.locator("#application").select_option("Website")
    page.locator("#topic").select_option("Bug report")
    press(page, "form.flasket-form button[type=submit]")
    found = re.search(r"/ticket/(\d+)$", page.url)
    assert found, page.url
    number = int(found.group(1))
    expect(page.locator(".flasket h1")).to_contain_text(title)
    expect(status_of(page)).to_contain_text(site.text("Open", "status"))
    check_page(
        page,
        site,
        site.text(
            "Ticket #%(number)s submitted. You will get an e-mail when it changes.",
            number=number,
        ),
    )
    if site.layout == "standalone":  # A host shows Flasket's flashes its own way.
        assert_start_border(page, site, ".flasket-message--success")

    # Found in the list by a word of its title.
    page.locator('.flasket-nav a[href$="/ticket/all"]').click()
    expect(page.locator(".flasket h1")).to_have_text(site.text("Open tickets"))
    page.locator("#flasket-q").fill(search_word)
    page.locator("#flasket-topic").select_option("Bug report")
    press(page, ".flasket-filter--submit button")
    rows = page.locator(".flasket-tickets tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(title)
    expect(rows).to_contain_text(site.text("Open", "status"))
    check_page(page, site, site.text("Search titles and descriptions"))
    page.locator(f'.flasket-ticket-link[href$="/ticket/{number}"]').click()
    page.wait_for_url(re.compile(rf"/ticket/{number}$"))

    # A reply.
    page.locator("#body").fill(reply)
    press(page, "form.flasket-form button[type=submit]")
    expect(page.locator(".flasket-replies li")).to_contain_text(reply)
    check_page(page, site, site.text("Your reply was posted."), site.text("Replies"))
    # The author's own reply carries the accent edge, on the start side.
    assert_start_border(page, site, ".flasket-post--author")

    # Unfollow, then follow again.
    press(page, '.flasket-actions form[action$="/unfollow"] button')
    check_page(
        page,
        site,
        site.text("You no longer follow ticket #%(number)s.", number=number),
        site.text("Nobody follows this ticket."),
    )
    press(page, '.flasket-actions form[action$="/follow"] button')
    expect(page.locator("#flasket-followers")).to_have_text(
        site.text("Followers (%(count)s)", count=format_decimal(1, locale=site.language))
    )
    check_page(
        page,
        site,
        site.text(
            "You follow ticket #%(number)s and will get an e-mail when it changes.", number=number
        ),
    )

    # Closed: no reply box, and the way back.
    press(page, '.flasket-actions form[action$="/close"] button')
    expect(status_of(page)).to_contain_text(site.text("Closed", "status"))
    expect(page.locator("#body")).to_have_count(0)
    check_page(
        page,
        site,
        site.text("Ticket #%(number)s is closed.", number=number),
        site.text("This ticket is closed. Reopen it to reply."),
    )

    # Reopened.
    press(page, '.flasket-actions form[action$="/reopen"] button')
    expect(status_of(page)).to_contain_text(site.text("Open", "status"))
    expect(page.locator("#body")).to_be_visible()
    check_page(page, site, site.text("Ticket #%(number)s is open again.", number=number))
