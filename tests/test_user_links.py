"""Every link to a user opens that user's page, whatever their name or key holds.

Links to users are made from the primary key alone (``/ticket/user/42``), never from the
name: a name may hold ``/``, ``..``, ``%2e``, ``?`` or ``#``, may be empty, and may be shared
by several users of a table that does not make it unique. The author filter finds every user
by key (``?author_id=``), and by a typed name asks which user is meant when several share it.
"""

from __future__ import annotations

import html
import re
import uuid
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from markupsafe import escape
from sqlalchemy.orm import Mapped, mapped_column

from tests.helpers import Client, Inbox, OwnApps
from tests.hostapp import User, db
from tests.test_user_keys import make_host

#: Names that misrouted links made from names, and names that are or look like another's.
ODD_NAMES = [
    "user/../admin",
    "../admin",
    "..",
    ".",
    "%2e%2e",
    ".%2E",
    "/leading",
    "trailing/",
    "a//b",
    "a\\..\\admin",
    "?show=replies",
    "#top",
    "2",
    "unknown",
    "a deleted user",
    "unnamed user 1",
    "Ünïcödé name",
    "with space",
    "tab\there",
    "x" * 64,
    "",
    "\u00a0",
]

#: WHATWG URL Standard: these are dot segments too, in any case.
SINGLE_DOTS = {".", "%2e"}
DOUBLE_DOTS = {"..", ".%2e", "%2e.", "%2e%2e"}


def resolve_like_a_browser(base: str, href: str) -> str:
    """``href`` against ``base`` with the WHATWG URL Standard's path rules.

    Backslashes are slashes in http(s) URLs, and percent-encoded dots make dot segments.
    """
    joined = urlsplit(urljoin(base, href.replace("\\", "/")))
    segments: list[str] = []
    parts = joined.path.split("/")[1:]
    for index, segment in enumerate(parts):
        last = index == len(parts) - 1
        if segment.lower() in DOUBLE_DOTS:
            if segments:
                segments.pop()
            if last:
                segments.append("")
        elif segment.lower() in SINGLE_DOTS:
            if last:
                segments.append("")
        else:
            segments.append(segment)
    path = "/" + "/".join(segments)
    return path + (f"?{joined.query}" if joined.query else "")


def user_links(page: str) -> dict[str, str]:
    """``{shown name: href}`` of the user links on a page."""
    found = re.findall(r'<a href="(/ticket/user/[^"]*)">([^<]*)</a>', page)
    return {html.unescape(name): html.unescape(href) for href, name in found}


def heading(page: str) -> str:
    match = re.search(r"<h1>(.*?)\N{RIGHT SINGLE QUOTATION MARK}s tickets</h1>", page)
    assert match, "not a user page"
    return html.unescape(match.group(1))


def add_person(app: Flask, name: str) -> int:
    with app.app_context():
        person = User(username=name, email=f"u{abs(hash(name))}@example.test")
        db.session.add(person)
        db.session.commit()
        return int(person.id)


def shown_name(name: str, key: Any) -> str:
    return name if name.strip() else f"unnamed user {key}"


@pytest.fixture
def odd_people(app: Flask, backend: str) -> dict[str, int]:
    """The odd names' users; MariaDB's collations take "" and a lone no-break space as equal."""
    names = [n for n in ODD_NAMES if backend != "mariadb" or n != "\u00a0"]
    return {name: add_person(app, name) for name in names}


def test_every_user_link_opens_that_users_page_whatever_the_name(
    app: Flask, odd_people: dict[str, int], login: Any, bob: Client
) -> None:
    tickets = {}
    for name in odd_people:
        person = login(name)
        tickets[name] = person.submit(title=f"Ticket of {name!r}")
        assert person.reply(tickets[name], "A reply of my own").status_code == 303

    for name, key in odd_people.items():
        page_url = f"/ticket/{tickets[name]}"
        page = bob.get(page_url).get_data(as_text=True)
        links = user_links(page)
        assert shown_name(name, key) in links, (name, links, page[-3000:])
        href = links[shown_name(name, key)]
        assert href == f"/ticket/user/{key}"
        target = resolve_like_a_browser(f"http://localhost{page_url}", href)
        response = bob.get(target)
        assert response.status_code == 200, (name, target)
        their_page = response.get_data(as_text=True)
        assert heading(their_page) == shown_name(name, key)
        assert str(escape(f"Ticket of {name!r}")) in their_page


def test_the_author_filter_finds_every_user_by_key_and_by_typed_name(
    app: Flask, odd_people: dict[str, int], login: Any, bob: Client
) -> None:
    tickets = {name: login(name).submit(title=f"Filed by {name!r}") for name in odd_people}
    for name, key in odd_people.items():
        by_key = bob.get(f"/ticket/all?author_id={key}").get_data(as_text=True)
        assert str(escape(f"Filed by {name!r}")) in by_key
        assert f"#{tickets[name]}<" in by_key
        if name.strip() and name == name.strip():
            typed = bob.get("/ticket/all", query_string={"author": name})
            assert str(escape(f"Filed by {name!r}")) in typed.get_data(True)


def test_the_index_links_the_users_own_tickets_by_key(
    app: Flask, odd_people: dict[str, int], login: Any
) -> None:
    name = "user/../admin"
    person = login(name)
    person.submit(title="Mine")
    index = person.get("/ticket/").get_data(as_text=True)
    key = odd_people[name]
    assert f'href="/ticket/all?status=open&amp;author_id={key}"' in index
    assert f'href="/ticket/user/{key}"' in index
    own = person.get(f"/ticket/user/{key}").get_data(as_text=True)
    assert re.search(r'<a href="/ticket/user/\d+" aria-current="page">My tickets</a>', own)
    other = person.get("/ticket/user/1").get_data(as_text=True)
    assert "aria-current" not in re.search(r"<a [^>]*>My tickets</a>", other).group(0)  # type: ignore[union-attr]


def test_a_key_has_one_address(app: Flask, alice: Client) -> None:
    assert alice.get("/ticket/user/1").status_code == 200
    for other in ("/ticket/user/01", "/ticket/user/+1", "/ticket/user/1.0", "/ticket/user/1_0"):
        assert alice.get(other).status_code == 404, other
    moved = alice.get("/ticket/user/?key=1&show=replies")
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/ticket/user/1?show=replies"


@pytest.mark.parametrize("key", ["99999999999999999999", "-99999999999", "2147483648", "0"])
def test_a_key_the_column_cannot_hold_is_no_user(app: Flask, alice: Client, key: str) -> None:
    response = alice.get(f"/ticket/user/{key}")
    assert response.status_code == 404
    assert "There is no such user." in response.get_data(True)


# Names a table does not make unique


def shared_names_host(own_apps: OwnApps, smtp_port: int) -> tuple[Flask, SQLAlchemy, Any]:
    own_db = SQLAlchemy()

    class Person(UserMixin, own_db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "namesake_people"

        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(64))
        email: Mapped[str] = mapped_column(sa.String(120))

    app = make_host(
        own_db,
        Person,
        smtp_port=smtp_port,
        SQLALCHEMY_DATABASE_URI=own_apps.database_url,
        FLASKET_STAFF_RECIPIENTS=["staff@example.test"],
    )
    own_apps.track(app)
    with app.app_context():
        own_db.create_all()
    return app, own_db, Person


def test_users_sharing_a_name_each_keep_their_own_page_and_filter(
    own_apps: OwnApps, smtp_server: tuple[Inbox, int], inbox: Inbox
) -> None:
    app, own_db, person = shared_names_host(own_apps, smtp_server[1])
    with app.app_context():
        people = [person(username="sam", email=f"sam{n}@example.test") for n in range(3)]
        own_db.session.add_all([*people, person(username="viewer", email="v@example.test")])
        own_db.session.commit()
        keys = [p.id for p in people]
        models = app.extensions["flasket"].models
        for key in keys:
            ticket = models.Ticket(
                author_id=key, title=f"Ticket of sam {key}", body="Body", status="open"
            )
            own_db.session.add(ticket)
        own_db.session.commit()
    viewer = Client(app, "viewer")

    listed = viewer.get("/ticket/all").get_data(as_text=True)
    links = re.findall(r'<a href="(/ticket/user/\d+)">sam</a>', listed)
    assert sorted(links) == sorted(f"/ticket/user/{key}" for key in keys)
    for key in keys:
        page = viewer.get(f"/ticket/user/{key}").get_data(as_text=True)
        assert f"Ticket of sam {key}" in page
        assert all(f"Ticket of sam {other}" not in page for other in keys if other != key)

    typed = viewer.get("/ticket/all?author=sam").get_data(as_text=True)
    assert "3 users are called “sam”." in typed
    assert "Ticket of sam" not in typed
    choices = re.findall(r'<a href="/ticket/all\?author_id=(\d+)">sam</a>', typed)
    assert sorted(map(int, choices)) == sorted(keys)
    for key in keys:
        chosen = viewer.get(f"/ticket/all?author_id={key}").get_data(as_text=True)
        assert f"Ticket of sam {key}" in chosen
        assert 'name="author" value="sam"' in chosen
    # An old name address cannot tell them apart: it leads nowhere rather than to one of them.
    assert viewer.get("/ticket/user/sam").status_code == 404


# Keys that are text: the host's own handles, whatever they hold

ODD_KEYS = ["..", ".", "a/b", "/x", "x/", "a/../b", "%2e", "é", "a b", "?q", "#h", "42"]


def test_text_keys_that_cannot_be_a_path_segment_go_in_the_query(
    own_apps: OwnApps, smtp_server: tuple[Inbox, int], inbox: Inbox
) -> None:
    own_db = SQLAlchemy()

    class Handle(UserMixin, own_db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "handles"

        handle: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(64), unique=True)
        email: Mapped[str] = mapped_column(sa.String(120))

        def get_id(self) -> str:
            return self.handle

    app = make_host(
        own_db,
        Handle,
        load_id=str,
        smtp_port=smtp_server[1],
        SQLALCHEMY_DATABASE_URI=own_apps.database_url,
        FLASKET_STAFF_RECIPIENTS=["staff@example.test"],
    )
    own_apps.track(app)
    names = {key: f"person {n}" for n, key in enumerate(ODD_KEYS)}
    with app.app_context():
        own_db.create_all()
        own_db.session.add_all(
            Handle(handle=key, username=name, email=f"{uuid.uuid4().hex}@example.test")
            for key, name in names.items()
        )
        own_db.session.add(Handle(handle="viewer", username="viewer", email="v@example.test"))
        own_db.session.commit()
    for name in names.values():
        Client(app, name).submit(title=f"Ticket of {name}")
    viewer = Client(app, "viewer")

    listed = viewer.get("/ticket/all?per_page=50").get_data(as_text=True)
    links = user_links(listed)
    for key, name in names.items():
        href = links[name]
        target = resolve_like_a_browser("http://host.test/ticket/all", href)
        response = viewer.get(target)
        assert response.status_code == 200, (key, href)
        assert heading(response.get_data(as_text=True)) == name
        by_key = viewer.get("/ticket/all", query_string={"author_id": key})
        assert f"Ticket of {name}<" in by_key.get_data(as_text=True)


def test_a_link_built_once_per_context_follows_a_rename_and_never_mixes_unsaved_users(
    app: Flask,
) -> None:
    from flasket.templating import user_link

    with app.app_context():
        alice = db.session.scalars(sa.select(User).where(User.username == "alice")).one()
        with app.test_request_context("/ticket/"):
            before = user_link(alice)
            assert ">alice</a>" in before
            assert user_link(alice) is before
            alice.username = "alicia"
            assert ">alicia</a>" in user_link(alice)
            assert 'href="/ticket/user/1"' in user_link(alice)
            first, second = User(username="p1"), User(username="p2")
            assert ">p1</a>" in user_link(first)
            assert ">p2</a>" in user_link(second)
        db.session.rollback()
