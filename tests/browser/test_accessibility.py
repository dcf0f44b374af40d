"""Keyboard only, visible focus, status in words, and ticket tables that read well on a phone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Visitor
from tests.browser.live import LiveDemo
from tests.browser.test_pages import PHONE

FOCUSED = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return {
        html: el.outerHTML.slice(0, 100),
        tag: el.tagName.toLowerCase(),
        name: el.getAttribute('name') || '',
        value: el.value || '',
        text: (el.innerText || '').trim(),
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
        shadow: style.boxShadow !== 'none',
    };
}"""


def tab_until(page: Any, wanted: Callable[[dict[str, Any]], bool], limit: int = 40) -> None:
    """Press Tab until ``wanted(focused element)``; every element on the way shows its focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused: dict[str, Any] = page.evaluate(FOCUSED)
        assert focused["tag"] != "body", "Tab left the page before reaching the control"
        assert focused["outline"] or focused["shadow"], f"focus is invisible on {focused['html']}"
        if wanted(focused):
            return
    raise AssertionError(f"{limit} presses of Tab did not reach the control")


def focused(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(FOCUSED)
    return result


def named(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda element: bool(element["name"] == name)


def test_submit_and_reply_forms_work_with_the_keyboard_alone_with_visible_focus(
    visitor: Visitor, demos: dict[str, LiveDemo], look: str
) -> None:
    demo = demos[look]
    page = visitor.page(demo, "carol")
    page.goto(demo.url + "/ticket/submit")

    tab_until(page, named("title"))
    page.keyboard.type("Keyboard users cannot reach the menu")
    tab_until(page, named("urgency"), limit=1)
    assert focused(page)["value"] == "Low"
    page.keyboard.press("ArrowRight")
    assert focused(page)["value"] == "Medium"
    expect(page.get_by_label("Medium")).to_be_checked()
    tab_until(page, named("application"), limit=1)
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Application")).to_have_value("Website")
    tab_until(page, named("topic"), limit=1)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Topic")).to_have_value("Bug report")
    tab_until(page, named("body"), limit=1)
    page.keyboard.type("Tab skips the dropdown in the header.")
    tab_until(page, lambda element: element["text"] == "Submit ticket", limit=1)
    page.keyboard.press("Enter")

    expect(page.get_by_text("submitted. You will get an e-mail when it changes.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        "Keyboard users cannot reach the menu"
    )
    categories = page.locator(".flasket-categories")
    for value in ("Medium", "Website", "Bug report"):
        expect(categories).to_contain_text(value)

    page.goto(page.url)  # start again from the top of the ticket page
    tab_until(page, named("body"))
    page.keyboard.type("Shift+Tab works, at least.")
    # The author's reply form also offers to close the ticket with the reply.
    tab_until(page, named("status"), limit=1)
    tab_until(page, lambda element: element["text"] == "Post reply", limit=1)
    page.keyboard.press("Space")
    expect(page.get_by_text("Your reply was posted.")).to_be_visible()
    expect(page.locator(".flasket-replies")).to_contain_text("Shift+Tab works, at least.")


def test_status_badges_say_open_or_closed_in_words_not_only_colour(
    visitor: Visitor, demos: dict[str, LiveDemo], look: str
) -> None:
    demo = demos[look]
    page = visitor.page(demo, "alice")
    page.goto(demo.url + "/ticket/all?status=all&per_page=100")
    badges = page.locator(".flasket-tickets .flasket-status")
    assert badges.count() >= 8
    texts = {str(text).strip() for text in badges.all_inner_texts()}
    assert texts == {"● Open", "● Waiting for requester", "✓ Closed"}
    # The symbol is decoration hidden from screen readers; the word is what they announce.
    symbols = page.locator(".flasket-status [aria-hidden=true]").count()
    assert symbols == badges.count()


def test_ticket_tables_become_cards_on_a_phone_and_every_cell_shows_its_label(
    visitor: Visitor, demos: dict[str, LiveDemo], look: str
) -> None:
    demo = demos[look]
    page = visitor.page(demo, "alice", width=PHONE)
    for path in ("/ticket/", "/ticket/all?status=all", "/ticket/user/alice"):
        page.goto(demo.url + path)
        cells: list[dict[str, Any]] = page.locator(".flasket-tickets td").evaluate_all(
            """cells => cells.map(td => ({
                label: td.dataset.label,
                shown: getComputedStyle(td, '::before').content,
                display: getComputedStyle(td).display,
                width: td.getBoundingClientRect().width,
            }))"""
        )
        assert cells, path
        for cell in cells:
            assert cell["shown"] == f'"{cell["label"]}: "', f"{path}: {cell}"
            assert cell["display"] == "block", f"{path}: {cell}"
        header_width = page.locator(".flasket-tickets thead").first.bounding_box()["width"]
        assert header_width <= 1, f"{path}: the column headers still show on a phone"
        page_width = page.evaluate("document.documentElement.clientWidth")
        assert all(cell["width"] <= page_width for cell in cells)
