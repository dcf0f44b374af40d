"""The page title reaches the host's layout as a `title` block and as a `title` variable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template

from tests.helpers import Client

#: The Flask Mega-Tutorial's layout (and its many copies): the title is a variable.
VARIABLE_BASE = """\
<!doctype html>
<html lang="en">
<head><title>
{%- if title %}{{ title }} - Microblog{% else %}Welcome to Microblog{% endif -%}
</title></head>
<body>{% block content %}{% endblock %}</body>
</html>
"""
#: A layout that prints `title` unconditionally: every page must define it (StrictUndefined).
STRICT_BASE = """\
<!doctype html>
<html lang="en"><head><title>{{ title }}</title></head>
<body><h1 id="host-heading">{{ title }}</h1>{% block content %}{% endblock %}</body></html>
"""
HOST_PAGE = '{% extends "base.html" %}{% block content %}<p>host page</p>{% endblock %}'
#: Page titles are template rendering of fixed content: they cannot differ by database.
pytestmark = pytest.mark.one_database


def page_title(client: Client, url: str) -> str:
    match = re.search(r"<title>(.*?)</title>", client.get(url).get_data(as_text=True))
    assert match, f"{url}: no <title>"
    return match.group(1)


def host_with(tmp_path: Path, base: str) -> dict[str, Any]:
    folder = tmp_path / "host_templates"
    folder.mkdir()
    (folder / "base.html").write_text(base)
    (folder / "host_page.html").write_text(HOST_PAGE)
    return {"FLASKET_BASE_TEMPLATE": "base.html", "template_folder": str(folder)}


class TestTitleVariable:
    @pytest.fixture
    def app_config(self, tmp_path: Path) -> dict[str, Any]:
        return host_with(tmp_path, VARIABLE_BASE)

    def test_a_layout_printing_title_shows_each_flasket_page_title(
        self, app: Flask, alice: Client
    ) -> None:
        ticket_id = alice.submit(title="Printer is on fire")
        expected = {
            "/ticket/": "Overview",
            "/ticket/submit": "Submit a ticket",
            f"/ticket/{ticket_id}": f"#{ticket_id} Printer is on fire",
            "/ticket/user/1": "alice · Submitted",
            "/ticket/999999": "Not found",
        }
        for url, name in expected.items():
            assert page_title(alice, url) == f"{name} · Tickets - Microblog", url
        assert page_title(alice, "/ticket/all").endswith(" · Tickets - Microblog")

    def test_a_ticket_title_is_escaped_once_in_the_variable(
        self, app: Flask, alice: Client
    ) -> None:
        ticket_id = alice.submit(title="<b>Tom & Jerry</b>")
        assert page_title(alice, f"/ticket/{ticket_id}") == (
            f"#{ticket_id} &lt;b&gt;Tom &amp; Jerry&lt;/b&gt; · Tickets - Microblog"
        )

    def test_the_host_own_pages_keep_their_title(self, app: Flask, alice: Client) -> None:
        with app.test_request_context():
            welcome = render_template("host_page.html", title=None)
            assert "<title>Welcome to Microblog</title>" in welcome
            assert "<title>Explore - Microblog</title>" in render_template(
                "host_page.html", title="Explore"
            )


class TestHostThatDefinesTitleItself:
    """A host that prints `title` everywhere and sets a default in a context processor."""

    @pytest.fixture
    def app_config(self, tmp_path: Path) -> dict[str, Any]:
        return host_with(tmp_path, STRICT_BASE)

    @pytest.fixture
    def host_default(self, app: Flask) -> None:
        app.context_processor(lambda: {"title": "Acme"})

    def test_flasket_pages_override_the_host_default_and_host_pages_keep_it(
        self, app: Flask, host_default: None, alice: Client
    ) -> None:
        page = alice.get("/ticket/submit").get_data(as_text=True)
        assert "<title>Submit a ticket · Tickets</title>" in page
        assert '<h1 id="host-heading">Submit a ticket · Tickets</h1>' in page
        with app.test_request_context():
            assert "<title>Acme</title>" in render_template("host_page.html")

    def test_a_layout_printing_title_works_without_any_default(
        self, app: Flask, alice: Client
    ) -> None:
        assert page_title(alice, "/ticket/") == "Overview · Tickets"


def test_the_standalone_page_still_fills_its_title_block(app: Flask, alice: Client) -> None:
    ticket_id = alice.submit(title="Standalone title")
    assert page_title(alice, "/ticket/") == "Overview · Tickets"
    assert page_title(alice, f"/ticket/{ticket_id}") == f"#{ticket_id} Standalone title · Tickets"
