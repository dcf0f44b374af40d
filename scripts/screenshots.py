"""Take the screenshots the README and the docs show: the seeded demo in headless Chromium."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser.live import (  # noqa: E402
    LiveDemo,
    launch_chromium,
    log_in,
    missing_tools,
    serve_demo,
    ticket_id,
)

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


def take(demo: LiveDemo, output: Path) -> list[Path]:
    ticket = ticket_id(demo, "Password reset e-mail never arrives")
    taken = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        login = browser.new_context()
        log_in(login.new_page(), demo, "alice")
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
            for name, path in PAGES.items():
                page.goto(demo.url + path.format(ticket=ticket))
                target = output / f"{name}-{device}.png"
                page.screenshot(path=str(target), full_page=True, animations="disabled")
                taken.append(target)
            context.close()
        browser.close()
    return taken


def main() -> int:
    reason = missing_tools()
    if reason:
        print(f"Cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory, serve_demo(Path(directory)) as demo:
        for path in take(demo, OUTPUT):
            print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
