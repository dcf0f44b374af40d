"""Random parameters and bodies at every route of the blueprint, for every role: never a 5xx.

The routes come from ``app.url_map`` (every rule of the blueprint, every method it allows, and
paths under the prefix that no rule takes), so a new route is fuzzed without editing this file.
Each request is checked for what must hold whatever was sent:

- the status is below 500, and no exception reached Flask's error handling;
- a request that is not a POST answered 200 or 303 changed no ``flasket_*`` row and sent no
  mail: a refusal (4xx, or the login redirect) changes nothing;
- no long value sent comes back whole (a form field may come back up to twice its length
  limit, so it can be fixed), a refusal page stays small, and no page shows a traceback.

Every person (anonymous, alice, bob, admin) sends ``FLASKET_FUZZ_EXAMPLES`` (50) requests
to each route on SQLite, about a minute in all; PostgreSQL and MariaDB get a fifth as many,
drawn over every route at once. The examples are derandomized: every run sends the same ones.
Raise the number for a longer local run. A 5xx found and reported but not yet fixed is in
``KNOWN_FAULTS``, a long value a page shows whole in ``KNOWN_ECHOES``: the fuzz lets it
pass, and its own xfail(strict) test shows it.

The routes' arguments are drawn from what the app holds (tickets; replies, half the time
with their own ticket), and the forms' fields from a good value of every field some form
has (ticket, reply, note, edit, duplicate, assign, bulk), so each route gets past its
first checks as well as being refused.
"""

from __future__ import annotations

import hashlib
import html
import io
import itertools
import json
import os
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote_from_bytes

import pytest
import sqlalchemy as sa
from flask import Flask, got_request_exception
from flask import request as current_request
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from flasket import delivery, queries, unfollow
from flasket.config import RESOLUTIONS
from flasket.forms import ReplyForm, ticket_form
from flasket.views import TICKET_NUMBER_CONVERTER
from tests.databases import selected_backends
from tests.helpers import Client, Inbox, ext_models
from tests.hostapp import User, create_app, db

#: Werkzeug's multipart parser drops the spooled file of a part a truncated body cut short
#: without closing it (the garbage collector does): not Flasket's, and harmless on CPython.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function SpooledTemporaryFile.__del__"
    ":pytest.PytestUnraisableExceptionWarning"
)
T = TypeVar("T")
STAFF = "staff@example.test"
ROLES = ("anonymous", "alice", "bob", "admin")
#: Examples per route and role on SQLite; each database server gets a fifth as many requests.
EXAMPLES = int(os.environ.get("FLASKET_FUZZ_EXAMPLES", "50"))
SERVER_SHARE = 5
#: Methods tried on every route besides those it allows: each must be a 405, never a 5xx.
OTHER_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND")
#: Query parameters some page reads, and names that mean something to url_for or nobody.
QUERY_NAMES = ("page", "per_page", "status", "sort", "q", "author", "show", "queue", "assignee")
FOREIGN_NAMES = ("endpoint", "_external", "_anchor", "_method", "next", "name", "ticket_id")
#: How much of a value sent in a form field may come back: twice the field's length limit
#: (views.ECHO_FACTOR); any other value, in a field, the query or the path, far less.
ECHO_ALLOWED = {"title": 400, "body": 40_000, "note": 40_000}
OTHER_ECHO_ALLOWED = 1_000
#: A refusal page: the page itself (a ticket page shows at most five replies here) and what
#: it may echo, far below the 400,000 bytes of body a request may send under the cap.
MAX_REFUSAL_PAGE = 200_000
TRACEBACK = re.compile(rb"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


@pytest.fixture
def app_config() -> dict[str, Any]:
    # New tickets mail staff, so a ticket stored by mistake also shows in the inbox; short
    # pages keep refusal pages small and put "no such page" within reach of small numbers.
    return {
        "FLASKET_STAFF_RECIPIENTS": [STAFF],
        "FLASKET_PER_PAGE": 5,
        "FLASKET_REPLIES_PER_PAGE": 5,
    }


# The routes

UNROUTED = "(unrouted)"


@dataclass(frozen=True)
class Route:
    """A rule of the blueprint, or a path under the prefix that no rule takes."""

    rule: str
    endpoint: str
    methods: tuple[str, ...]
    #: (argument, converter) in the order they appear in the rule.
    arguments: tuple[tuple[str, str], ...]


ARGUMENT = re.compile(r"<(?:(?P<converter>[a-zA-Z_]\w*)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def blueprint_routes(app: Flask) -> list[Route]:
    """Every rule whose endpoint is Flasket's, with the methods it allows."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("flasket."):
            continue
        arguments = tuple(
            (match["name"], match["converter"] or "default")
            for match in ARGUMENT.finditer(rule.rule)
        )
        methods = tuple(sorted(rule.methods or ()))
        found.append(Route(rule.rule, rule.endpoint, methods, arguments))
    return sorted(found, key=lambda route: route.rule)


def unrouted_paths(prefix: str) -> list[Route]:
    """Paths under the prefix no rule takes: each gets Flasket's 404 or 405 page."""
    paths = [
        "/nope",
        "/<ticket_id>/nope",
        "/<ticket_id>/close/again",
        "/all/<name>",
        "/unfollow",
        "/unfollow/",
        "/user/",
        "//",
        "/static/",
        "/<name>",
    ]
    return [
        Route(
            prefix + path,
            UNROUTED,
            (),
            tuple(
                (match["name"], "int" if match["name"] == "ticket_id" else "default")
                for match in ARGUMENT.finditer(path)
            ),
        )
        for path in paths
    ]


# The people and tickets the requests meet


@dataclass
class World:
    """A host with four people and three tickets, and what the requests are built from."""

    app: Flask
    inbox: Inbox
    clients: dict[str, Client]
    #: The CSRF token of each person's session; the anonymous visitor has none of their own.
    tokens: dict[str, str]
    ticket_ids: list[int]
    #: (ticket, reply) of Alice's and Bob's replies to the first ticket, and of staff's
    #: hidden one to the second.
    replies: list[tuple[int, int]]
    unfollow_tokens: list[str]
    form_fields: list[str]
    #: Fields each new form fills with a fresh value (a one-time key): drawn afresh too.
    one_time_fields: set[str]
    #: A value each form field accepts: a whole good ticket, also good as a reply.
    good_form: dict[str, str]
    category_values: dict[str, tuple[str, ...]]
    routes: list[Route]
    #: The user ids by name, and each ticket's mail_key, for signing unfollow tokens.
    user_ids: dict[str, int]
    mail_keys: dict[int, str]
    #: (endpoint, exception) of each exception that reached Flask's error handling.
    exceptions: list[tuple[str | None, BaseException]] = field(default_factory=list)
    #: Strategies built from the above, built once: building them costs more than drawing.
    strategies: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    #: The tables as the last request left them.
    tables: dict[str, tuple[int, str]] | None = None

    def strategy(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        found = self.strategies.get(key)
        if found is None:
            found = self.strategies[key] = make()
        return found


@pytest.fixture
def world(app: Flask, inbox: Inbox) -> Iterator[World]:
    clients = {role: Client(app, None if role == "anonymous" else role) for role in ROLES}
    alice, bob, admin = clients["alice"], clients["bob"], clients["admin"]
    mine = alice.submit("Alice's printer is on fire")
    assert bob.post(f"/ticket/{mine}/follow").status_code == 303
    # Words the search folds, splits or scans for, so fuzzed queries find something.
    searched = "Still burning: Straße, élan, foo_bar, İstanbul, 中文"
    assert alice.reply(mine, searched).status_code == 303
    assert bob.reply(mine, "Mine does that too.").status_code == 303
    theirs = bob.submit("Bob cannot log in")
    assert admin.reply(theirs, "Call me on 555 0100.").status_code == 303
    closed = admin.submit("A closed ticket")
    assert admin.post(f"/ticket/{closed}/close").status_code == 303
    tokens = {role: client.csrf() for role, client in clients.items() if role != "anonymous"}
    tokens["anonymous"] = "not-a-token"
    with app.test_request_context():
        models = ext_models(app)
        categories = app.extensions["flasket"].categories()
        forms: list[Any] = [ticket_form(categories), ReplyForm()]
        forms += [ticket_form(categories), ReplyForm()]
        defaults = [{f.name: f.data for f in form if f.name != "csrf_token"} for form in forms]
        users = {u.username: u.id for u in db.session.scalars(sa.select(User))}
        keys = {t.id: t.mail_key for t in db.session.scalars(sa.select(models.Ticket))}
        replies = sorted(
            (reply.ticket_id, reply.id) for reply in db.session.scalars(sa.select(models.Reply))
        )
        unfollow_tokens = [
            unfollow.make_token(keys[mine], users["bob"]),
            unfollow.make_token(keys[theirs], users["alice"]),
            unfollow.make_token(keys[closed], users["carol"]),
            unfollow.make_token(keys[mine], users["bob"] + 1000),
            unfollow.make_token(f"{mine}.0", users["bob"]),
            unfollow.make_token(keys[mine], str(users["bob"])),
            unfollow.make_token(keys[mine], "bob"),
            # Tokens only this app's SECRET_KEY can sign, naming what no ticket or user is.
            unfollow.make_token("999999999999.x", users["bob"]),
            unfollow.make_token("2147483648.x", users["bob"]),
            unfollow.make_token(keys[mine], 2**31),
            unfollow.make_token(keys[mine], 2**63),
            unfollow.make_token(keys[mine], -1),
            unfollow.make_token(keys[mine], "9" * 30),
            unfollow.make_token(keys[mine], " 2_0 "),
            unfollow.make_token(keys[mine], ""),
        ]
    (hidden,) = [reply for ticket, reply in replies if ticket == theirs]
    assert admin.post(f"/ticket/{theirs}/replies/{hidden}/hide").status_code == 303
    world = World(
        app=app,
        inbox=inbox,
        user_ids=users,
        mail_keys=keys,
        clients=clients,
        tokens=tokens,
        ticket_ids=[mine, theirs, closed],
        replies=replies,
        unfollow_tokens=unfollow_tokens,
        form_fields=[
            *dict.fromkeys([*(n for d in defaults for n in d), "form_key", *STAFF_FIELDS])
        ],
        good_form={
            **staff_form(users, mine, theirs),
            **good_form(defaults[0] | defaults[1], categories),
        },
        one_time_fields={n for n in defaults[0] | defaults[1] if not same_default(defaults, n)},
        category_values={c.name: tuple(c.values) for c in categories},
        routes=blueprint_routes(app)
        + unrouted_paths(str(app.config["FLASKET_URL_PREFIX"]).rstrip("/")),
    )

    def record(sender: Flask, exception: BaseException, **extra: Any) -> None:
        world.exceptions.append((current_request.endpoint, exception))

    got_request_exception.connect(record, app)
    yield world
    got_request_exception.disconnect(record, app)


#: Fields of the staff's assign, bulk, note and duplicate forms that the ticket and reply
#: forms lack (the edit form's are the ticket form's; the revise form's, the reply form's).
STAFF_FIELDS = ("assignee", "from_assignee", "action", "ticket", "back", "note", "original")


def staff_form(users: dict[str, int], ticket_id: int, original: int) -> dict[str, str]:
    """A value each of :data:`STAFF_FIELDS` accepts: assign the admin to the first ticket,
    write a note, or close a ticket as a duplicate of ``original``."""
    return {
        "assignee": str(users["admin"]),
        "from_assignee": "",
        "action": "assign",
        "ticket": str(ticket_id),
        "back": "queue=mine",
        "note": "Found by the fuzzer, for staff.",
        "original": str(original),
    }


def good_form(defaults: dict[str, Any], categories: Any) -> dict[str, str]:
    """A value every field of the ticket and reply forms accepts."""
    good = {"title": "A fuzzed ticket", "body": "Found by the fuzzer."}
    good.update({c.name: c.default or c.values[-1] for c in categories})
    for name, default in defaults.items():
        good.setdefault(name, default if isinstance(default, str) and default else "x")
    return good


def same_default(defaults: list[dict[str, Any]], name: str) -> bool:
    """Whether two forms of a kind start with the same value (not a one-time key)."""
    return defaults[0].get(name) == defaults[2].get(name) and (
        defaults[1].get(name) == defaults[3].get(name)
    )


#: A one-time key of a form (Flasket's form_key): URL-safe base64, as secrets makes them.
one_time_keys = st.text(string.ascii_letters + string.digits + "_-", min_size=22, max_size=22)


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, each drawn about as often as its weight says.

    Not ``st.one_of`` with repeats: that draws each distinct strategy equally often.
    """
    listed = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(listed).flatmap(lambda strategy: strategy)


# Values: bytes, so a value can be invalid UTF-8 or a lone surrogate as well as any text

_long_values = itertools.count()


def long_value(length: int) -> bytes:
    """A value of ``length`` bytes no page shows by chance: a numbered marker, repeated."""
    marker = f"Long{next(_long_values):07d}".encode()
    return (marker * (length // len(marker) + 1))[:length]


HOSTILE_BYTES = [
    b"",
    b" ",
    b"\x00",
    b"a\x00b",
    b"\r\n",
    b"\t",
    b"\x1b[31m",
    b"\xff\xfe",
    b"\xc0\xaf",
    b"\xed\xa0\x80",  # a lone surrogate, as CESU/WTF-8 would send it
    "\u2028\u202e\u200b\ufeff".encode(),
    b"<script>alert(1)</script>\"'",
    b"'; DROP TABLE flasket_ticket; --",
    b"%_\\",
    b"%",
    b"%zz",
    b"-1",
    b"0",
    b"1e400",
    b"9" * 40,
    b"2147483648",
    b"\xef\xbc\x91",  # a fullwidth digit one
    b"\xd9\xa3",  # an Arabic-Indic digit three
    "\U0001f525".encode() * 50,
]

lengths = st.sampled_from([201, 1_001, 20_001, 40_001, 100_000, 400_000])
texts = st.text(max_size=40).map(lambda s: s.encode())
surrogate_texts = st.text(st.characters(codec=None, categories=["Cs", "Cc", "Zs"]), max_size=8)
values = st.one_of(
    st.sampled_from(HOSTILE_BYTES),
    texts,
    surrogate_texts.map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=30),
    st.integers(-(2**70), 2**70).map(lambda n: str(n).encode()),
    lengths.map(long_value),
)


#: What full-text query languages and regular expressions read (FTS5, tsquery, InnoDB's boolean
#: mode, REGEXP), and letters whose case or accents fold to another length or script.
SEARCH_CHARACTERS = "\"*^:()-+~<>@&|!'\\[]{}?.$%_/,;=#" + "aZ09 ßẞİıςΣéÉ\u0301ﬁŉΩKǅ中文ไทย\u200b"
SEARCH_WORDS = ["NEAR", "AND", "OR", "NOT", "the", "a", "printer", "élan", "STRASSE", "foo_bar"]
search_queries = st.lists(
    st.one_of(st.sampled_from(SEARCH_WORDS), st.text(SEARCH_CHARACTERS, min_size=1, max_size=8)),
    min_size=1,
    max_size=5,
).map(lambda words: " ".join(words).encode())


def known_values(world: World, name: str) -> st.SearchStrategy[bytes]:
    """Values a page accepts for ``name``, so a request gets past its first check."""
    found: st.SearchStrategy[bytes] = world.strategy(
        ("value", name), lambda: make_known_values(world, name)
    )
    return found


def make_known_values(world: World, name: str) -> st.SearchStrategy[bytes]:
    people = tuple(str(key) for key in world.user_ids.values())
    choices: dict[str, tuple[str, ...]] = {
        "status": (*queries.STATUS_FILTERS, "waiting"),
        "queue": queries.QUEUES,
        "assignee": (*people, queries.UNASSIGNED, ""),
        "from_assignee": (*people, ""),
        "action": ("assign", "status"),
        "ticket": tuple(str(number) for number in world.ticket_ids),
        "original": (
            *(str(number) for number in world.ticket_ids),
            *(f" #{number} " for number in world.ticket_ids),
        ),
        "note": ("A note.", "Line\r\nline"),
        "back": (
            "",
            "queue=mine",
            "status=closed&q=printer",
            "//evil.example/x",
            "queue=mine&x=1",
        ),
        "resolution": tuple(RESOLUTIONS),
        "sort": tuple(queries.SORTS),
        "show": queries.USER_LISTS,
        "page": ("1", "2", "3", "100"),
        "per_page": ("1", "5", "100"),
        "author": ("alice", "ALICE", "bob", "nobody"),
        "title": ("A title", "Printer"),
        "body": ("A body.", "Line\r\nline"),
        **world.category_values,
    }
    if name == "q":
        return weighted((1, st.just(b"printer")), (3, search_queries), (1, values))
    if name in world.one_time_fields:
        return weighted((2, one_time_keys.map(str.encode)), (1, values))
    found = choices.get(name)
    if not found:
        return values
    return weighted((2, st.sampled_from(found).map(str.encode)), (1, values))


def known_pairs(world: World, names: list[str]) -> st.SearchStrategy[tuple[bytes, bytes]]:
    found: st.SearchStrategy[tuple[bytes, bytes]] = world.strategy(
        ("pairs", *names),
        lambda: st.sampled_from(names).flatmap(
            lambda name: st.tuples(st.just(name.encode()), known_values(world, name))
        ),
    )
    return found


other_pairs = st.tuples(st.one_of(texts, st.sampled_from(HOSTILE_BYTES)), values)


def query_pairs(world: World) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """None, a few the pages read, or any names: known ones and others, maybe repeated."""
    names = [*QUERY_NAMES, *world.category_values, *FOREIGN_NAMES]
    known = known_pairs(world, names)
    return weighted(
        (2, st.just([])),
        (3, st.lists(known, max_size=4, unique_by=lambda pair: pair[0])),
        (2, st.lists(weighted((2, known), (1, other_pairs)), max_size=8)),
    )


@st.composite
def form_fields(draw: st.DrawFn, world: World) -> list[tuple[bytes, bytes]]:
    """A good form of every field some form has, with a few fields changed, dropped or added."""
    good = dict(world.good_form)
    for name in sorted(world.one_time_fields):
        good[name] = draw(weighted((3, one_time_keys), (1, st.sampled_from(["K" * 22, "k" * 22]))))
    fields = [(key.encode(), value.encode()) for key, value in good.items()]
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 5]))):
        change = draw(st.sampled_from(["replace", "replace", "drop", "add", "repeat"]))
        if change == "add" or not fields:
            fields.append(draw(st.one_of(other_pairs, known_pairs(world, world.form_fields))))
            continue
        index = draw(st.integers(0, len(fields) - 1))
        sent_name = fields[index][0]
        if change == "drop":
            del fields[index]
        elif change == "replace":
            fields[index] = (sent_name, draw(known_values(world, sent_name.decode("latin-1"))))
        else:
            fields.append((sent_name, draw(known_values(world, sent_name.decode("latin-1")))))
    return fields


def urlencoded(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"&".join(
        quote_from_bytes(name, safe="").encode() + b"=" + quote_from_bytes(value, safe="").encode()
        for name, value in fields
    )


# Requests


@dataclass(frozen=True)
class Sent:
    """A value sent, how much of it a page may show, and whether it was in the URL."""

    value: bytes
    allowed: int
    in_url: bool


@dataclass
class FuzzRequest:
    """One request, as the test client sends it and as curl would."""

    role: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    content_type: str | None
    body: bytes | None
    chunked: bool
    #: Values sent that may not come back whole, and how much of each may.
    sent: list[Sent]

    def send(self, client: Client) -> Any:
        kwargs: dict[str, Any] = {"method": self.method, "headers": dict(self.headers)}
        if self.query:
            kwargs["query_string"] = self.query
        if self.chunked:
            kwargs["headers"]["Transfer-Encoding"] = "chunked"
            environ: dict[str, Any] = {
                "wsgi.input": io.BytesIO(self.body or b""),
                "wsgi.input_terminated": True,
            }
            if self.content_type is not None:
                environ["CONTENT_TYPE"] = self.content_type
            kwargs["environ_overrides"] = environ
        elif self.body is not None:
            kwargs["data"] = self.body
            if self.content_type is not None:
                kwargs["content_type"] = self.content_type
        return client.http.open(self.path, **kwargs)

    def fingerprint(self) -> tuple[Any, ...]:
        request = (self.method, self.path, self.query, self.content_type, self.body, self.chunked)
        return (*request, tuple(self.headers.items()))

    def curl(self) -> str:
        """The request for a bug report, long values shortened."""
        url = f"http://host.test{self.path}" + (f"?{shorten(self.query)}" if self.query else "")
        parts = [f"# as {self.role}", f"curl -i -X {self.method} '{url}'"]
        for name, value in self.headers.items():
            parts.append(f"-H '{name}: {value}'")
        if self.chunked:
            parts.append("-H 'Transfer-Encoding: chunked'")
        if self.content_type is not None:
            parts.append(f"-H {json.dumps('Content-Type: ' + self.content_type)}")
        if self.body is not None:
            parts.append(f"--data-binary {shorten(repr(self.body))}")
        return " ".join(parts)


def shorten(text: str) -> str:
    return re.sub(r"((Long\d{7})+)", lambda m: f"<{len(m[1])} bytes of Long…>", text)


PATH_LITERALS = ["", "x", ".", "..", "%2e%2e", "%00", "%FF", "%ED%A0%80", "%0D%0A", "a%2Fb"]


def path_values(world: World, converter: str, name: str) -> st.SearchStrategy[str]:
    """Text for a path argument, already percent-encoded."""
    found: st.SearchStrategy[str] = world.strategy(
        ("path", converter, name), lambda: make_path_values(world, converter, name)
    )
    return found


def make_path_values(world: World, converter: str, name: str) -> st.SearchStrategy[str]:
    odd = st.one_of(
        st.sampled_from(PATH_LITERALS),
        texts.map(lambda b: quote_from_bytes(b, safe="")),
        lengths.map(lambda n: long_value(n).decode()),
    )
    if converter in {"int", TICKET_NUMBER_CONVERTER}:
        known = [r for _, r in world.replies] if name == "reply_id" else world.ticket_ids
        ids = st.sampled_from(known).map(str)
        numbers = st.sampled_from(
            ["0", "01", "2147483647", "2147483648", "9" * 30, "-1", "1.0", "%D9%A3", "+1"]
        )
        return weighted((6, ids), (1, st.integers(0, 2**40).map(str)), (1, numbers), (1, odd))
    if converter == "path":
        names = st.sampled_from(
            ["alice", "ALICE", "bob", "admin", "carol", "alice/", "a/b/c", "./alice", "ünï"]
        )
        other = texts.map(lambda b: quote_from_bytes(b, safe="/"))
        return weighted((5, names), (1, odd), (1, other))
    if name == "token":
        tokens = st.sampled_from(world.unfollow_tokens)
        tampered = tokens.map(lambda t: t[:-3] + "abc")
        return weighted((5, tokens), (1, tampered), (1, odd))
    if name == "filename":
        return st.one_of(st.sampled_from(["flasket.css", "../views.py", "%2e%2e/x"]), odd)
    return odd


@st.composite
def form_bodies(draw: st.DrawFn, world: World, role: str) -> tuple[str | None, bytes, list[Sent]]:
    """A content type, a body, and the values sent in it that may come back."""
    fields = draw(form_fields(world))
    token = draw(st.sampled_from(["valid"] * 12 + ["other", "bad", "none", "twice", "empty"]))
    tokens = {
        "valid": [world.tokens[role]],
        "other": [world.tokens["bob" if role != "bob" else "alice"]],
        "bad": ["IjEyMyI.bad.token"],
        "empty": [""],
        "twice": [world.tokens[role]] * 2,
        "none": [],
    }[token]
    fields = [(b"csrf_token", t.encode()) for t in tokens] + fields
    fields = draw(st.permutations(fields))
    sent = [
        Sent(value, ECHO_ALLOWED.get(name.decode(errors="replace"), OTHER_ECHO_ALLOWED), False)
        for name, value in fields
    ]
    kind = draw(st.sampled_from(["urlencoded"] * 5 + ["multipart"] * 3 + ["json", "other"]))
    if kind == "urlencoded":
        content_type = draw(
            st.sampled_from(
                [
                    *["application/x-www-form-urlencoded"] * 4,
                    "application/x-www-form-urlencoded; charset=utf-8",
                    "application/x-www-form-urlencoded; charset=latin-1",
                    "application/x-www-form-urlencoded;;charset=",
                    "Application/X-WWW-Form-Urlencoded",
                ]
            )
        )
        return content_type, urlencoded(fields), sent
    if kind == "multipart":
        boundary = draw(st.sampled_from(["fuzz-boundary", "x", "a" * 70]))
        one_in_ten = st.integers(0, 9).map(lambda n: n == 0)
        files = draw(st.lists(one_in_ten, min_size=len(fields), max_size=len(fields)))
        body = b"".join(
            multipart_part(boundary.encode(), name, value, as_file)
            for (name, value), as_file in zip(fields, files, strict=True)
        )
        body += f"--{boundary}--\r\n".encode()
        if draw(one_in_ten):
            body = body[: draw(st.integers(0, len(body)))]
        content_type = draw(
            st.sampled_from(
                [
                    *[f"multipart/form-data; boundary={boundary}"] * 4,
                    f"multipart/form-data; boundary={boundary}; charset=utf-8",
                    f"multipart/form-data; boundary={boundary}; charset=ebcdic",
                    "multipart/form-data",
                    "multipart/form-data; boundary=other",
                    f"multipart/mixed; boundary={boundary}",
                ]
            )
        )
        return content_type, body, sent
    if kind == "json":
        wrong = st.one_of(
            st.integers(),
            st.floats(allow_nan=False),
            st.none(),
            st.booleans(),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
            st.text(max_size=10),
        )
        names = [n.decode(errors="replace") for n, _ in fields]
        document = {name: draw(wrong) for name in names}
        body = json.dumps(draw(st.one_of(st.just(document), wrong))).encode()
        content_type = draw(st.sampled_from(["application/json", "application/json; x=1"]))
        return content_type, body, sent
    declared = draw(
        st.sampled_from(
            [
                None,
                "text/plain",
                "application/xml",
                "application/octet-stream",
                "\x01/\x02",
                "/",
                "",
            ]
        )
    )
    body = draw(st.one_of(st.just(urlencoded(fields)), st.binary(max_size=200)))
    return declared, body, sent


def multipart_part(boundary: bytes, name: bytes, value: bytes, as_file: bool) -> bytes:
    disposition = b'form-data; name="' + name + b'"'
    if as_file:
        disposition += b'; filename="notes.txt"'
    return (
        b"--"
        + boundary
        + b"\r\nContent-Disposition: "
        + disposition
        + b"\r\n\r\n"
        + value
        + b"\r\n"
    )


@st.composite
def requests(draw: st.DrawFn, world: World, role: str, routes: list[Route]) -> FuzzRequest:
    route = draw(st.sampled_from(routes))
    meant = [m for m in route.methods if m not in {"HEAD", "OPTIONS"}] or ["GET"]
    method = draw(
        weighted(
            (4, st.sampled_from(meant)),
            (1, st.sampled_from(route.methods or ("GET",))),
            (1, st.sampled_from(OTHER_METHODS)),
        )
    )
    path = route.rule
    sent: list[Sent] = []
    chosen: dict[str, str] = {}
    if "reply_id" in dict(route.arguments) and draw(st.booleans()):
        # Half the time a reply and its own ticket, so the request gets past the 404.
        ticket_id, reply_id = draw(st.sampled_from(world.replies))
        chosen = {"ticket_id": str(ticket_id), "reply_id": str(reply_id)}
    for name, converter in route.arguments:
        value = chosen.get(name) or draw(path_values(world, converter, name))
        sent.append(Sent(value.encode(), 200, True))
        path = re.sub(rf"<(?:[^<>]*:)?{name}>", lambda _: value, path, count=1)  # noqa: B023
    query_fields = draw(query_pairs(world))
    sent += [Sent(value, 200, True) for _, value in query_fields]
    query = urlencoded(query_fields).decode()
    headers = {}
    accept = draw(st.sampled_from([None, None, "application/json", "text/html", "*/*", "x"]))
    if accept is not None:
        headers["Accept"] = accept
    content_type, body = None, None
    if method not in {"GET", "HEAD", "OPTIONS"} or draw(st.integers(0, 9)) == 0:
        content_type, body, body_values = draw(form_bodies(world, role))
        sent += body_values
    chunked = body is not None and draw(st.integers(0, 4)) == 0
    return FuzzRequest(role, method, path, query, headers, content_type, body, chunked, sent)


# The checks


def snapshot(app: Flask) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every ``flasket_*`` table."""
    found = {}
    with app.app_context():
        for name, table in sorted(db.metadata.tables.items()):
            if not name.startswith("flasket_"):
                continue
            statement = sa.select(table).order_by(*table.primary_key.columns)
            listed = [tuple(row) for row in db.session.execute(statement)]
            found[name] = (len(listed), hashlib.sha256(repr(listed).encode()).hexdigest()[:16])
    return found


def mail_count(world: World) -> int:
    assert delivery.wait_for_idle(timeout=30), "background delivery still running after 30s"
    return len(world.inbox.received)


def may_change_anything(request: FuzzRequest, status: int) -> bool:
    return request.method == "POST" and status in {200, 303}


def check(world: World, request: FuzzRequest) -> None:
    client = world.clients[request.role]
    mails_before = mail_count(world)
    before = world.tables or snapshot(world.app)
    world.tables = None
    world.exceptions.clear()

    response = request.send(client)

    status = response.status_code
    body: bytes = response.get_data()
    seen = f"{request.curl()}\n-> {status}"
    if world.exceptions and all(known_fault(*found) for found in world.exceptions):
        world.tables = None
        return  # reported, and its own test below fails until it is fixed
    assert not world.exceptions, f"{seen}: {world.exceptions[0][1]!r} in {world.exceptions[0][0]}"
    assert status < 500, seen
    assert not TRACEBACK.search(body), f"{seen}: a traceback in the page"
    mails_after = mail_count(world)
    world.tables = snapshot(world.app)
    if not may_change_anything(request, status):
        assert world.tables == before, f"{seen}: a refused request changed rows"
        assert mails_after == mails_before, f"{seen}: a refused request sent mail"
    if status >= 400:
        assert len(body) < MAX_REFUSAL_PAGE, f"{seen}: a {len(body)}-byte refusal page"
    # A redirect may name the URL asked for (the login view's ?next=, Werkzeug's merged
    # slashes): a URL reaches the app only as long as the web server in front allows.
    redirect = 300 <= status < 400
    page = body.decode(errors="replace")
    for echo in KNOWN_ECHOES.values():
        if request.path == echo.path:
            page = echo.place.sub("", page)  # reported, and its own test below fails
    shown = html.unescape(page)
    for sent in request.sent:
        if len(sent.value) > sent.allowed and not (redirect and sent.in_url):
            piece = sent.value[: sent.allowed + 1].decode(errors="replace")
            assert piece not in shown, f"{seen}: echoed over {sent.allowed} characters of a value"


# Faults found and not fixed yet


@dataclass(frozen=True)
class KnownFault:
    """A 5xx the fuzzer found, as it recognises it, and the shortest request showing it.

    The fuzz tests let it pass (it has been reported); its own test below is an xfail(strict)
    that turns into a failure once the fault is fixed, so the entry is removed then.
    """

    reason: str
    endpoint: str
    #: (exception class name, part of its message) of each way the fault shows.
    signatures: tuple[tuple[str, str], ...]
    #: The backends the fault shows on: its test runs there only.
    backends: tuple[str, ...]
    reproduce: Callable[[World], FuzzRequest]

    def matches(self, endpoint: str | None, error: BaseException) -> bool:
        return endpoint == self.endpoint and any(
            type(error).__name__ == name and message in str(error)
            for name, message in self.signatures
        )


def unfollow_request(ticket_key: Callable[[World], str], user_id: Any) -> Any:
    """An anonymous GET of an unfollow link the app signed, naming ``user_id``."""

    def reproduce(world: World) -> FuzzRequest:
        with world.app.test_request_context():
            token = unfollow.make_token(ticket_key(world), user_id)
        path = f"/ticket/unfollow/{token}"
        return FuzzRequest("anonymous", "GET", path, "", {}, None, None, False, [])

    return reproduce


def a_ticket(world: World) -> str:
    return world.mail_keys[world.ticket_ids[0]]


#: What a number out of a column's range raises: psycopg's DataError, sqlite3's OverflowError.
OUT_OF_RANGE = (
    ("DataError", "out of range"),
    ("OverflowError", "too large to convert to SQLite INTEGER"),
)


def staff_form_request(path: Callable[[World], str], fields: dict[str, str]) -> Any:
    """Admin's POST of ``fields`` (with admin's CSRF token) to ``path(world)``."""

    def reproduce(world: World) -> FuzzRequest:
        sent = [(b"csrf_token", world.tokens["admin"].encode())]
        sent += [(name.encode(), value.encode()) for name, value in fields.items()]
        content_type = "application/x-www-form-urlencoded"
        body = urlencoded(sent)
        return FuzzRequest("admin", "POST", path(world), "", {}, content_type, body, False, [])

    return reproduce


#: What ``session.get(User, None)`` warns, a 500 while warnings are errors.
NULL_IDENTITY = (("SAWarning", "fully NULL primary key identity"),)
ASSIGNEE_KEY_REASON = (
    "views.find_assignee passed the None that parse_user_key returns for an assignee that is "
    "no user key ('abc', '042', 30 nines) to session.get(User, None): SQLAlchemy's SAWarning "
    "'fully NULL primary key identity cannot load any object', a 500 under "
    "warnings-as-errors, instead of a 400 'There is no such user.'"
)

#: Faults the fuzz found, now fixed: each request stays a test of its own, on every backend.
FIXED_FAULTS: dict[str, KnownFault] = {
    "unfollow-ticket-number-out-of-range": KnownFault(
        "An unfollow token the app signed naming ticket number 2**31 or more (ticket_number "
        "takes up to 12 digits; ids are 32-bit) reaches session.get: PostgreSQL raises "
        "'integer out of range', a 500. Only a holder of SECRET_KEY can sign one.",
        "flasket.unfollow_link",
        OUT_OF_RANGE,
        ("postgresql",),
        unfollow_request(lambda world: "2147483648.x", 2),
    ),
    "unfollow-user-id-out-of-range": KnownFault(
        "An unfollow token the app signed naming a user id outside the host's integer key "
        "(2**31 or more on PostgreSQL, 2**63 on SQLite; also as a string of digits) reaches "
        "session.get: DataError or OverflowError, a 500. Only a holder of SECRET_KEY can "
        "sign one.",
        "flasket.unfollow_link",
        OUT_OF_RANGE,
        ("sqlite", "postgresql"),
        unfollow_request(a_ticket, 2**63),
    ),
    "assign-assignee-not-a-key": KnownFault(
        ASSIGNEE_KEY_REASON,
        "flasket.assign",
        NULL_IDENTITY,
        ("sqlite", "postgresql", "mariadb"),
        staff_form_request(
            lambda world: f"/ticket/{world.ticket_ids[0]}/assign",
            {"assignee": "abc", "from_assignee": ""},
        ),
    ),
    "bulk-assignee-not-a-key": KnownFault(
        ASSIGNEE_KEY_REASON,
        "flasket.bulk",
        NULL_IDENTITY,
        ("sqlite", "postgresql", "mariadb"),
        staff_form_request(
            lambda world: "/ticket/bulk",
            {"ticket": "1", "action": "assign", "assignee": "abc"},
        ),
    ),
}


#: Faults found and not fixed yet: the fuzz lets them pass, and each has an xfail(strict) test.
KNOWN_FAULTS: dict[str, KnownFault] = {}


@dataclass(frozen=True)
class KnownEcho:
    """A long value the fuzzer found a page showing whole, and the request showing it.

    The fuzz lets the value show in that one place of that page (it has been reported); its
    own test below is an xfail(strict) that turns into a failure once the page no longer
    shows it, so the entry is removed then.
    """

    reason: str
    #: The page's path, as requested.
    path: str
    #: Where the page shows the value: the markup as sent (before entities are decoded).
    place: re.Pattern[str]
    reproduce: Callable[[World], FuzzRequest]


def long_query_request(role: str, path: str, name: str) -> Callable[[World], FuzzRequest]:
    """A GET of ``path`` with a query parameter ``name`` of 1,001 bytes (allowed: 200)."""

    def reproduce(world: World) -> FuzzRequest:
        value = long_value(1_001)
        query = urlencoded([(name.encode(), value)]).decode()
        sent = [Sent(value, 200, True)]
        return FuzzRequest(role, "GET", path, query, {}, None, None, False, sent)

    return reproduce


#: Long values found echoed and not fixed yet: the fuzz lets each pass in its place, and
#: each has an xfail(strict) test.
KNOWN_ECHOES: dict[str, KnownEcho] = {}

#: Long values the fuzz found echoed, now fixed: each request stays a test of its own.
FIXED_ECHOES: dict[str, KnownEcho] = {
    "bulk-form-back": KnownEcho(
        "The staff's ticket list put its whole query string, unknown parameters included, "
        "into the bulk form's hidden 'back' field, so /ticket/all?endpoint=<any length> "
        "showed the value whole; the field now carries only the list's own parameters",
        "/ticket/all",
        re.compile(r'<input id="back" name="back" type="hidden" value="[^"]*">'),
        long_query_request("admin", "/ticket/all", "endpoint"),
    ),
}


def known_fault(endpoint: str | None, error: BaseException) -> bool:
    return any(fault.matches(endpoint, error) for fault in KNOWN_FAULTS.values())


def fuzz_routes(world: World, role: str, routes: list[Route], examples: int) -> None:
    """``examples`` requests to ``routes`` as ``role``, the same ones on every run."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        # Explaining re-sends passing requests, which the repeat check above turns away.
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        request = data.draw(strategy, label="request")
        # Hypothesis often varies what a request does not use: such a repeat is not counted.
        assume(request.fingerprint() not in passed)
        try:
            check(world, request)
        except AssertionError as error:
            failures.append(str(error))
            raise
        passed.add(request.fingerprint())

    strategy = requests(world, role, routes)
    passed: set[tuple[Any, ...]] = set()
    failures: list[str] = []
    try:
        fuzz()
    except Flaky:
        # The tickets are shared by every example: what a failing request found (an open
        # ticket, a follow) may be gone when Hypothesis sends it again to shrink it.
        if not failures:
            raise
        pytest.fail(f"{failures[0]}\n(Hypothesis could not replay it: the state had changed)")


# The tests

#: The routes as the suite collects them; each test checks the app it runs has the same.
COLLECTED = create_app()
ROUTES = [route.rule for route in blueprint_routes(COLLECTED)] + [UNROUTED]
SQLITE = ["sqlite"] if "sqlite" in selected_backends() else []
SERVERS = [name for name in selected_backends() if name != "sqlite"]


def route_id(rule: str) -> str:
    return ARGUMENT.sub(lambda match: f"<{match['name']}>", rule)


def routes_of(world: World, rule: str) -> list[Route]:
    if rule == UNROUTED:
        return [route for route in world.routes if route.endpoint == UNROUTED]
    found = [route for route in world.routes if route.rule == rule]
    assert found, f"the app has no rule {rule}"
    return found


@pytest.mark.parametrize("backend", SQLITE, indirect=True)
def test_every_route_of_the_blueprint_is_fuzzed(world: World) -> None:
    endpoints = {name for name in world.app.view_functions if name.startswith("flasket.")}
    rules = {route.rule for route in world.routes if route.endpoint != UNROUTED}
    assert {route.endpoint for route in world.routes} == endpoints | {UNROUTED}
    assert rules == set(ROUTES) - {UNROUTED}


@pytest.mark.parametrize("backend", SQLITE, indirect=True)
@pytest.mark.parametrize("rule", ROUTES, ids=route_id)
def test_no_request_to_a_route_is_a_server_error_or_changes_anything_when_refused(
    world: World, rule: str
) -> None:
    """Each role in turn, on the same tickets: what one changed, the next one meets."""
    for role in ROLES:
        fuzz_routes(world, role, routes_of(world, rule), EXAMPLES)


@pytest.mark.parametrize("backend", SERVERS, indirect=True)
@pytest.mark.parametrize("role", ROLES)
def test_no_request_is_a_server_error_or_changes_anything_on_a_database_server(
    world: World, role: str
) -> None:
    """A share of the SQLite run's requests, to every route at once: SQL differs by server."""
    routed = [route for route in world.routes if route.endpoint != UNROUTED]
    examples = max(1, EXAMPLES * len(ROUTES) // SERVER_SHARE)
    fuzz_routes(world, role, routed * 3 + world.routes, examples)


def known_fault_cases() -> list[Any]:
    known = [
        pytest.param(
            backend,
            name,
            marks=pytest.mark.xfail(strict=True, reason=fault.reason),
            id=f"{name}-{backend}",
        )
        for name, fault in KNOWN_FAULTS.items()
        for backend in selected_backends()
        if backend in fault.backends
    ]
    fixed = [
        pytest.param(backend, name, id=f"{name}-{backend}")
        for name in FIXED_FAULTS
        for backend in selected_backends()
    ]
    return known + fixed


@pytest.mark.parametrize(("backend", "fault"), known_fault_cases(), indirect=["backend"])
def test_a_request_the_fuzzer_found_is_not_a_server_error(world: World, fault: str) -> None:
    request = {**KNOWN_FAULTS, **FIXED_FAULTS}[fault].reproduce(world)

    response = request.send(world.clients[request.role])

    assert response.status_code < 500, request.curl()


def known_echo_cases() -> list[Any]:
    known = [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=echo.reason), id=name)
        for name, echo in KNOWN_ECHOES.items()
    ]
    return known + [pytest.param(name, id=name) for name in FIXED_ECHOES]


@pytest.mark.parametrize("backend", SQLITE, indirect=True)
@pytest.mark.parametrize("echo", known_echo_cases())
def test_a_long_value_the_fuzzer_found_echoed_is_not_shown_whole(world: World, echo: str) -> None:
    request = {**KNOWN_ECHOES, **FIXED_ECHOES}[echo].reproduce(world)

    response = request.send(world.clients[request.role])

    assert response.status_code == 200, request.curl()
    shown = html.unescape(response.get_data(as_text=True))
    for sent in request.sent:
        piece = sent.value[: sent.allowed + 1].decode(errors="replace")
        assert piece not in shown, request.curl()
