"""Flask-WTF forms; the ticket form's category fields come from ``FLASKET_CATEGORIES``."""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata
from collections.abc import Hashable, Sequence
from typing import Any, cast

from babel.lists import format_list
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import Field, Form, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, ValidationError
from wtforms.widgets import HiddenInput, Select
from wtforms.widgets.core import clean_key

from .config import BODY_MAX_LENGTH, TITLE_MAX_LENGTH, Category
from .i18n import current_reader, gettext, is_source_language, lazy_gettext

try:  # WTForms >= 3.3 wants choice objects; older releases take (value, label) pairs.
    from wtforms.fields.choices import SelectChoice

    def _choices(pairs: Sequence[tuple[str, Any]]) -> list[Any]:
        return [SelectChoice(value, label) for value, label in pairs]

except ImportError:  # pragma: no cover - depends on the installed WTForms

    def _choices(pairs: Sequence[tuple[str, Any]]) -> list[Any]:
        return list(pairs)


# A stale or missing CSRF token, said for what the person sees next. The ticket and reply forms
# come back with a fresh token and the typed text, so sending again works; reloading would not
# help and could lose the text.
#: Shown above a new-ticket form sent back because its CSRF token was stale or missing.
SUBMIT_CSRF_MESSAGE = lazy_gettext(
    "Your ticket was not submitted yet because the form had expired. "
    "Everything you typed is still below: submit it again."
)
#: Shown above a reply form sent back because its CSRF token was stale or missing.
REPLY_CSRF_MESSAGE = lazy_gettext(
    "Your reply was not posted yet because the page had expired. "
    "Your text is still in the box below: post it again."
)
#: Shown above an internal note form sent back because its CSRF token was stale or missing.
NOTE_CSRF_MESSAGE = lazy_gettext(
    "Your note was not added yet because the page had expired. "
    "Your text is still in the box below: add it again."
)
#: Shown above an edit of one's own text sent back because its CSRF token was stale or missing.
REVISE_CSRF_MESSAGE = lazy_gettext(
    "Your change was not saved yet because the page had expired. "
    "Your text is still in the box below: save it again."
)
#: The close, reopen, follow and unfollow buttons: their error page has no form to send again.
ACTION_CSRF_MESSAGE = lazy_gettext(
    "Nothing was changed because the page with that button had expired. "
    "Open the ticket again and press the button once more."
)
#: A host's CSRFProtect refused the request before Flasket's form could keep what was typed.
CSRF_MESSAGE = lazy_gettext(
    "Nothing was saved because the page had expired. Go back, copy any text you typed, "
    "reload the page and send it again."
)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _normalise_body(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


class Required:
    """Refuses a value that is missing, empty or only white space.

    A WTForms validator; unlike ``DataRequired`` it also refuses a value that is not text.

    :param message: the error shown under the field: a string or a lazy string.
    """

    def __init__(self, message: Any) -> None:
        self.message = message

    def __call__(self, form: Form, field: Field) -> None:
        """Check ``field``.

        :param form: the form being validated (unused).
        :param field: the field whose ``data`` is checked.
        :raises wtforms.validators.ValidationError: with ``message``, when ``data`` is
            not a string or is blank.
        """
        if not isinstance(field.data, str) or not field.data.strip():
            raise ValidationError(self.message)


def single_line(form: Form, field: Field) -> None:
    """A title goes into mail subjects: line breaks and other control characters are refused.

    A WTForms validator. Refused are the Unicode categories ``Cc`` (control characters,
    CR and LF among them), ``Zl`` (line separator) and ``Zp`` (paragraph separator).

    :param form: the form being validated (unused).
    :param field: the field whose ``data`` is checked; a value that is not text passes.
    :raises wtforms.validators.ValidationError: when the text has such a character.
    """
    if isinstance(field.data, str) and any(
        unicodedata.category(char) in {"Cc", "Zl", "Zp"} for char in field.data
    ):
        raise ValidationError(gettext("The title must be a single line of text."))


class OneOf:
    """The submitted value must be one of the category's configured choices.

    A WTForms validator. An empty value is allowed when the category is not required,
    and then stored as None.

    :param category: the configured category the field is for.
    """

    def __init__(self, category: Category) -> None:
        self.category = category

    def __call__(self, form: Form, field: Field) -> None:
        """Check ``field``, setting its ``data`` to None when it is empty and allowed to be.

        :param form: the form being validated (unused).
        :param field: the category's field.
        :raises wtforms.validators.ValidationError: when the value is empty and the
            category is required, or is not one of its values.
        """
        value = field.data
        if value in (None, ""):
            if self.category.required:
                # English lower-cases the label mid-sentence; other languages keep it as is.
                label = str(self.category.label)
                if is_source_language():
                    label = label.lower()
                raise ValidationError(gettext("Choose the %(category)s.", category=label))
            field.data = None
            return
        if value not in self.category.values:
            labels = format_list(
                [str(label) for _, label in self.category.choices],
                style="or",
                locale=current_reader().locale,
            )
            raise ValidationError(gettext("Choose one of: %(choices)s.", choices=labels))


#: A form key as :func:`new_form_key` makes them (22 characters), or up to the 43 the
#: ``form_key`` columns hold: URL-safe base64 only, so a key is never markup or SQL.
FORM_KEY = re.compile(r"[A-Za-z0-9_-]{16,43}")

#: A form key that is malformed, or that someone else's ticket or reply already carries.
FORM_KEY_MESSAGE = lazy_gettext(
    "Nothing was stored because this form could not be used. "
    "Your text is still below: send it again."
)


def new_form_key() -> str:
    """A fresh one-time key for a ticket or reply form (128 random bits).

    :return: 22 characters of URL-safe base64 (:func:`secrets.token_urlsafe`), which
        :data:`FORM_KEY` matches.
    """
    return secrets.token_urlsafe(16)


def valid_form_key(form: Form, field: Field) -> None:
    """A form key, when one is sent, is a single value that :data:`FORM_KEY` matches.

    A WTForms validator; an absent or empty key passes.

    :param form: the form being validated (unused).
    :param field: the ``form_key`` field, whose ``raw_data`` is checked.
    :raises wtforms.validators.ValidationError: with :data:`FORM_KEY_MESSAGE`, for more
        than one value or a malformed one.
    """
    sent = field.raw_data or []
    if len(sent) > 1 or (sent and sent[0] and not FORM_KEY.fullmatch(sent[0])):
        raise ValidationError(FORM_KEY_MESSAGE)


def _attributes(attrs: dict[str, Any]) -> str:
    """HTML attributes as WTForms writes them (``wtforms.widgets.html_params``): sorted by
    name, ``class_`` as ``class``, ``data_x``/``aria_x`` as ``data-x``/``aria-x``, True as
    the bare name, False left out, every value escaped."""
    parts = []
    for key, value in sorted(attrs.items()):
        if value is False:
            continue
        name = clean_key(key)
        if value is True:
            parts.append(str(escape(name)))
        else:
            parts.append(f'{escape(name)}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return " ".join(parts)


def _render_hidden(field: Field, attrs: dict[str, Any]) -> Markup | None:
    """``<input type="hidden">`` as WTForms' ``HiddenInput`` writes it; None when the field
    needs WTForms' own rendering."""
    if getattr(field.flags, "disabled", False) or getattr(field, "_datalist", None):
        return None
    attrs.setdefault("id", field.id)
    attrs.setdefault("type", "hidden")
    if "value" not in attrs:
        attrs["value"] = field._value()
    attrs["name"] = field.name
    return Markup(f"<input {_attributes(attrs)}>")  # noqa: S704 - every value escaped


def _render_select(field: Any, attrs: dict[str, Any]) -> Markup | None:
    """``<select>`` as WTForms' ``Select`` writes it, for a flat list of plain choices; None
    for anything else (groups, several values, choices with attributes of their own)."""
    choices = field.choices
    if field.widget.multiple or not isinstance(choices, list):
        return None
    options = []
    for choice in choices:
        if isinstance(choice, tuple):
            if len(choice) != 2:
                return None
            value, label = choice
        else:
            if getattr(choice, "render_kw", None) or getattr(choice, "optgroup", None):
                return None
            value, label = choice.value, choice.label
        if isinstance(value, bool):
            return None
        selected = " selected" if field.coerce(value) == field.data else ""
        shown = escape(label or value)
        options.append(f'<option{selected} value="{escape(value)}">{shown}</option>')
    attrs.setdefault("id", field.id)
    for flag in ("required", "disabled"):
        if flag not in attrs and getattr(field.flags, flag, False):
            attrs[flag] = getattr(field.flags, flag)
    attrs["name"] = field.name
    return Markup(f"<select {_attributes(attrs)}>{''.join(options)}</select>")  # noqa: S704


class FlasketForm(FlaskForm):
    """The base of Flasket's forms: Flask-WTF's, with a faster rendering of its hidden
    inputs and plain selects.

    A ticket page shows up to a dozen forms, each with a CSRF token, and the status and
    assign controls' selects; WTForms' widgets take about 0.1 ms for each (reading every
    flag with ``dir()``, formatting every attribute through ``Markup.format``). These two
    write the same markup themselves (``tests/test_forms_rendering.py`` compares them on
    every form); every other field, and any field with options they do not handle, is
    WTForms' own.
    """

    class Meta:
        def render_field(self, field: Field, render_kw: dict[str, Any]) -> Markup:
            """Render ``field`` (WTForms calls this for ``form.field(**render_kw)``).

            :param field: a bound field of the form.
            :param render_kw: the attributes the template gave.
            :return: the field's markup.
            """
            kind = type(field.widget)
            if kind is HiddenInput or kind is Select:
                attrs = {**(getattr(field, "render_kw", None) or {}), **render_kw}
                attrs = {clean_key(key): value for key, value in attrs.items()}
                fast = (_render_hidden if kind is HiddenInput else _render_select)(field, attrs)
                if fast is not None:
                    return fast
            rendered: Markup = super().render_field(field, render_kw)  # type: ignore[misc]
            return rendered


class FormKeyMixin:
    """A hidden one-time key, so the same form sent twice (a double click) stores one row.

    Each rendering of a new form carries a fresh key; a form sent back with errors keeps
    its key, as nothing was stored. A request without the field (a page cached before
    keys existed, a script) is not deduplicated.
    """

    #: The hidden field that carries the key; a fresh one (:func:`new_form_key`) by default.
    form_key = HiddenField(default=new_form_key, validators=[valid_form_key])

    def sent_form_key(self) -> str | None:
        """The key this request sent, or None when it sent none (call after validation).

        :return: the key as sent, which :func:`valid_form_key` has checked; None for an
            absent or empty key.
        """
        sent: list[str] = self.form_key.raw_data or []
        return sent[0] if sent and sent[0] else None

    def renew_form_key(self) -> None:
        """Give the form shown again a fresh key: the one sent cannot store anything."""
        self.form_key.data = new_form_key()
        self.form_key.raw_data = None


class ActionForm(FlasketForm):
    """The CSRF token behind every close, reopen, follow and unfollow button."""


class StatusFieldsMixin:
    """A status to move the ticket to and, for a closing status, the resolution.

    The choices depend on who asks and on the ticket (:func:`flasket.policy.settable_statuses`),
    so the view sets them with :meth:`offer`; a value that is not offered fails validation.
    Until then the form offers only to keep the status.
    """

    #: A ``FLASKET_STATUSES`` name; ``""`` keeps the ticket's status.
    status = SelectField(lazy_gettext("Status"), default="", validate_choice=False)
    #: A key of ``config.RESOLUTIONS``; used only by a status of kind closed.
    resolution = SelectField(
        lazy_gettext("Resolution, when closing"), default="solved", validate_choice=False
    )
    _statuses: frozenset[str] = frozenset({""})
    _resolutions: frozenset[str] = frozenset({"solved"})

    def offer(
        self,
        keep: tuple[str, str] | None,
        statuses: Sequence[tuple[str, str]],
        resolutions: Sequence[tuple[str, str]],
        accepted: Sequence[str] = (),
    ) -> None:
        """Set the choices: ``keep`` (``("", label)``) first when given, then ``statuses``.

        :param keep: the choice that keeps the status, or None for a form that must change it.
        :param statuses: ``(name, label)`` of each status the user may set.
        :param resolutions: ``(key, label)`` of each resolution the user may choose.
        :param accepted: further status names that validate without being shown (the view
            asks policy about them).
        """
        offered = [*([keep] if keep else []), *statuses]
        self.status.choices = _choices(offered)
        self.resolution.choices = _choices(list(resolutions))
        self._statuses = frozenset([*(value for value, _ in offered), *accepted])
        self._resolutions = frozenset(value for value, _ in resolutions)

    def validate_status(self, field: Field) -> None:
        """The status must be one the form offers (WTForms calls this).

        :raises wtforms.validators.ValidationError: for any other value.
        """
        if field.data not in self._statuses:
            raise ValidationError(gettext("Choose one of the statuses in the list."))

    def validate_resolution(self, field: Field) -> None:
        """The resolution must be one the form offers, when the status closes the ticket
        (WTForms calls this; a missing one is "solved").

        :raises wtforms.validators.ValidationError: for any other value.
        """
        if not field.data:
            field.data = "solved"
        if field.data not in self._resolutions:
            raise ValidationError(gettext("Choose one of the resolutions in the list."))


class StatusForm(StatusFieldsMixin, FlasketForm):
    """The status control of the ticket page: a status (required), a resolution, and the
    status the page showed, so a form sent twice or from an old page changes nothing."""

    #: The ticket's status when the page was shown.
    from_status = HiddenField()


class AssignForm(FlasketForm):
    """The assign control of the ticket page and of "Assign to me".

    The assignee is a user's primary key as text (:func:`flasket.user_keys.key_text`),
    ``""`` for nobody; the view finds the user and asks policy. ``from_assignee`` is the
    assignee the page showed (``""``: nobody), so a form sent twice or from an old page
    changes nothing.
    """

    #: The new assignee's key; ``""`` unassigns.
    assignee = SelectField(lazy_gettext("Assignee"), default="", validate_choice=False)
    #: The assignee's key when the page was shown; ``""`` for nobody.
    from_assignee = HiddenField()

    def offer(self, assignees: Sequence[tuple[str, str]]) -> None:
        """Set the assignees shown, ``(key, name)`` pairs; the view checks what is sent.

        :param assignees: ``("", "Nobody")`` and each staff member's key and name.
        """
        self.assignee.choices = _choices(assignees)


class DuplicateForm(FlasketForm):
    """Staff's "close as duplicate" control: the number of the ticket this one duplicates."""

    #: The original's number, as typed ("7" or "#7"); the view finds it and asks policy.
    original = StringField(
        lazy_gettext("Duplicate of ticket #"),
        filters=[_strip],
        validators=[Required(lazy_gettext("Give the number of the ticket this one duplicates."))],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "size": 8},
    )


class BulkForm(FlasketForm):
    """The bulk action bar of a ticket list: the tickets ticked (``ticket``, repeated),
    what to do with them, and the list to go back to. The view reads the ticked numbers
    from the request and checks every one with policy."""

    #: ``"assign"`` or ``"status"``.
    action = SelectField(
        lazy_gettext("Action"),
        choices=_choices(
            [("assign", lazy_gettext("Assign to")), ("status", lazy_gettext("Set status"))]
        ),
    )
    #: For ``assign``: a staff member's key, ``""`` for nobody.
    assignee = SelectField(lazy_gettext("Assignee"), default="", validate_choice=False)
    #: For ``status``: a ``FLASKET_STATUSES`` name.
    status = SelectField(lazy_gettext("Status"), default="", validate_choice=False)
    #: For a closing status: a key of ``config.RESOLUTIONS``.
    resolution = SelectField(
        lazy_gettext("Resolution, when closing"), default="solved", validate_choice=False
    )
    #: The list's query string, to go back to it.
    back = HiddenField()

    def offer(
        self,
        assignees: Sequence[tuple[str, str]],
        statuses: Sequence[tuple[str, str]],
        resolutions: Sequence[tuple[str, str]],
    ) -> None:
        """Set the choices shown (``(value, label)`` pairs); the view checks what is sent.

        :param assignees: ``("", "Nobody")`` and each staff member's key and name.
        :param statuses: each configured status's name and label.
        :param resolutions: each resolution the reader may choose, key and label.
        """
        self.assignee.choices = _choices(assignees)
        self.status.choices = _choices(statuses)
        self.resolution.choices = _choices(resolutions)


class ReplyForm(StatusFieldsMixin, FormKeyMixin, FlasketForm):
    """The reply form under a ticket: its text, a CSRF token and a one-time form key.

    With the status fields, a reply can change the status in the same step ("reply and
    close"). Takes Flask-WTF's ``FlaskForm`` arguments (by default the request's form data).
    """

    #: The reply's text: line breaks made ``\n``, stripped, required, at most
    #: :data:`flasket.config.BODY_MAX_LENGTH` characters.
    body = TextAreaField(
        lazy_gettext("Your reply"),
        filters=[_normalise_body],
        validators=[
            Required(lazy_gettext("Write a reply before posting it.")),
            Length(
                max=BODY_MAX_LENGTH,
                message=lazy_gettext("A reply may be at most %(max)d characters long."),
            ),
        ],
    )


class NoteForm(FormKeyMixin, FlasketForm):
    """Staff's internal note form under a ticket: its text, a CSRF token and a one-time key.

    Takes Flask-WTF's ``FlaskForm`` arguments (by default the request's form data).
    """

    #: The note's text: line breaks made ``\n``, stripped, required, at most
    #: :data:`flasket.config.BODY_MAX_LENGTH` characters.
    note = TextAreaField(
        lazy_gettext("Your note"),
        filters=[_normalise_body],
        validators=[
            Required(lazy_gettext("Write the note before adding it.")),
            Length(
                max=BODY_MAX_LENGTH,
                message=lazy_gettext("A note may be at most %(max)d characters long."),
            ),
        ],
    )


class TicketFormBase(FormKeyMixin, FlasketForm):
    """The new-ticket form's fixed fields; :func:`ticket_form` adds one per category.

    Besides a CSRF token and a one-time form key, it has a title and a description.
    """

    #: The title: stripped, required, one line, at most
    #: :data:`flasket.config.TITLE_MAX_LENGTH` characters.
    title = StringField(
        lazy_gettext("Title"),
        filters=[_strip],
        validators=[
            Required(lazy_gettext("Give your ticket a title.")),
            Length(
                max=TITLE_MAX_LENGTH,
                message=lazy_gettext("The title may be at most %(max)d characters."),
            ),
            single_line,
        ],
        render_kw={"maxlength": TITLE_MAX_LENGTH, "autocomplete": "off"},
    )
    #: The description: line breaks made ``\n``, stripped, required, at most
    #: :data:`flasket.config.BODY_MAX_LENGTH` characters.
    body = TextAreaField(
        lazy_gettext("Description"),
        filters=[_normalise_body],
        validators=[
            Required(lazy_gettext("Describe the problem or question.")),
            Length(
                max=BODY_MAX_LENGTH,
                message=lazy_gettext("The description may be at most %(max)d characters."),
            ),
        ],
    )

    #: The names of the category fields, in config order (set by :func:`ticket_form`).
    category_names: tuple[str, ...] = ()

    def category_values(self) -> dict[str, str]:
        """The categories chosen, after validation.

        :return: maps a category's name to the value chosen; a category left empty is
            not there.
        """
        values = {name: getattr(self, name).data for name in self.category_names}
        return {name: value for name, value in values.items() if value}


class ReviseForm(FlasketForm):
    """The form that edits one's own ticket description or reply: the new text."""

    #: The new text: line breaks made ``\n``, stripped, required, at most
    #: :data:`flasket.config.BODY_MAX_LENGTH` characters.
    body = TextAreaField(
        lazy_gettext("Text"),
        filters=[_normalise_body],
        validators=[
            Required(lazy_gettext("The text cannot be empty.")),
            Length(
                max=BODY_MAX_LENGTH,
                message=lazy_gettext("The text may be at most %(max)d characters long."),
            ),
        ],
    )


class TicketEditFormBase(FlasketForm):
    """Staff's form to edit a ticket's title and categories; :func:`edit_form` adds one
    select per category."""

    #: The title, checked as the new-ticket form checks it.
    title = TicketFormBase.title

    #: The names of the category fields, in config order (set by :func:`edit_form`).
    category_names: tuple[str, ...] = ()

    category_values = TicketFormBase.category_values


def ticket_form(categories: Sequence[Category], **kwargs: Any) -> TicketFormBase:
    """A new-ticket form with one field per configured category, in config order.

    A category is a radio group or a select (its ``widget``); a select gets an empty
    first choice unless the category is required and has a default. Each is validated
    by :class:`OneOf`.

    :param categories: the configured categories (``FLASKET_CATEGORIES``, parsed).
    :param kwargs: passed to ``FlaskForm`` (``formdata``, ``obj``, ``data``, ...).
    :return: a form of a new subclass of :class:`TicketFormBase`.
    """
    form: TicketFormBase = _with_categories(TicketFormBase, categories, False)(**kwargs)
    return form


def edit_form(categories: Sequence[Category], **kwargs: Any) -> TicketEditFormBase:
    """Staff's edit form: the title and one select per configured category, in config order.

    :param categories: the configured categories (``FLASKET_CATEGORIES``, parsed).
    :param kwargs: passed to ``FlaskForm`` (``data`` holds the ticket's current values).
    :return: a form of a new subclass of :class:`TicketEditFormBase`.
    """
    form: TicketEditFormBase = _with_categories(TicketEditFormBase, categories, True)(**kwargs)
    return form


def _with_categories(base: type[Any], categories: Sequence[Category], selects: bool) -> Any:
    """A subclass of ``base`` with a field per category (all selects with ``selects``),
    made once per set of categories: making a form class costs more than using one."""
    return _form_class(cast(Hashable, base), tuple(categories), selects)


@functools.cache
def _form_class(base: Any, categories: tuple[Category, ...], selects: bool) -> Any:
    """:func:`_with_categories`, cached."""
    fields: dict[str, Any] = {"category_names": tuple(c.name for c in categories)}
    for category in categories:
        choices: list[tuple[str, Any]] = list(category.choices)
        radio = category.widget == "radio" and not selects
        field_class: type[Field] = RadioField if radio else SelectField
        if field_class is SelectField and not (category.required and category.default):
            choices.insert(
                0, ("", lazy_gettext("Choose…") if category.required else lazy_gettext("(none)"))
            )
        fields[category.name] = field_class(
            category.label,
            choices=_choices(choices),
            default=category.default,
            validate_choice=False,
            filters=[_strip],
            validators=[OneOf(category)],
        )
    return type(base.__name__.removesuffix("Base"), (base,), fields)
