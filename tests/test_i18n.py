"""Flasket in the reader's language: pages, dates, numbers, plurals and each recipient's mail.

Pages follow the host: ``FLASKET_LOCALE_SELECTOR`` / ``FLASKET_TIMEZONE_SELECTOR``, else
Flask-Babel's selectors when the host uses Flask-Babel, else ``FLASKET_DEFAULT_LOCALE`` /
``FLASKET_DEFAULT_TIMEZONE`` (:mod:`flasket.i18n`). Mail is written in each recipient's own
language at fan-out (:func:`flasket.notify.render_for`, :func:`flasket.outbox._renderings`).

What a page should say is read from the shipped catalogs (``flasket/translations``), so a
translator's rewording does not break a test, while each expected text is checked to be a
real translation, different from the English one (:func:`translated`). The test host's
users have no ``locale`` or ``timezone`` column: ``FLASKET_USER_LOCALE`` /
``FLASKET_USER_TIMEZONE`` are callables mapping usernames to them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import flask_babel
import jinja2
import pytest
import sqlalchemy as sa
from babel import Locale, numbers
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, render_template_string, request
from flask_login import current_user
from markupsafe import Markup, escape

from flasket import ConfigError, delivery, i18n, notify, signals
from flasket.i18n import Reader, force_locale, ngettext, translations_for
from flasket.pagination import Page
from flasket.templating import count_line
from tests.helpers import ROOT, Client, Inbox, OwnApps, Received, ext_models, rows
from tests.hostapp import User, create_app, db

CATALOGS = ROOT / "flasket" / "translations"
PLAIN_HOST_TEMPLATES = ROOT / "tests" / "hosts" / "plain" / "templates"
BERLIN = ZoneInfo("Europe/Berlin")
#: A winter and a summer moment, so Berlin time is told from a fixed offset (MEZ / MESZ);
#: late in the UTC day, so the date in Berlin is the next one.
WINTER = datetime(2024, 3, 5, 23, 30, tzinfo=timezone.utc)
SUMMER = datetime(2024, 7, 5, 22, 30, tzinfo=timezone.utc)
TIME_TITLE = re.compile(r'<time datetime="[^"]+" title="([^"]+)">([^<]*)</time>')
UNAVAILABLE = "The ticket system cannot reach its database just now."

TICKET_FORM = {
    "title": "Printer is on fire",
    "body": "Flames everywhere.",
    "urgency": "High",
    "application": "Website",
    "topic": "Bug report",
}


# --- What the catalogs say ---------------------------------------------------------------


@functools.cache
def catalog(locale: str) -> Catalog:
    with (CATALOGS / locale / "LC_MESSAGES" / "flasket.po").open("rb") as file:
        return read_po(file)


def catalog_text(locale: str, msgid: str) -> str:
    """The shipped catalog's translation of ``msgid``, as it is (it may read as the English)."""
    message = catalog(locale).get(msgid)
    assert message is not None, f"{msgid!r} is not in the {locale} catalog"
    text = message.string
    assert isinstance(text, str), f"{msgid!r} is a plural message"
    assert text, f"{msgid!r} is not translated in the {locale} catalog"
    return text


def translated(locale: str, msgid: str, **values: Any) -> str:
    """The shipped catalog's translation of ``msgid``, filled in; it must differ from English."""
    text = catalog_text(locale, msgid)
    assert text != msgid, f"{msgid!r} reads as the English in the {locale} catalog"
    return text % values if values else text


def plural_forms(locale: str, singular: str) -> tuple[str, ...]:
    message = catalog(locale).get(singular)
    assert message is not None, f"{singular!r} is not in the {locale} catalog"
    assert isinstance(message.string, tuple), f"{singular!r} is not a plural message"
    assert all(message.string), f"{singular!r} is not fully translated in the {locale} catalog"
    return message.string


def html(text: str) -> str:
    """``text`` as an autoescaped template writes it."""
    return str(escape(text))


def nav(locale: str) -> list[str]:
    """The ticket area's navigation, as the escaped HTML of a page in ``locale``."""
    return [
        html(translated(locale, msgid))
        for msgid in ("Overview", "Browse tickets", "My tickets", "Submit a ticket")
    ]


def time_titles(page: str) -> list[str]:
    """The exact times of a page's ``<time>`` elements (their ``title``)."""
    return [title for title, _ in TIME_TITLE.findall(page)]


def berlin_time(when: datetime) -> str:
    """``when`` as a German reader in Berlin reads it: CLDR's medium date, short time, zone."""
    local = when.astimezone(BERLIN)
    return f"{local:%d.%m.%Y}, {local:%H:%M} {'MESZ' if local.dst() else 'MEZ'}"


# --- Hosts -------------------------------------------------------------------------------


def seed_users(app: Flask) -> None:
    with app.app_context():
        db.create_all()
        db.session.add_all(
            [
                User(username="alice", email="alice@example.test"),
                User(username="bob", email="bob@example.test"),
                User(username="carol", email="carol@example.test"),
                User(username="admin", email="admin@example.test", is_admin=True),
            ]
        )
        db.session.commit()


HostFactory = Callable[..., Flask]


@pytest.fixture
def make_host(
    own_apps: OwnApps, smtp_server: tuple[Inbox, int], inbox: Inbox
) -> Iterator[HostFactory]:
    """Builds the test host (one per test) with ``config``; ``babel`` sets Flask-Babel up first.

    ``babel`` holds the keyword arguments of ``flask_babel.Babel(app, ...)``: the host uses
    Flask-Babel, set up before Flasket as most hosts do.
    """

    def make(
        babel: dict[str, Any] | None = None, templates: Path | None = None, **config: Any
    ) -> Flask:
        def set_up_babel(app: Flask) -> None:
            flask_babel.Babel(app, **(babel or {}))

        app = create_app(
            smtp_port=smtp_server[1],
            template_folder=str(templates) if templates else "templates",
            before_flasket=set_up_babel if babel is not None else None,
            SQLALCHEMY_DATABASE_URI=own_apps.database_url,
            **config,
        )
        own_apps.track(app)
        seed_users(app)
        return app

    yield make
    delivery.wait_for_idle(timeout=30)


def header_locale() -> str | None:
    """A host's locale selector: the language the request names in ``X-Locale``."""
    return request.headers.get("X-Locale")


def set_times(app: Flask, ticket_id: int, when: datetime) -> None:
    """The ticket was opened (and last changed) at ``when``."""
    models = ext_models(app)
    with app.app_context():
        db.session.execute(
            sa.update(models.Ticket)
            .where(models.Ticket.id == ticket_id)
            .values(created_at=when, updated_at=when)
        )
        db.session.commit()


def set_reply_time(app: Flask, ticket_id: int, when: datetime) -> None:
    models = ext_models(app)
    with app.app_context():
        db.session.execute(
            sa.update(models.Reply)
            .where(models.Reply.ticket_id == ticket_id)
            .values(created_at=when)
        )
        db.session.commit()


def html_tag(page: str) -> str:
    match = re.search(r"<html[^>]*>", page)
    assert match, "no <html> tag"
    return match.group(0)


def flasket_div(page: str) -> str:
    match = re.search(r'<div class="flasket"[^>]*>', page)
    assert match, 'no <div class="flasket">'
    return match.group(0)


# --- 1. A host with Flask-Babel ----------------------------------------------------------


@pytest.mark.one_database
def test_a_flask_babel_hosts_selectors_choose_flaskets_language_and_time_zone(
    make_host: HostFactory,
) -> None:
    chosen: dict[str, str | None] = {"locale": "es", "zone": None}
    app = make_host(
        babel={
            "locale_selector": lambda: chosen["locale"],
            "timezone_selector": lambda: chosen["zone"],
        }
    )
    alice = Client(app, "alice")

    index = alice.get("/ticket/").text
    assert html_tag(index) == '<html lang="es" dir="ltr">'
    for item in nav("es"):
        assert item in index
    assert ">Overview<" not in index

    ticket_id = alice.submit(**TICKET_FORM)
    page = alice.get(f"/ticket/{ticket_id}").text
    flashed = translated(
        "es",
        "Ticket #%(number)s submitted. You will get an e-mail when it changes.",
        number=ticket_id,
    )
    assert html(flashed) in page
    assert "submitted. You will get an e-mail" not in page

    refused = alice.post("/ticket/submit", {**TICKET_FORM, "title": ""})
    assert refused.status_code == 400
    assert html(translated("es", "Give your ticket a title.")) in refused.text
    assert "Give your ticket a title." not in refused.text

    # German, in Berlin: the exact times (titles of <time>) in German form and Berlin time.
    chosen.update(locale="de", zone="Europe/Berlin")
    assert alice.reply(ticket_id, "Any news?").status_code == 303
    set_times(app, ticket_id, WINTER)
    set_reply_time(app, ticket_id, SUMMER)
    page = alice.get(f"/ticket/{ticket_id}").text
    assert html_tag(page) == '<html lang="de" dir="ltr">'
    titles = time_titles(page)
    assert "06.03.2024, 00:30 MEZ" in titles  # opened: winter, UTC+1
    assert "06.07.2024, 00:30 MESZ" in titles  # the reply: summer, UTC+2
    assert set(titles) == {"06.03.2024, 00:30 MEZ", "06.07.2024, 00:30 MESZ"}
    assert berlin_time(WINTER) == "06.03.2024, 00:30 MEZ"
    # Older than a week: the date, in German form and Berlin's day, is what the page shows.
    assert {shown for _, shown in TIME_TITLE.findall(page)} == {"06.03.2024", "06.07.2024"}
    # Flasket's default categories, labels and values, from the de catalog.
    for msgid in ("Urgency", "High", "Application", "Topic", "Bug report"):
        assert f">{html(translated('de', msgid))}<" in page
    assert ">Urgency<" not in page

    refused = alice.post("/ticket/submit", {**TICKET_FORM, "title": ""})
    assert refused.status_code == 400
    assert html(translated("de", "Give your ticket a title.")) in refused.text
    assert html(translated("es", "Give your ticket a title.")) not in refused.text


@pytest.mark.one_database
def test_flask_babels_default_locale_and_time_zone_are_the_sites_without_a_selector(
    make_host: HostFactory,
) -> None:
    app = make_host(babel={}, BABEL_DEFAULT_LOCALE="fr", BABEL_DEFAULT_TIMEZONE="Europe/Berlin")
    alice = Client(app, "alice")
    ticket_id = alice.submit(**TICKET_FORM)
    set_times(app, ticket_id, WINTER)
    page = alice.get(f"/ticket/{ticket_id}").text
    assert html_tag(page) == '<html lang="fr" dir="ltr">'
    for item in nav("fr"):
        assert item in page
    assert any("6 mars 2024" in t and "00:30" in t for t in time_titles(page)), time_titles(page)
    with app.app_context():
        site = i18n.default_reader()
    assert (str(site.locale), site.zone_name) == ("fr", "Europe/Berlin")


@pytest.mark.one_database
def test_defaults_given_to_flask_babel_itself_are_the_sites_too(make_host: HostFactory) -> None:
    app = make_host(babel={"default_locale": "fr", "default_timezone": "Europe/Berlin"})
    alice = Client(app, "alice")
    assert html_tag(alice.get("/ticket/").text) == '<html lang="fr" dir="ltr">'
    with app.app_context():
        site = i18n.default_reader()
    assert (str(site.locale), site.zone_name) == ("fr", "Europe/Berlin")


# --- 2. A host without Flask-Babel -------------------------------------------------------


@pytest.mark.one_database
def test_pages_are_english_by_default(make_host: HostFactory) -> None:
    alice = Client(make_host(), "alice")
    ticket_id = alice.submit(**TICKET_FORM)
    page = alice.get(f"/ticket/{ticket_id}").text
    assert html_tag(page) == '<html lang="en" dir="ltr">'
    assert f"Ticket #{ticket_id} submitted. You will get an e-mail when it changes." in page
    for item in ("Overview", "Browse tickets", "My tickets", "Submit a ticket", "Urgency"):
        assert f">{item}<" in page
    assert all(title.endswith(" UTC") for title in time_titles(page)), time_titles(page)


@pytest.mark.one_database
def test_flasket_default_locale_makes_every_page_french(make_host: HostFactory) -> None:
    app = make_host(FLASKET_DEFAULT_LOCALE="fr")
    alice = Client(app, "alice")
    ticket_id = alice.submit(**TICKET_FORM)
    with app.app_context():
        alice_id = db.session.scalar(sa.select(User.id).filter_by(username="alice"))
    flashed = translated(
        "fr",
        "Ticket #%(number)s submitted. You will get an e-mail when it changes.",
        number=ticket_id,
    )
    pages = {
        f"/ticket/{ticket_id}": [flashed, *(translated("fr", w) for w in ("Urgency", "Replies"))],
        "/ticket/": [translated("fr", "Support tickets")],
        "/ticket/all": [translated("fr", "Browse tickets")],
        f"/ticket/user/{alice_id}": [translated("fr", "My tickets")],
        "/ticket/submit": [translated("fr", "Submit ticket")],
    }
    for url, words in pages.items():
        response = alice.get(url)
        assert response.status_code == 200, url
        assert html_tag(response.text) == '<html lang="fr" dir="ltr">', url
        for word in [*nav("fr"), *(html(word) for word in words)]:
            assert word in response.text, (url, word)
        assert ">Browse tickets<" not in response.text, url

    refused = alice.post("/ticket/submit", {**TICKET_FORM, "title": ""})
    assert refused.status_code == 400
    assert html(translated("fr", "Give your ticket a title.")) in refused.text
    missing = alice.get(f"/ticket/{ticket_id + 1000}")
    assert missing.status_code == 404
    assert html_tag(missing.text) == '<html lang="fr" dir="ltr">'
    assert html(translated("fr", "There is no ticket #%(number)s.", number=ticket_id + 1000)) in (
        missing.text
    )
    assert html(translated("fr", "Back to the tickets")) in missing.text
    unknown = alice.get("/ticket/no/such/page")
    assert unknown.status_code == 404
    assert html_tag(unknown.text) == '<html lang="fr" dir="ltr">'
    assert html(translated("fr", "That page does not exist.")) in unknown.text


@pytest.mark.one_database
def test_a_locale_selector_can_follow_accept_language_request_by_request(
    make_host: HostFactory,
) -> None:
    app = make_host(
        FLASKET_LOCALE_SELECTOR=lambda: request.accept_languages.best_match(["en", "fr", "de"])
    )
    alice = Client(app, "alice")
    for accept, lang in (
        ("fr-CH, fr;q=0.9, en;q=0.5", "fr"),
        ("de-DE,de;q=0.9", "de"),
        ("ja", "en"),  # not offered: the selector says None, the site's default is English
        ("en-US,en;q=0.9,fr;q=0.8", "en"),
        ("fr", "fr"),
    ):
        page = alice.get("/ticket/", headers={"Accept-Language": accept}).text
        assert html_tag(page) == f'<html lang="{lang}" dir="ltr">', accept
        expected = ["Overview", "Browse tickets"] if lang == "en" else nav(lang)[:2]
        for item in expected:
            assert item in page, accept


# Locale asked for -> (the page's lang, its dir, the nav's "Overview" in that language).
LOCALE_CASES = {
    "xx": ("en", "ltr", "Overview"),  # unknown to CLDR: the site's default, English
    "nl": ("en", "ltr", "Overview"),  # no catalog: English text (Dutch dates, see below)
    "pt": ("pt-BR", "ltr", translated("pt_BR", "Overview")),
    "pt_PT": ("pt-BR", "ltr", translated("pt_BR", "Overview")),
    "zh_CN": ("zh-Hans", "ltr", translated("zh_Hans", "Overview")),
    "zh-CN": ("zh-Hans", "ltr", translated("zh_Hans", "Overview")),
    "zh": ("zh-Hans", "ltr", translated("zh_Hans", "Overview")),
    "zh_TW": ("en", "ltr", "Overview"),  # Traditional Chinese: no catalog, never Simplified
    "ar": ("ar", "rtl", translated("ar", "Overview")),
}


@pytest.mark.one_database
@pytest.mark.parametrize("asked", list(LOCALE_CASES))
def test_the_nearest_catalog_serves_a_locale_and_pages_say_which_language_they_are_in(
    make_host: HostFactory, asked: str
) -> None:
    lang, direction, overview = LOCALE_CASES[asked]
    app = make_host(FLASKET_LOCALE_SELECTOR=header_locale)
    alice = Client(app, "alice")
    page = alice.get("/ticket/", headers={"X-Locale": asked}).text
    assert html_tag(page) == f'<html lang="{lang}" dir="{direction}">'
    assert flasket_div(page) == f'<div class="flasket" lang="{lang}" dir="{direction}">'
    assert f">{html(overview)}<" in page


@pytest.mark.one_database
def test_a_locale_without_a_catalog_reads_english_with_its_own_dates(
    make_host: HostFactory,
) -> None:
    app = make_host(FLASKET_LOCALE_SELECTOR=header_locale)
    alice = Client(app, "alice")
    ticket_id = alice.submit(**TICKET_FORM)
    assert alice.reply(ticket_id, "Any news?").status_code == 303
    set_times(app, ticket_id, WINTER)
    set_reply_time(app, ticket_id, WINTER + timedelta(days=1, minutes=5))
    dutch = alice.get(f"/ticket/{ticket_id}", headers={"X-Locale": "nl"}).text
    assert html_tag(dutch) == '<html lang="en" dir="ltr">'
    assert ">Overview<" in dutch
    # CLDR's Dutch: "5 mrt 2024", where English says "Mar 5, 2024".
    # (CLDR versions differ on the comma between date and time: Babel 2.12 has none.)
    titles = sorted(set(time_titles(dutch)))
    assert [title[:10] for title in titles] == ["5 mrt 2024", "6 mrt 2024"]
    assert [title[-9:] for title in titles] == ["23:30 UTC", "23:35 UTC"]
    assert "Mar 5, 2024" not in dutch
    english = alice.get(f"/ticket/{ticket_id}").text
    assert any(title.startswith("Mar 5, 2024") for title in time_titles(english))


@pytest.mark.one_database
def test_arabic_is_right_to_left_in_the_hosts_own_layout(make_host: HostFactory) -> None:
    app = make_host(
        templates=PLAIN_HOST_TEMPLATES,
        FLASKET_BASE_TEMPLATE="base.html",
        FLASKET_LOCALE_SELECTOR=header_locale,
    )
    alice = Client(app, "alice")
    page = alice.get("/ticket/", headers={"X-Locale": "ar"}).text
    assert html_tag(page) == '<html lang="en">'  # the host's own, left as it is
    assert flasket_div(page) == '<div class="flasket" lang="ar" dir="rtl">'
    assert f">{html(translated('ar', 'Overview'))}<" in page
    english = alice.get("/ticket/").text
    assert flasket_div(english) == '<div class="flasket" lang="en" dir="ltr">'


# --- 3. Lazy labels ----------------------------------------------------------------------


def compile_catalog(folder: Path, locale: str, domain: str, messages: dict[str, str]) -> Path:
    """A compiled catalog ``<folder>/<locale>/LC_MESSAGES/<domain>.mo`` of ``messages``."""
    found = Catalog(locale=locale, domain=domain)
    for msgid, msgstr in messages.items():
        found.add(msgid, msgstr)
    target = folder / locale / "LC_MESSAGES" / f"{domain}.mo"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as file:
        write_mo(file, found)
    return target


@pytest.mark.one_database
def test_category_labels_in_the_hosts_own_domain_are_translated_per_request(
    make_host: HostFactory, tmp_path: Path
) -> None:
    host_words = {
        "es": {"Department": "Departamento", "Sales": "Ventas", "Support": "Soporte"},
        "de": {"Department": "Abteilung", "Sales": "Vertrieb", "Support": "Kundendienst"},
    }
    for locale, messages in host_words.items():
        compile_catalog(tmp_path, locale, "messages", messages)
    lazy = flask_babel.lazy_gettext
    app = make_host(
        babel={"locale_selector": lambda: request.accept_languages.best_match(["en", "es", "de"])},
        BABEL_TRANSLATION_DIRECTORIES=str(tmp_path),
        FLASKET_CATEGORIES=[
            {
                "name": "department",
                "label": lazy("Department"),
                "choices": [("sales", lazy("Sales")), ("support", lazy("Support"))],
                "widget": "select",
            }
        ],
    )
    alice = Client(app, "alice")
    ticket_id = alice.submit(department="sales")

    for accept, words in (
        ("es", host_words["es"]),
        ("de", host_words["de"]),
        ("en", {"Department": "Department", "Sales": "Sales", "Support": "Support"}),
        ("es", host_words["es"]),
    ):
        form = alice.get("/ticket/submit", headers={"Accept-Language": accept}).text
        for shown in words.values():
            assert f">{shown}<" in form, (accept, shown)
        others = {w for locale, m in host_words.items() if locale != accept for w in m.values()}
        assert not [word for word in others if f">{word}<" in form], accept
        ticket = alice.get(f"/ticket/{ticket_id}", headers={"Accept-Language": accept}).text
        assert f"<dt>{words['Department']}</dt><dd>{words['Sales']}</dd>" in ticket, accept


@pytest.mark.one_database
def test_flaskets_default_category_labels_are_translated_per_request(
    make_host: HostFactory,
) -> None:
    app = make_host(FLASKET_LOCALE_SELECTOR=header_locale)
    alice = Client(app, "alice")
    for locale in ("de", None, "fr", "de"):
        headers = {"X-Locale": locale} if locale else {}
        form = alice.get("/ticket/submit", headers=headers).text
        for msgid in ("Urgency", "Low", "High", "Topic", "Mobile app", "Other"):
            expected = html(translated(locale, msgid)) if locale else msgid
            assert expected in form, (locale, msgid)
        assert ("Urgency" in form) == (locale is None), locale


# --- 4. The host's own catalogs of Flasket's messages ------------------------------------


@pytest.mark.one_database
def test_translation_directories_reword_a_message_and_add_a_language(
    make_host: HostFactory, tmp_path: Path
) -> None:
    compile_catalog(tmp_path, "de", "flasket", {"Overview": "Startseite"})
    compile_catalog(
        tmp_path, "nl", "flasket", {"Overview": "Overzicht", "My tickets": "Mijn tickets"}
    )
    app = make_host(
        FLASKET_LOCALE_SELECTOR=header_locale, FLASKET_TRANSLATION_DIRECTORIES=[tmp_path]
    )
    alice = Client(app, "alice")

    german = alice.get("/ticket/", headers={"X-Locale": "de"}).text
    assert ">Startseite<" in german
    assert html(translated("de", "Overview")) not in german
    for msgid in ("Browse tickets", "My tickets", "Submit a ticket"):
        assert f">{html(translated('de', msgid))}<" in german, msgid
    assert html_tag(german) == '<html lang="de" dir="ltr">'

    dutch = alice.get("/ticket/", headers={"X-Locale": "nl"}).text
    assert html_tag(dutch) == '<html lang="nl" dir="ltr">'
    assert ">Overzicht<" in dutch
    assert ">Mijn tickets<" in dutch
    assert ">Browse tickets<" in dutch  # not in the host's catalog: English

    # Another language keeps the shipped catalog alone.
    spanish = alice.get("/ticket/", headers={"X-Locale": "es"}).text
    assert f">{html(translated('es', 'Overview'))}<" in spanish


# --- 5. Plurals and numbers --------------------------------------------------------------


#: Arabic's six plural forms (CLDR: zero, one, two, few, many, other), one count each.
ARABIC_COUNTS = {0: 0, 1: 1, 2: 2, 3: 3, 11: 4, 100: 5}


def test_arabic_counts_take_their_own_plural_forms() -> None:
    reader = Reader(Locale.parse("ar"), timezone.utc)
    assert [translations_for(reader.locale).plural(n) for n in ARABIC_COUNTS] == list(
        ARABIC_COUNTS.values()
    )
    shown: dict[str, list[str]] = {}
    for singular, plural in (
        ("%(num)s reply", "%(num)s replies"),
        ("and %(num)s more", "and %(num)s more"),
        ("%(count)s open", "%(count)s open"),
    ):
        forms = plural_forms("ar", singular)
        assert len(forms) == 6
        texts = []
        with force_locale(reader):
            for count, form in ARABIC_COUNTS.items():
                number = numbers.format_decimal(count, locale="ar")
                text = ngettext(singular, plural, count, count=number)
                assert text == forms[form] % {"num": number, "count": number}, (singular, count)
                texts.append(text)
        shown[singular] = texts
    # Between them the messages tell every form but zero and other apart: the words for 1,
    # 2, 3 and 11 each differ from the others' (numbers left out).
    words = [
        tuple(text.replace(str(count), "#") for text in texts)
        for count, texts in zip(ARABIC_COUNTS, zip(*shown.values(), strict=True), strict=True)
    ]
    assert len(set(words)) >= 5, words


def test_japanese_has_a_single_form_and_groups_thousands() -> None:
    forms = plural_forms("ja", "%(num)s reply")
    assert len(forms) == 1
    with force_locale(Reader(Locale.parse("ja"), timezone.utc)):
        for count in (0, 1, 2, 11, 1234):
            number = numbers.format_decimal(count, locale="ja")
            assert ngettext("%(num)s reply", "%(num)s replies", count) == forms[0] % {
                "num": number
            }
        assert "1,234" in ngettext("%(num)s reply", "%(num)s replies", 1234)


def test_count_lines_format_their_numbers_for_the_reader() -> None:
    page: Page[int] = Page(items=list(range(25)), page=50, per_page=25, total=1234)
    with force_locale(Reader(Locale.parse("de"), timezone.utc)):
        german = count_line(page, "open")
    forms = plural_forms("de", "%(first)s–%(last)s of %(num)s open ticket")  # noqa: RUF001
    assert german == forms[1] % {"first": "1.226", "last": "1.250", "num": "1.234"}
    assert "1.234" in german
    with force_locale(Reader(Locale.parse("en"), timezone.utc)):
        assert count_line(page, "open") == "1,226–1,250 of 1,234 open tickets"  # noqa: RUF001
    one: Page[int] = Page(items=[1], page=1, per_page=25, total=1)
    with force_locale(Reader(Locale.parse("de"), timezone.utc)):
        assert count_line(one, "open") == forms[0] % {"first": "1", "last": "1", "num": "1"}


# --- 6. Mail in each recipient's language ------------------------------------------------


def settings(**values: Any) -> pytest.MarkDecorator:
    """Run a test with these host config keys (overrides the ``app_config`` fixture)."""
    return pytest.mark.parametrize("app_config", [values], ids=["config"])


def languages(**people: tuple[str | None, str | None]) -> dict[str, Any]:
    """Host config giving users (by username) a locale and a time zone, for mail and pages."""

    def locale_of(user: Any) -> str | None:
        return people.get(user.username, (None, None))[0]

    def zone_of(user: Any) -> str | None:
        return people.get(user.username, (None, None))[1]

    def page_locale() -> str | None:
        return locale_of(current_user) if current_user.is_authenticated else None

    def page_zone() -> str | None:
        return zone_of(current_user) if current_user.is_authenticated else None

    return {
        "FLASKET_USER_LOCALE": locale_of,
        "FLASKET_USER_TIMEZONE": zone_of,
        "FLASKET_LOCALE_SELECTOR": page_locale,
        "FLASKET_TIMEZONE_SELECTOR": page_zone,
    }


def received_by(inbox: Inbox, address: str) -> Received:
    found = inbox.to(address)
    assert len(found) == 1, f"{address} got {len(found)} messages"
    return found[0]


def per_recipient(inbox: Inbox) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in inbox.messages:
        for address in message.envelope_to:
            counts[address] = counts.get(address, 0) + 1
    return counts


def follow(client: Client, ticket_id: int) -> None:
    assert client.post(f"/ticket/{ticket_id}/follow").status_code == 303


def the_event(app: Flask, event: str) -> Any:
    found = rows(app, ext_models(app).OutboxEvent, event=event)
    assert len(found) == 1, f"{len(found)} {event} events"
    return found[0]


def assert_german_reply_mail(
    received: Received, ticket_id: int, when: datetime, body: str = "Any news?"
) -> None:
    number = catalog_text("de", "[Ticket #%(number)s]") % {"number": ticket_id}
    assert received.subject == f"Re: {number} Printer is on fire"
    text, page = received.part("plain"), received.part("html")
    assert text.startswith(
        translated(
            "de",
            "%(user)s replied to ticket #%(number)s on %(time)s: %(title)s",
            user="alice",
            number=ticket_id,
            time=berlin_time(when),
            title="Printer is on fire",
        )
    ), text
    assert body in text
    assert translated("de", "View the ticket and reply: %(link)s", link="") in text
    assert '<html lang="de" dir="ltr">' in page
    assert (
        html(
            translated("de", "%(user)s replied on %(time)s:", user="alice", time=berlin_time(when))
        )
        in page
    )
    assert "replied" not in text
    assert "replied" not in page
    # The copy's own unfollow link, never the placeholder the rendering holds.
    assert notify.TOKEN_PLACEHOLDER not in text
    assert notify.TOKEN_PLACEHOLDER not in page
    assert str(received.message["List-Unsubscribe"]).strip("<>") in text


@settings(**languages(alice=("es", None), bob=("de", "Europe/Berlin"), admin=("ja", "Asia/Tokyo")))
def test_each_follower_gets_one_mail_in_their_own_language_and_time_zone(
    app: Flask,
    followed_ticket: int,
    alice: Client,
    admin: Client,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    follow(admin, followed_ticket)
    inbox.messages.clear()
    rendered: list[str] = []
    render_mail = notify._render_mail

    def counting(reader: Reader, *args: Any, **kwargs: Any) -> tuple[str, str, str]:
        rendered.append(f"{reader.locale}/{reader.zone_name}")
        return render_mail(reader, *args, **kwargs)

    monkeypatch.setattr(notify, "_render_mail", counting)

    assert alice.reply(followed_ticket, "Any news?").status_code == 303
    # Alice's own page is Spanish...
    page = alice.get(f"/ticket/{followed_ticket}").text
    assert html(translated("es", "Your reply was posted.")) in page

    assert per_recipient(inbox) == {
        "bob@example.test": 1,
        "carol@example.test": 1,
        "admin@example.test": 1,
    }
    # ... but the request rendered the event once, in the site's language (English, UTC).
    event = the_event(app, "replied")
    assert (event.locale, event.time_zone) == ("en", "UTC")
    assert rendered[0] == "en/UTC"
    assert sorted(rendered) == ["de/Europe/Berlin", "en/UTC", "ja/Asia/Tokyo"]

    assert_german_reply_mail(
        received_by(inbox, "bob@example.test"), followed_ticket, event.created_at
    )

    carol = received_by(inbox, "carol@example.test")
    assert carol.subject == f"Re: [Ticket #{followed_ticket}] Printer is on fire"
    assert re.match(
        rf"alice replied to ticket #{followed_ticket} on [A-Z][a-z]{{2}} \d{{1,2}}, \d{{4}}, "
        r"\d{1,2}:\d{2}\s[AP]M UTC: Printer is on fire",
        carol.part("plain"),
    ), carol.part("plain")
    assert '<html lang="en" dir="ltr">' in carol.part("html")
    # Carol reads the event's own rendering, with her own unfollow link.
    link = str(carol.message["List-Unsubscribe"]).strip("<>")
    for part, stored in (("plain", event.text), ("html", event.html)):
        sent = carol.part(part).replace("\r\n", "\n").rstrip("\n")
        assert sent == stored.replace(event.unfollow_url, link).rstrip("\n"), part

    admin_mail = received_by(inbox, "admin@example.test")
    number = translated("ja", "[Ticket #%(number)s]", number=followed_ticket)
    assert admin_mail.subject == f"Re: {number} Printer is on fire"
    assert '<html lang="ja" dir="ltr">' in admin_mail.part("html")
    assert " JST" in admin_mail.part("plain") or "日本標準時" in admin_mail.part("plain")
    assert "Any news?" in admin_mail.part("plain")

    # Copies in another language than the event's hold their own bodies; the others share it.
    copies = {row.recipient: row for row in rows(app, ext_models(app).Outbox, event="replied")}
    assert copies["carol@example.test"].text is None
    assert copies["bob@example.test"].text is not None
    assert copies["admin@example.test"].html is not None


@settings(**languages(bob=("de", "Europe/Berlin"), carol=("de", "Europe/Berlin")))
def test_followers_sharing_a_language_and_time_zone_share_one_rendering(
    app: Flask,
    followed_ticket: int,
    alice: Client,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readers: list[str] = []
    render_for = notify.render_for

    def counting(
        outbox_event: Any, ticket: Any, reader: Reader, **options: Any
    ) -> tuple[str, str, str] | None:
        readers.append(f"{reader.locale}/{reader.zone_name}")
        return render_for(outbox_event, ticket, reader, **options)

    monkeypatch.setattr(notify, "render_for", counting)
    assert alice.reply(followed_ticket, "Any news?").status_code == 303

    assert per_recipient(inbox) == {"bob@example.test": 1, "carol@example.test": 1}
    assert readers == ["de/Europe/Berlin"]
    event = the_event(app, "replied")
    for address in ("bob@example.test", "carol@example.test"):
        assert_german_reply_mail(received_by(inbox, address), followed_ticket, event.created_at)
    bob, carol = received_by(inbox, "bob@example.test"), received_by(inbox, "carol@example.test")
    assert bob.message["List-Unsubscribe"] != carol.message["List-Unsubscribe"]


@settings(
    FLASKET_STAFF_RECIPIENTS=["desk@example.test"],
    FLASKET_DEFAULT_LOCALE="fr",
    FLASKET_DEFAULT_TIMEZONE="Europe/Paris",
    **languages(alice=("es", "America/Mexico_City")),
)
def test_staff_addresses_get_new_tickets_in_the_sites_language(
    app: Flask, alice: Client, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers: list[Reader] = []
    render_for = notify.render_for

    def counting(
        outbox_event: Any, ticket: Any, reader: Reader, **options: Any
    ) -> tuple[str, str, str] | None:
        readers.append(reader)
        return render_for(outbox_event, ticket, reader, **options)

    monkeypatch.setattr(notify, "render_for", counting)
    ticket_id = alice.submit(**TICKET_FORM)
    page = alice.get(f"/ticket/{ticket_id}").text
    assert html_tag(page) == '<html lang="es" dir="ltr">'  # alice's own page: Spanish

    assert per_recipient(inbox) == {"desk@example.test": 1}
    event = the_event(app, "created")
    assert (event.locale, event.time_zone) == ("fr", "Europe/Paris")
    assert readers == []  # the staff address reads the event's own rendering
    received = received_by(inbox, "desk@example.test")
    with app.app_context(), force_locale(Reader(Locale.parse("fr"), ZoneInfo("Europe/Paris"))):
        when = i18n.exact_time(event.created_at)
    paris = event.created_at.astimezone(ZoneInfo("Europe/Paris"))
    assert f"{paris:%H:%M}" in when, when  # Paris time, not UTC nor Mexico City's
    text = received.part("plain")
    assert text.startswith(
        translated(
            "fr",
            "%(user)s submitted ticket #%(number)s on %(time)s: %(title)s",
            user="alice",
            number=ticket_id,
            time=when,
            title="Printer is on fire",
        )
    ), text
    assert (
        translated(
            "fr",
            "%(category)s: %(value)s",
            category=translated("fr", "Urgency"),
            value=translated("fr", "High"),
        )
        in text
    )
    assert '<html lang="fr" dir="ltr">' in received.part("html")
    assert html(translated("es", "Urgency")) not in received.part("html")


HOOKED: list[list[int]] = []


@settings(
    FLASKET_DELIVERY="hook",
    FLASKET_DELIVERY_HOOK=HOOKED.append,
    **languages(bob=("de", "Europe/Berlin")),
)
def test_a_reply_deleted_before_fan_out_still_mails_each_follower_once_in_the_sites_language(
    app: Flask, followed_ticket: int, alice: Client, inbox: Inbox
) -> None:
    HOOKED.clear()
    assert alice.reply(followed_ticket, "Any news?").status_code == 303
    event = the_event(app, "replied")
    assert [[event.id]] == HOOKED
    models = ext_models(app)
    with app.app_context():
        db.session.execute(sa.delete(models.Reply).where(models.Reply.id == event.reply_id))
        db.session.commit()

    with app.app_context():
        outcome = delivery.deliver(HOOKED[0])
    assert outcome.sent == 2
    assert per_recipient(inbox) == {"bob@example.test": 1, "carol@example.test": 1}
    bob = received_by(inbox, "bob@example.test")
    # The German rendering could not be written without the reply: the site's is sent.
    assert bob.subject == event.subject
    assert bob.part("plain").startswith(f"alice replied to ticket #{followed_ticket} on ")
    assert '<html lang="en" dir="ltr">' in bob.part("html")
    assert notify.TOKEN_PLACEHOLDER not in bob.part("plain")
    copies = {row.recipient: row for row in rows(app, models.Outbox, event="replied")}
    assert copies["bob@example.test"].text is None


def test_host_category_labels_in_mail_are_in_each_readers_language(
    make_host: HostFactory, tmp_path: Path, inbox: Inbox
) -> None:
    compile_catalog(tmp_path, "es", "messages", {"Department": "Departamento", "Sales": "Ventas"})
    compile_catalog(tmp_path, "de", "messages", {"Department": "Abteilung", "Sales": "Vertrieb"})
    lazy = flask_babel.lazy_gettext
    app = make_host(
        babel={"locale_selector": lambda: request.accept_languages.best_match(["en", "es", "de"])},
        BABEL_TRANSLATION_DIRECTORIES=str(tmp_path),
        FLASKET_STAFF_RECIPIENTS=["desk@example.test"],
        FLASKET_CATEGORIES=[
            {
                "name": "department",
                "label": lazy("Department"),
                "choices": [("sales", lazy("Sales"))],
                "widget": "select",
            }
        ],
        **languages(bob=("de", "Europe/Berlin")),
    )
    alice, bob = Client(app, "alice"), Client(app, "bob")
    alice.http.environ_base["HTTP_ACCEPT_LANGUAGE"] = "es"  # alice reads Spanish pages
    ticket_id = alice.submit(department="sales")
    follow(bob, ticket_id)
    assert alice.reply(ticket_id, "Any news?").status_code == 303

    # The staff address: the new ticket, then the requester's follow-up (nobody is assigned).
    assert per_recipient(inbox) == {"desk@example.test": 2, "bob@example.test": 1}
    created, follow_up = inbox.to("desk@example.test")  # the site's language: English
    assert "Department: Sales" in created.part("plain")
    assert "Departamento" not in created.part("plain")
    assert "alice replied to ticket" in follow_up.part("plain")
    german = received_by(inbox, "bob@example.test").part("html")
    assert (
        html(
            catalog_text("de", "%(category)s: %(value)s")
            % {"category": "Abteilung", "value": "Vertrieb"}
        )
        in german
    )


# --- 7. The 503 page when the locale selector itself needs the database ------------------


class DatabaseDown:
    """The database is gone: Flasket's routes raise a lost connection, so does the selector."""

    def __init__(self) -> None:
        self.down = False

    def error(self) -> sa.exc.OperationalError:
        return sa.exc.OperationalError(
            "SELECT locale FROM accounts", {}, Exception("server closed the connection")
        )

    def check(self) -> None:
        """An app-wide ``before_request``: a ticket-area request finds the database gone."""
        if self.down and request.path.startswith("/ticket"):
            raise self.error()

    def locale(self) -> str:
        """The host's selector: the reader's saved language, read from the database."""
        if self.down:
            raise self.error()
        return "fr"


@pytest.mark.one_database
@pytest.mark.parametrize("selector", ["flasket", "flask-babel"])
def test_the_503_page_answers_in_english_when_the_locale_selector_needs_the_database(
    make_host: HostFactory, selector: str
) -> None:
    outage = DatabaseDown()
    if selector == "flasket":
        app = make_host(FLASKET_LOCALE_SELECTOR=outage.locale)
    else:
        app = make_host(babel={"locale_selector": outage.locale})
    app.before_request(outage.check)
    alice = Client(app, "alice")
    assert html_tag(alice.get("/ticket/").text) == '<html lang="fr" dir="ltr">'

    outage.down = True
    response = alice.get("/ticket/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert UNAVAILABLE in response.text
    assert html_tag(response.text) == '<html lang="en" dir="ltr">'
    as_json = alice.get("/ticket/", headers={"Accept": "application/json"})
    assert as_json.status_code == 503
    assert UNAVAILABLE in as_json.json["error"]

    outage.down = False
    assert html_tag(alice.get("/ticket/").text) == '<html lang="fr" dir="ltr">'


# --- 8. Labels that claim to be HTML ------------------------------------------------------

#: A host's category and choice labels with HTML in them, as text the reader should see.
RND, WEB = "R&D <b>dept</b>", "<i>Web</i>"


def assert_shown_as_text(page: str, *texts: str) -> None:
    """Each of ``texts`` is on ``page`` escaped once, never as markup nor escaped twice."""
    for text in texts:
        assert html(text) in page, text
        assert html(html(text)) not in page, text
    assert "<b>" not in page
    assert "<i>" not in page


def test_lazy_category_labels_holding_html_are_escaped_on_pages_and_in_mail(
    make_host: HostFactory, inbox: Inbox
) -> None:
    # Flask-Babel's lazy strings have __html__: taken as markup, a label would go out raw.
    lazy = flask_babel.lazy_gettext
    assert hasattr(lazy(RND), "__html__")
    app = make_host(
        babel={},
        FLASKET_STAFF_RECIPIENTS=["desk@example.test"],
        FLASKET_CATEGORIES=[
            {
                "name": "department",
                "label": lazy(RND),
                "choices": [("web", lazy(WEB)), ("ops", "Ops")],
                "widget": "select",
            }
        ],
    )
    alice = Client(app, "alice")
    form = alice.get("/ticket/submit").text
    assert_shown_as_text(form, RND, WEB)
    ticket_id = alice.submit(department="web")
    ticket = alice.get(f"/ticket/{ticket_id}").text
    assert f"<dt>{html(RND)}</dt><dd>{html(WEB)}</dd>" in ticket
    assert_shown_as_text(ticket, RND, WEB)
    listed = alice.get("/ticket/all").text  # the row's tag and the filter's select
    assert f">{html(RND)}</label>" in listed
    assert f">{html(WEB)}</option>" in listed
    assert html(f"{RND}: {WEB}") in listed
    assert_shown_as_text(listed, RND, WEB)

    staff = received_by(inbox, "desk@example.test")
    assert_shown_as_text(staff.part("html"), f"{RND}: {WEB}")
    assert f"{RND}: {WEB}" in staff.part("plain")  # plain text: as written


@pytest.mark.one_database
def test_flasket_gettext_escapes_a_value_that_only_claims_to_be_html(
    make_host: HostFactory,
) -> None:
    app = make_host(babel={})
    template = '{{ flasket_gettext("%(category)s: %(value)s", category=label, value=choice) }}'
    with app.test_request_context("/ticket/"):
        shown = render_template_string(
            template, label=flask_babel.lazy_gettext(RND), choice=Markup("<em>Web</em>")
        )
    # The lazy string is escaped; real markup (a link flasket_user_link made) stays markup.
    assert shown == f"{html(RND)}: <em>Web</em>"


# --- 9. Time zones and languages a lookup cannot give ------------------------------------


@settings(
    FLASKET_DEFAULT_TIMEZONE="Europe/Berlin",
    **languages(bob=("de", "America"), carol=("de", "x" * 300)),
)
def test_a_time_zone_name_the_database_cannot_open_mails_once_in_the_sites_time_zone(
    app: Flask, followed_ticket: int, alice: Client, inbox: Inbox
) -> None:
    # "America" is a directory of the tz database; 300 characters is no file name at all.
    for name in ("America", "x" * 300):
        # What ZoneInfo raises for these: OSError reading the system's database; without one,
        # ZoneInfoNotFoundError from the tzdata package's absence.
        with pytest.raises((OSError, ZoneInfoNotFoundError)):
            ZoneInfo(name)
    assert alice.reply(followed_ticket, "Any news?").status_code == 303
    assert per_recipient(inbox) == {"bob@example.test": 1, "carol@example.test": 1}
    event = the_event(app, "replied")
    # Their own language still, in the site's time zone.
    for address in ("bob@example.test", "carol@example.test"):
        assert_german_reply_mail(received_by(inbox, address), followed_ticket, event.created_at)


@pytest.mark.parametrize(
    "config",
    [
        {"FLASKET_DEFAULT_TIMEZONE": "America"},
        {"FLASKET_DEFAULT_TIMEZONE": "x" * 300},
        {"FLASKET_TRANSLATION_DIRECTORIES": Path("translations")},
    ],
    ids=["zone-directory", "zone-too-long", "directory-not-in-a-list"],
)
def test_language_settings_flasket_cannot_use_are_refused_at_init(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(config))):
        create_app(**config)


def unreadable_for_carol(user: Any) -> str | None:
    """A host's ``FLASKET_USER_LOCALE`` whose lookup fails for one user."""
    if user.username == "carol":
        raise LookupError("carol's profile cannot be read")
    return {"bob": "de"}.get(user.username)


@settings(
    FLASKET_DEFAULT_LOCALE="fr",
    **{
        **languages(bob=("de", "Europe/Berlin"), carol=("es", "Europe/Madrid")),
        "FLASKET_USER_LOCALE": unreadable_for_carol,
    },
)
def test_a_user_locale_lookup_that_fails_costs_that_user_alone_their_language(
    app: Flask,
    followed_ticket: int,
    alice: Client,
    inbox: Inbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert alice.reply(followed_ticket, "Any news?").status_code == 303
    assert per_recipient(inbox) == {"bob@example.test": 1, "carol@example.test": 1}
    event = the_event(app, "replied")
    assert (event.locale, event.time_zone) == ("fr", "UTC")
    assert_german_reply_mail(
        received_by(inbox, "bob@example.test"), followed_ticket, event.created_at
    )
    carol = received_by(inbox, "carol@example.test")  # the site's language (and time zone)
    assert carol.subject == event.subject
    assert '<html lang="fr" dir="ltr">' in carol.part("html")
    assert any(
        record.name == "flasket.i18n" and record.levelname == "WARNING"
        for record in caplog.records
    )


class FixedOffset(tzinfo):
    """A host's own tzinfo, unhashable as python-dateutil's zones are: India's +05:30."""

    __hash__ = None  # type: ignore[assignment]

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=5, minutes=30)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "IST"


@pytest.mark.one_database
@pytest.mark.parametrize("kind", ["dateutil", "own"])
def test_pages_take_a_time_zone_that_cannot_be_hashed(make_host: HostFactory, kind: str) -> None:
    if kind == "dateutil":
        zone = pytest.importorskip("dateutil.tz").gettz("Asia/Kolkata")
    else:
        zone = FixedOffset()
    with pytest.raises(TypeError):
        hash(zone)
    app = make_host(FLASKET_TIMEZONE_SELECTOR=lambda: zone)
    alice = Client(app, "alice")
    ticket_id = alice.submit(**TICKET_FORM)
    set_times(app, ticket_id, WINTER)  # 23:30 UTC: 05:00 the next day in India
    for url in (f"/ticket/{ticket_id}", "/ticket/", "/ticket/all"):
        response = alice.get(url)
        assert response.status_code == 200, url
        assert time_titles(response.text), url
        for title in time_titles(response.text):
            assert title.startswith("Mar 6, 2024, 5:00\u202fAM"), (url, title)


def fixed_offset_for_bob(user: Any) -> tzinfo | None:
    """A host's ``FLASKET_USER_TIMEZONE`` giving bob an unhashable tzinfo of its own."""
    return FixedOffset() if user.username == "bob" else None


@settings(
    **{
        **languages(bob=("de", None), carol=("de", None)),
        "FLASKET_USER_TIMEZONE": fixed_offset_for_bob,
    }
)
def test_followers_in_a_time_zone_that_cannot_be_hashed_get_one_mail_in_it(
    app: Flask, followed_ticket: int, alice: Client, inbox: Inbox
) -> None:
    assert alice.reply(followed_ticket, "Any news?").status_code == 303
    assert per_recipient(inbox) == {"bob@example.test": 1, "carol@example.test": 1}
    created = the_event(app, "replied").created_at
    india, utc = created.astimezone(FixedOffset()), created.astimezone(timezone.utc)
    bob = received_by(inbox, "bob@example.test").part("plain")
    carol = received_by(inbox, "carol@example.test").part("plain")
    assert f"{india:%d.%m.%Y}, {india:%H:%M} +0530" in bob, bob
    assert f"{utc:%d.%m.%Y}, {utc:%H:%M} UTC" in carol, carol
    assert "Any news?" in bob


# --- 10. Fan-out of old events, and outside a request ------------------------------------


@settings(FLASKET_DELIVERY="worker", **languages(bob=("de", "Europe/Berlin")))
def test_an_event_from_before_the_language_columns_reaches_every_follower_with_its_text(
    app: Flask,
    followed_ticket: int,
    alice: Client,
    inbox: Inbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Most hosts leave Jinja's default Undefined: a missing reply would be an empty body.
    app.jinja_env.undefined = jinja2.Undefined
    assert alice.reply(followed_ticket, "Any news?").status_code == 303
    event = the_event(app, "replied")
    assert inbox.messages == []  # the worker fans out, not the request
    models = ext_models(app)
    with app.app_context():
        db.session.execute(
            sa.update(models.OutboxEvent)
            .where(models.OutboxEvent.id == event.id)
            .values(locale=None, reply_id=None)
        )
        db.session.commit()

    with app.app_context():
        assert delivery.deliver_due().sent == 2
    assert per_recipient(inbox) == {"bob@example.test": 1, "carol@example.test": 1}
    bob = received_by(inbox, "bob@example.test")
    # Not German without the reply: the event's own rendering, the reply's text in it.
    assert bob.subject == event.subject
    assert bob.part("plain").startswith(f"alice replied to ticket #{followed_ticket} on ")
    assert "Any news?" in bob.part("plain")
    assert "Any news?" in bob.part("html")
    assert '<html lang="en" dir="ltr">' in bob.part("html")
    assert not [r for r in caplog.records if r.name.startswith("flasket") and r.levelno >= 40]


@settings(FLASKET_DELIVERY="worker", **languages(bob=("de", "Europe/Berlin")))
def test_a_context_processor_reading_the_request_does_not_cost_worker_mail_its_language(
    app: Flask, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    @app.context_processor
    def active_menu() -> dict[str, Any]:
        return {"active": request.endpoint}

    alice, bob, carol = Client(app, "alice"), Client(app, "bob"), Client(app, "carol")
    ticket_id = alice.submit(**TICKET_FORM)
    follow(bob, ticket_id)
    follow(carol, ticket_id)
    assert alice.reply(ticket_id, "Any news?").status_code == 303
    assert inbox.messages == []

    result = app.test_cli_runner().invoke(args=["flasket", "deliver", "--once"])
    assert result.exit_code == 0, result.output
    assert per_recipient(inbox) == {"bob@example.test": 1, "carol@example.test": 1}
    event = the_event(app, "replied")
    assert_german_reply_mail(received_by(inbox, "bob@example.test"), ticket_id, event.created_at)
    assert received_by(inbox, "carol@example.test").subject == event.subject
    assert not [r for r in caplog.records if r.name.startswith("flasket") and r.levelno >= 40]


# --- 11. A locale selector that fails ----------------------------------------------------


def failing_selector() -> str:
    raise RuntimeError("the profile service is down")


@pytest.mark.one_database
def test_a_failing_locale_selector_leaves_pages_in_the_sites_language(
    make_host: HostFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_host(FLASKET_DEFAULT_LOCALE="fr", FLASKET_LOCALE_SELECTOR=failing_selector)
    alice = Client(app, "alice")
    for url in ("/ticket/", "/ticket/all", "/ticket/submit"):
        caplog.clear()
        response = alice.get(url)
        assert response.status_code == 200, url
        assert html_tag(response.text) == '<html lang="fr" dir="ltr">', url
        assert [r.levelname for r in caplog.records if r.name == "flasket.i18n"] == ["WARNING"]
    ticket_id = alice.submit(**TICKET_FORM)
    assert alice.get(f"/ticket/{ticket_id}").status_code == 200


@pytest.mark.one_database
def test_the_locale_selector_runs_before_an_action_commits(make_host: HostFactory) -> None:
    committed = {"now": False}
    calls: list[bool] = []

    def selector() -> str:
        """German, from a store that is gone once the action has committed."""
        calls.append(committed["now"])
        if committed["now"]:
            raise RuntimeError("the profile store went away")
        return "de"

    def after_commit(sender: Any, **models: Any) -> None:
        committed["now"] = True

    app = make_host(FLASKET_LOCALE_SELECTOR=selector)
    alice, bob = Client(app, "alice"), Client(app, "bob")
    ticket_id = alice.submit(**TICKET_FORM)
    token = bob.csrf()
    calls.clear()
    with signals.ticket_followed.connected_to(after_commit, app):
        response = bob.post(f"/ticket/{ticket_id}/follow", {"csrf_token": token}, csrf=False)
    assert response.status_code == 303
    assert committed["now"]
    # Once, before the commit: the flash after it is written with the reader already known.
    assert calls == [False]
    committed["now"] = False
    page = bob.get(f"/ticket/{ticket_id}").text
    followed = "You follow ticket #%(number)s and will get an e-mail when it changes."
    assert html(translated("de", followed, number=ticket_id)) in page


# --- 12. Host catalogs and the catalog cache ---------------------------------------------


@pytest.mark.one_database
def test_a_host_catalog_for_a_region_rewords_one_message_over_the_shipped_language(
    make_host: HostFactory, tmp_path: Path
) -> None:
    compile_catalog(tmp_path, "de_AT", "flasket", {"Overview": "Überblick"})
    assert html(translated("de", "Overview")) != html("Überblick")
    app = make_host(
        FLASKET_LOCALE_SELECTOR=header_locale, FLASKET_TRANSLATION_DIRECTORIES=[tmp_path]
    )
    alice = Client(app, "alice")
    austrian = alice.get("/ticket/", headers={"X-Locale": "de_AT"}).text
    assert html_tag(austrian) == '<html lang="de-AT" dir="ltr">'
    assert f">{html('Überblick')}<" in austrian
    for msgid in ("Browse tickets", "My tickets", "Submit a ticket", "Support tickets"):
        assert html(translated("de", msgid)) in austrian, msgid
    assert ">Browse tickets<" not in austrian
    german = alice.get("/ticket/", headers={"X-Locale": "de"}).text
    assert f">{html(translated('de', 'Overview'))}<" in german


def test_the_catalog_cache_is_keyed_by_catalog_names_not_by_modifiers() -> None:
    # A selector passing on what a visitor typed: each modifier is another Locale.
    first, second = Locale.parse("de@x1"), Locale.parse("de@x2")
    assert (first.modifier, second.modifier) == ("x1", "x2")
    assert first != second
    assert translations_for(first) is translations_for(second)
    assert translations_for(first) is translations_for(Locale.parse("de"))


@pytest.mark.one_database
def test_relative_translation_directories_are_taken_from_the_apps_root_path(
    make_host: HostFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, elsewhere = tmp_path / "app", tmp_path / "elsewhere"
    compile_catalog(root / "relative" / "dir", "nl", "flasket", {"Overview": "Overzicht"})
    elsewhere.mkdir()
    app = make_host(
        FLASKET_LOCALE_SELECTOR=header_locale, FLASKET_TRANSLATION_DIRECTORIES=["relative/dir"]
    )
    app.root_path = str(root)
    monkeypatch.chdir(elsewhere)
    dutch = Client(app, "alice").get("/ticket/", headers={"X-Locale": "nl"}).text
    assert html_tag(dutch) == '<html lang="nl" dir="ltr">'
    assert ">Overzicht<" in dutch


class BabelEx:
    """What Flask-BabelEx puts at ``app.extensions["babel"]``: not Flask-Babel's object."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.locale_selector_func: Callable[[], str] | None = lambda: "de"
        self.timezone_selector_func: Callable[[], str] | None = None
        app.extensions["babel"] = self

    @property
    def default_locale(self) -> Locale:
        return Locale.parse(self.app.config.get("BABEL_DEFAULT_LOCALE", "en"))


@pytest.mark.one_database
def test_another_packages_babel_extension_is_not_taken_for_flask_babel(
    make_host: HostFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Flask-WTF would ask Flask-Babel (installed here, unlike on a Flask-BabelEx host) too.
    app = make_host(WTF_I18N_ENABLED=False)
    BabelEx(app)
    with app.app_context():
        assert i18n.flask_babel_module() is None
    alice = Client(app, "alice")
    ticket_id = alice.submit(**TICKET_FORM)
    for url in ("/ticket/", f"/ticket/{ticket_id}"):
        response = alice.get(url)
        assert response.status_code == 200, url
        assert html_tag(response.text) == '<html lang="en" dir="ltr">', url
        assert ">Overview<" in response.text
    assert not [r for r in caplog.records if r.name.startswith("flasket")]


def test_forced_readers_nest_for_the_hosts_flask_babel_strings_too(tmp_path: Path) -> None:
    compile_catalog(tmp_path, "de", "messages", {"Department": "Abteilung"})
    compile_catalog(tmp_path, "es", "messages", {"Department": "Departamento"})
    app = create_app(before_flasket=flask_babel.Babel, BABEL_TRANSLATION_DIRECTORIES=str(tmp_path))
    label = flask_babel.lazy_gettext("Department")
    german = Reader(Locale.parse("de"), BERLIN)
    spanish = Reader(Locale.parse("es"), ZoneInfo("Europe/Madrid"))
    with app.test_request_context("/ticket/"):
        assert str(label) == "Department"
        with force_locale(german):
            assert str(label) == "Abteilung"
            with force_locale(spanish):
                assert (str(label), i18n.current_reader()) == ("Departamento", spanish)
            assert (str(label), i18n.current_reader()) == ("Abteilung", german)
        assert str(label) == "Department"
        assert str(i18n.current_reader().locale) == "en"


# --- Found by trying it as a newcomer ------------------------------------------------------


@pytest.mark.one_database
@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"),
        ("pt-PT", "pt-BR"),
        ("nl, de;q=0.9", "de"),
        ("de-AT", "de"),
        ("en-GB, de;q=0.5", "en"),
        ("xx, *;q=0.1", "en"),
    ],
)
def test_browser_locale_picks_the_browsers_most_wanted_language_flasket_has(
    make_host: HostFactory, header: str, language: str
) -> None:
    app = make_host(FLASKET_LOCALE_SELECTOR=i18n.browser_locale)
    alice = Client(app, "alice")
    page = alice.get("/ticket/", headers={"Accept-Language": header}).text
    assert html_tag(page) == f'<html lang="{language}" dir="ltr">'


@pytest.mark.one_database
def test_a_hosts_catalog_started_from_the_template_keeps_the_shipped_plurals(
    make_host: HostFactory, tmp_path: Path
) -> None:
    """pybabel compile writes an untranslated plural message in English: it must not win."""
    with (CATALOGS / "flasket.pot").open("rb") as file:
        template = read_po(file, locale="de")
    for message in template:
        if message.id == "Overview":
            message.string = "Startseite"
    target = tmp_path / "de" / "LC_MESSAGES" / "flasket.mo"
    target.parent.mkdir(parents=True)
    with target.open("wb") as file:
        write_mo(file, template)
    app = make_host(FLASKET_DEFAULT_LOCALE="de", FLASKET_TRANSLATION_DIRECTORIES=[tmp_path])
    alice = Client(app, "alice")
    ticket_id = alice.submit(**TICKET_FORM)
    assert alice.reply(ticket_id, "Noch da?").status_code == 303
    assert alice.reply(ticket_id, "Hallo?").status_code == 303
    page = alice.get(f"/ticket/{ticket_id}").text
    assert ">Startseite<" in page
    assert "2 replies" not in page
    german_two = plural_forms("de", "%(num)s reply")[1] % {"num": "2"}
    assert html(german_two) in page


@pytest.mark.one_database
def test_a_time_zone_selector_that_fails_keeps_the_chosen_language(
    make_host: HostFactory,
) -> None:
    def broken_zone() -> str:
        raise RuntimeError("no zone today")

    app = make_host(FLASKET_LOCALE_SELECTOR=lambda: "de", FLASKET_TIMEZONE_SELECTOR=broken_zone)
    alice = Client(app, "alice")
    page = alice.get("/ticket/").text
    assert html_tag(page) == '<html lang="de" dir="ltr">'
    app = make_host(
        FLASKET_LOCALE_SELECTOR=lambda: "de", FLASKET_TIMEZONE_SELECTOR=lambda: "Mars/Base"
    )
    assert html_tag(Client(app, "alice").get("/ticket/").text) == '<html lang="de" dir="ltr">'


@pytest.mark.parametrize(
    ("text", "values", "shown"),
    [
        (
            "%(user)s replied %(time)s:",
            {"user": Markup("<a>al</a>"), "time": "<b>now</b>"},
            "<a>al</a> replied &lt;b&gt;now&lt;/b&gt;:",
        ),
        ("%(time)s, %(user)s", {"user": "x & y", "time": 5}, "5, x &amp; y"),
        ("100%% of %(num)s", {"num": "3"}, "100% of 3"),
        ("<i>%(n)d</i>", {"n": 3}, "&lt;i&gt;3&lt;/i&gt;"),  # another format: Markup's own %
    ],
)
def test_a_translated_pattern_fills_in_markup_as_is_and_escapes_the_rest(
    text: str, values: dict[str, Any], shown: str
) -> None:
    filled = i18n.Pattern(escape(text)) % values
    assert isinstance(filled, Markup)
    assert str(filled) == shown
    # The same as Markup's own %, which it stands in for on every row of a page.
    assert str(filled) == str(escape(text) % values)
