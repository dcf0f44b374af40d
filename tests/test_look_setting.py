"""FLASKET_LOOK: the default look, or the pages made of Bootstrap 5's own components.

The browser checks the Bootstrap look inside a Bootstrap host (tests/browser/
test_bootstrap_look.py); these check the setting, the markup each look renders and the small
stylesheet the Bootstrap look links instead of Flasket's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import flasket
from flasket import templating
from flasket.config import ConfigError
from tests.helpers import Client, counting_queries
from tests.hostapp import create_app
from tests.test_templates import selectors_of

#: Rendering fixed content and checking settings: nothing here depends on the database.
pytestmark = pytest.mark.one_database

ADDITIONS = Path(flasket.__file__).parent / "static" / "flasket" / "flasket-bootstrap.css"
ADDITIONS_URL = "/ticket/static/flasket/flasket-bootstrap.css"
HOST_BASE = """\
<!doctype html>
<html lang="en">
<head><title>{% block title %}{% endblock %}</title></head>
<body><main>{% block content %}{% endblock %}</main></body>
</html>
"""
LOOKS_MESSAGE = "FLASKET_LOOK must be one of flasket, bootstrap5."
#: The classes of Flasket's own stylesheet that the Bootstrap look must not use.
OWN_CLASSES = re.compile(
    r"flasket-(button|message|status|empty|result-count|form|field|hint|choice|tabs|pager"
    r"|counts|filters?|post|tag|meta|actions|replies|followers|reply-list|excerpt|number"
    r"|visually-hidden|inline-form)\b"
)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"FLASKET_LOOK": "bootstrap"}, LOOKS_MESSAGE),
        ({"FLASKET_LOOK": None}, LOOKS_MESSAGE),
        ({"FLASKET_LOOK": "bootstrap5"}, 'FLASKET_LOOK = "bootstrap5" needs FLASKET_BASE'),
    ],
)
def test_a_look_flasket_cannot_show_is_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_app(**config)


def host_app(folder: Path, **config: Any) -> Flask:
    """The test host with its own layout, ``base.html``, in ``folder``."""
    (folder / "base.html").write_text(HOST_BASE)
    return create_app(template_folder=str(folder), FLASKET_BASE_TEMPLATE="base.html", **config)


def class_attributes(page: str) -> str:
    return " ".join(re.findall(r'class="([^"]*)"', page))


def test_the_default_look_is_flaskets_own(tmp_path: Path) -> None:
    assert create_app().config["FLASKET_LOOK"] == "flasket"
    app = host_app(tmp_path, FLASKET_LOOK="bootstrap5")
    assert app.config["FLASKET_LOOK"] == "bootstrap5"


def test_every_look_names_the_same_parts() -> None:
    looks = list(templating.CLASSES.values())
    assert len(looks) == 2
    assert all(look.keys() == looks[0].keys() for look in looks)


@pytest.mark.parametrize(
    ("look", "open_badge", "closed_badge"),
    [
        (
            "flasket",
            "flasket-status flasket-status--open",
            "flasket-status flasket-status--closed",
        ),
        ("bootstrap5", "badge text-bg-success", "badge text-bg-secondary"),
    ],
)
def test_a_status_badge_wears_the_looks_classes_with_its_symbol_and_word(
    tmp_path: Path, look: str, open_badge: str, closed_badge: str
) -> None:
    app = host_app(tmp_path, FLASKET_LOOK=look)
    with app.test_request_context("/ticket/"):
        assert templating.status_badge("open") == (
            f'<span class="{open_badge}"><span aria-hidden="true">\N{BLACK CIRCLE}</span>'
            " Open</span>"
        )
        assert templating.status_badge("closed") == (
            f'<span class="{closed_badge}"><span aria-hidden="true">\N{CHECK MARK}</span>'
            " Closed</span>"
        )


def test_the_look_is_read_once_per_request(tmp_path: Path) -> None:
    app = host_app(tmp_path, FLASKET_LOOK="bootstrap5")
    with app.test_request_context("/ticket/"):
        assert templating.look() == "bootstrap5"
        app.config["FLASKET_LOOK"] = "flasket"
        assert templating.css_class("button_primary") == "btn btn-primary"
    with app.test_request_context("/ticket/"):
        assert templating.css_class("button_primary") == "flasket-button flasket-button--primary"


class TestBootstrapLook:
    @pytest.fixture
    def app_config(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "base.html").write_text(HOST_BASE)
        return {
            "FLASKET_BASE_TEMPLATE": "base.html",
            "FLASKET_LOOK": "bootstrap5",
            "template_folder": str(tmp_path),
        }

    def pages(self, client: Client, ticket_id: int) -> dict[str, str]:
        statuses = {
            "/ticket/": 200,
            "/ticket/submit": 200,
            f"/ticket/{ticket_id}": 200,
            "/ticket/all?status=all&per_page=1": 200,
            "/ticket/all?status=all&author=nobody": 200,
            "/ticket/user/1": 200,
            "/ticket/user/2?show=replies": 200,
            "/ticket/999999": 404,
        }
        found = {}
        for url, status in statuses.items():
            response = client.get(url)
            assert response.status_code == status, url
            found[url] = response.get_data(as_text=True)
        response = client.post("/ticket/submit", {"title": ""})
        assert response.status_code == 400
        found["submit with errors"] = response.get_data(as_text=True)
        return found

    def test_pages_link_the_additions_instead_of_flaskets_stylesheet(
        self, app: Flask, alice: Client, bob: Client
    ) -> None:
        ticket_id = alice.submit()
        bob.submit(title="Second")
        bob.reply(ticket_id)
        for url, page in self.pages(alice, ticket_id).items():
            assert page.count(f'<link rel="stylesheet" href="{ADDITIONS_URL}">') == 1, url
            assert "flasket.css" not in page, url
            assert OWN_CLASSES.findall(class_attributes(page)) == [], url

    def test_pages_are_made_of_bootstraps_components(
        self, app: Flask, alice: Client, bob: Client
    ) -> None:
        ticket_id = alice.submit()
        bob.submit(title="Second")
        bob.reply(ticket_id)
        pages = self.pages(alice, ticket_id)
        expected = {
            "/ticket/": ['class="nav nav-pills', 'class="btn btn-primary"', "table table-hover"],
            f"/ticket/{ticket_id}": ['class="card mb-3"', "card-header", "btn-outline-danger"],
            "/ticket/all?status=all&per_page=1": ["nav nav-tabs", "pagination", "form-select"],
            "/ticket/all?status=all&author=nobody": ['class="alert alert-danger"'],
            "/ticket/user/2?show=replies": ["list-group-item", "badge rounded-pill"],
            "/ticket/999999": ['class="alert alert-danger" role="alert"'],
            "submit with errors": [
                'class="form-control is-invalid"',
                'class="invalid-feedback d-block" id="title-error"',
                'aria-describedby="title-hint title-error"',
                'class="form-check-input"',
                'class="form-text" id="title-hint"',
            ],
        }
        for url, parts in expected.items():
            for part in parts:
                assert part in pages[url], (url, part)

    def test_the_look_changes_no_statement(self, app: Flask, alice: Client, bob: Client) -> None:
        ticket_id = alice.submit()
        bob.submit(title="Second")
        bob.reply(ticket_id)
        self.pages(alice, ticket_id)  # warm: the first request of an app reads more
        statements = {}
        for look in ("bootstrap5", "flasket"):
            app.config["FLASKET_LOOK"] = look
            with counting_queries(app) as queries:
                self.pages(alice, ticket_id)
            statements[look] = [re.sub(r"\s+", " ", query) for query in queries]
        assert statements["bootstrap5"] == statements["flasket"]
        assert len(statements["flasket"]) > 20


def test_the_additions_are_served_by_the_blueprint(app: Flask, alice: Client) -> None:
    with alice.get(ADDITIONS_URL) as response:
        assert response.status_code == 200
        assert response.mimetype == "text/css"
        assert response.get_data() == ADDITIONS.read_bytes()


def test_every_rule_of_the_additions_is_scoped_to_flasket() -> None:
    selectors = selectors_of(ADDITIONS.read_text(encoding="utf-8"))
    assert 5 < len(selectors) < 40
    scoped = re.compile(r'(\[data-bs-theme="dark"\] )?\.flasket(?![\w-])')
    assert [selector for selector in selectors if not scoped.match(selector)] == []
    # Bootstrap's colours, so the dark colour mode applies; logical sides, for right to left.
    css = ADDITIONS.read_text(encoding="utf-8")
    assert "var(--bs-body-bg)" in css
    assert "var(--bs-border-color)" in css
    assert not re.search(r"#[0-9a-fA-F]{3,6}\b|rgb\(", css)
    assert not re.search(r"(margin|padding|border)-(left|right)\b|float: *(left|right)", css)
