"""Take the screenshots the README and the docs show, in headless Chromium.

- ``<page>-<device>.png``: the seeded demo, as alice sees it in the demo's own layout;
- ``staff-<page>-<device>.png``: the seeded demo as admin, one of its staff, sees it;
- ``bootstrap-<page>-<device>[-dark].png``: the Bootstrap 5 test host (tests/hosts, Bootstrap
  served from node_modules) with ``FLASKET_LOOK = "bootstrap5"``, in Bootstrap's light colour
  mode and, for the ticket, its dark one (``data-bs-theme="dark"``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser.live import (  # noqa: E402
    LiveDemo,
    launch_chromium,
    log_in,
    missing_tools,
    serve_demo,
    serve_host,
    ticket_id,
)
from tests.hosts import app as hosts  # noqa: E402

OUTPUT = ROOT / "docs" / "images"
WIDTHS = {"desktop": 1280, "phone": 375}
#: File name -> page, as alice sees it in the demo's own layout.
PAGES = {
    "overview": "/ticket/",
    "submit": "/ticket/submit",
    "ticket": "/ticket/{ticket}",
    "all-tickets": "/ticket/all?status=all&application=Website&sort=created",
    "user": "/ticket/user/alice",
}
#: File name -> page, as admin (staff) sees it in the demo's own layout.
STAFF_PAGES = {
    "staff-overview": "/ticket/",
    "staff-queue": "/ticket/all?queue=waiting_on_staff",
    "staff-ticket": "/ticket/{ticket}",
}
#: File name -> page of the Bootstrap host in the Bootstrap look, and the colour modes shown.
BOOTSTRAP_PAGES = {
    "bootstrap-overview": ("/ticket/", ("light",)),
    "bootstrap-all-tickets": ("/ticket/all?status=all&application=Website&per_page=3", ("light",)),
    "bootstrap-ticket": ("/ticket/{ticket}", ("light", "dark")),
}
#: A seeded ticket of the Bootstrap host with replies, one of them by its author.
BOOTSTRAP_TICKET = hosts.TICKETS[3][1]


def take(
    demo: LiveDemo,
    output: Path,
    pages: dict[str, tuple[str, tuple[str, ...]]],
    ticket: str,
    user: str = "alice",
) -> list[Path]:
    """Screenshots of ``pages`` (name -> path, colour modes) on each device, as ``user``."""
    number = ticket_id(demo, ticket)
    taken = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        login = browser.new_context()
        log_in(login.new_page(), demo, user)
        state = login.storage_state()
        login.close()
        for device, width in WIDTHS.items():
            context = browser.new_context(
                viewport={"width": width, "height": 800},
                storage_state=state,
                device_scale_factor=1,
                reduced_motion="reduce",
            )
            page = context.new_page()
            for name, (path, themes) in pages.items():
                page.goto(demo.url + path.format(ticket=number))
                for theme in themes:
                    set_theme(page, theme)
                    suffix = "" if theme == "light" else f"-{theme}"
                    target = output / f"{name}-{device}{suffix}.png"
                    page.screenshot(path=str(target), full_page=True, animations="disabled")
                    taken.append(target)
            context.close()
        browser.close()
    return taken


def set_theme(page: Any, theme: str) -> None:
    """Bootstrap's colour mode, as a host's theme switch sets it; the demo ignores it."""
    if theme != "light":
        page.evaluate("t => document.documentElement.setAttribute('data-bs-theme', t)", theme)


def main() -> int:
    reason = missing_tools() or hosts.missing_files("bootstrap5")
    if reason:
        print(f"Cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "demo").mkdir()
        (Path(directory) / "bootstrap").mkdir()
        with serve_demo(Path(directory) / "demo") as demo:
            demo_pages = {name: (path, ("light",)) for name, path in PAGES.items()}
            taken = take(demo, OUTPUT, demo_pages, "Password reset e-mail never arrives")
            staff_pages = {name: (path, ("light",)) for name, path in STAFF_PAGES.items()}
            taken += take(
                demo, OUTPUT, staff_pages, "Password reset e-mail never arrives", user="admin"
            )
        with serve_host(Path(directory) / "bootstrap", "bootstrap5", "bootstrap5") as host:
            taken += take(host, OUTPUT, BOOTSTRAP_PAGES, BOOTSTRAP_TICKET)
    for path in taken:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
