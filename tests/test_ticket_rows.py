"""A ticket table's rows come from ``flasket_ticket_row`` (templating.py), not a Jinja loop;
their markup must be what the template wrote before, white space aside.

The reference is the row as ``ticket_table`` in ``flasket/_macros.html`` wrote it in Jinja.
Both are rendered for tickets with titles, names and category labels that need escaping,
with and without categories, assignee and author, a status no longer configured, in
both looks, in English and every shipped language, and in every combination of the
table's optional columns.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flasket.i18n import browser_locale, lazy_gettext
from tests.helpers import ext_models
from tests.hostapp import User, create_app

#: The row of ``ticket_table`` as the template wrote it, with the values it set per table.
REFERENCE = (Path(__file__).parent / "ticket_rows_reference.html").read_text(encoding="utf-8")
ROWS = """\
{% set columns = flasket_ticket_columns(select=select, assignee=assignee) %}
{% for ticket in tickets %}
{{ flasket_ticket_row(ticket, columns) }}
{% endfor %}
"""
#: English and every shipped language.
LANGUAGES = ["en", "ar", "de", "es", "fr", "it", "ja", "pt-BR", "zh-Hans"]
AWKWARD = "<b>\"Q\" & 'A'</b> %(number)s {0}"
CATEGORIES = [
    {
        "name": "team",
        "label": 'Team <&> "x"',
        "choices": [("a&b", 'A & "B" <i>'), ("plain", "Plain")],
    },
    {"name": "urgency", "label": lazy_gettext("Urgency"), "choices": [("High", "High")]},
]


def collapsed(markup: str) -> str:
    """``markup`` with every run of white space one space: what a browser makes of it."""
    return re.sub(r"\s+", " ", markup).strip()


def tickets(app: Flask) -> list[Any]:
    """Tickets as a list shows them, never stored: every combination the row branches on."""
    models = ext_models(app)
    eve = User(id=7, username=AWKWARD, email="eve@example.test")
    unnamed = User(id=8, username="", email="unnamed@example.test")
    now = datetime.now(timezone.utc)
    made = []
    for number, (title, status, state, author, assignee, categories) in enumerate(
        [
            (AWKWARD, "open", "open", eve, None, {"team": "a&b", "urgency": "High"}),
            ("Plain", "closed", "closed", None, eve, {}),
            ("Old status", "retired", "closed", unnamed, unnamed, {"team": "plain"}),
            ("Unknown value", "waiting", "open", eve, None, {"team": "gone"}),
        ],
        start=41,
    ):
        ticket = models.Ticket(
            id=number,
            title=title,
            body="",
            status=status,
            state=state,
            author=author,
            author_id=author.id if author is not None else None,
            assignee=assignee,
            assignee_id=assignee.id if assignee is not None else None,
            reply_count=number * 1000,
            updated_at=now - timedelta(days=number - 40),
        )
        ticket.categories = [
            models.TicketCategory(name=name, value=value) for name, value in categories.items()
        ]
        made.append(ticket)
    return made


@pytest.mark.parametrize("look", ["flasket", "bootstrap5"])
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("select", "assignee"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_a_ticket_row_is_the_templates_row(
    tmp_path: Path, look: str, language: str, select: bool, assignee: bool
) -> None:
    (tmp_path / "base.html").write_text("{% block content %}{% endblock %}")
    app = create_app(
        template_folder=str(tmp_path),
        FLASKET_BASE_TEMPLATE="base.html",
        FLASKET_LOOK=look,
        FLASKET_CATEGORIES=CATEGORIES,
        FLASKET_LOCALE_SELECTOR=browser_locale,
    )
    with app.test_request_context("/ticket/all", headers={"Accept-Language": language}):
        listed = tickets(app)
        values = {"tickets": listed, "select": select, "assignee": assignee}
        expected = app.jinja_env.from_string(REFERENCE).render(values)
        made = app.jinja_env.from_string(ROWS).render(values)
    assert collapsed(made) == collapsed(expected)
    assert made.count("<tr>") == len(listed)
    # In the reader's language: the "Replies" heading is translated in every catalog.
    assert ('data-label="Replies"' in made) == (language == "en")
    assert "<b>" not in made
    assert "&lt;b&gt;&#34;Q&#34; &amp; &#39;A&#39;&lt;/b&gt;" in made
    assert "Team &lt;&amp;&gt; &#34;x&#34;" in made  # the category's label, escaped
    assert "A &amp; &#34;B&#34; &lt;i&gt;" in made  # and its value's
