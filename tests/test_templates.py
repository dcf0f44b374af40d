"""Layouts and overrides: Flasket wears the host's layout, or its own small standalone page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import flasket
from flasket import templating
from tests.helpers import Client, Inbox

PACKAGE = Path(flasket.__file__).parent
STYLESHEET = PACKAGE / "static" / "flasket" / "flasket.css"
STYLESHEET_URL = "/ticket/static/flasket/flasket.css"
STYLESHEET_LINK = f'<link rel="stylesheet" href="{STYLESHEET_URL}">'
#: The app's own host name (the host app's SERVER_NAME): the only one a page may name.
OWN_HOSTS = {"host.test"}
ABSOLUTE_URL = re.compile(r"https?://([^/\s\"'<>)]+)", re.IGNORECASE)
PROTOCOL_RELATIVE = re.compile(r"""(?:src|href|action)\s*=\s*["']?//|url\(\s*["']?//""")
#: Layouts and overrides are template rendering of fixed content: they cannot differ by database.
pytestmark = pytest.mark.one_database

HOST_BASE = """\
<!doctype html>
<html lang="en">
<head><title>{% block title %}Host{% endblock %} | Host App</title></head>
<body>
<nav id="host-nav">HOST-NAV-MARKER</nav>
<div id="host-content">
{% block content %}{% endblock %}
</div><!-- /host-content -->
<footer>HOST-FOOTER-MARKER</footer>
</body>
</html>
"""


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def page_urls(ticket_id: int) -> dict[str, int]:
    """Every kind of Flasket page, with the status it answers."""
    return {
        "/ticket/": 200,
        "/ticket/index": 200,
        "/ticket/submit": 200,
        f"/ticket/{ticket_id}": 200,
        "/ticket/all": 200,
        "/ticket/all?status=all&author=nobody": 200,
        "/ticket/user/1": 200,
        "/ticket/999999": 404,
        "/ticket/all?status=bogus": 400,
    }


def rendered_pages(client: Client, ticket_id: int) -> dict[str, str]:
    pages = {}
    for url, status in page_urls(ticket_id).items():
        response = client.get(url)
        assert response.status_code == status, url
        pages[url] = text(response)
    return pages


def foreign_references(content: str) -> list[str]:
    """URLs in ``content`` that point anywhere but the app itself."""
    foreign = [
        match.group(0)
        for match in ABSOLUTE_URL.finditer(content)
        if match.group(1).lower() not in OWN_HOSTS
    ]
    return foreign + [match.group(0) for match in PROTOCOL_RELATIVE.finditer(content)]


# --- the host's layout ------------------------------------------------------


@pytest.fixture
def host_templates(tmp_path: Path) -> Path:
    folder = tmp_path / "host_templates"
    folder.mkdir()
    (folder / "base.html").write_text(HOST_BASE)
    return folder


def write_template(folder: Path, name: str, content: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


class TestHostLayout:
    @pytest.fixture
    def app_config(self, host_templates: Path) -> dict[str, Any]:
        return {"FLASKET_BASE_TEMPLATE": "base.html", "template_folder": str(host_templates)}

    def test_every_page_wears_the_host_layout_with_flasket_inside_it(
        self, app: Flask, alice: Client
    ) -> None:
        ticket_id = alice.submit(title="Host layout ticket")
        for url, page in rendered_pages(alice, ticket_id).items():
            assert "HOST-NAV-MARKER" in page, url
            assert "HOST-FOOTER-MARKER" in page, url
            assert "flasket-standalone" not in page, url
            assert page.count("<html") == 1, url
            start, end = (
                page.index('<div id="host-content">'),
                page.index("<!-- /host-content -->"),
            )
            inside = page[start:end]
            assert '<div class="flasket" lang="en" dir="ltr">' in inside, url
            assert '<nav class="flasket-nav"' in inside, url
            assert STYLESHEET_LINK in inside, url

    def test_pages_fill_the_host_title_block(self, app: Flask, alice: Client) -> None:
        ticket_id = alice.submit(title="Title in host")
        assert "<title>Open tickets · Tickets | Host App</title>" in text(alice.get("/ticket/all"))
        assert f"<title>#{ticket_id} Title in host · Tickets | Host App</title>" in text(
            alice.get(f"/ticket/{ticket_id}")
        )

    def test_page_content_renders_inside_the_host_layout(
        self, app: Flask, alice: Client, bob: Client
    ) -> None:
        ticket_id = alice.submit(title="Visible in host", body="Body shown in host.")
        bob.reply(ticket_id, "A reply shown in host.")
        page = text(alice.get(f"/ticket/{ticket_id}"))
        inside = page[page.index('<div id="host-content">') : page.index("<!-- /host-content -->")]
        for content in ("Visible in host", "Body shown in host.", "A reply shown in host."):
            assert content in inside

    def test_a_host_template_overrides_a_flasket_page(
        self, app: Flask, alice: Client, host_templates: Path
    ) -> None:
        write_template(
            host_templates,
            "flasket/ticket.html",
            '{% extends "flasket/layout.html" %}'
            "{% block flasket_content %}"
            '<p id="host-ticket">HOST TICKET PAGE for #{{ ticket.id }}: {{ ticket.title }}</p>'
            "{% endblock %}",
        )
        ticket_id = alice.submit(title="Overridden")
        page = text(alice.get(f"/ticket/{ticket_id}"))
        assert f"HOST TICKET PAGE for #{ticket_id}: Overridden" in page
        assert "Post reply" not in page
        assert "HOST-NAV-MARKER" in page
        assert 'class="flasket-filters"' in text(alice.get("/ticket/all"))

    def test_a_host_list_template_may_show_what_flasket_lists_leave_out(
        self, app: Flask, alice: Client, host_templates: Path
    ) -> None:
        # Flasket's lists load neither the description nor category objects; a host page
        # that shows them still gets the right values (one more query per row).
        write_template(
            host_templates,
            "flasket/all.html",
            '{% extends "flasket/layout.html" %}'
            "{% block flasket_content %}{% for ticket in tickets.items %}"
            '<p class="host-row">#{{ ticket.id }} {{ ticket.body }}'
            "{% for category in ticket.categories %} {{ category.name }}={{ category.value }}"
            "{% endfor %}</p>{% endfor %}{% endblock %}",
        )
        first = alice.submit(title="First", body="First description.")
        second = alice.submit(title="Second", body="Second description.", urgency="Low")
        rows = re.findall(r'<p class="host-row">([^<]*)</p>', text(alice.get("/ticket/all")))
        assert rows == [
            f"#{second} Second description. application=Website topic=Bug report urgency=Low",
            f"#{first} First description. application=Website topic=Bug report urgency=High",
        ]

    def test_a_host_template_overrides_an_email_text(
        self, app: Flask, alice: Client, bob: Client, inbox: Inbox, host_templates: Path
    ) -> None:
        write_template(
            host_templates,
            "flasket/email/replied.txt",
            "HOST REPLY MAIL: {{ flasket_user_name(actor) }} wrote {{ reply.body }}"
            " on #{{ ticket.id }}\n{{ ticket_url }}\n",
        )
        ticket_id = alice.submit(title="Mail override")
        inbox.clear()
        assert bob.reply(ticket_id, "Hello from bob").status_code == 303
        (message,) = inbox.to("alice@example.test")
        plain = message.part("plain")
        assert f"HOST REPLY MAIL: bob wrote Hello from bob on #{ticket_id}" in plain
        assert f"http://host.test/ticket/{ticket_id}#reply-" in plain
        assert "You get this e-mail because" not in plain
        assert "bob replied on " in message.part("html")

    def test_host_layout_pages_reference_no_third_party_host(
        self, app: Flask, alice: Client
    ) -> None:
        ticket_id = alice.submit()
        for url, page in rendered_pages(alice, ticket_id).items():
            assert foreign_references(page) == [], url


# --- the standalone layout --------------------------------------------------


def test_standalone_layout_is_a_full_accessible_html_page(app: Flask, alice: Client) -> None:
    ticket_id = alice.submit()
    for url, page in rendered_pages(alice, ticket_id).items():
        assert page.lstrip().lower().startswith("<!doctype html>"), url
        assert '<html lang="en" dir="ltr">' in page, url
        assert re.search(r'<meta name="viewport" content="width=device-width[^"]*">', page), url
        assert '<meta charset="utf-8">' in page, url
        assert re.search(r"<title>[^<]+</title>", page), url
        assert page.count("<main") == 1, url
        assert '<body class="flasket-standalone">' in page, url
        assert '<a class="flasket-skip" href="#flasket-main">' in page, url
        main = page[page.index('<main id="flasket-main">') : page.index("</main>")]
        assert '<div class="flasket" lang="en" dir="ltr">' in main, url
        assert STYLESHEET_LINK in page, url


def test_stylesheet_is_served_by_the_blueprint(app: Flask, alice: Client) -> None:
    with alice.get(STYLESHEET_URL) as response:
        assert response.status_code == 200
        assert response.mimetype == "text/css"
        assert response.get_data() == STYLESHEET.read_bytes()


def test_standalone_pages_reference_no_third_party_host(app: Flask, alice: Client) -> None:
    ticket_id = alice.submit()
    for url, page in rendered_pages(alice, ticket_id).items():
        assert foreign_references(page) == [], url


def test_emails_link_only_to_the_app_itself(
    app: Flask, alice: Client, bob: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    bob.reply(ticket_id, "See http://host.test/ticket/ for more")
    alice.post(f"/ticket/{ticket_id}/close")
    assert inbox.messages
    for message in inbox.messages:
        for part in ("plain", "html"):
            assert foreign_references(message.part(part)) == [], (message.subject, part)


def package_files() -> list[Path]:
    files = sorted(
        path
        for folder in (PACKAGE / "templates", PACKAGE / "static")
        for path in folder.rglob("*")
        if path.is_file()
    )
    assert files
    return files


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_template_or_static_file_references_a_third_party_host(path: Path) -> None:
    content = path.read_text(encoding="utf-8")
    assert ABSOLUTE_URL.findall(content) == []
    assert PROTOCOL_RELATIVE.findall(content) == []
    assert "@import" not in content


def test_the_url_check_notices_foreign_references() -> None:
    page = (
        '<a href="http://host.test/ticket/1">own</a>'
        '<link href="https://cdn.example.com/x.css">'
        '<script src="//evil.example/x.js"></script>'
    )
    assert foreign_references(page) == ["https://cdn.example.com", 'src="//']


# --- the stylesheet stays in its own scope ----------------------------------

SCOPED = re.compile(
    r"(?::where\(\.flasket\)|\.flasket(?:-[\w-]+)?|body\.flasket-standalone)(?![\w-])"
)
NESTING_AT_RULES = ("@media", "@supports")


def split_selectors(prelude: str) -> list[str]:
    """``a, b:is(c, d)`` -> ``["a", "b:is(c, d)"]``: commas inside brackets do not split."""
    parts, depth, current = [], 0, ""
    for char in prelude:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [part for part in parts if part]


def closing_brace(css: str, opening: int) -> int:
    depth = 0
    for index in range(opening, len(css)):
        if css[index] == "{":
            depth += 1
        elif css[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise AssertionError(f"unbalanced braces after {css[opening : opening + 40]!r}")


def selectors_of(css: str) -> list[str]:
    """Every selector of a stylesheet; at-rules other than @media/@supports count as one."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    found: list[str] = []
    position = 0
    while True:
        opening = css.find("{", position)
        if opening == -1:
            trailing = css[position:].strip()
            if trailing:
                found.append(trailing)
            return found
        prelude = css[position:opening]
        *statements, prelude = prelude.split(";")
        found += [statement.strip() for statement in statements if statement.strip()]
        prelude = prelude.strip()
        closing = closing_brace(css, opening)
        if prelude.startswith("@"):
            if prelude.split()[0] in NESTING_AT_RULES:
                found += selectors_of(css[opening + 1 : closing])
            else:
                found.append(prelude)
        else:
            found += split_selectors(prelude)
        position = closing + 1


def unscoped(css: str) -> list[str]:
    return [selector for selector in selectors_of(css) if not SCOPED.match(selector)]


def test_the_scope_check_notices_unscoped_rules() -> None:
    css = """
    /* a, b { } */
    a { color: red }
    .flasket a, .other { color: blue }
    .flasketeer { }
    body { margin: 0 }
    body.flasket-standalone, .flasket-x:is(p, q) > li { }
    @import url("x.css");
    @media (max-width: 40rem) { p { } .flasket-y { } }
    @font-face { font-family: x; }
    """
    assert unscoped(css) == [
        "a",
        ".other",
        ".flasketeer",
        "body",
        '@import url("x.css")',
        "p",
        "@font-face",
    ]


def test_every_stylesheet_rule_is_scoped_to_flasket() -> None:
    css = STYLESHEET.read_text(encoding="utf-8")
    selectors = selectors_of(css)
    assert len(selectors) > 50
    assert unscoped(css) == []


def masthead(page: str) -> str:
    return page[page.index('<header class="flasket-masthead">') : page.index("</header>")]


def test_standalone_layout_links_back_to_the_host_and_to_its_log_out(
    app: Flask, alice: Client
) -> None:
    header = masthead(text(alice.get("/ticket/")))
    assert '<a href="/">← Back to the site</a>' in header
    assert '<a href="/logout">Log out</a>' in header
    # Under a script root the way back is the app's home, not the server's.
    mounted = masthead(text(alice.http.get("/ticket/", base_url="http://host.test/app")))
    assert '<a href="/app/">← Back to the site</a>' in mounted
    assert '<a href="/app/logout">Log out</a>' in mounted


def host_links(*routes: tuple[str, str, list[str]]) -> tuple[str | None, str | None]:
    """(home, log-out) the standalone layout finds among these (rule, endpoint, methods)."""
    host = Flask(__name__)
    for rule, endpoint, methods in routes:
        host.add_url_rule(rule, endpoint, lambda: "", methods=methods)
    with host.test_request_context():
        return templating.host_home_url(), templating.host_logout_url()


def test_the_log_out_link_appears_only_for_a_log_out_page_a_link_can_reach() -> None:
    assert host_links() == (None, None)
    assert host_links(("/", "home", ["GET"])) == ("/", None)
    assert host_links(("/bye", "auth.logout", ["POST"])) == (None, None)
    assert host_links(("/bye/<who>", "logout", ["GET"])) == (None, None)
    assert host_links(("/bye", "auth.logout", ["GET", "POST"])) == (None, "/bye")
    assert host_links(("/a", "auth.logout", ["GET"]), ("/b", "logout", ["GET"])) == (None, "/b")
    assert host_links(("/", "flasket.index", ["GET"])) == (None, None)


def test_standalone_layout_shows_flaskets_messages_but_not_the_hosts(
    app: Flask, login: Any
) -> None:
    visitor = login(None)
    assert visitor.get("/ticket/").status_code == 302  # Flask-Login flashes "Please log in"
    assert visitor.http.post("/login", data={"username": "alice"}).status_code == 302
    assert "Please log in" not in text(visitor.get("/ticket/"))

    visitor.username = "alice"
    ticket_id = visitor.submit()
    assert f"Ticket #{ticket_id} submitted." in text(visitor.get(f"/ticket/{ticket_id}"))
