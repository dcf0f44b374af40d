"""Flasket's translations and its dates, times and numbers in the reader's language.

Flasket's messages live in their own gettext *domain*, ``flasket``, as Babel message
catalogs shipped in the package (``flasket/translations/<locale>/LC_MESSAGES/flasket.mo``),
so they never mix with the host's own catalogs. Which language and time zone a request
gets is decided in this order:

1. ``FLASKET_LOCALE_SELECTOR`` / ``FLASKET_TIMEZONE_SELECTOR``, when the host sets them:
   callables without arguments that return a locale (``"de"``, ``"pt_BR"``, a
   :class:`babel.Locale`) or a time zone (``"Europe/Berlin"``, a :class:`datetime.tzinfo`),
   or None for the default;
2. Flask-Babel's ``get_locale()`` / ``get_timezone()``, when the host uses Flask-Babel, so
   its own locale and time zone selectors decide for Flasket's pages too;
3. ``FLASKET_DEFAULT_LOCALE`` / ``FLASKET_DEFAULT_TIMEZONE``; unset, Flask-Babel's
   ``BABEL_DEFAULT_LOCALE`` / ``BABEL_DEFAULT_TIMEZONE``, else ``"en"`` and ``"UTC"``.

Mail is written in each recipient's language instead (:func:`user_reader`), with
:func:`force_locale` around the rendering.

Catalogs in ``FLASKET_TRANSLATION_DIRECTORIES`` (same layout, domain ``flasket``) are merged
over the shipped ones, message by message: that is how a host adds a language or rewords
a message. Dates and numbers are formatted by Babel from the Unicode CLDR data, which
covers every locale, translated or not.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError, dates, numbers
from babel.support import NullTranslations, Translations
from flask import current_app, has_app_context, request

# The context variables behind flask.g and flask.request (Flask 2.2+, Flasket's floor).
from flask.globals import _cv_app, _cv_request
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

log = logging.getLogger("flasket.i18n")

#: The gettext domain of Flasket's messages: its catalogs are ``flasket.po`` / ``flasket.mo``.
DOMAIN = "flasket"
#: Where the shipped catalogs are: ``<locale>/LC_MESSAGES/flasket.mo`` under it.
TRANSLATIONS_DIRECTORY = os.path.join(os.path.dirname(__file__), "translations")
#: The language Flasket's messages are written in; it needs no catalog.
SOURCE_LANGUAGE = "en"

#: The language options and their defaults (part of :data:`flasket.config.DEFAULTS`).
DEFAULTS: dict[str, Any] = {
    "default_locale": None,
    "default_timezone": None,
    "locale_selector": None,
    "timezone_selector": None,
    "user_locale": "locale",
    "user_timezone": "timezone",
    "translation_directories": [],
}

#: A string, or a lazy string that becomes one when it is shown (:func:`lazy_gettext`, or a
#: host's own ``flask_babel.lazy_gettext``).
Text = Any


@dataclass(frozen=True)
class Reader:
    """Who a page or a message is for: their locale and time zone.

    :param locale: the locale dates and numbers are formatted for, and whose catalog
        translates the messages (or the nearest shipped one, :func:`translations_for`).
    :param timezone: the time zone times are shown in.
    """

    locale: Locale
    timezone: tzinfo

    @property
    def zone_name(self) -> str:
        """The time zone's name: its IANA key (``"Europe/Berlin"``, ``"UTC"``), else ``str()``."""
        zone = self.timezone
        return str(getattr(zone, "key", None) or getattr(zone, "zone", None) or zone)

    @property
    def key(self) -> tuple[str, str]:
        """What tells two readers' renderings apart: ``(locale, time zone name)``.

        Hashable whatever the tzinfo (dateutil's zones are not), and what an outbox event
        stores of the reader it was rendered for.
        """
        return str(self.locale), self.zone_name

    @property
    def language(self) -> Locale:
        """The language Flasket's messages are shown in: the catalog's, else English.

        A reader whose locale has no catalog reads English text, so pages say so in
        ``lang`` and ``dir``, whatever the locale of their dates.
        """
        return self._language()[0]

    @property
    def language_tag(self) -> str:
        """:attr:`language` as an HTML ``lang`` value (BCP 47): ``"pt-BR"``, ``"zh-Hans"``."""
        return self._language()[1]

    @property
    def direction(self) -> str:
        """``"rtl"`` when :attr:`language` is written right to left (Arabic...), else ``"ltr"``."""
        return self._language()[2]

    def _language(self) -> tuple[Locale, str, str]:
        state = _request_state()
        if state is not None and state.reader is self:
            translations = current_translations()  # this request's, found once
        else:
            translations = translations_for(self.locale)
        found: tuple[Locale, str, str] | None = getattr(
            translations, "flasket_language_info", None
        )
        if found is None:
            language = getattr(translations, "flasket_language", None) or Locale.parse(
                SOURCE_LANGUAGE
            )
            direction = "rtl" if language.character_order == "right-to-left" else "ltr"
            found = (language, str(language).replace("_", "-"), direction)
            translations.flasket_language_info = found  # type: ignore[attr-defined]
        return found


#: English in UTC: Flasket's source language, and the reader when nothing else is known.
SOURCE_READER = Reader(Locale.parse(SOURCE_LANGUAGE), timezone.utc)

#: Set by :func:`force_locale`: the reader of whatever is rendered meanwhile.
_forced: ContextVar[Reader | None] = ContextVar("flasket_forced_reader", default=None)

_lock = threading.Lock()
#: Loaded catalogs, by (directories, catalog names): each is read once per process.
_loaded: dict[tuple[tuple[str, ...], tuple[str, ...]], NullTranslations] = {}


def parse_locale(value: Any) -> Locale | None:
    """``value`` as a Babel locale, or None when it names none.

    :param value: a :class:`babel.Locale`, or an identifier in POSIX (``"pt_BR"``) or
        BCP 47 (``"pt-BR"``) form; None or ``""`` for none.
    :return: the locale; None for None, ``""`` or an identifier CLDR does not know.
    """
    if value is None or value == "":
        return None
    if isinstance(value, Locale):
        return value
    try:
        return Locale.parse(str(value).strip(), sep="-" if "-" in str(value) else "_")
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def parse_timezone(value: Any) -> tzinfo | None:
    """``value`` as a time zone, or None when it names none.

    :param value: a :class:`datetime.tzinfo`, or an IANA name (``"Europe/Berlin"``,
        ``"UTC"``); None or ``""`` for none.
    :return: the time zone; None for None, ``""`` or a name the IANA database lacks.
    """
    if value is None or value == "":
        return None
    if isinstance(value, tzinfo):
        return value
    try:
        return ZoneInfo(str(value).strip())
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        # OSError: a name that is a directory of the database ("America") or too long.
        return None


def default_reader() -> Reader:
    """The site's reader: ``FLASKET_DEFAULT_LOCALE`` and ``FLASKET_DEFAULT_TIMEZONE``.

    Unset, they are Flask-Babel's defaults when the host uses Flask-Babel (its
    ``BABEL_DEFAULT_LOCALE`` and ``BABEL_DEFAULT_TIMEZONE``, or what was given to
    ``Babel(app, default_locale=..., default_timezone=...)``), else English and UTC. Mail to
    staff addresses, to users without a language of their own, and the command line use it.

    :return: the reader; needs an app context.
    """
    config = current_app.config
    babel = current_app.extensions.get("babel") if flask_babel_module() is not None else None
    locale = parse_locale(_option("default_locale"))
    zone = parse_timezone(_option("default_timezone"))
    if babel is not None:
        # Flask-Babel 3+ keeps its settings on app.extensions["babel"]; 2.x, the config.
        locale = locale or parse_locale(
            getattr(babel, "default_locale", None) or config.get("BABEL_DEFAULT_LOCALE")
        )
        zone = zone or parse_timezone(
            getattr(babel, "default_timezone", None) or config.get("BABEL_DEFAULT_TIMEZONE")
        )
    return Reader(locale or SOURCE_READER.locale, zone or SOURCE_READER.timezone)


def current_reader() -> Reader:
    """The reader of what is rendered now: forced, else the request's, else the site's.

    A request's reader is worked out once (the selectors, see the module's text) and kept
    on :data:`flask.g`.

    :return: the reader; outside an app context, English and UTC.
    """
    forced = _forced.get()
    if forced is not None:
        return forced
    if not has_app_context():
        return SOURCE_READER
    state = _request_state()
    if state is None:
        return default_reader()
    if state.reader is None:
        state.reader = _request_reader()
    return state.reader


class _RequestState:
    """What one request has worked out: its reader, catalog, formats and lazy texts."""

    __slots__ = ("formats", "reader", "texts", "translations")

    def __init__(self) -> None:
        self.reader: Reader | None = None
        self.translations: NullTranslations | None = None
        self.formats: _Formats | None = None
        self.texts: dict[int, str] = {}


def _request_state() -> _RequestState | None:
    """This request's :class:`_RequestState` (on :data:`flask.g`); None while a reader is
    forced or outside a request. Pages ask for it for every row, so it is found through
    Flask's context variables rather than through the ``g`` proxy."""
    if _forced.get() is not None:
        return None
    if _cv_request.get(None) is None:
        return None
    app_globals = _cv_app.get().g
    state: _RequestState | None = getattr(app_globals, "flasket_i18n", None)
    if state is None:
        state = app_globals.flasket_i18n = _RequestState()
    return state


def _request_reader() -> Reader:
    site = default_reader()
    babel = flask_babel_module()
    select_locale = _option("locale_selector") or (babel.get_locale if babel else None)
    select_zone = _option("timezone_selector") or (babel.get_timezone if babel else None)
    locale = _selected(select_locale, parse_locale, "locale")
    zone = _selected(select_zone, parse_timezone, "time zone")
    return Reader(locale or site.locale, zone or site.timezone)


def browser_locale() -> str | None:
    """A ready-made ``FLASKET_LOCALE_SELECTOR``: the browser's most wanted language Flasket has.

    Goes through the request's ``Accept-Language`` (RFC 9110, section 12.5.4) in order of
    preference and takes the first language Flasket can show: English (its source), or one
    with a catalog, shipped or the host's (:func:`catalog_names` decides, so ``zh-CN``
    finds ``zh_Hans`` and ``pt-PT`` finds ``pt_BR``). ``nl, de;q=0.9`` gives German when
    there is no Dutch, where ``best_match`` over a fixed list would not.

    :return: the locale as the browser named it (``"de_AT"``: its dates stay Austrian), or
        None when the browser names none Flasket has.
    """
    for value, _quality in request.accept_languages:
        locale = parse_locale(value)
        if locale is None:
            continue
        if locale.language == SOURCE_LANGUAGE or hasattr(
            translations_for(locale), "flasket_language"
        ):
            return str(locale)
    return None


def _selected(select: Callable[[], Any] | None, parse: Callable[[Any], Any], what: str) -> Any:
    """What a selector chose, parsed; None for none, and for a selector that fails.

    A selector that fails (one reading a user's setting while the database is away) must
    not fail the page, nor an answer after a commit: the site's choice stands in, for that
    half only (a bad time zone keeps the language).
    """
    if select is None:
        return None
    try:
        return parse(select())
    except Exception as error:
        log.warning("The %s selector failed (%r); using the site's", what, error)
        return None


def flask_babel_module() -> Any:
    """Flask-Babel, when the current app uses it; else None.

    :return: the ``flask_babel`` module, when ``app.extensions["babel"]`` is Flask-Babel's
        (not Flask-BabelEx's, which registers the same key); None otherwise.
    """
    extension = current_app.extensions.get("babel")
    if extension is None or type(extension).__module__.split(".")[0] != "flask_babel":
        return None
    try:
        import flask_babel
    except ImportError:  # pragma: no cover (the extension came from it)
        return None
    return flask_babel


@contextmanager
def force_locale(reader: Reader) -> Iterator[Reader]:
    """Render for ``reader`` inside the block, whatever the request's language.

    When the host uses Flask-Babel 3 or later, its locale is forced too
    (``flask_babel.force_locale``), so the host's own lazy strings (category labels) are in
    the reader's language as well.

    :param reader: the locale and time zone to use.
    :return: a context manager giving ``reader``.
    """
    token = _forced.set(reader)
    try:
        babel = flask_babel_module() if has_app_context() else None
        # Flask-Babel 3+ forces per context; 2.x swapped the selector for the whole app.
        if babel is not None and hasattr(babel, "get_babel"):
            with babel.force_locale(str(reader.locale)):
                yield reader
        else:
            yield reader
    finally:
        _forced.reset(token)


def user_reader(user: Any) -> Reader:
    """The reader a user's mail is written for: their own language and time zone.

    ``FLASKET_USER_LOCALE`` and ``FLASKET_USER_TIMEZONE`` say where they are: the name of
    an attribute of the host's user model (default ``"locale"`` and ``"timezone"``), or a
    callable taking the user. A missing, empty or unknown value falls back to the site's
    (:func:`default_reader`).

    :param user: an instance of the host's user model, or None (the site's reader).
    :return: the reader.
    """
    site = default_reader()
    if user is None:
        return site
    try:
        locale = parse_locale(_user_value(user, _option("user_locale")))
        zone = parse_timezone(_user_value(user, _option("user_timezone")))
    except Exception:
        # A lookup of the host's that fails for one user must not cost the others their mail.
        log.warning(
            "The language of a recipient could not be read; using the site's", exc_info=True
        )
        return site
    return Reader(locale or site.locale, zone or site.timezone)


def _user_value(user: Any, where: str | Callable[[Any], Any] | None) -> Any:
    if where is None:
        return None
    if callable(where):
        return where(user)
    value = getattr(user, where, None)
    return value() if callable(value) else value


def _option(name: str) -> Any:
    """``FLASKET_<NAME>`` of the current app (:func:`flasket.config.config_value`, which
    this module cannot import: the configuration's defaults use :func:`lazy_gettext`)."""
    return current_app.config.get("FLASKET_" + name.upper(), DEFAULTS[name])


def translation_directories() -> tuple[str, ...]:
    """The directories searched for catalogs, the host's first.

    :return: ``FLASKET_TRANSLATION_DIRECTORIES`` (a relative path is taken from the app's
        ``root_path``, as Flask-Babel does; outside an app context, none), then
        :data:`TRANSLATIONS_DIRECTORY`.
    """
    extra = (
        tuple(
            os.path.join(current_app.root_path, os.fspath(path))
            for path in _option("translation_directories")
        )
        if has_app_context()
        else ()
    )
    return (*extra, TRANSLATIONS_DIRECTORY)


def catalog_names(locale: Locale) -> list[str]:
    """The catalog names that may translate for ``locale``, nearest first.

    ``pt_BR`` → ``pt_BR``, ``pt``; ``zh_Hans_CN`` → ``zh_Hans_CN``, ``zh_Hans``, ``zh``;
    ``zh_CN`` is written in Simplified Chinese, so it looks for ``zh_Hans`` too, and ``pt``
    alone takes ``pt_BR`` when there is no ``pt``. A variant or modifier (``de@euro``) is
    not part of any name.

    :param locale: the reader's locale.
    :return: identifiers in POSIX form.
    """
    language, script, territory = locale.language, locale.script, locale.territory
    names = []
    if script and territory:
        names.append(f"{language}_{script}_{territory}")
    if script:
        names.append(f"{language}_{script}")
    if territory:
        names.append(f"{language}_{territory}")
    if language == "zh" and not script and territory in (None, "CN", "SG"):
        names.append("zh_Hans")
    names.append(language)
    if language == "pt":
        names.append("pt_BR")
    return list(dict.fromkeys(names))


def translations_for(locale: Locale) -> NullTranslations:
    """The messages for ``locale``: every catalog that may translate for it, merged.

    Every directory of :func:`translation_directories` is searched for each name of
    :func:`catalog_names`. The catalogs found are merged message by message, the shipped
    before the host's and the farther before the nearer, so a host's ``de_AT`` catalog
    of one message rewords that message for Austrian readers and the shipped ``de`` does
    the rest. Loaded once per process.

    :param locale: the reader's locale.
    :return: the translations; :class:`babel.support.NullTranslations` (the English text)
        when no catalog matches, and always for English.
    """
    directories = translation_directories()
    names = tuple(catalog_names(locale))
    # Keyed by what can differ (names, never a locale's variant or modifier), so a selector
    # passing on what a visitor typed cannot fill the cache.
    cache_key = (directories, names)
    found = _loaded.get(cache_key)
    if found is not None:
        return found
    with _lock:
        found = _loaded.get(cache_key)
        if found is None:
            if len(_loaded) > 1024:
                _loaded.clear()
            found = _loaded[cache_key] = _load(directories, names)
    return found


def _load(directories: tuple[str, ...], names: tuple[str, ...]) -> NullTranslations:
    merged: Translations | None = None
    nearest = None
    for name in reversed(names):
        # The shipped directory comes last in ``directories``: load it first.
        for directory in reversed(directories):
            path = os.path.join(directory, name, "LC_MESSAGES", f"{DOMAIN}.mo")
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as file:
                catalog = Translations(file, domain=DOMAIN)
            if directory != TRANSLATIONS_DIRECTORY:
                _drop_untranslated_plurals(catalog)
            if merged is None:
                merged = catalog
            else:
                merged.merge(catalog)
            nearest = name
    if merged is None:
        return NullTranslations()
    merged.flasket_language = Locale.parse(nearest)  # type: ignore[attr-defined]
    return merged


def _drop_untranslated_plurals(catalog: Translations) -> None:
    """Leave out a host catalog's plural messages it did not translate.

    ``pybabel compile`` writes an untranslated plural message with the English forms (not
    so a singular one), which merged over the shipped catalog would put English back: a
    host's German catalog started from the template, with two messages reworded, would
    otherwise show "2 replies" on German pages.
    """
    entries: dict[Any, str] = catalog._catalog
    english = {
        key[0]
        for key, text in entries.items()
        if isinstance(key, tuple) and key[1] == 0 and text == key[0]
    }
    for key in [key for key in entries if isinstance(key, tuple) and key[0] in english]:
        del entries[key]


def clear_cache() -> None:
    """Forget the loaded catalogs, so edited ``.mo`` files are read again (for tests)."""
    with _lock:
        _loaded.clear()


def current_translations() -> NullTranslations:
    """The translations of :func:`current_reader`'s locale (kept on :data:`flask.g`).

    :return: as :func:`translations_for` gives them.
    """
    state = _request_state()
    if state is None:
        return translations_for(current_reader().locale)
    if state.translations is None:
        state.translations = translations_for(current_reader().locale)
    return state.translations


def gettext(message: str, **variables: Any) -> str:
    """``message`` in the reader's language, its ``%(name)s`` placeholders filled in.

    :param message: the English text, as extracted into the catalogs.
    :param variables: values for the placeholders; without any, ``%`` is left alone.
    :return: the translated, filled-in text.
    """
    text = current_translations().ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The form of a message for the count ``num``, with the language's plural rules.

    ``%(num)s`` in the text is the count, formatted for the reader
    (``1.234`` in German); other placeholders take ``variables``.

    :param singular: the English text for one.
    :param plural: the English text for other counts.
    :param num: the count that chooses the form (CLDR plural rules, through the catalog's
        ``Plural-Forms``).
    :param variables: values for the other placeholders.
    :return: the translated, filled-in text.
    """
    text = current_translations().ungettext(singular, plural, num)
    return text % {"num": format_number(num), **variables}


def pgettext(context: str, message: str, **variables: Any) -> str:
    """:func:`gettext` for a ``message`` whose translation depends on ``context``.

    :param context: what the message is (``"status"``), to tell apart two uses of one
        English word.
    :param message: the English text.
    :param variables: values for the placeholders.
    :return: the translated, filled-in text.
    """
    text = current_translations().upgettext(context, message)
    return text % variables if variables else text


class LazyText:
    """Text worked out when it is shown, in the reader's language: a lazy string.

    ``str()`` calls the function; within a request the result is kept for the rest of the
    request (a list shows each category label once per row), and while a reader is forced
    (:func:`force_locale`) or outside a request it is worked out every time. String methods
    and ``%`` act on the text. It is never markup: a template escapes it.

    :param function: returns the text (``gettext``, or ``str`` of a host's lazy string).
    :param args: its positional arguments.
    :param kwargs: its keyword arguments.
    """

    __slots__ = ("_args", "_function", "_kwargs")

    def __init__(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._function = function
        self._args = args
        self._kwargs = kwargs

    def __str__(self) -> str:
        memo = _request_memo()
        if memo is None:
            return str(self._function(*self._args, **self._kwargs))
        found = memo.get(id(self))
        if found is None:
            found = memo[id(self)] = str(self._function(*self._args, **self._kwargs))
        return found

    def __repr__(self) -> str:
        return f"<LazyText {self._args!r}>"

    def __mod__(self, values: Any) -> str:
        text: str = str(self) % values
        return text

    def __add__(self, other: str) -> str:
        return str(self) + other

    def __radd__(self, other: str) -> str:
        return other + str(self)

    def __len__(self) -> int:
        return len(str(self))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # never __html__: this is text, not markup
            raise AttributeError(name)
        return getattr(str(self), name)


def _request_memo() -> dict[int, str] | None:
    """This request's worked-out lazy texts, by object; None when none may be kept."""
    state = _request_state()
    return None if state is None else state.texts


def lazy_gettext(message: str, **variables: Any) -> LazyText:
    """:func:`gettext`, done when the result is shown: for text defined at import.

    :param message: the English text.
    :param variables: values for the placeholders.
    :return: a :class:`LazyText`, so each reader gets their own language.
    """
    return LazyText(gettext, message, **variables)


def lazy_pgettext(context: str, message: str) -> LazyText:
    """:func:`pgettext`, done when the result is shown.

    :param context: as for :func:`pgettext`.
    :param message: the English text.
    :return: a :class:`LazyText`.
    """
    return LazyText(pgettext, context, message)


def is_source_language() -> bool:
    """Whether the reader gets Flasket's messages in English, untranslated.

    :return: True when no catalog matches the reader's locale.
    """
    return type(current_translations()) is NullTranslations


@pass_eval_context
def template_gettext(eval_ctx: EvalContext, message: str, **variables: Any) -> str:
    """The ``flasket_gettext`` of Flasket's templates: :func:`gettext`, safe for HTML.

    In an autoescaped template (``.html``) the translation is escaped as text, then the
    values are put in: a value that is :class:`markupsafe.Markup` (a link from
    ``flasket_user_link``) stays markup, anything else is escaped, so no translation or
    value can inject HTML. In a plain-text template (``.txt`` mail) it is :func:`gettext`.
    Without variables the escaped translation keeps its ``%(name)s`` placeholders, for a
    template that fills one pattern in many times (``pattern % {...}``).

    :param eval_ctx: Jinja's evaluation context (passed by Jinja).
    :param message: the English text.
    :param variables: values for the ``%(name)s`` placeholders.
    :return: the filled-in text: markup when autoescaping, else a string.
    """
    text = current_translations().ugettext(message)
    return _fill(eval_ctx, text, variables)


@pass_eval_context
def template_ngettext(
    eval_ctx: EvalContext, singular: str, plural: str, num: int, **variables: Any
) -> str:
    """The ``flasket_ngettext`` of Flasket's templates: :func:`ngettext`, safe for HTML.

    :param eval_ctx: Jinja's evaluation context (passed by Jinja).
    :param singular: the English text for one.
    :param plural: the English text for other counts.
    :param num: the count (``%(num)s``, formatted for the reader).
    :param variables: values for the other placeholders, escaped unless markup.
    :return: the filled-in text, as for :func:`template_gettext`.
    """
    text = current_translations().ungettext(singular, plural, num)
    return _fill(eval_ctx, text, {"num": format_number(num), **variables})


@pass_eval_context
def template_pgettext(eval_ctx: EvalContext, context: str, message: str, **variables: Any) -> str:
    """The ``flasket_pgettext`` of Flasket's templates: :func:`pgettext`, safe for HTML.

    :param eval_ctx: Jinja's evaluation context (passed by Jinja).
    :param context: as for :func:`pgettext`.
    :param message: the English text.
    :param variables: values for the placeholders, escaped unless markup.
    :return: the filled-in text, as for :func:`template_gettext`.
    """
    text = current_translations().upgettext(context, message)
    return _fill(eval_ctx, text, variables)


def _fill(eval_ctx: EvalContext, text: str, variables: dict[str, Any]) -> str:
    if not eval_ctx.autoescape:
        return text % variables if variables else text
    pattern = _patterns.get(text)
    if pattern is None:
        pattern = Pattern(escape(text))
        if len(_patterns) < _Formats.LIMIT:
            _patterns[text] = pattern
    return pattern % variables if variables else pattern


#: Translations escaped as patterns, by their text: a page shows the same few on every request.
_patterns: dict[str, Pattern] = {}


#: A placeholder of Flasket's messages, or an escaped percent sign.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
#: Patterns taken apart, by their text: a page fills the same few many times.
_split: dict[str, tuple[list[str], list[str]] | None] = {}


class Pattern(Markup):
    """An escaped translation whose ``%(name)s`` placeholders a template fills in.

    ``pattern % {"user": link, "time": tag}`` puts markup in as it is and escapes anything
    else (never trusting ``__html__`` on what is not :class:`markupsafe.Markup`: a lazy
    string claims it), like Markup's own ``%``, at a third of its cost: the pattern is
    taken apart once per process. A pattern with other ``%`` formats uses Markup's ``%``.
    """

    __slots__ = ()

    def __mod__(self, values: Any) -> Pattern:
        text = str.__str__(self)
        parts = _split.get(text) if isinstance(values, dict) else None
        if parts is None and isinstance(values, dict) and text not in _split:
            parts = _split[text] = _take_apart(text) if len(_split) < 4096 else None
        if parts is None:  # not a dict, or not only %(name)s placeholders
            return Pattern(
                super().__mod__(_escaped(values) if isinstance(values, dict) else values)
            )
        literals, names = parts
        pieces = [literals[0]]
        for name, literal in zip(names, literals[1:], strict=True):
            value = values[name]
            pieces.append(value if isinstance(value, Markup) else escape(str(value)))
            pieces.append(literal)
        return Pattern("".join(pieces))


def _escaped(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, Markup) else escape(str(v)) for k, v in values.items()}


def _take_apart(text: str) -> tuple[list[str], list[str]] | None:
    """``text``'s literal runs and its placeholders' names between them (``%%`` is a literal
    ``%``); None when it has another kind of ``%`` format."""
    literals: list[str] = []
    names: list[str | None] = []
    start = 0
    for match in _PLACEHOLDER.finditer(text):
        literals.append(text[start : match.start()])
        names.append(match.group(1))
        start = match.end()
    literals.append(text[start:])
    if any("%" in literal for literal in literals):
        return None
    # "%%" becomes a literal "%" between its neighbours.
    merged_literals, merged_names = [literals[0]], []
    for name, literal in zip(names, literals[1:], strict=True):
        if name is None:
            merged_literals[-1] += "%" + literal
        else:
            merged_names.append(name)
            merged_literals.append(literal)
    return merged_literals, merged_names


class _Formats:
    """One reader's date, time and number patterns, parsed once, and what they wrote.

    Pages format a date for every row, so the CLDR patterns are parsed once per locale
    and time zone (Babel's ``parse_pattern``), and relative times and counts, which repeat
    ("3 days ago", "2"), are kept once written. Every entry is a pure function of its key,
    so one instance serves every thread.
    """

    #: Entries kept per cache before it starts afresh (a long-running process's bound).
    LIMIT = 4096

    def __init__(self, reader: Reader) -> None:
        locale = reader.locale
        self.reader = reader
        self.date = dates.parse_pattern(locale.date_formats["medium"])
        self.time = dates.parse_pattern(locale.time_formats["short"])
        self.joined = str(locale.datetime_formats["medium"]).replace("'", "")
        self.utc = reader.zone_name in ("UTC", "Etc/UTC")
        self.numbers: dict[int | float, str] = {}
        self.relative: dict[tuple[str, int], str] = {}
        self.dates: dict[object, str] = {}
        self.times: dict[tuple[int, int], str] = {}
        self.exacts: dict[float, str] = {}
        self.zones: dict[str | None, str] = {}
        # Counts under 1,000 need no grouping: in Latin digits they are written as Python does.
        self.plain_digits = getattr(locale, "default_numbering_system", "latn") == "latn"

    def number(self, value: int | float) -> str:
        if self.plain_digits and type(value) is int and 0 <= value < 1000:
            return str(value)
        found = self.numbers.get(value)
        if found is None:
            if len(self.numbers) > self.LIMIT:
                self.numbers.clear()
            found = self.numbers[value] = numbers.format_decimal(value, locale=self.reader.locale)
        return found

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.reader.timezone)

    def exact(self, value: datetime) -> str:
        minute = value.timestamp() // 60
        found = self.exacts.get(minute)
        if found is None:
            if len(self.exacts) > self.LIMIT:
                self.exacts.clear()
            found = self.exacts[minute] = self._exact(value)
        return found

    def _exact(self, value: datetime) -> str:
        local = self.local(value)
        clock = self.times.get((local.hour, local.minute))
        if clock is None:
            if len(self.times) > self.LIMIT:
                self.times.clear()
            clock = self.times[(local.hour, local.minute)] = self.time.apply(
                local, self.reader.locale
            )
        if self.utc:
            zone = "UTC"
        else:
            zone_key = local.tzname()
            zone = self.zones.get(zone_key) or self.zones.setdefault(
                zone_key, zone_name(local, self.reader)
            )
        return f"{self.joined.format(clock, self._date(local))} {zone}"

    def short_date(self, value: datetime) -> str:
        return self._date(self.local(value))

    def _date(self, local: datetime) -> str:
        day = local.date()
        found = self.dates.get(day)
        if found is None:
            if len(self.dates) > self.LIMIT:
                self.dates.clear()
            found = self.dates[day] = self.date.apply(local, self.reader.locale)
        return found

    def ago(self, unit: str, count: int, size: int) -> str:
        key = (unit, count)
        found = self.relative.get(key)
        if found is None:
            if len(self.relative) > self.LIMIT:
                self.relative.clear()
            found = self.relative[key] = dates.format_timedelta(
                timedelta(seconds=-count * size),
                threshold=1,
                add_direction=True,
                locale=self.reader.locale,
            )
        return found


_formats: dict[tuple[str, str], _Formats] = {}


def _current_formats() -> _Formats:
    state = _request_state()
    if state is None:
        return _formats_for(current_reader())
    if state.formats is None:
        state.formats = _formats_for(current_reader())
    return state.formats


def _formats_for(reader: Reader) -> _Formats:
    key = reader.key
    found = _formats.get(key)
    if found is None:
        with _lock:
            found = _formats.get(key)
            if found is None:
                if len(_formats) > _Formats.LIMIT:
                    _formats.clear()
                found = _formats[key] = _Formats(reader)
    return found


def format_number(number: int | float) -> str:
    """A count as the reader writes it: ``1,234`` in English, ``1.234`` in German.

    :param number: the number.
    :return: the number with the locale's grouping (CLDR decimal format).
    """
    return _current_formats().number(number)


def exact_time(value: datetime) -> str:
    """The date and time in the reader's time zone and form: ``"Mar 5, 2024, 2:30 PM UTC"``.

    The locale's medium date and short time, joined as CLDR's medium date-time pattern
    says, then the zone's short name as CLDR gives it in the locale (``"MEZ"`` in German,
    ``"+0100"`` where the locale has no name for it; ``"UTC"`` for UTC).

    :param value: a timezone-aware datetime.
    :return: the text.
    """
    return _current_formats().exact(value)


def short_date(value: datetime) -> str:
    """The date alone in the reader's time zone and form: ``"Mar 5, 2024"``.

    :param value: a timezone-aware datetime.
    :return: the locale's medium date (CLDR).
    """
    return _current_formats().short_date(value)


def zone_name(local: datetime, reader: Reader) -> str:
    """The short name of ``local``'s zone as CLDR writes it in ``reader``'s locale.

    :param local: a datetime in ``reader``'s time zone.
    :param reader: the reader.
    :return: the name: ``"UTC"`` for UTC, else ``"MEZ"``, ``"+0100"``...
    """
    if local.utcoffset() == timedelta(0) and str(reader.timezone) in ("UTC", "Etc/UTC"):
        return "UTC"
    return dates.format_time(local, "z", tzinfo=reader.timezone, locale=reader.locale)


#: Relative times go from seconds to days, then the date: the largest unit that fits.
_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))


def times(value: datetime) -> tuple[str, str]:
    """:func:`exact_time` and :func:`relative_time` of one value (a page's ``<time>``).

    :param value: a timezone-aware datetime in the past.
    :return: ``(exact, relative)``.
    """
    formats = _current_formats()
    return formats.exact(value), _relative(formats, value)


def relative_time(value: datetime) -> str:
    """ "5 minutes ago" for the last week, then the date, in the reader's language.

    Under a minute (or in the future, a clock a little ahead) is "just now"; then whole
    minutes, hours or days, rounded down, as CLDR words them (``"vor 5 Minuten"``); from
    the seventh day the date (:func:`short_date`).

    :param value: a timezone-aware datetime in the past.
    :return: the text.
    """
    return _relative(_current_formats(), value)


def _relative(formats: _Formats, value: datetime) -> str:
    seconds = time.time() - value.timestamp()
    if seconds < 60:
        return gettext("just now")
    for size, unit in _UNITS:
        if seconds >= size:
            count = int(seconds // size)
            if unit == "day" and count > 6:
                return formats.short_date(value)
            return formats.ago(unit, count, size)
    return formats.short_date(value)  # pragma: no cover (60 seconds or more always fits a unit)
