"""Every text of Flasket's that a person reads is translatable: a pseudo-locale shows it.

A catalog for Esperanto ("eo": CLDR has it, Flasket ships no catalog for it) is made at test
time from the messages extracted from Flasket's code, with the keywords and the mapping of
``scripts/translations`` (and the committed ``flasket.pot`` on top): each translation is the
English text wrapped in ⟦ ⟧. A host on that locale whose data hold no ASCII letter (Greek
and Cyrillic names, Cyrillic tickets) then shows no ASCII letter outside a wrapped message.
A text that skips gettext, or a message the extraction cannot see, stays English and is
reported with the page (or mail, or command) it is on.

A wrapped message is read back with its own msgid: its words are removed, and the values put
into it (names, titles, other messages) are read like the rest of the page, so an English
word put into a translated sentence is caught too.

What may stay unwrapped: the contents of <script> and <style>; the text and title of <time>,
and exact times in mail (CLDR's words: "antaŭ 5 minutoj", month names); CLDR's list words
("aŭ"); URLs in text mail; "Re:" before a mail subject (RFC 5322's reply marker, which mail
clients thread on); request parameter names and values that an error message quotes; in
the command line, flags ("--retry-event"), "ID", e-mail addresses and the database's name.
"""

from __future__ import annotations

import io
import re
import runpy
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from babel import Locale
from babel.messages import frontend
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, redirect, request
from flask_login import LoginManager, UserMixin, login_user, logout_user
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf.csrf import CSRFProtect
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from jinja2 import StrictUndefined
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.datastructures import MultiDict

from flasket import Flasket, delivery, i18n, queries, unfollow
from flasket.i18n import Reader, force_locale
from tests.helpers import ROOT, Client, Inbox, OwnApps, Received

#: Translation cannot differ by database: the pages' queries run on every backend elsewhere.
pytestmark = pytest.mark.one_database

LOCALE = "eo"
OPENING = "\N{MATHEMATICAL LEFT WHITE SQUARE BRACKET}"
CLOSING = "\N{MATHEMATICAL RIGHT WHITE SQUARE BRACKET}"
SCRIPT = ROOT / "scripts" / "translations"
CATALOGS = ROOT / "flasket" / "translations"
STAFF = "staff@example.test"
STATUSES = ("open", "closed", "all")
TABS = ("tickets", "following", "replies")
CATEGORIES = {"urgency": "High", "application": "Website", "topic": "Bug report"}


def wrap(text: str) -> str:
    return f"{OPENING}{text}{CLOSING}"


# The pseudo catalog


#: A message as catalogs hold it: its msgid (singular and plural: a tuple), and its context.
Extracted = tuple[str | tuple[str, ...] | list[str], str | None]


def extracted_messages() -> list[Extracted]:
    """Flasket's messages as ``scripts/translations extract`` finds them in the code now."""
    script = runpy.run_path(str(SCRIPT))
    keywords = frontend.parse_keywords(script["KEYWORDS"])
    parse_mapping = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping
    with open(CATALOGS / "babel.cfg", encoding="utf-8") as file:
        method_map, options_map = parse_mapping(file)
    return [
        (message, context)
        for _name, _line, message, _comments, context in extract_from_dir(
            str(ROOT / "flasket"), method_map, options_map, keywords=keywords
        )
    ]


def committed_messages() -> list[Extracted]:
    with open(CATALOGS / "flasket.pot", "rb") as file:
        template = read_po(file)
    return [(message.id, message.context) for message in template if message.id]


#: A ``%`` placeholder of Python's formatting (``%(name)s``, ``%(max)d``), or ``%%``.
PLACEHOLDER = re.compile(r"(%%|%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z])")


@dataclass(frozen=True)
class Message:
    """A msgid as a pattern: its words in order, any text for each placeholder."""

    msgid: str
    pattern: re.Pattern[str]
    words: tuple[str, ...]

    @classmethod
    def compile(cls, msgid: str) -> Message:
        parts, words = [], []
        for piece in PLACEHOLDER.split(msgid):
            if piece == "%%":
                words.append("%")
                parts.append(re.escape("%"))
            elif PLACEHOLDER.fullmatch(piece):
                parts.append("(.*?)")
            else:
                words.extend(piece.split())
                parts.extend(re.escape(word) for word in piece.split())
        return cls(
            msgid, re.compile(r"\s*" + r"\s*".join(parts) + r"\s*", re.DOTALL), tuple(words)
        )


class Messages:
    """Tells which msgid a wrapped text is, and what was put into it."""

    def __init__(self, msgids: Iterable[str]) -> None:
        compiled = [Message.compile(msgid) for msgid in set(msgids)]
        # The most words first ("%(page)s · Tickets" before "%(name)s · %(list)s"), then the
        # fewest placeholders ("event" before "%(num)s event").
        self.ordered = sorted(
            compiled,
            key=lambda m: (-len("".join(m.words)), m.pattern.groups, m.msgid),
        )
        self.known: dict[str, tuple[str, tuple[str, ...]] | None] = {}

    def read(self, wrapped: str) -> tuple[str, tuple[str, ...]] | None:
        """The msgid that ``wrapped`` (a translation, filled in) is, and its values; or None."""
        if wrapped not in self.known:
            self.known[wrapped] = None
            for message in self.ordered:
                if all(word in wrapped for word in message.words):
                    found = message.pattern.fullmatch(wrapped)
                    if found:
                        self.known[wrapped] = (message.msgid, found.groups())
                        break
        return self.known[wrapped]


@dataclass(frozen=True)
class PseudoLocale:
    """The catalog's directory (for FLASKET_TRANSLATION_DIRECTORIES) and its messages."""

    directory: Path
    messages: Messages
    #: Words CLDR puts between the items of a list in this locale ("kaj", "aŭ").
    list_words: frozenset[str]


def build_pseudo_locale(directory: Path) -> PseudoLocale:
    catalog = Catalog(locale=LOCALE, domain=i18n.DOMAIN, project="Flasket", fuzzy=False)
    msgids: list[str] = []
    for message, context in [*committed_messages(), *extracted_messages()]:
        if not isinstance(message, str):
            forms = tuple(form for form in message if form)
            catalog.add(forms, tuple(wrap(form) for form in forms), context=context)
            msgids.extend(forms)
        else:
            catalog.add(message, wrap(message), context=context)
            msgids.append(message)
    assert catalog.num_plurals == 2
    target = directory / LOCALE / "LC_MESSAGES"
    target.mkdir(parents=True)
    with open(target / f"{i18n.DOMAIN}.mo", "wb") as file:
        write_mo(file, catalog)
    patterns = Locale.parse(LOCALE).list_patterns
    list_words = {
        word
        for style in patterns.values()
        for pattern in dict(style).values()
        for word in re.sub(r"\{\d\}", " ", pattern).replace(",", " ").split()
    }
    return PseudoLocale(directory, Messages(msgids), frozenset(list_words))


@pytest.fixture(scope="session")
def pseudo_locale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PseudoLocale]:
    found = build_pseudo_locale(tmp_path_factory.mktemp("pseudo-locale"))
    i18n.clear_cache()
    yield found
    i18n.clear_cache()


# Reading what a person reads


SPAN = re.compile(f"{OPENING}([^{OPENING}{CLOSING}]*){CLOSING}")
WORD = re.compile(r"\S*[A-Za-z]\S*")
PUNCTUATION = ".,:;!?()[]“”\"'«»·…"
#: Attributes a person reads (``data-label`` heads a table cell on narrow screens, by CSS).
READ_ATTRIBUTES = frozenset(
    {"title", "aria-label", "aria-description", "placeholder", "alt", "label", "data-label"}
)
BUTTON_TYPES = frozenset({"submit", "button", "reset"})
#: Elements whose text is not Flasket's to translate: code, and CLDR's relative times.
UNREAD_ELEMENTS = frozenset({"script", "style", "time"})
URL = re.compile(f"https?://[^\\s{OPENING}{CLOSING}]+|(?<!\\S)/[^\\s{OPENING}{CLOSING}]*")
JUST_NOW = re.compile(f"<time [^>]*>{wrap('just now')}</time>")


class PageText(HTMLParser):
    """An HTML page's text and read attributes, without what :data:`UNREAD_ELEMENTS` hold."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.unread: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.unread or tag in UNREAD_ELEMENTS:
            if tag in UNREAD_ELEMENTS:
                self.unread.append(tag)
            return
        kind = (dict(attrs).get("type") or "").lower()
        for name, value in attrs:
            if not value:
                continue
            if name in READ_ATTRIBUTES or (
                name == "value" and tag == "input" and kind in BUTTON_TYPES
            ):
                self.attributes.append((f"<{tag} {name}>", value))

    def handle_endtag(self, tag: str) -> None:
        if self.unread and tag == self.unread[-1]:
            self.unread.pop()

    def handle_data(self, data: str) -> None:
        if not self.unread:
            self.text.append(data)


def nothing(word: str) -> bool:
    return False


@dataclass
class Proofreader:
    """Reads pages, mail and command output; notes every English word left unwrapped."""

    locale: PseudoLocale
    problems: list[str] = field(default_factory=list)

    def unwrap(self, text: str) -> tuple[str, list[str], list[str]]:
        """``text`` with each wrapped message, innermost first, replaced by its values.

        :return: what is left, the msgids read, and the wrapped texts no msgid reads.
        """
        used: list[str] = []
        unknown: list[str] = []

        def replace(found: re.Match[str]) -> str:
            read = self.locale.messages.read(found.group(1))
            if read is None:
                unknown.append(found.group(1))
                return " "
            used.append(read[0])
            return " " + " ".join(read[1]) + " "

        while True:
            text, count = SPAN.subn(replace, text)
            if not count:
                return text, used, unknown

    def read(self, where: str, text: str, allowed: Callable[[str], bool] = nothing) -> list[str]:
        """Note what in ``text`` is not translated; return the msgids it shows."""
        rest, used, unknown = self.unwrap(text)
        for wrapped in unknown:
            self.problems.append(f"{where}: no message reads {wrap(wrapped)!r}")
        if OPENING in rest or CLOSING in rest:
            self.problems.append(f"{where}: unbalanced brackets in {' '.join(rest.split())!r}")
        # Neighbouring English words make one phrase: "Post reply", not "Post" and "reply".
        phrases: list[tuple[int, int]] = []
        for found in WORD.finditer(rest):
            word = found.group(0).strip(PUNCTUATION)
            if word in self.locale.list_words or allowed(word) or not re.search("[A-Za-z]", word):
                continue
            if phrases and not rest[phrases[-1][1] : found.start()].strip():
                phrases[-1] = (phrases[-1][0], found.end())
            else:
                phrases.append((found.start(), found.end()))
        english = [
            f"{' '.join(rest[start:end].split())!r}"
            f" in “{' '.join(rest[max(0, start - 40) : end + 40].split())}”"
            for start, end in phrases
        ]
        if english:
            self.problems.append(f"{where}: untranslated " + "; ".join(english))
        return used

    def read_page(self, where: str, page: str, allowed: Callable[[str], bool] = nothing) -> None:
        parser = PageText()
        parser.feed(page)
        parser.close()
        # A line between text nodes: whitespace, which a msgid's pattern allows anywhere.
        self.read(where, "\n".join(parser.text), allowed)
        for attribute, value in parser.attributes:
            self.read(f"{where}, {attribute}", value, allowed)

    def read_mail(self, where: str, mail: Received, exact_times: list[str]) -> None:
        subject = mail.subject
        self.read(f"{where}, subject", subject.removeprefix("Re: "))
        plain, html = mail.part("plain"), mail.part("html")
        for moment in exact_times:
            plain, html = plain.replace(moment, " "), html.replace(moment, " ")
        self.read(f"{where}, text part", URL.sub(" ", plain))
        self.read_page(f"{where}, HTML part", html)

    def verify(self) -> None:
        assert not self.problems, "Text a person reads is not translated:\n" + "\n".join(
            self.problems
        )


# The host: its own users, named without ASCII letters


def pseudo_host(
    database_url: str, smtp_port: int, catalogs: Path, csrf_protect: bool, **config: Any
) -> tuple[Flask, SQLAlchemy, type[Any]]:
    """A host on the pseudo-locale, with a home page and a log-out link Flasket's layout shows.

    Its users' names are not unique (namesakes), so ``POST /login`` logs in the first one.
    """
    own_db = SQLAlchemy()

    class Person(UserMixin, own_db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "pseudo_people"

        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(64), index=True)
        email: Mapped[str] = mapped_column(sa.String(120))
        is_admin: Mapped[bool] = mapped_column(default=False)

    app = Flask(__name__)
    app.jinja_env.undefined = StrictUndefined
    app.config.update(
        SECRET_KEY="test-secret",
        SQLALCHEMY_DATABASE_URI=database_url,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp_port,
        MAIL_DEFAULT_SENDER="Support <support@example.test>",
        SERVER_NAME="host.test",
        FLASKET_TRANSLATION_DIRECTORIES=[str(catalogs)],
        FLASKET_DEFAULT_LOCALE=LOCALE,
        FLASKET_SUBJECT_PREFIX="",
        FLASKET_STAFF_RECIPIENTS=[STAFF],
        FLASKET_REPLIES_PER_PAGE=2,
    )
    app.config.update(config)
    own_db.init_app(app)
    login = LoginManager(app)
    login.login_view = "login_page"
    Mail(app)

    def load_user(user_id: str) -> Any:
        return own_db.session.get(Person, int(user_id))

    login.user_loader(load_user)

    @app.route("/login", methods=["GET", "POST"])
    def login_page() -> Any:
        if request.method == "POST":
            named = sa.select(Person).filter_by(username=request.form["username"])
            login_user(own_db.session.scalars(named.order_by(Person.id)).first())
            return redirect(request.args.get("next") or "/")
        return "<form method=post><input name=username></form>"

    @app.route("/logout")
    def logout() -> Any:
        logout_user()
        return redirect("/")

    @app.route("/")
    def home() -> str:
        return "Главная"

    if csrf_protect:
        CSRFProtect(app).exempt(login_page)
    Flasket(own_db, Person).init_app(app)
    with app.app_context():
        own_db.create_all()
    return app, own_db, Person


@dataclass
class Site:
    """The pseudo-locale host, its mail, and the proofreader every page goes through."""

    app: Flask
    db: SQLAlchemy
    person: type[Any]
    inbox: Inbox
    proof: Proofreader
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def models(self) -> Any:
        return self.app.extensions["flasket"].models

    def add_people(self, *names: str, staff: bool = False) -> None:
        with self.app.app_context():
            self.db.session.add_all(
                self.person(username=name, email=f"person{n}@example.test", is_admin=staff)
                for n, name in enumerate(names, start=self.count_people())
            )
            self.db.session.commit()

    def count_people(self) -> int:
        with self.app.app_context():
            return int(self.db.session.scalar(sa.select(sa.func.count(self.person.id))) or 0)

    def key(self, name: str) -> int:
        with self.app.app_context():
            found = self.db.session.scalars(
                sa.select(self.person.id).filter_by(username=name).order_by(self.person.id)
            ).first()
            assert found is not None, name
            return int(found)

    def login(self, name: str) -> Client:
        return Client(self.app, name)

    def delete_person(self, name: str) -> None:
        with self.app.app_context():
            self.db.session.delete(self.db.session.get(self.person, self.key(name)))
            self.db.session.commit()

    def see(
        self,
        where: str,
        response: Any,
        status: int = 200,
        allowed: Callable[[str], bool] = nothing,
    ) -> str:
        """Check a page's status, then proofread it; return its HTML."""
        page = str(response.get_data(as_text=True))
        assert response.status_code == status, (where, response.status_code, page[:2000])
        assert response.mimetype == "text/html", (where, response.mimetype)
        self.proof.read_page(where, page, allowed)
        return page

    def act(self, where: str, client: Client, url: str, data: dict[str, Any] | None = None) -> str:
        """A form that redirects: proofread the page it leads to, with its flash message."""
        response = client.post(url, data)
        assert response.status_code == 303, (where, response.status_code)
        location = response.headers["Location"].partition("#")[0]
        page = self.see(where, client.get(location))
        assert 'class="flasket-message flasket-message--' in page, f"{where}: no flash message"
        return page

    def submit(self, client: Client, title: str, body: str) -> int:
        return client.submit(title=title, body=body)

    def unfollow_url(self, ticket_id: int, name: str) -> str:
        with self.app.test_request_context():
            ticket = self.db.session.get(self.models.Ticket, ticket_id)
            assert ticket is not None
            return f"/ticket/unfollow/{unfollow.make_token(ticket.mail_key, self.key(name))}"

    def exact_times(self) -> list[str]:
        """Every exact time (CLDR's words) a mail sent since the site began can show."""
        moment = self.started.replace(second=0, microsecond=0) - timedelta(minutes=1)
        last = datetime.now(timezone.utc) + timedelta(minutes=1)
        found = []
        with self.app.app_context(), force_locale(Reader(Locale.parse(LOCALE), timezone.utc)):
            while moment <= last:
                found.append(i18n.exact_time(moment))
                moment += timedelta(minutes=1)
        return found

    def read_mail(self) -> set[str]:
        """Proofread every mail received; return the events they were about."""
        received = self.inbox.messages
        with self.app.app_context():
            events = {
                row.message_id: row.event
                for row in self.db.session.scalars(sa.select(self.models.Outbox))
            }
        exact_times = self.exact_times()
        seen = set()
        for mail in received:
            event = events.get(" ".join(str(mail.message["Message-ID"]).split()), "unknown")
            seen.add(event)
            self.proof.read_mail(f"{event} mail to {mail.envelope_to[0]}", mail, exact_times)
        return seen

    def cli(self, *args: str, allowed: Callable[[str], bool] = nothing) -> str:
        result = self.app.test_cli_runner().invoke(args=["flasket", *args])
        assert result.exit_code == 0, (args, result.output, result.exception)
        output = str(result.output)
        self.proof.read(f"flask flasket {' '.join(args)}", output, allowed)
        return output


@pytest.fixture
def make_site(
    pseudo_locale: PseudoLocale,
    own_apps: OwnApps,
    smtp_server: tuple[Inbox, int],
    inbox: Inbox,
) -> Iterator[Callable[..., Site]]:
    """Builds the pseudo-locale host on the test's database (one per test)."""

    def make(*, csrf_protect: bool = False, **config: Any) -> Site:
        app, own_db, person = pseudo_host(
            own_apps.database_url,
            smtp_server[1],
            pseudo_locale.directory,
            csrf_protect,
            **config,
        )
        own_apps.track(app)
        return Site(app, own_db, person, inbox, Proofreader(pseudo_locale))

    yield make
    delivery.wait_for_idle(timeout=30)


def quoted(*names: str) -> Callable[[str], bool]:
    """Parameter names and values an error message quotes: what the URL says, untranslated."""
    return frozenset(name for text in names for name in text.split()).__contains__


def hidden_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'name="(csrf_token|form_key)" type="hidden" value="([^"]*)"', page))


# The checker itself


def test_the_checker_reads_wrapped_messages_and_reports_english_left(
    pseudo_locale: PseudoLocale,
) -> None:
    proof = Proofreader(pseudo_locale)
    proof.read_page(
        "fine",
        f"<title>{wrap('Tickets')}</title><p>{wrap(wrap('Overview') + ' · Tickets')}</p>"
        f'<time title="Mar 5, 2024">5 minutes ago</time><script>let x = 1;</script>'
        f'<nav aria-label="{wrap("Pages")}"><span>{wrap("Page 2 of 3")}</span></nav>',
    )
    assert proof.problems == []

    proof.read_page("button", f"<p>{wrap('Replies')}</p><button>Post reply</button>")
    proof.read_page("attribute", f'<a title="Close ticket">{wrap("Follow")}</a>')
    proof.read_page("value", f"<p>{wrap('Ticket #5 · Open · Tickets')}</p>")
    proof.read_page("submit", '<input type="submit" value="Send">')
    proof.read_page("stray", f"<p>{wrap('No such message at all')}</p>")
    assert [problem.split(":")[0] for problem in proof.problems] == [
        "button",
        "attribute, <a title>",
        "value",
        "submit, <input value>",
        "stray",
    ]
    assert "'Post reply'" in proof.problems[0]
    assert "'Open'" in proof.problems[2]


def test_the_pseudo_catalog_holds_what_the_code_says_now(pseudo_locale: PseudoLocale) -> None:
    app = Flask(__name__)
    app.config.update(
        FLASKET_TRANSLATION_DIRECTORIES=[str(pseudo_locale.directory)],
        FLASKET_DEFAULT_LOCALE=LOCALE,
    )
    with app.app_context():
        assert i18n.gettext("Post reply") == wrap("Post reply")
        assert i18n.pgettext("status", "Open") == wrap("Open")
        assert i18n.ngettext("%(num)s reply", "%(num)s replies", 1) == wrap("1 reply")
        assert i18n.ngettext("%(num)s reply", "%(num)s replies", 3) == wrap("3 replies")
        assert i18n.current_reader().language_tag == LOCALE


# The pages


def test_every_page_state_flash_and_mail_reads_in_the_pseudo_locale(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    site.add_people("Ωμέγα", "Борис", "Дмитрий", "")
    site.add_people("Людмила", "Глеб", staff=True)
    site.add_people(*(f"Читатель {n}" for n in range(1, 23)))
    site.add_people(*["Иван"] * 3, *["Пётр"] * 20)
    omega, boris, dmitry = site.login("Ωμέγα"), site.login("Борис"), site.login("Дмитрий")
    unnamed, staff = site.login(""), site.login("Людмила")
    keys = {name: site.key(name) for name in ("Ωμέγα", "Борис", "Дмитрий", "")}

    # Nothing there yet.
    site.see("overview without tickets", omega.get("/ticket/"))
    for status in STATUSES:
        site.see(f"{status} list without tickets", omega.get(f"/ticket/all?status={status}"))
    for tab in TABS:
        site.see(f"empty user page, {tab}", omega.get(f"/ticket/user/{keys['Ωμέγα']}?show={tab}"))

    # The new-ticket form, blank and sent back with every kind of error.
    site.see("blank submit form", omega.get("/ticket/submit"))
    blank = {"title": "", "body": "", "urgency": "", "application": "", "topic": ""}
    site.see("submit form sent back: nothing filled in", omega.post("/ticket/submit", blank), 400)
    site.see(
        "submit form sent back: title too long, categories not among the choices",
        omega.post(
            "/ticket/submit",
            {"title": "Ж" * 201, "body": "Пусто", "urgency": "Срочно", "application": "Юпитер"},
        ),
        400,
    )
    site.see(
        "submit form sent back: two-line title, description too long to show again",
        omega.post(
            "/ticket/submit",
            {"title": "\n".join(("Шапка", "вторая")), "body": "ж" * 40_001, **CATEGORIES},
        ),
        400,
    )
    ticket = {"title": "Принтер горит", "body": "Бумага дымится.", **CATEGORIES}
    site.see(
        "submit form sent back: expired form",
        omega.post("/ticket/submit", {**ticket, "csrf_token": "stale"}, csrf=False),
        400,
    )
    site.see(
        "submit form sent back: unusable form key",
        omega.post("/ticket/submit", {**ticket, "form_key": "!!"}),
        400,
    )

    # Submitted, then the same form sent again with other text.
    form = hidden_fields(omega.get("/ticket/submit").get_data(as_text=True))
    first = omega.http.post("/ticket/submit", data={**ticket, **form})
    assert first.status_code == 303
    t1 = int(first.headers["Location"].rsplit("/", 1)[1])
    page = site.see("new ticket, with its flash", omega.get(f"/ticket/{t1}"))
    assert JUST_NOW.search(page), "a time under a minute old is not “just now”, translated"
    site.see(
        "submit form sent back: sent before with other text",
        omega.http.post("/ticket/submit", data={**ticket, "body": "Уже пламя.", **form}),
        409,
    )
    t2 = site.submit(omega, "Сканер молчит", "Ни звука.")
    site.submit(boris, "Мышь пищит", "Громко.")
    t4 = site.submit(unnamed, "Без имени", "Тишина.")
    t5 = site.submit(boris, "Клавиатура залипла", "Клавиши.")

    # Following, and the "already" variants.
    for where, action in (
        ("follow", "follow"),
        ("follow again", "follow"),
        ("unfollow", "unfollow"),
        ("unfollow again", "unfollow"),
        ("follow once more", "follow"),
    ):
        site.act(where, boris, f"/ticket/{t1}/{action}")

    # Replies on two pages (two a page), by others, by the author, by a user without a name.
    site.act("reply posted", boris, f"/ticket/{t1}", {"body": "Тоже жду."})
    site.act("reply by the author", omega, f"/ticket/{t1}", {"body": "Жду."})
    site.act("reply on a second page", staff, f"/ticket/{t1}", {"body": "Смотрим."})
    site.act("reply by a user without a name", unnamed, f"/ticket/{t1}", {"body": "Я тоже."})
    site.see("replies, first page", omega.get(f"/ticket/{t1}"))
    site.see("replies, second page", omega.get(f"/ticket/{t1}?page=2"))
    site.see("reply form sent back: empty", boris.reply(t1, ""), 400)
    site.see("reply form sent back: too long", boris.reply(t1, "ж" * 20_001), 400)
    site.see("reply form sent back: too long to show again", boris.reply(t1, "ж" * 40_001), 400)
    site.see(
        "reply form sent back: expired form",
        boris.post(f"/ticket/{t1}", {"body": "Ещё.", "csrf_token": "stale"}, csrf=False),
        400,
    )

    # Closing and reopening, by staff and by the author; refused to others.
    site.see("closing someone else's ticket", boris.post(f"/ticket/{t1}/close"), 403)
    site.act("close", staff, f"/ticket/{t1}/close")
    site.act("close again", staff, f"/ticket/{t1}/close")
    site.see("closed ticket, to its author", omega.get(f"/ticket/{t1}"))
    site.see("closed ticket, to a follower", boris.get(f"/ticket/{t1}"))
    site.see("reply to a closed ticket", boris.reply(t1, "Жду ответа."), 409)
    site.see("reopening someone else's ticket", boris.post(f"/ticket/{t1}/reopen"), 403)
    site.act("reopen", omega, f"/ticket/{t1}/reopen")
    site.act("reopen again", omega, f"/ticket/{t1}/reopen")
    site.act("close one's own ticket", boris, f"/ticket/{t5}/close")
    # Staff statuses: waiting for the requester, a resolution; reply and close in one step.
    site.see("ticket page, to staff", staff.get(f"/ticket/{t2}"))
    site.act("status set", staff, f"/ticket/{t2}/status", {"status": "waiting"})
    site.see("one status's list", omega.get("/ticket/all?status=waiting"))
    site.see("one status's empty list", omega.get("/ticket/all?status=waiting&q=nothing"))
    site.see("a status refused", omega.post(f"/ticket/{t1}/status", {"status": "waiting"}), 403)
    site.see("a status not in the list", staff.post(f"/ticket/{t2}/status", {"status": "x"}), 400)
    site.see(
        "reply form sent back: a status not offered",
        omega.post(f"/ticket/{t1}", {"body": "Жду.", "status": "waiting"}),
        400,
    )
    site.act(
        "reply and close",
        omega,
        f"/ticket/{t2}",
        {"body": "Заработало.", "status": "closed"},
    )
    site.act("reopen after reply and close", omega, f"/ticket/{t2}/reopen")
    site.act("reopened into waiting", staff, f"/ticket/{t5}/status", {"status": "waiting"})
    site.act(
        "closed with a resolution",
        staff,
        f"/ticket/{t5}/status",
        {"status": "closed", "resolution": "wont_fix"},
    )
    site.act("unfollow one's own ticket", unnamed, f"/ticket/{t4}/unfollow")
    site.see("a ticket nobody follows", unnamed.get(f"/ticket/{t4}"))

    # A ticket closed by a user the host deleted since, who had replied.
    gleb = site.login("Глеб")
    assert gleb.reply(t2, "Смотрю.").status_code == 303
    assert omega.reply(t2, "Спасибо.").status_code == 303
    assert gleb.post(f"/ticket/{t2}/close").status_code == 303

    # The mail of every event so far: created, replied, closed, reopened, a status.
    assert site.read_mail() == {"created", "replied", "closed", "reopened", "status"}

    site.delete_person("Глеб")
    site.see("closed by a deleted user, who replied", omega.get(f"/ticket/{t2}"))

    # More followers than the page names.
    for n in range(1, 23):
        assert site.login(f"Читатель {n}").post(f"/ticket/{t1}/follow").status_code == 303
    page = site.see("more followers than the page names", omega.get(f"/ticket/{t1}"))
    assert "flasket-followers" in page

    # The lists: every status, paged, filtered to nothing, by author, searched, sorted.
    for status in STATUSES:
        url = f"/ticket/all?status={status}&per_page=1"
        site.see(f"{status} list, first page", omega.get(url))
        site.see(f"{status} list, second page", omega.get(f"{url}&page=2"))
        site.see(
            f"{status} list, no match", omega.get(f"/ticket/all?status={status}&application=API")
        )
        site.see(f"{status} list, no match", omega.get(f"/ticket/all?status={status}&q=Ничего"))
    site.see("list by an author nobody is called", omega.get("/ticket/all?author=Никто"))
    site.see("list by a key nobody has", omega.get("/ticket/all?author_id=999999"))
    site.see("list by a name three users share", omega.get("/ticket/all?author=Иван"))
    site.see("list by a name twenty users share", omega.get("/ticket/all?author=Пётр"))
    site.see("list by one author", omega.get("/ticket/all?author=Борис&status=all"))
    site.see("search", omega.get("/ticket/all?q=Принтер&status=all"))
    for sort in ("created", "oldest"):
        site.see(
            f"list sorted by {sort}", omega.get(f"/ticket/all?sort={sort}&application=Website")
        )

    # The overview and the user pages, with tickets.
    site.see("overview with tickets", omega.get("/ticket/"))
    site.see("overview without tickets of one's own", dmitry.get("/ticket/"))
    for tab in TABS:
        own = f"/ticket/user/{keys['Ωμέγα']}?show={tab}&per_page=1"
        site.see(f"own user page, {tab}, first page", omega.get(own))
        site.see(f"own user page, {tab}, second page", omega.get(f"{own}&page=2"))
        site.see(
            f"someone else's page, {tab}", omega.get(f"/ticket/user/{keys['Борис']}?show={tab}")
        )
        site.see(
            f"empty user page, {tab}", omega.get(f"/ticket/user/{keys['Дмитрий']}?show={tab}")
        )
        site.see(f"page of a user without a name, {tab}", omega.get(f"/ticket/user/{keys['']}"))
    site.proof.verify()


def test_every_error_page_reads_in_the_pseudo_locale(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site()
    site.add_people("Ωμέγα", "Борис")
    omega, boris = site.login("Ωμέγα"), site.login("Борис")
    ticket = site.submit(omega, "Принтер горит", "Бумага дымится.")
    key = site.key("Ωμέγα")

    # 404
    site.see("no such ticket", omega.get("/ticket/99999"), 404)
    site.see("no such page of replies", omega.get(f"/ticket/{ticket}?page=99"), 404)
    site.see("no such page of the list", omega.get("/ticket/all?page=99"), 404)
    site.see("no such user", omega.get("/ticket/user/999999"), 404)
    for tab in TABS:
        site.see(
            f"no such page of a user's list, {tab}",
            omega.get(f"/ticket/user/{key}?show={tab}&page=99"),
            404,
        )
    site.see("no such page", omega.get("/ticket/nope"), 404)
    site.see("no such page, not logged in", site.app.test_client().get("/ticket/nope"), 404)
    # 403 and 405
    site.see("closing someone else's ticket", boris.post(f"/ticket/{ticket}/close"), 403)
    site.see("a button's address opened", omega.get(f"/ticket/{ticket}/close"), 405)
    site.see("a page posted to", omega.http.post("/ticket/all"), 405)
    # 400: the query
    site.see(
        "a parameter given twice",
        omega.get("/ticket/all?status=open&status=closed"),
        400,
        quoted("status"),
    )
    site.see(
        "a value not among the choices",
        omega.get("/ticket/all?status=deleted"),
        400,
        quoted("status", "open closed all waiting"),
    )
    site.see("not a page number", omega.get("/ticket/all?page=first"), 400, quoted("page"))
    site.see("a search too long", omega.get("/ticket/all?q=" + "ж" * 201), 400, quoted("q"))
    site.see("a NUL character", omega.get("/ticket/all?q=%00"), 400)
    # 400: the form
    token = omega.csrf()
    site.see(
        "a form field given twice",
        omega.http.post(
            "/ticket/submit",
            data=MultiDict([("csrf_token", token), ("title", "Раз"), ("title", "Два")]),
            content_type="application/x-www-form-urlencoded",
        ),
        400,
        quoted("title"),
    )
    site.see(
        "a form with a file",
        omega.http.post(
            "/ticket/submit",
            data={"csrf_token": token, "body": (io.BytesIO(b"\x00"), "файл")},
            content_type="multipart/form-data",
        ),
        400,
    )
    site.see(
        "a button's form expired",
        omega.post(f"/ticket/{ticket}/follow", {"csrf_token": "stale"}, csrf=False),
        400,
    )
    # 413 and 415
    site.see(
        "a form too large",
        omega.post("/ticket/submit", {"title": "Большой", "body": "ж" * 300_000}),
        413,
    )
    site.see(
        "a body that is not a form",
        omega.http.post("/ticket/submit", data="{}", content_type="application/json"),
        415,
    )
    site.see(
        "a form in another charset",
        omega.http.post(
            "/ticket/submit",
            data="title=%E9",
            content_type="application/x-www-form-urlencoded; charset=latin-1",
        ),
        415,
    )
    # 401 to a client that asks for JSON
    refused = site.app.test_client().get("/ticket/", headers={"Accept": "application/json"})
    assert refused.status_code == 401
    site.proof.read("JSON 401", refused.get_json()["error"])
    # 503: the database fails
    token = omega.csrf()

    def broken_commit(self: Any) -> None:
        raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(FlaskSession, "commit", broken_commit)
    lost = omega.http.post(f"/ticket/{ticket}", data={"csrf_token": token, "body": "Потеряно."})
    monkeypatch.undo()
    site.see("the database out of reach", lost, 503)
    site.proof.verify()


def test_the_error_page_of_a_host_with_csrf_protection_reads_in_the_pseudo_locale(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(csrf_protect=True)
    site.add_people("Ωμέγα")
    omega = site.login("Ωμέγα")
    ticket = site.submit(omega, "Принтер горит", "Бумага дымится.")
    site.see(
        "the host refused an expired form",
        omega.post(f"/ticket/{ticket}/close", {"csrf_token": "stale"}, csrf=False),
        400,
    )
    site.proof.verify()


def test_the_unfollow_link_pages_read_in_the_pseudo_locale(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    site.add_people("Ωμέγα", "Борис")
    omega, boris = site.login("Ωμέγα"), site.login("Борис")
    ticket = site.submit(omega, "Принтер горит", "Бумага дымится.")
    assert boris.post(f"/ticket/{ticket}/follow").status_code == 303
    url = site.unfollow_url(ticket, "Борис")
    mail_client = site.app.test_client()

    site.see("unfollow link: asking", mail_client.get(url))
    site.see("unfollow link: done", mail_client.post(url))
    site.see("unfollow link: not following", mail_client.get(url))
    site.see("unfollow link: not valid", mail_client.get("/ticket/unfollow/garbage"), 400)

    with site.app.test_request_context():
        found = site.db.session.get(site.models.Ticket, ticket)
        assert found is not None
        mail_key = found.mail_key
        stamp = mail_key.partition(".")[2]
        signer = URLSafeTimedSerializer(site.app.config["SECRET_KEY"], salt=unfollow.SALT)

        class OldSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 400 * 24 * 3600

        old = URLSafeTimedSerializer(
            site.app.config["SECRET_KEY"], salt=unfollow.SALT, signer=OldSigner
        )
        expired = old.dumps([mail_key, site.key("Борис")])
        no_account = signer.dumps([mail_key, 999_999])
        gone = signer.dumps([f"{ticket + 1000}.{stamp}", site.key("Борис")])
    site.see("unfollow link: expired", mail_client.get(f"/ticket/unfollow/{expired}"), 400)
    site.see(
        "unfollow link: no such account", mail_client.get(f"/ticket/unfollow/{no_account}"), 400
    )
    site.see("unfollow link: ticket gone, asking", mail_client.get(f"/ticket/unfollow/{gone}"))
    site.see("unfollow link: ticket gone, done", mail_client.post(f"/ticket/unfollow/{gone}"))
    site.proof.verify()


def test_counts_that_stop_at_their_caps_read_in_the_pseudo_locale(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    for cap in ("COUNT_CAP", "PERSONAL_COUNT_CAP", "JOINED_COUNT_CAP", "INTERSECTED_COUNT_CAP"):
        monkeypatch.setattr(queries, cap, 1)
    site = make_site()
    site.add_people("Ωμέγα")
    omega = site.login("Ωμέγα")
    tickets = [site.submit(omega, f"Принтер № {n}", "Бумага дымится.") for n in range(4)]
    for _ in range(3):
        assert omega.reply(tickets[0], "Жду.").status_code == 303
    for ticket in tickets[:3]:
        assert omega.post(f"/ticket/{ticket}/close").status_code == 303
    key = site.key("Ωμέγα")

    site.see("overview, counts capped", omega.get("/ticket/"))
    for status in STATUSES:
        site.see(f"{status} list, capped", omega.get(f"/ticket/all?status={status}&per_page=1"))
        site.see(
            f"{status} list by category, capped",
            omega.get(f"/ticket/all?status={status}&per_page=1&topic=Bug+report&urgency=High"),
        )
    for tab in TABS:
        site.see(
            f"user page, {tab}, capped", omega.get(f"/ticket/user/{key}?show={tab}&per_page=1")
        )
    site.proof.verify()


# The command line


def test_the_command_line_reads_in_the_pseudo_locale(make_site: Callable[..., Site]) -> None:
    site = make_site(FLASKET_DELIVERY="worker")
    site.add_people("Ωμέγα")
    omega = site.login("Ωμέγα")
    with site.app.app_context():
        dialect = site.db.engine.dialect.name

    def command_words(word: str) -> bool:
        return word.startswith("--") or word == "ID" or "@" in word or word == dialect

    def cli(*args: str) -> str:
        return site.cli(*args, allowed=command_words)

    cli("outbox")
    cli("prune")
    for n in range(3):
        site.submit(omega, f"Принтер № {n}", "Бумага дымится.")
    cli("outbox")
    cli("deliver", "--once")

    outbox, events = site.models.Outbox.__table__, site.models.OutboxEvent.__table__
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    with site.app.app_context():
        first, second, *_ = site.db.session.scalars(sa.select(outbox.c.id).order_by(outbox.c.id))
        site.db.session.execute(
            sa.update(outbox)
            .where(outbox.c.id == first)
            .values(status="failed", last_error="Сервер отказал")
        )
        site.db.session.execute(
            sa.update(outbox)
            .where(outbox.c.id == second)
            .values(status="pending", next_attempt_at=soon)
        )
        site.db.session.commit()
    site.submit(omega, "Принтер № 9", "Бумага дымится.")
    with site.app.app_context():
        given_up = site.db.session.scalar(sa.select(sa.func.max(events.c.id)))
        site.db.session.execute(
            sa.update(events)
            .where(events.c.id == given_up)
            .values(attempts=8, failed_at=datetime.now(timezone.utc), last_error="Адрес пропал")
        )
        site.db.session.commit()
    site.submit(omega, "Принтер № 10", "Бумага дымится.")

    listing = cli("outbox")
    assert "Сервер отказал" in listing
    assert "Адрес пропал" in listing
    cli("outbox", "--retry", str(first))
    cli("outbox", "--retry-event", str(given_up))
    cli("outbox", "--retry-failed")
    cli("deliver", "--once")
    cli("prune", "--keep-sent-days", "0.000001")
    if dialect == "sqlite":
        cli("search-index", "--rebuild")
    else:
        cli("search-index")
    site.proof.verify()
