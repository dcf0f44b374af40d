"""Fixtures for the browser tests: one Chromium per session, a fresh context per test.

Two seeded demo servers run for the whole session: ``host`` wears the microblog's own
layout (FLASKET_BASE_TEMPLATE="base.html"), ``standalone`` Flasket's default page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.live import LOOKS, LiveDemo, launch_chromium, log_in, missing_tools, serve_demo

try:
    from playwright import sync_api
except ImportError:  # playwright comes with the `test` extra; without it there is nothing to run
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveDemo]]:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    with (
        serve_demo(tmp_path_factory.mktemp("host"), "host") as host,
        serve_demo(tmp_path_factory.mktemp("standalone"), "standalone") as standalone,
    ):
        yield {"host": host, "standalone": standalone}


@pytest.fixture(scope="session")
def browser(demos: dict[str, LiveDemo]) -> Iterator[Any]:
    """Chromium, closed before the servers stop so that no connection is left open."""
    with sync_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def demo(demos: dict[str, LiveDemo]) -> LiveDemo:
    """The demo in its own layout, the one a visitor of scripts/demo sees."""
    return demos["host"]


@pytest.fixture(params=list(LOOKS))
def look(request: pytest.FixtureRequest) -> str:
    """Each look in turn: the host's layout and Flasket's standalone page."""
    return str(request.param)


@pytest.fixture(scope="session")
def _logins(browser: Any) -> dict[tuple[str, str], Any]:
    """Cookies of each (demo url, user) logged in once, so tests skip the slow password hash."""
    return {}


class Visitor:
    """A browser context for one test; ``requests`` lists every URL any of its pages asked for."""

    def __init__(self, browser: Any, logins: dict[tuple[str, str], Any]) -> None:
        self.browser = browser
        self.logins = logins
        self.contexts: list[Any] = []
        self.requests: list[str] = []

    def page(
        self, demo: LiveDemo, user: str | None = None, width: int = 1280, **options: Any
    ) -> Any:
        """A new page in a fresh context, logged in as ``user`` when given."""
        state = None
        if user is not None:
            key = (demo.url, user)
            if key not in self.logins:
                context = self.browser.new_context()
                log_in(context.new_page(), demo, user)
                self.logins[key] = context.storage_state()
                context.close()
            state = self.logins[key]
        context = self.browser.new_context(
            viewport={"width": width, "height": 800}, storage_state=state, **options
        )
        context.set_default_timeout(10_000)
        context.on("request", lambda request: self.requests.append(request.url))
        self.contexts.append(context)
        return context.new_page()

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if urlsplit(url).hostname != "127.0.0.1"]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def visitor(browser: Any, _logins: dict[tuple[str, str], Any]) -> Iterator[Visitor]:
    person = Visitor(browser, _logins)
    yield person
    person.close()
    assert not person.foreign_requests(), "a page loaded something from another host"


@pytest.fixture
def open_as(visitor: Visitor, demo: LiveDemo) -> Callable[..., Any]:
    """``open_as("alice", "/ticket/")``: a new page of the host-look demo, logged in, at a path."""

    def open_page(user: str | None, path: str, **options: Any) -> Any:
        page = visitor.page(demo, user, **options)
        page.goto(demo.url + path)
        return page

    return open_page
