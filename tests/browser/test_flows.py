"""A person uses the demo in a real browser: register, file, find, discuss, follow, close."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Visitor
from tests.browser.live import LiveDemo, ticket_id
from tests.browser.test_pages import forge_close


def file_ticket(page: Any, title: str, body: str, topic: str = "Bug report") -> int:
    """Fill the submit form by its labels, send it, and return the new ticket's number."""
    page.get_by_role("link", name="Submit a ticket").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("High").check()
    page.get_by_label("Application").select_option("Website")
    page.get_by_label("Topic").select_option(topic)
    page.get_by_label("Description").fill(body)
    page.get_by_role("button", name="Submit ticket").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)
    number = re.search(r"/ticket/(\d+)$", page.url)
    assert number, page.url
    expect(page.get_by_text(f"Ticket #{number.group(1)} submitted.")).to_be_visible()
    return int(number.group(1))


def status_of(page: Any) -> str:
    return str(page.locator(".flasket-ticket-header .flasket-status").inner_text()).strip()


def press(page: Any, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).click()


def test_a_new_user_registers_files_finds_discusses_follows_closes_and_reopens_a_ticket(
    visitor: Visitor, demos: dict[str, LiveDemo], look: str
) -> None:
    demo = demos[look]
    page = visitor.page(demo)
    page.goto(demo.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Register").click()
    page.get_by_label("Username").fill("dana")
    page.get_by_label("E-mail").fill("dana@example.com")
    page.get_by_label("Password", exact=True).fill("secret-pw")
    page.get_by_label("Repeat password").fill("secret-pw")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("You are registered.")).to_be_visible()

    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password", exact=True).fill("secret-pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Welcome back, dana!")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tickets").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tickets")
    expect(page.get_by_text("You have not submitted a ticket yet.")).to_be_visible()

    title = "Zebra stripes missing from the profile page"
    number = file_ticket(page, title, "My profile banner shows no stripes since Monday.")
    expect(page.locator(".flasket-ticket-header .flasket-status")).to_have_text("● Open")

    page.get_by_role("navigation", name="Tickets", exact=True).get_by_role(
        "link", name="Browse tickets"
    ).click()
    row = page.get_by_role("row").filter(has_text=title)
    expect(row).to_contain_text("dana")
    page.get_by_label("Search titles and descriptions").fill("stripes")
    page.get_by_label("Topic").select_option("Bug report")
    page.get_by_label("Application").select_option("Website")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("status").filter(has_text="of 1 open ticket")).to_be_visible()
    expect(page.get_by_role("row")).to_have_count(2)  # the header and dana's ticket
    page.get_by_label("Topic").select_option("Question")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("No open tickets match these filters.")).to_be_visible()
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Author").fill("dana")
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_role("link", name=f"#{number} {title}").click()
    assert page.url.endswith(f"/ticket/{number}")

    page.get_by_label("Your reply").fill("Also on the mobile site.")
    press(page, "Post reply")
    expect(page.get_by_text("Your reply was posted.")).to_be_visible()
    expect(page.locator(".flasket-replies li")).to_contain_text("Also on the mobile site.")

    press(page, "Unfollow")
    expect(page.get_by_text(f"You no longer follow ticket #{number}.")).to_be_visible()
    expect(page.get_by_text("Nobody follows this ticket.")).to_be_visible()
    press(page, "Follow")
    expect(page.get_by_text(f"You follow ticket #{number}")).to_be_visible()
    expect(page.get_by_role("heading", name="Followers (1)")).to_be_visible()

    press(page, "Close ticket")
    expect(page.get_by_text(f"Ticket #{number} is closed.")).to_be_visible()
    assert status_of(page) == "✓ Closed"
    expect(page.get_by_label("Your reply")).to_have_count(0)
    expect(page.get_by_text("This ticket is closed. Reopen it to reply.")).to_be_visible()
    press(page, "Reopen ticket")
    expect(page.get_by_text(f"Ticket #{number} is open again.")).to_be_visible()
    assert status_of(page) == "● Open"
    expect(page.get_by_label("Your reply")).to_be_visible()

    page.get_by_role("navigation", name="Tickets", exact=True).get_by_role(
        "link", name="My tickets"
    ).click()
    tabs = page.get_by_role("navigation", name="dana\N{RIGHT SINGLE QUOTATION MARK}s lists")
    expect(tabs.locator("[aria-current=page]")).to_have_text("Submitted 1")
    expect(page.get_by_role("row").filter(has_text=title)).to_be_visible()
    tabs.get_by_role("link", name="Replies").click()
    expect(tabs.locator("[aria-current=page]")).to_have_text("Replies 1")
    expect(page.locator(".flasket-reply-list")).to_contain_text("Also on the mobile site.")
    tabs.get_by_role("link", name="Following").click()
    expect(tabs.locator("[aria-current=page]")).to_have_text("Following 1")
    page.get_by_role("link", name=f"#{number} {title}").click()
    assert page.url.endswith(f"/ticket/{number}")


def test_another_user_gets_no_close_button_and_a_forged_close_answers_403(
    visitor: Visitor, demo: LiveDemo
) -> None:
    number = ticket_id(demo, "Password reset e-mail never arrives")  # alice's
    page = visitor.page(demo, "bob")
    response = page.goto(f"{demo.url}/ticket/{number}")
    assert response.status == 200
    expect(page.get_by_role("button", name="Post reply")).to_be_visible()
    expect(page.get_by_role("button", name="Close ticket")).to_have_count(0)
    expect(page.get_by_role("button", name="Reopen ticket")).to_have_count(0)

    with page.expect_response(f"{demo.url}/ticket/{number}/close") as answer:
        forge_close(page)
    assert answer.value.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You cannot do that")
    expect(page.get_by_role("alert")).to_have_text(
        "Only the ticket's author or staff can close this ticket."
    )
    page.get_by_role("link", name="Back to the tickets").click()
    page.goto(f"{demo.url}/ticket/{number}")
    assert status_of(page) == "● Open"


def test_admin_closes_a_ticket_someone_else_filed(visitor: Visitor, demo: LiveDemo) -> None:
    carol = visitor.page(demo, "carol")
    carol.goto(demo.url + "/ticket/")
    number = file_ticket(carol, "Avatar upload times out", "Uploading a 2 MB avatar fails.")

    admin = visitor.page(demo, "admin")
    admin.goto(f"{demo.url}/ticket/{number}")
    expect(admin.get_by_text("Opened by carol")).to_be_visible()
    press(admin, "Close ticket")
    expect(admin.get_by_text(f"Ticket #{number} is closed.")).to_be_visible()
    expect(admin.locator(".flasket-meta")).to_contain_text("closed by admin")

    carol.reload()
    assert status_of(carol) == "✓ Closed"
    expect(carol.get_by_role("button", name="Reopen ticket")).to_be_visible()


def test_submit_reply_close_and_reopen_work_without_javascript(
    visitor: Visitor, demos: dict[str, LiveDemo], look: str
) -> None:
    demo = demos[look]
    page = visitor.page(demo, "bob", java_script_enabled=False)
    page.goto(demo.url + "/ticket/")
    number = file_ticket(page, "Search ignores accents", "Searching for café finds nothing.")
    page.get_by_label("Your reply").fill("Same with naïve.")
    press(page, "Post reply")
    expect(page.get_by_text("Your reply was posted.")).to_be_visible()
    press(page, "Close ticket")
    assert status_of(page) == "✓ Closed"
    press(page, "Reopen ticket")
    assert status_of(page) == "● Open"
    assert number == ticket_id(demo, "Search ignores accents")
