"""``FLASKET_*`` configuration: defaults, strict checking, and categories driving every page."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket.config import DEFAULTS, ConfigError, config_value, key
from tests import hostapp
from tests.helpers import Client, Inbox, ext_models, rows

STAFF = "staff@example.test"

CUSTOM_CATEGORIES = [
    {
        "name": "severity",
        "label": "Severity",
        "choices": [("minor", "Minor"), ("major", "Major")],
        "widget": "select",
    },
    {
        "name": "team",
        "label": "Team",
        "choices": [("web", "Web team"), ("ops", "Operations")],
        "widget": "radio",
        "default": "web",
    },
]


def build(**config: Any) -> Flask:
    return hostapp.create_app(**config)


@pytest.mark.one_database
def test_every_option_gets_its_default_config_key(app: Flask) -> None:
    for name, default in DEFAULTS.items():
        assert key(name) == "FLASKET_" + name.upper()
        assert app.config[key(name)] == default, key(name)


@pytest.mark.one_database
@pytest.mark.parametrize("app_config", [{"FLASKET_PER_PAGE": 7, "FLASKET_VISIBILITY": "own"}])
def test_defaults_do_not_replace_keys_the_host_set(app: Flask) -> None:
    assert app.config["FLASKET_PER_PAGE"] == 7
    assert app.config["FLASKET_VISIBILITY"] == "own"
    assert app.config["FLASKET_URL_PREFIX"] == DEFAULTS["url_prefix"]


def test_misspelled_key_is_reported_with_the_right_spelling() -> None:
    with pytest.raises(
        ConfigError, match=r"FLASKET_VISIBILTY .*Did you mean FLASKET_VISIBILITY\?"
    ):
        build(FLASKET_VISIBILTY="own")


def test_unknown_flasket_key_is_reported_even_without_a_near_match() -> None:
    with pytest.raises(ConfigError, match="FLASKET_COLOUR_SCHEME is not a Flasket setting"):
        build(FLASKET_COLOUR_SCHEME="dark")


def test_config_errors_are_value_errors() -> None:
    assert issubclass(ConfigError, ValueError)


def category(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "severity", "choices": ["Minor", "Major"]}
    base.update(changes)
    return base


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"FLASKET_VISIBILITY": "public"}, "FLASKET_VISIBILITY must be one of all, own"),
        ({"FLASKET_PER_PAGE": 0}, "FLASKET_PER_PAGE must be a whole number from 1 to 100"),
        ({"FLASKET_PER_PAGE": 1000}, "FLASKET_PER_PAGE must be a whole number from 1 to 100"),
        ({"FLASKET_PER_PAGE": "25"}, "FLASKET_PER_PAGE must be a whole number from 1 to 100"),
        ({"FLASKET_PER_PAGE": True}, "FLASKET_PER_PAGE must be a whole number"),
        ({"FLASKET_REPLIES_PER_PAGE": 0}, "FLASKET_REPLIES_PER_PAGE must be a whole number"),
        ({"FLASKET_URL_PREFIX": "help"}, "FLASKET_URL_PREFIX must be a path starting with '/'"),
        ({"FLASKET_IS_STAFF": True}, "FLASKET_IS_STAFF must be a callable"),
        ({"FLASKET_STAFF_RECIPIENTS": STAFF}, "FLASKET_STAFF_RECIPIENTS must be a list"),
        ({"FLASKET_CATEGORIES": "urgency"}, "FLASKET_CATEGORIES must be a list"),
        ({"FLASKET_CATEGORIES": [category(choices=[])]}, "'severity' needs at least one choice"),
        ({"FLASKET_CATEGORIES": [category(default="Blocker")]}, "default 'Blocker' is not one"),
        (
            {"FLASKET_CATEGORIES": [category(), category(label="Again")]},
            "'severity' is used by two categories",
        ),
        (
            {"FLASKET_CATEGORIES": [category(name="page")]},
            "'page' is taken by the ticket list's own parameters",
        ),
        ({"FLASKET_CATEGORIES": [category(name="two words")]}, "must be a short identifier"),
        ({"FLASKET_CATEGORIES": [category(widget="checkbox")]}, "widget must be one of"),
        ({"FLASKET_CATEGORIES": [category(choices=[("a", "b", "c")])]}, "a choice is a string"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_invalid_setting_is_rejected_with_a_message_naming_it(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build(**config)


@pytest.mark.one_database
def test_config_value_rejects_an_unknown_option_name(app: Flask) -> None:
    with app.app_context():
        assert config_value("per_page") == DEFAULTS["per_page"]
        with pytest.raises(KeyError, match="nope"):
            config_value("nope")
    assert config_value("visibility", app) == "all"


def ticket_categories(app: Flask, ticket_id: int) -> dict[str, str]:
    category_rows = rows(app, ext_models(app).TicketCategory, ticket_id=ticket_id)
    return {row.name: row.value for row in category_rows}


def submit(client: Client, title: str, **categories: str) -> Any:
    return client.post("/ticket/submit", {"title": title, "body": "Details.", **categories})


class TestCustomCategories:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"FLASKET_CATEGORIES": CUSTOM_CATEGORIES, "FLASKET_STAFF_RECIPIENTS": [STAFF]}

    @pytest.mark.one_database
    def test_submit_form_has_a_field_per_configured_category(self, alice: Client) -> None:
        page = alice.get("/ticket/submit").get_data(as_text=True)
        assert '<label for="severity">Severity</label>' in page
        assert re.search(
            r'<select id="severity" name="severity">'
            r'<option value="">Choose…</option>'
            r'<option value="minor">Minor</option>'
            r'<option value="major">Major</option></select>',
            page,
        )
        assert "<legend>Team</legend>" in page
        web = re.search(r'<input([^>]*) name="team" type="radio" value="web">\s*Web team', page)
        assert web
        assert "checked" in web.group(1)
        assert re.search(r'name="team" type="radio" value="ops">\s*Operations', page)
        for seed_category in ("urgency", "application", "topic"):
            assert f'name="{seed_category}"' not in page

    def test_chosen_values_are_stored_and_shown_with_their_labels(
        self, app: Flask, alice: Client
    ) -> None:
        response = submit(alice, "Checkout broken", severity="major", team="ops")
        assert response.status_code == 303
        ticket_id = int(response.headers["Location"].rsplit("/", 1)[1])
        assert ticket_categories(app, ticket_id) == {"severity": "major", "team": "ops"}

        page = alice.get(f"/ticket/{ticket_id}").get_data(as_text=True)
        assert "<dt>Severity</dt><dd>Major</dd>" in page
        assert "<dt>Team</dt><dd>Operations</dd>" in page

    def test_created_mail_to_staff_lists_category_labels(
        self, alice: Client, inbox: Inbox
    ) -> None:
        ticket_id = alice.submit("Checkout broken", severity="major", team="ops")
        (mail,) = inbox.to(STAFF)
        assert mail.subject == f"[Ticket #{ticket_id}] Checkout broken"
        text = mail.part("plain")
        assert "Severity: Major" in text
        assert "Team: Operations" in text
        html = mail.part("html")
        assert "Severity: Major" in html
        assert "Team: Operations" in html

    def test_all_tickets_page_filters_by_each_configured_category(
        self, alice: Client, bob: Client
    ) -> None:
        alice.submit("Minor web glitch", severity="minor", team="web")
        alice.submit("Major ops outage", severity="major", team="ops")
        alice.submit("Major web bug", severity="major", team="web")

        page = bob.get("/ticket/all").get_data(as_text=True)
        assert re.search(
            r'<select id="flasket-severity" name="severity">\s*<option value="">Any</option>\s*'
            r'<option value="minor">Minor</option><option value="major">Major</option>',
            page,
        )
        assert re.search(
            r'<select id="flasket-team" name="team">\s*<option value="">Any</option>\s*'
            r'<option value="web">Web team</option><option value="ops">Operations</option>',
            page,
        )
        assert 'name="urgency"' not in page

        def titles(query: str) -> set[str]:
            listing = bob.get(f"/ticket/all?{query}").get_data(as_text=True)
            return set(re.findall(r'flasket-number">#\d+</span> ([^<]+)</a>', listing))

        assert titles("") == {"Minor web glitch", "Major ops outage", "Major web bug"}
        assert titles("severity=major") == {"Major ops outage", "Major web bug"}
        assert titles("team=web") == {"Minor web glitch", "Major web bug"}
        assert titles("severity=major&team=web") == {"Major web bug"}
        assert titles("severity=minor&team=ops") == set()
        assert bob.get("/ticket/all?severity=critical").status_code == 400

    @pytest.mark.one_database
    @pytest.mark.parametrize(
        ("choices", "error"),
        [
            ({"severity": "critical", "team": "web"}, "Choose one of: Minor or Major."),
            ({"severity": "minor", "team": "sales"}, "Choose one of: Web team or Operations."),
            ({"severity": "Minor", "team": "web"}, "Choose one of: Minor or Major."),
            ({"team": "web"}, "Choose the severity."),
        ],
    )
    def test_value_outside_the_configured_choices_is_a_form_error(
        self, app: Flask, alice: Client, inbox: Inbox, choices: dict[str, str], error: str
    ) -> None:
        response = submit(alice, "Should not be stored", **choices)
        assert response.status_code == 400
        assert error in response.get_data(as_text=True)
        with app.app_context():
            count = hostapp.db.session.scalar(
                sa.select(sa.func.count()).select_from(ext_models(app).Ticket)
            )
        assert count == 0
        assert rows(app, ext_models(app).TicketCategory) == []
        assert inbox.messages == []
