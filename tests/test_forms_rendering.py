"""Flasket's forms render their hidden inputs and plain selects themselves
(:class:`flasket.forms.FlasketForm`); the markup must be WTForms' own, byte for byte.

Every field of every form is rendered both ways, with the attributes the templates give
and with awkward ones (quotes, markup, ``data_``/``aria_`` names, True and False), with
each choice selected in turn and with values that need escaping. Fields the fast path does
not handle (groups, several values, disabled, choices with attributes) are WTForms' own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import HiddenField, SelectField, SelectMultipleField
from wtforms.validators import DataRequired

from flasket import forms
from flasket.proxies import current_flasket

AWKWARD = [
    {},
    {"id": "flasket-x", "class_": "form-select"},
    {"class": "a b", "data_role": 'say "hi"', "aria_label": "<b>&</b>", "hidden": True},
    {"disabled": False, "required": True, "value": "<i>x</i>"},
    {"title": Markup('<b title="q">bold</b>')},
]
CHOICES = [
    ("", "Nobody"),
    ("42", 'Zoë "Z" <admin> & co'),
    ("a&b", "ampersand"),
    ('quote"d', Markup("<em>marked</em>")),
]


def all_forms() -> list[Any]:
    """One instance of every form class, the category ones with the app's categories."""
    categories = current_flasket.categories()
    made: list[Any] = [
        forms.ActionForm(),
        forms.StatusForm(from_status="open"),
        forms.AssignForm(from_assignee='7"<'),
        forms.DuplicateForm(),
        forms.BulkForm(back="queue=mine&sort=oldest"),
        forms.ReplyForm(),
        forms.NoteForm(),
        forms.ReviseForm(),
        forms.ticket_form(categories),
        forms.edit_form(categories),
    ]
    for form in made:
        if hasattr(form, "offer"):
            if isinstance(form, forms.AssignForm):
                form.offer(CHOICES)
            elif isinstance(form, forms.BulkForm):
                form.offer(CHOICES, CHOICES[1:], CHOICES[:2])
            else:
                form.offer(("", "Keep"), CHOICES[1:], CHOICES[:2])
    return made


def wtforms_own(field: Any, attrs: dict[str, Any]) -> Markup:
    """The field as WTForms renders it, without Flasket's Meta."""
    return Markup(FlaskForm.Meta().render_field(field, attrs))  # noqa: S704 - WTForms escaped it


def rendered_fields(form: Any) -> Iterator[tuple[str, Any]]:
    for field in form:
        yield f"{type(form).__name__}.{field.name}", field


@pytest.fixture
def request_context(app: Flask) -> Iterator[None]:
    with app.test_request_context("/ticket/"):
        yield


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("attrs", AWKWARD, ids=["plain", "template", "names", "flags", "markup"])
def test_every_field_of_every_form_renders_as_wtforms_renders_it(attrs: dict[str, Any]) -> None:
    checked = 0
    for form in all_forms():
        for name, field in rendered_fields(form):
            values = [field.data]
            if isinstance(field, SelectField) and isinstance(field.choices, list):
                values += [c[0] if isinstance(c, tuple) else c.value for c in field.choices]
            for value in values:
                field.data = value
                assert str(field(**attrs)) == str(wtforms_own(field, dict(attrs))), (name, value)
                checked += 1
    assert checked > 80


@pytest.mark.usefixtures("request_context")
def test_hidden_tag_is_wtforms_own() -> None:
    for form in all_forms():
        expected = Markup("\n").join(
            wtforms_own(field, {})
            for field in form
            if isinstance(field.widget, type(form.csrf_token.widget))
        )
        assert str(form.hidden_tag()) == str(expected), type(form).__name__


try:  # WTForms >= 3.3: groups are choices with an optgroup; before, a dict of lists.
    from wtforms.fields.choices import SelectChoice

    GROUPED: Any = [
        SelectChoice("a", "A", optgroup="Group"),
        SelectChoice("b", "B", optgroup="Other"),
    ]
except ImportError:  # pragma: no cover - depends on the installed WTForms
    GROUPED = {"Group": [("a", "A")], "Other": [("b", "B")]}


class Odd(forms.FlasketForm):
    """Groups, several values and a disabled hidden input (WTForms renders them), and a
    required select."""

    grouped = SelectField(choices=GROUPED)
    several = SelectMultipleField(choices=forms._choices([("a", "A"), ("b", "B")]))
    required = SelectField(choices=forms._choices([("a", "A")]), validators=[DataRequired()])
    hidden = HiddenField(render_kw={"disabled": True})


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("name", ["grouped", "several", "required", "hidden"])
def test_odd_fields_render_as_wtforms_renders_them(name: str) -> None:
    form = Odd(data={"several": ["b"], "grouped": "b"})
    field = form[name]
    assert str(field(data_x="1")) == str(wtforms_own(field, {"data_x": "1"}))
    assert "<" in str(field())
