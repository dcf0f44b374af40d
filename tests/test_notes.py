"""Internal notes (``flasket_note``): staff write them on a ticket and staff read them.

Nobody else learns of a note anywhere: not on the ticket's pages, in a list, a count, a
search, a "last updated" time or order, a by-line, a user page's tabs, the history, a
mail, the unfollow page or a signal other than ``note_added``. Staff followers get the
note's mail; the requester and other users never do. Each surface is read from the
requester's side and from another user's, before and after the note, and with the notes
gone: what they read must be the same, byte for byte (but for CSRF tokens, form keys and
"2 minutes ago").
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import delivery, signals
from flasket.queries import SORTS, STATUS_FILTERS
from tests.helpers import (
    Client,
    Inbox,
    add_staff,
    counting_queries,
    delete_in_bulk,
    delete_with_orm,
    delete_with_sql,
    ext_models,
    rows,
    text,
    user_id,
)
from tests.hostapp import User, db

#: In every note's text and nowhere else.
MARKER = "zebrafishsecret"
#: A second word only notes hold, searched on its own.
NOTE_ONLY = "quokkaledger"
#: A note's text: the marker, a word of the ticket's title, and a word of its own.
SECRET = f"{MARKER}: printer refund {NOTE_ONLY} approved, do not tell the requester"
STAFF_ONLY_LINE = "Internal note: only staff see it."
DELETED = "a deleted user"
FORM_KEY = re.compile(r'name="form_key" type="hidden" value="([^"]+)"')
PER_PAGE = {"FLASKET_REPLIES_PER_PAGE": 2}


def add_note(
    client: Client, ticket_id: int, body: str = SECRET, csrf: bool = True, **extra: Any
) -> Any:
    return client.post(f"/ticket/{ticket_id}/note", {"note": body, **extra}, csrf=csrf)


def note_form_key(client: Client, ticket_id: int) -> str:
    """The one-time key of the note form on the ticket's page (not the reply form's)."""
    page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    form = page.split(f'action="/ticket/{ticket_id}/note"', 1)[1]
    found = FORM_KEY.search(form)
    assert found is not None, "no note form"
    return found.group(1)


def notes(app: Flask, **filters: Any) -> list[Any]:
    return sorted(rows(app, ext_models(app).Note, **filters), key=lambda n: n.id)


def columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in sa.inspect(row).mapper.column_attrs}


def ticket_state(app: Flask, ticket_id: int) -> dict[str, Any]:
    """Every column of the ticket's row, and what hangs on it that others can read."""
    models = ext_models(app)
    (ticket,) = rows(app, models.Ticket, id=ticket_id)
    follows = sorted((f.user_id, f.created_at) for f in rows(app, models.Follow))
    public_history = sorted(
        c.id for c in rows(app, models.Change, ticket_id=ticket_id) if not c.staff_only
    )
    return {
        "ticket": columns(ticket),
        "follows": follows,
        "history": public_history,
        "replies": [r.id for r in rows(app, models.Reply, ticket_id=ticket_id)],
    }


def location(response: Any) -> str:
    assert response.status_code == 303, response.status_code
    return str(response.headers["Location"]).removeprefix("http://host.test")


def unfollow_path(mail: Any) -> str:
    link = str(mail.message["List-Unsubscribe"]).strip("<>")
    return link.split("host.test", 1)[1]


#: Response headers that differ on every request, or with the length of "2 minutes ago".
VARYING_HEADERS = {"Set-Cookie", "Content-Length", "Date"}


def normalized(response: Any) -> tuple[int, str]:
    """The response as a person reads it, without what differs on every request."""
    headers = sorted((k, v) for k, v in response.headers.items() if k not in VARYING_HEADERS)
    page = "\n".join(f"{k}: {v}" for k, v in headers) + "\n\n" + response.get_data(as_text=True)
    page = FORM_KEY.sub('name="form_key" type="hidden" value=""', page)
    page = re.sub(r'name="csrf_token" type="hidden" value="[^"]*"', "csrf", page)
    page = re.sub(r"(<time [^>]*>)[^<]*(</time>)", r"\1\2", page)  # "2 minutes ago"
    return response.status_code, page


def differences(after: dict[Any, Any], before: dict[Any, Any]) -> list[str]:
    """Where two snapshots differ, as diffs of the pages' lines (empty when they are equal)."""
    found = []
    for key in sorted(set(after) | set(before), key=str):
        if after.get(key) == before.get(key):
            continue
        was, now = before.get(key, (None, "")), after.get(key, (None, ""))
        lines = difflib.unified_diff(was[1].splitlines(), now[1].splitlines(), lineterm="", n=1)
        found.append(f"{key}: {was[0]} -> {now[0]}\n" + "\n".join(lines))
    return found


def assert_nothing_of_notes(url: str, page: str, author_names: tuple[str, ...]) -> None:
    """What no page a non-staff reader gets may hold: a note's text, label, id or by-line.

    A search's own words, echoed in its box and links, are not the note's.
    """
    searched = re.search(r"[?&]q=([^&]+)", url)
    if searched:
        page = page.replace(searched.group(1), "(searched)")
    for word in (MARKER, NOTE_ONLY, "do not tell the requester"):
        assert word not in page, (url, word)
    assert "internal note" not in page.lower(), url
    assert "note-" not in page, url  # id="note-N", #note-N links, the note classes
    assert "/note" not in page, url  # the note form's action
    for name in author_names:
        assert f">{name}</a> wrote" not in page, (url, name)
    if "flasket-replies" in page:  # a ticket page: only the ticket itself "wrote"
        assert page.count(" wrote ") == 1, url


@dataclass
class Thread:
    """Alice's ticket, its replies and notes, and who is who."""

    ticket_id: int
    other_id: int
    replies: list[int] = field(default_factory=list)
    notes: list[int] = field(default_factory=list)
    #: Where each note's POST redirected.
    redirects: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def sam(app: Flask, login: Callable[[str | None], Client]) -> Client:
    """A second staff member (``admin`` is the first)."""
    add_staff(app, "sam")
    return login("sam")


@pytest.fixture
def ticket_id(alice: Client, bob: Client, sam: Client, admin: Client, inbox: Inbox) -> int:
    """Alice's open ticket; Bob, Sam (staff) and admin follow it; the inbox starts empty."""
    found = alice.submit("Printer jams", "Every second page.")
    for client in (bob, sam, admin):
        assert client.post(f"/ticket/{found}/follow").status_code == 303
    assert inbox.messages is not None  # every delivery so far is done
    inbox.clear()
    return found


@pytest.fixture
def sent() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every signal sent about a ticket: its name, and what it was sent with, read then."""
    caught: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for signal in (
        signals.note_added,
        signals.ticket_replied,
        signals.ticket_created,
        signals.ticket_closed,
        signals.ticket_reopened,
        signals.ticket_status_changed,
        signals.ticket_followed,
        signals.ticket_assigned,
    ):

        def receive(sender: Any, signal: Any = signal, **kwargs: Any) -> None:
            seen = {"ticket": kwargs["ticket"].id, "user": kwargs["user"].username}
            if "note" in kwargs:
                seen["note"] = (kwargs["note"].id, kwargs["note"].body)
            caught.append((signal.name, seen))

        signal.connect(receive)
        receivers.append((signal, receive))
    yield caught
    for signal, receive in receivers:
        signal.disconnect(receive)


@pytest.fixture
def thread(
    app: Flask,
    ticket_id: int,
    alice: Client,
    bob: Client,
    carol: Client,
    admin: Client,
    sam: Client,
) -> Thread:
    """Alice's ticket with five replies (three pages of two) and three notes among them.

    Admin's note before any reply, Sam's after the second reply (the end of page 1), admin's
    after the third (the middle of page 2). Carol's ticket is updated after Alice's.
    """
    found = Thread(ticket_id=ticket_id, other_id=0)
    found.ids = {name: user_id(app, name) for name in ("alice", "bob", "carol", "admin", "sam")}

    def note(client: Client, body: str) -> None:
        response = add_note(client, ticket_id, body)
        found.redirects.append(location(response))
        found.notes.append(notes(app)[-1].id)

    def reply(client: Client, body: str) -> None:
        assert client.reply(ticket_id, body).status_code == 303
        found.replies.append(rows(app, ext_models(app).Reply)[-1].id)

    note(admin, f"First {SECRET}")
    reply(bob, "Same here on floor 3.")
    reply(alice, "Still jamming.")
    note(sam, f"Second {SECRET}")
    reply(admin, "Which model is it?")
    note(admin, f"Third {SECRET}")
    reply(alice, "The LaserJet 4.")
    reply(bob, "Mine too.")
    found.replies.sort()
    found.other_id = carol.submit("Scanner is slow", "Takes ages.")
    return found


def surfaces(thread: Thread) -> list[str]:
    """Every page a reader may open that could tell of the ticket or its notes."""
    number, ids = thread.ticket_id, thread.ids
    urls = [f"/ticket/{number}", *(f"/ticket/{number}?page={n}" for n in range(1, 5))]
    urls += ["/ticket/", "/ticket/index", "/ticket/all"]
    for status in (*STATUS_FILTERS, "waiting"):
        urls += [f"/ticket/all?status={status}&sort={sort}" for sort in SORTS]
    for query in (MARKER, NOTE_ONLY, "approved", "printer", "Internal", "note"):
        urls.append(f"/ticket/all?status=all&q={query}")
    urls += [
        f"/ticket/all?status=all&q={MARKER}&author=alice",
        "/ticket/all?status=all&author=admin",
        "/ticket/all?status=all&author=sam",
        f"/ticket/all?status=all&author_id={ids['alice']}",
    ]
    for name in ("alice", "bob", "admin", "sam"):
        urls += [
            f"/ticket/user/{ids[name]}?show={show}" for show in ("tickets", "following", "replies")
        ]
    urls += [f"/ticket/{number}/note", "/ticket/no-such-page", f"/ticket/{number}?page=0"]
    return urls


def snapshot(readers: dict[str, Client], urls: list[str]) -> dict[Any, Any]:
    """What each reader gets at each address."""
    seen = {}
    for name, client in readers.items():
        for url in urls:
            seen[name, url] = normalized(client.get(url))
    return seen


# --- nobody but staff learns of a note ---------------------------------------------------


@pytest.mark.parametrize("app_config", [PER_PAGE], ids=["2 per page"])
def test_the_requester_and_other_users_read_the_same_pages_with_notes_or_without(
    app: Flask,
    thread: Thread,
    alice: Client,
    bob: Client,
    admin: Client,
    inbox: Inbox,
) -> None:
    number = thread.ticket_id
    # The ticket waits on its requester: a note must not end that, nor anything else.
    assert (
        admin.post(
            f"/ticket/{number}/status", {"status": "waiting", "resolution": "solved"}
        ).status_code
        == 303
    )
    models = ext_models(app)
    # Updated long ago, Carol's ticket after Alice's: a note that touched the ticket would
    # move it up the lists and change its "updated" time.
    with app.app_context():
        for key, when in ((number, datetime(2024, 1, 1)), (thread.other_id, datetime(2024, 2, 1))):
            db.session.execute(
                sa.update(models.Ticket)
                .where(models.Ticket.id == key)
                .values(updated_at=when.replace(tzinfo=timezone.utc))
            )
        db.session.commit()
    assert inbox.messages is not None  # waits for the deliveries so far
    inbox.clear()
    # A reply mail to each reader, for the unfollow page its link opens.
    assert admin.reply(number, "We ordered a new drum.").status_code == 303
    unfollow = {
        name: unfollow_path(inbox.to(f"{name}@example.test")[0]) for name in ("alice", "bob")
    }
    with app.app_context():
        db.session.execute(
            sa.update(models.Ticket)
            .where(models.Ticket.id == number)
            .values(updated_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
        )
        db.session.commit()
    urls = surfaces(thread)
    readers = {"alice": alice, "bob": bob}
    for client in readers.values():
        assert client.get("/ticket/").status_code == 200  # shows what their replies flashed
    mail_reader = app.test_client()

    def everything() -> dict[Any, Any]:
        seen = snapshot(readers, urls)
        for name, path in unfollow.items():
            seen[name, "unfollow"] = normalized(mail_reader.get(path))
        return seen

    before, state_before = everything(), ticket_state(app, number)
    inbox.clear()

    last = add_note(admin, number, f"Fourth {SECRET}")
    assert location(last).endswith(f"?page=3#note-{notes(app)[-1].id}")
    after, state_after = everything(), ticket_state(app, number)

    assert state_after == state_before
    assert state_after["ticket"]["status"] == "waiting"
    assert differences(after, before) == []
    for (name, url), (code, page) in after.items():
        assert_nothing_of_notes(f"{name} {url}", html.unescape(page), ("admin", "sam"))
        assert code in (200, 400, 404, 405), (name, url, code)
    # What each reader sees is the real thing, not an error page.
    assert after["alice", f"/ticket/{number}?page=3"][0] == 200
    assert "Mine too." in after["bob", f"/ticket/{number}?page=3"][1]
    assert after["alice", f"/ticket/{number}?page=4"][0] == 404
    assert after["alice", f"/ticket/{number}/note"][0] == 405
    assert after["bob", f"/ticket/{number}?page=0"][0] == 400
    for query in (MARKER, NOTE_ONLY, "approved"):
        found = html.unescape(after["bob", f"/ticket/all?status=all&q={query}"][1])
        assert "Printer jams" not in found, query
        assert "No tickets match these filters." in found, query
    assert "Printer jams" in html.unescape(after["bob", "/ticket/all?status=all&q=printer"][1])
    # Carol's ticket stays first in the list by last update.
    listed = html.unescape(after["alice", "/ticket/all?status=all&sort=updated"][1])
    assert listed.index("Scanner is slow") < listed.index("Printer jams")

    # And with every note gone, the pages are the same once more.
    with app.app_context():
        db.session.execute(sa.delete(models.Note))
        db.session.commit()
    assert differences(everything(), after) == []
    # The last note's mail went to Sam, the one staff follower but its author, alone.
    assert [m.envelope_to for m in inbox.messages] == [["sam@example.test"]]


# --- staff read the notes where they were written ----------------------------------------


@pytest.mark.parametrize("app_config", [PER_PAGE], ids=["2 per page"])
def test_staff_read_each_note_after_the_reply_that_was_last_and_land_on_its_page(
    app: Flask, thread: Thread, admin: Client, sam: Client
) -> None:
    number = thread.ticket_id
    first, second, third = thread.notes
    r1, r2, r3, r4, r5 = thread.replies
    assert [n.after_reply_id for n in notes(app)] == [None, r2, r3]
    # Each note's redirect goes to the page that shows it, at the note.
    assert thread.redirects == [
        f"/ticket/{number}#note-{first}",
        f"/ticket/{number}#note-{second}",
        f"/ticket/{number}?page=2#note-{third}",
    ]
    expected = {
        1: [f"note-{first}", f"reply-{r1}", f"reply-{r2}", f"note-{second}"],
        2: [f"reply-{r3}", f"note-{third}", f"reply-{r4}"],
        3: [f"reply-{r5}"],
    }
    for client in (admin, sam):
        for page_number, order in expected.items():
            page = text(client.get(f"/ticket/{number}?page={page_number}"))
            shown = re.findall(r'id="((?:note|reply)-\d+)"', page)
            assert shown == order, (client.username, page_number)
            shown_notes = [entry for entry in order if entry.startswith("note-")]
            assert page.count(MARKER) == len(shown_notes)
            assert page.count('class="flasket-note-label">Internal note</strong>') == len(
                shown_notes
            )
            assert f'action="/ticket/{number}/note"' in page
        page_one = text(client.get(f"/ticket/{number}"))
        # Marked in words and by its look, with its author's by-line.
        aside = page_one.split(f'id="note-{second}"', 1)[1].split("</aside>", 1)[0]
        tag = re.search(
            rf'<aside id="note-{second}" class="([^"]*)" aria-label="([^"]*)"', page_one
        )
        assert tag is not None
        assert "flasket-note" in tag.group(1).split()
        assert tag.group(2) == "Internal note"
        assert "Internal note" in aside
        assert ">sam</a> wrote" in aside
        assert f"Second {SECRET}" in aside
        # A note is not a reply: the numbering of the replies goes on across it.
        page_two = client.get(f"/ticket/{number}?page=2").get_data(as_text=True)
        assert re.search(r'<ol [^>]*start="3"', page_two)
        assert re.search(r'<ol [^>]*start="4"', page_two)
        assert "5 replies" in text(client.get(f"/ticket/{number}"))
    # The default look gives a note its own background and border.
    css = admin.get("/ticket/static/flasket/flasket.css").get_data(as_text=True)
    rule = re.search(r"\.flasket-note \{([^}]*)\}", css)
    assert rule is not None
    assert "background" in rule.group(1)
    assert "border" in rule.group(1)

    # The fourth note follows the fifth reply, on page 3, and the redirect goes there.
    fourth = add_note(sam, number, "Ordered the part.")
    (new,) = [n for n in notes(app) if n.id not in thread.notes]
    assert new.after_reply_id == r5
    assert location(fourth) == f"/ticket/{number}?page=3#note-{new.id}"
    landed = text(sam.get(location(fourth)))
    assert "Your internal note was added. Only staff see it." in landed
    assert re.findall(r'id="((?:note|reply)-\d+)"', landed) == [f"reply-{r5}", f"note-{new.id}"]


@pytest.mark.parametrize("app_config", [PER_PAGE], ids=["2 per page"])
def test_the_staff_ticket_page_runs_as_many_statements_with_twenty_notes_as_with_none(
    app: Flask, alice: Client, bob: Client, admin: Client, sam: Client
) -> None:
    plain = alice.submit("Plain one", "No notes.")
    noted = alice.submit("Noted one", "Twenty notes.")
    for ticket in (plain, noted):
        assert sam.post(f"/ticket/{ticket}/follow").status_code == 303
        assert admin.post(f"/ticket/{ticket}/follow").status_code == 303
    # Five notes before any reply, five after each of the first three replies.
    for n in range(20):
        assert add_note(admin if n % 2 else sam, noted, f"Note {n} {MARKER}").status_code == 303
        if n % 5 == 4:
            assert bob.reply(plain, f"Reply {n}").status_code == 303
            assert bob.reply(noted, f"Reply {n}").status_code == 303
    assert len(notes(app, ticket_id=noted)) == 20
    for page, shown in (("", 15), ("?page=2", 5)):
        for ticket in (plain, noted):  # what a first request loads once is not counted
            assert admin.get(f"/ticket/{ticket}{page}").status_code == 200
            assert alice.get(f"/ticket/{ticket}{page}").status_code == 200
        counts = []
        for ticket in (plain, noted, plain, noted):
            with counting_queries(app) as statements:
                response = admin.get(f"/ticket/{ticket}{page}")
                assert response.status_code == 200
            counts.append(len(statements))
        assert counts[0] == counts[1] == counts[2] == counts[3], (page, counts)
        assert text(admin.get(f"/ticket/{noted}{page}")).count(MARKER) == shown
        # Nor does the requester's page run more for notes she never sees.
        with counting_queries(app) as without:
            alice.get(f"/ticket/{plain}{page}")
        with counting_queries(app) as with_notes:
            alice.get(f"/ticket/{noted}{page}")
        assert len(without) == len(with_notes)


# --- mail and signals ----------------------------------------------------------------------


def test_the_note_mail_reaches_only_staff_followers_and_only_note_added_is_sent(
    app: Flask,
    ticket_id: int,
    alice: Client,
    bob: Client,
    admin: Client,
    sam: Client,
    inbox: Inbox,
    sent: list[tuple[str, dict[str, Any]]],
) -> None:
    add_staff(app, "nina")  # staff, who does not follow the ticket
    response = add_note(admin, ticket_id)
    assert response.status_code == 303
    (note,) = notes(app)
    (mail,) = inbox.messages
    assert mail.envelope_to == ["sam@example.test"]
    assert mail.subject == f"Re: [Ticket #{ticket_id}] Printer jams"
    plain, rich = mail.part("plain"), mail.part("html")
    assert SECRET in plain
    assert STAFF_ONLY_LINE in plain
    assert f"admin added an internal note to ticket #{ticket_id}" in plain
    assert f"/ticket/{ticket_id}#note-{note.id}" in plain
    assert f"you follow ticket #{ticket_id} and are staff" in plain
    assert html.escape(SECRET, quote=False) in rich
    assert STAFF_ONLY_LINE in rich
    assert unfollow_path(mail).startswith("/ticket/unfollow/")

    assert sent == [
        ("note-added", {"ticket": ticket_id, "user": "admin", "note": (note.id, SECRET)})
    ]

    # Sam's note goes to admin, the other staff follower, and not back to Sam.
    inbox.clear()
    sent.clear()
    assert add_note(sam, ticket_id, f"Sam: {SECRET}").status_code == 303
    assert [m.envelope_to for m in inbox.messages] == [["admin@example.test"]]
    assert [name for name, _ in sent] == ["note-added"]

    # Replies after the notes: their mail holds nothing of them, whoever gets it.
    inbox.clear()
    sent.clear()
    assert alice.reply(ticket_id, "Any news?").status_code == 303
    assert admin.reply(ticket_id, "Working on it.").status_code == 303
    assert [name for name, _ in sent] == ["ticket-replied", "ticket-replied"]
    got = sorted(m.envelope_to[0] for m in inbox.messages)
    assert got == sorted(
        [
            "admin@example.test",
            "alice@example.test",
            "bob@example.test",
            "bob@example.test",
            "sam@example.test",
            "sam@example.test",
        ]
    )
    for message in inbox.messages:
        whole = message.message.as_string()
        for word in (MARKER, NOTE_ONLY, "Internal note", "internal note", "#note-"):
            assert word not in whole, (message.envelope_to, word)
    # Nobody but staff ever got a note's mail.
    assert not inbox.to("nina@example.test")


@pytest.mark.parametrize(
    "app_config",
    [{"FLASKET_DELIVERY": "worker", "FLASKET_STAFF_RECIPIENTS": ["desk@example.test"]}],
    ids=["worker, staff address"],
)
def test_a_note_fanned_out_later_reaches_staff_followers_and_never_the_staff_address(
    app: Flask, ticket_id: int, alice: Client, admin: Client, inbox: Inbox
) -> None:
    assert add_note(admin, ticket_id).status_code == 303
    # The requester's follow-up goes to the staff address too (nobody is assigned).
    assert alice.reply(ticket_id, "Any news?").status_code == 303
    assert inbox.messages == []  # nothing is sent before the worker runs
    with app.app_context():
        delivery.fan_out()
        delivery.deliver_due()
    note_mails = [m for m in inbox.messages if STAFF_ONLY_LINE in m.part("plain")]
    assert [m.envelope_to for m in note_mails] == [["sam@example.test"]]
    assert SECRET in note_mails[0].part("plain")
    others = [m for m in inbox.messages if m not in note_mails]
    assert sorted(m.envelope_to[0] for m in others) == [
        "admin@example.test",
        "bob@example.test",
        "desk@example.test",  # the new ticket's mail
        "desk@example.test",  # the follow-up's
        "sam@example.test",
    ]
    for message in others:
        assert MARKER not in message.message.as_string(), message.envelope_to


def test_a_note_on_a_ticket_nobody_else_follows_mails_nobody(
    app: Flask, alice: Client, admin: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    inbox.clear()
    assert add_note(admin, ticket_id).status_code == 303
    assert inbox.messages == []
    # The author does not start following (a new follower would tell others of the note):
    # the requester's reply reaches nobody.
    assert alice.reply(ticket_id, "Hello?").status_code == 303
    assert inbox.messages == []


# --- who may not see or add notes ------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}], ids=["own"])
def test_with_own_visibility_staff_read_notes_the_requester_none_and_others_get_404(
    app: Flask, alice: Client, bob: Client, admin: Client, sam: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    assert sam.post(f"/ticket/{ticket_id}/follow").status_code == 303
    inbox.clear()
    assert add_note(admin, ticket_id).status_code == 303
    (note,) = notes(app)
    for client in (admin, sam):
        page = text(client.get(f"/ticket/{ticket_id}"))
        assert f'id="note-{note.id}"' in page
        assert SECRET in page
    own = text(alice.get(f"/ticket/{ticket_id}"))
    assert "Printer jams" in own
    assert_nothing_of_notes("alice", own, ("admin",))
    assert bob.get(f"/ticket/{ticket_id}").status_code == 404
    refused = add_note(bob, ticket_id, "Bob's try")
    assert refused.status_code == 404
    assert "Only staff" not in text(refused)
    assert len(notes(app)) == 1
    assert [m.envelope_to for m in inbox.messages] == [["sam@example.test"]]


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
def test_a_user_who_is_not_staff_cannot_add_a_note(
    app: Flask, ticket_id: int, login: Any, inbox: Inbox, sent: list[Any], who: str
) -> None:
    response = add_note(login(who), ticket_id, f"{who} tries {MARKER}")
    assert response.status_code == 403
    page = text(response)
    assert "Only staff can add internal notes." in page
    assert MARKER not in page
    assert notes(app) == []
    assert inbox.messages == []
    assert sent == []


def test_a_note_post_without_login_token_or_post_stores_nothing(
    app: Flask, ticket_id: int, admin: Client, alice: Client, inbox: Inbox
) -> None:
    anonymous = app.test_client().post(f"/ticket/{ticket_id}/note", data={"note": SECRET})
    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]
    for client in (admin, alice):
        assert client.get(f"/ticket/{ticket_id}/note").status_code == 405
    missing = add_note(admin, ticket_id, csrf=False)
    assert missing.status_code == 400
    assert "Your note was not added yet because the page had expired." in text(missing)
    assert SECRET in text(missing)  # the text is kept in the box
    stale = add_note(admin, ticket_id, csrf_token="not-a-token")
    assert stale.status_code == 400
    assert admin.post("/ticket/99999/note", {"note": SECRET}).status_code == 404
    assert notes(app) == []
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "Write the note before adding it."),
        ("  \n\t ", "Write the note before adding it."),
        ("é" * 20_001, "A note may be at most 20000 characters long."),
    ],
    ids=["empty", "blank", "too long"],
)
def test_an_empty_or_too_long_note_is_sent_back_and_stores_nothing(
    app: Flask, ticket_id: int, admin: Client, inbox: Inbox, body: str, message: str
) -> None:
    response = add_note(admin, ticket_id, body)
    assert response.status_code == 400
    assert message in text(response)
    assert notes(app) == []
    assert inbox.messages == []


def test_a_note_of_the_longest_length_is_stored_whole(
    app: Flask, ticket_id: int, admin: Client
) -> None:
    body = "é" * 19_999 + "😀"
    assert add_note(admin, ticket_id, body).status_code == 303
    (note,) = notes(app)
    assert note.body == body


def test_a_note_form_sent_twice_adds_one_note_and_changed_text_is_refused(
    app: Flask,
    ticket_id: int,
    admin: Client,
    sam: Client,
    alice: Client,
    inbox: Inbox,
    sent: list[Any],
) -> None:
    key = note_form_key(admin, ticket_id)
    first = add_note(admin, ticket_id, form_key=key)
    again = add_note(admin, ticket_id, form_key=key)
    assert again.status_code == 303
    assert location(again) == location(first)
    assert len(notes(app)) == 1
    assert len(inbox.messages) == 1  # Sam's, once
    assert [name for name, _ in sent] == ["note-added"]

    changed = add_note(admin, ticket_id, "Something else", form_key=key)
    assert changed.status_code == 409
    assert f"You had sent this form before, for ticket #{ticket_id}, with other text." in text(
        changed
    )
    assert "Something else" in text(changed)
    # Another staff member's form with the same key stores nothing, and tells nothing.
    theirs = add_note(sam, ticket_id, SECRET, form_key=key)
    assert theirs.status_code == 400
    assert "Nothing was stored because this form could not be used." in text(theirs)
    # The key of a note on another ticket is no good either.
    other = alice.submit("Another", "One.")
    elsewhere = add_note(admin, other, SECRET, form_key=key)
    assert elsewhere.status_code == 400
    assert [n.body for n in notes(app)] == [SECRET]
    assert len(inbox.messages) == 1
    assert [name for name, _ in sent if name == "note-added"] == ["note-added"]


def test_staff_add_notes_to_a_closed_ticket_which_stays_closed(
    app: Flask, ticket_id: int, alice: Client, admin: Client, inbox: Inbox
) -> None:
    assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    inbox.clear()
    before = ticket_state(app, ticket_id)
    response = add_note(admin, ticket_id)
    assert response.status_code == 303
    assert ticket_state(app, ticket_id) == before
    assert before["ticket"]["state"] == "closed"
    (note,) = notes(app)
    assert f'id="note-{note.id}"' in text(admin.get(location(response)))
    assert [m.envelope_to for m in inbox.messages] == [["sam@example.test"]]
    assert_nothing_of_notes("alice", text(alice.get(f"/ticket/{ticket_id}")), ("admin",))


def test_only_staff_get_the_note_form(
    ticket_id: int, admin: Client, alice: Client, bob: Client
) -> None:
    staff_page = text(admin.get(f"/ticket/{ticket_id}"))
    assert f'action="/ticket/{ticket_id}/note"' in staff_page
    assert "Add internal note" in staff_page
    for client in (alice, bob):
        assert_nothing_of_notes(
            client.username or "", text(client.get(f"/ticket/{ticket_id}")), ()
        )


def test_a_refused_reply_page_shows_the_requester_no_notes(
    app: Flask, ticket_id: int, admin: Client, alice: Client
) -> None:
    assert add_note(admin, ticket_id).status_code == 303
    refused = alice.post(f"/ticket/{ticket_id}", {"body": ""})
    assert refused.status_code == 400
    assert_nothing_of_notes("alice", text(refused), ("admin",))
    stale = alice.post(f"/ticket/{ticket_id}", {"body": "Hello"}, csrf=False)
    assert stale.status_code == 400
    assert_nothing_of_notes("alice", text(stale), ("admin",))


# --- the host deletes users and tickets ------------------------------------------------------


HOW = {"orm": delete_with_orm, "bulk": delete_in_bulk, "sql": delete_with_sql}


def enforce_foreign_keys(app: Flask) -> None:
    """SQLite checks foreign keys only when asked, on each new connection."""

    def enforce(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    with app.app_context():
        sa.event.listen(db.engine, "connect", enforce)
        # The in-memory database lives in one connection, made already: turned on there too.
        connection = db.engine.raw_connection()
        try:
            connection.execute("PRAGMA foreign_keys=ON")
            assert connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        finally:
            connection.close()


def deleted_author_keeps_the_note(
    app: Flask, ticket_id: int, admin: Client, alice: Client, sam: Client, how: str
) -> None:
    assert add_note(sam, ticket_id).status_code == 303
    sam_id = user_id(app, "sam")

    HOW[how](app, User, sam_id)

    (note,) = notes(app)
    assert (note.author_id, note.body) == (None, SECRET)
    aside = text(admin.get(f"/ticket/{ticket_id}")).split(f'id="note-{note.id}"', 1)[1]
    aside = aside.split("</aside>", 1)[0]
    assert f"{DELETED} wrote" in aside
    assert SECRET in aside
    assert_nothing_of_notes("alice", text(alice.get(f"/ticket/{ticket_id}")), ())
    # A new account given the deleted one's key inherits no note.
    with app.app_context():
        db.session.add(User(id=sam_id, username="dave", email="dave@example.test"))
        db.session.commit()
    assert notes(app, author_id=sam_id) == []
    assert ">dave</a>" not in text(admin.get(f"/ticket/{ticket_id}"))


def deleted_ticket_takes_its_notes(
    app: Flask, alice: Client, admin: Client, inbox: Inbox, how: str
) -> None:
    models = ext_models(app)
    stays = alice.submit("Stays")
    goes = alice.submit("Goes")
    for ticket in (stays, goes):
        assert add_note(admin, ticket, f"On {ticket}: {SECRET}").status_code == 303
    assert inbox.messages is not None  # deliveries done before the deletion

    HOW[how](app, models.Ticket, goes)

    assert notes(app, ticket_id=goes) == []
    assert [n.body for n in notes(app, ticket_id=stays)] == [f"On {stays}: {SECRET}"]
    assert rows(app, models.OutboxEvent, ticket_id=goes) == []
    assert admin.get(f"/ticket/{goes}").status_code == 404
    later = alice.submit("Later")
    assert notes(app, ticket_id=later) == []
    assert MARKER not in text(admin.get(f"/ticket/{later}"))


@pytest.mark.parametrize("how", list(HOW))
def test_a_deleted_note_author_leaves_the_note_to_a_deleted_user(
    app: Flask, ticket_id: int, admin: Client, alice: Client, sam: Client, how: str
) -> None:
    """On SQLite as SQLAlchemy leaves it: foreign keys not enforced."""
    deleted_author_keeps_the_note(app, ticket_id, admin, alice, sam, how)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("how", list(HOW))
def test_a_deleted_note_author_leaves_the_note_with_sqlite_foreign_keys_on(
    app: Flask, ticket_id: int, admin: Client, alice: Client, sam: Client, how: str
) -> None:
    enforce_foreign_keys(app)
    deleted_author_keeps_the_note(app, ticket_id, admin, alice, sam, how)


@pytest.mark.parametrize("how", ["orm", "sql"])
def test_a_deleted_ticket_takes_its_notes_with_it(
    app: Flask, alice: Client, admin: Client, inbox: Inbox, how: str
) -> None:
    """On SQLite as SQLAlchemy leaves it: foreign keys not enforced."""
    deleted_ticket_takes_its_notes(app, alice, admin, inbox, how)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("how", ["orm", "sql"])
def test_a_deleted_ticket_takes_its_notes_with_sqlite_foreign_keys_on(
    app: Flask, alice: Client, admin: Client, inbox: Inbox, how: str
) -> None:
    enforce_foreign_keys(app)
    deleted_ticket_takes_its_notes(app, alice, admin, inbox, how)


# --- follows ------------------------------------------------------------------------------


def test_a_note_by_staff_who_did_not_follow_leaves_the_followers_and_their_lists_alone(
    app: Flask, alice: Client, bob: Client, admin: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    admin_id = user_id(app, "admin")
    urls = [f"/ticket/{ticket_id}", f"/ticket/user/{admin_id}?show=following"]
    assert alice.get("/ticket/").status_code == 200  # shows what submitting flashed
    before = {(c.username, url): normalized(c.get(url)) for c in (alice, bob) for url in urls}
    assert add_note(admin, ticket_id).status_code == 303
    after = {(c.username, url): normalized(c.get(url)) for c in (alice, bob) for url in urls}
    assert differences(after, before) == []
