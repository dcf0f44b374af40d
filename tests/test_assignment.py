"""Assigning tickets to staff: who may, what changes, who is mailed and told, and what is refused.

Staff assign, reassign and unassign the tickets they may read (``POST /ticket/<id>/assign``);
the new assignee follows the ticket and alone gets the ``assigned`` mail, unless they took the
ticket themselves; :data:`flasket.signals.ticket_assigned` is sent once per change. A refused
or repeated form changes nothing, mails nobody and sends no signal.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import signals
from flasket.config import ConfigError
from tests.helpers import Client, Inbox, add_staff, ext_models, rows, text, ticket_row, user_id
from tests.hostapp import User, create_app, db

FLASH = re.compile(r'<p class="flasket-message flasket-message--(\w+)">(.*?)</p>', re.S)
UNFOLLOW_LINK = re.compile(r"unfollow it in one click: (http://host\.test/ticket/unfollow/\S+)")
LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)
ASSIGNEE_SELECT = r'<select id="flasket-assignee" name="assignee">(.*?)</select>'
ACTION_CSRF = "Nothing was changed because the page with that button had expired."


def words(response: Any) -> str:
    """The page's text without its markup, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split())


def key(app: Flask, name: str) -> str:
    """The user's key as forms carry it."""
    return str(user_id(app, name))


def assignee_of(app: Flask, ticket_id: int) -> int | None:
    found = ticket_row(app, ticket_id).assignee_id
    return None if found is None else int(found)


def followers_of(app: Flask, ticket_id: int) -> list[int]:
    return sorted(int(f.user_id) for f in rows(app, ext_models(app).Follow, ticket_id=ticket_id))


def age(app: Flask, ticket_id: int) -> None:
    """The ticket was last updated long ago, so a change that touches it shows."""
    with app.app_context():
        found = db.session.get(ext_models(app).Ticket, ticket_id)
        assert found is not None
        found.updated_at = LONG_AGO
        db.session.commit()


def flashes(client: Client, response: Any) -> list[tuple[str, str]]:
    """The messages the page the response redirects to shows, as (category, text)."""
    assert response.status_code == 303, text(response)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    return [(kind, html.unescape(message.strip())) for kind, message in FLASH.findall(page)]


def assign(client: Client, ticket_id: int, assignee: str, seen: str | None = "") -> Any:
    """Post the assign form: ``assignee`` a key ("" nobody), ``seen`` the key the page showed
    (None: the field is left out)."""
    data = {"assignee": assignee}
    if seen is not None:
        data["from_assignee"] = seen
    return client.post(f"/ticket/{ticket_id}/assign", data)


def state(app: Flask, ticket_id: int) -> tuple[Any, ...]:
    """Everything an assignment could change: assignee, updated_at, follows, outbox events."""
    found = ticket_row(app, ticket_id)
    events = len(rows(app, ext_models(app).OutboxEvent))
    return (
        found.assignee_id,
        found.updated_at,
        found.follower_count,
        followers_of(app, ticket_id),
        events,
    )


@pytest.fixture
def dora(app: Flask, login: Callable[[str | None], Client]) -> Client:
    """A second staff member."""
    add_staff(app, "dora")
    return login("dora")


@pytest.fixture
def ticket_id(app: Flask, alice: Client, bob: Client, inbox: Inbox) -> int:
    """Alice's open ticket, followed by Bob, last updated long ago; the inbox starts empty."""
    found = alice.submit("Printer jams", "Every second page.")
    assert bob.post(f"/ticket/{found}/follow").status_code == 303
    age(app, found)
    inbox.clear()
    return found


@pytest.fixture
def assigned() -> Iterator[list[tuple[int, Any, Any]]]:
    """Every ticket_assigned signal: (ticket id, who assigned, assignee), names for users."""
    caught: list[tuple[int, Any, Any]] = []

    def receive(sender: Any, **kwargs: Any) -> None:
        assignee = kwargs["assignee"]
        caught.append(
            (
                kwargs["ticket"].id,
                kwargs["user"].username,
                None if assignee is None else assignee.username,
            )
        )
        # The objects themselves, never the request's proxies.
        assert type(kwargs["user"]) is User
        assert assignee is None or type(assignee) is User

    signals.ticket_assigned.connect(receive)
    yield caught
    signals.ticket_assigned.disconnect(receive)


# --- assigning, reassigning, unassigning ------------------------------------------------


def test_staff_assign_a_colleague_who_follows_and_alone_gets_the_mail(
    app: Flask,
    ticket_id: int,
    admin: Client,
    dora: Client,
    alice: Client,
    inbox: Inbox,
    assigned: list[Any],
) -> None:
    before = ticket_row(app, ticket_id)
    response = assign(admin, ticket_id, key(app, "dora"))

    assert flashes(admin, response) == [
        ("success", f"Ticket #{ticket_id} is assigned to dora now.")
    ]
    after = ticket_row(app, ticket_id)
    assert after.assignee_id == user_id(app, "dora")
    assert after.updated_at > LONG_AGO
    assert after.updated_at > datetime.now(timezone.utc) - timedelta(minutes=5)
    assert user_id(app, "dora") in followers_of(app, ticket_id)
    assert after.follower_count == before.follower_count + 1
    assert assigned == [(ticket_id, "admin", "dora")]

    (mail,) = inbox.messages
    assert mail.envelope_to == ["dora@example.test"]
    assert mail.subject == f"Re: [Ticket #{ticket_id}] Printer jams"
    plain = mail.part("plain")
    assert f"admin assigned ticket #{ticket_id} to you on " in plain
    assert plain.splitlines()[0].endswith(" UTC: Printer jams")
    assert f"View the ticket: http://host.test/ticket/{ticket_id}" in plain
    assert "You get this e-mail because the ticket was assigned to you." in plain
    assert "admin assigned this ticket to you on" in mail.part("html")
    assert mail.message["X-Flasket-Ticket"] == str(ticket_id)
    assert mail.message["List-Unsubscribe"].startswith("<http://host.test/ticket/unfollow/")

    # Dora follows: the requester's follow-up reaches her (and Bob), not the one who replied.
    inbox.clear()
    assert alice.reply(ticket_id, "Still jamming.").status_code == 303
    assert sorted(m.envelope_to[0] for m in inbox.messages) == [
        "bob@example.test",
        "dora@example.test",
    ]


def test_the_assigned_mails_unfollow_link_stops_the_assignees_mail(
    app: Flask,
    ticket_id: int,
    admin: Client,
    dora: Client,
    alice: Client,
    bob: Client,
    inbox: Inbox,
) -> None:
    assert assign(admin, ticket_id, key(app, "dora")).status_code == 303
    (mail,) = inbox.messages
    link = UNFOLLOW_LINK.search(mail.part("plain"))
    assert link is not None, mail.part("plain")
    assert link.group(1) in mail.part("html")
    assert mail.message["List-Unsubscribe"] == f"<{link.group(1)}>"

    page = app.test_client().post(urlsplit(link.group(1)).path)

    assert page.status_code == 200
    assert user_id(app, "dora") not in followers_of(app, ticket_id)
    assert assignee_of(app, ticket_id) == user_id(app, "dora")  # still hers to work on
    inbox.clear()
    # A reply by someone who is not the requester no longer reaches her.
    assert bob.reply(ticket_id, "Same here.").status_code == 303
    assert [m.envelope_to for m in inbox.messages] == [["alice@example.test"]]
    # The requester's follow-up still does: she is the one it waits on (notify's
    # _staff_for_follow_up), follower or not; and she is not made a follower again.
    inbox.clear()
    assert alice.reply(ticket_id, "Still jamming.").status_code == 303
    assert sorted(m.envelope_to[0] for m in inbox.messages) == [
        "bob@example.test",
        "dora@example.test",
    ]
    assert user_id(app, "dora") not in followers_of(app, ticket_id)


def test_assign_to_me_takes_the_ticket_without_mailing_anyone(
    app: Flask, ticket_id: int, admin: Client, inbox: Inbox, assigned: list[Any]
) -> None:
    page = admin.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    button = re.search(
        r'<form method="post" action="/ticket/\d+/assign" class="flasket-inline-form">'
        r"(.*?)</form>",
        page,
        re.S,
    )
    assert button is not None, "no Assign to me button"
    assert "Assign to me" in button.group(1)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', button.group(1)))
    assert fields["assignee"] == key(app, "admin")
    assert fields["from_assignee"] == ""
    fields.pop("csrf_token", None)

    response = admin.post(f"/ticket/{ticket_id}/assign", fields)

    assert flashes(admin, response) == [
        ("success", f"Ticket #{ticket_id} is assigned to you now.")
    ]
    assert assignee_of(app, ticket_id) == user_id(app, "admin")
    assert user_id(app, "admin") in followers_of(app, ticket_id)
    assert ticket_row(app, ticket_id).updated_at > LONG_AGO
    assert assigned == [(ticket_id, "admin", "admin")]
    assert inbox.messages == []
    assert rows(app, ext_models(app).OutboxEvent) == []
    shown = words(admin.get(f"/ticket/{ticket_id}"))
    assert "assigned to admin" in shown
    assert "Assign to me" not in shown


def test_reassigning_mails_the_new_assignee_and_unassigning_mails_nobody(
    app: Flask,
    ticket_id: int,
    admin: Client,
    dora: Client,
    inbox: Inbox,
    assigned: list[Any],
) -> None:
    assert assign(admin, ticket_id, key(app, "dora")).status_code == 303
    assert [m.envelope_to for m in inbox.messages] == [["dora@example.test"]]
    inbox.clear()

    # Dora hands it to admin: admin is mailed, as the one it is assigned to, by dora.
    response = assign(dora, ticket_id, key(app, "admin"), seen=key(app, "dora"))
    assert flashes(dora, response) == [
        ("success", f"Ticket #{ticket_id} is assigned to admin now.")
    ]
    assert assignee_of(app, ticket_id) == user_id(app, "admin")
    (mail,) = inbox.messages
    assert mail.envelope_to == ["admin@example.test"]
    assert f"dora assigned ticket #{ticket_id} to you" in mail.part("plain")
    inbox.clear()

    age(app, ticket_id)
    response = assign(admin, ticket_id, "", seen=key(app, "admin"))
    assert flashes(admin, response) == [
        ("success", f"Ticket #{ticket_id} is assigned to nobody now.")
    ]
    assert assignee_of(app, ticket_id) is None
    assert ticket_row(app, ticket_id).updated_at > LONG_AGO
    assert inbox.messages == []
    assert assigned == [
        (ticket_id, "admin", "dora"),
        (ticket_id, "dora", "admin"),
        (ticket_id, "admin", None),
    ]
    assert "assigned to nobody" in text(admin.get(f"/ticket/{ticket_id}"))


def test_a_form_without_from_assignee_changes_from_the_assignee_the_ticket_has(
    app: Flask, ticket_id: int, admin: Client, dora: Client, assigned: list[Any]
) -> None:
    assert assign(admin, ticket_id, key(app, "dora"), seen=None).status_code == 303
    assert assign(admin, ticket_id, key(app, "admin"), seen=None).status_code == 303
    assert assignee_of(app, ticket_id) == user_id(app, "admin")
    assert assigned == [(ticket_id, "admin", "dora"), (ticket_id, "admin", "admin")]


def test_a_closed_ticket_can_be_assigned_too(
    app: Flask, ticket_id: int, admin: Client, dora: Client, inbox: Inbox
) -> None:
    assert admin.post(f"/ticket/{ticket_id}/close").status_code == 303
    inbox.clear()
    assert assign(admin, ticket_id, key(app, "dora")).status_code == 303
    assert assignee_of(app, ticket_id) == user_id(app, "dora")
    assert [m.envelope_to for m in inbox.messages] == [["dora@example.test"]]


# --- what the ticket page shows -----------------------------------------------------------


def test_everyone_sees_the_assignee_and_only_staff_get_the_controls(
    app: Flask,
    ticket_id: int,
    admin: Client,
    dora: Client,
    alice: Client,
    bob: Client,
    carol: Client,
) -> None:
    for client in (alice, carol):
        page = text(client.get(f"/ticket/{ticket_id}"))
        assert "assigned to" not in page
        assert "/assign" not in page
    staff_page = text(admin.get(f"/ticket/{ticket_id}"))
    assert "assigned to nobody" in staff_page
    assert f'action="/ticket/{ticket_id}/assign"' in staff_page
    assert "Assign to me" in staff_page
    options = re.search(
        r'<select id="flasket-assignee" name="assignee">(.*?)</select>', staff_page
    )
    assert options is not None
    assert re.findall(r'<option(?: selected)? value="([^"]*)">([^<]*)</option>', options[1]) == [
        ("", "Nobody"),
        (key(app, "admin"), "Me (admin)"),
        (key(app, "dora"), "dora"),
    ]
    assert 'name="from_assignee" type="hidden" value=""' in staff_page

    assert assign(admin, ticket_id, key(app, "dora")).status_code == 303
    for client in (alice, carol):
        page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
        assert f'assigned to <a href="/ticket/user/{key(app, "dora")}">dora</a>' in page
        assert "/assign" not in page
        assert "Assign to me" not in page
    page = text(admin.get(f"/ticket/{ticket_id}"))
    assert f'name="from_assignee" type="hidden" value="{key(app, "dora")}"' in page
    assert f'<option selected value="{key(app, "dora")}">dora</option>' in page

    # Replies: the requester's carry "author", staff's "staff", anyone else's no tag.
    assert admin.reply(ticket_id, "Staff here.").status_code == 303
    assert alice.reply(ticket_id, "Requester here.").status_code == 303
    assert bob.reply(ticket_id, "Bystander here.").status_code == 303
    page = alice.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    metas = re.findall(r'<li id="reply-\d+" class="([^"]*)">\s*<p[^>]*>(.*?)</p>', page, re.S)
    assert len(metas) == 3
    (staff_class, staff_meta), (author_class, author_meta), (other_class, other_meta) = metas
    assert "flasket-post--staff" in staff_class
    assert '<span class="flasket-tag">staff</span>' in staff_meta
    assert ">author</span>" in author_meta
    assert "flasket-post--staff" not in author_class
    assert "flasket-tag" not in other_meta
    assert "flasket-post--staff" not in other_class


@pytest.mark.parametrize(
    "app_config",
    [{"FLASKET_ASSIGNABLE_STAFF": lambda: list_users("dora", "alice", "erin")}],
    ids=["dora, alice and erin"],
)
def test_the_assignable_staff_setting_picks_whom_the_control_offers(
    app: Flask, ticket_id: int, admin: Client, dora: Client
) -> None:
    add_staff(app, "erin")
    add_staff(app, "frank")
    page = text(admin.get(f"/ticket/{ticket_id}"))
    options = re.search(ASSIGNEE_SELECT, page)
    assert options is not None
    # The reader first, then the listed users who are staff: alice is listed but not staff.
    assert re.findall(r'value="([^"]*)">([^<]*)</option>', options[1]) == [
        ("", "Nobody"),
        (key(app, "admin"), "Me (admin)"),
        (key(app, "dora"), "dora"),
        (key(app, "erin"), "erin"),
    ]
    # Staff who are not offered may still be assigned, and then the control shows them.
    assert assign(admin, ticket_id, key(app, "frank")).status_code == 303
    assert assignee_of(app, ticket_id) == user_id(app, "frank")
    page = text(admin.get(f"/ticket/{ticket_id}"))
    assert f'<option selected value="{key(app, "frank")}">frank</option>' in page
    # Not being staff still refuses, listed or not.
    refused = assign(admin, ticket_id, key(app, "alice"), seen=key(app, "frank"))
    assert refused.status_code == 400
    assert assignee_of(app, ticket_id) == user_id(app, "frank")


def list_users(*names: str) -> list[Any]:
    return list(db.session.scalars(sa.select(User).where(User.username.in_(names))))


@pytest.mark.parametrize(
    "app_config",
    [{"FLASKET_IS_STAFF": lambda user: getattr(user, "username", "") in {"admin", "carol"}}],
    ids=["own is_staff"],
)
def test_with_a_hosts_own_is_staff_and_no_list_the_control_offers_only_the_reader(
    app: Flask, ticket_id: int, admin: Client, dora: Client, carol: Client
) -> None:
    page = text(admin.get(f"/ticket/{ticket_id}"))
    options = re.search(ASSIGNEE_SELECT, page)
    assert options is not None
    assert re.findall(r'value="([^"]*)">([^<]*)</option>', options[1]) == [
        ("", "Nobody"),
        (key(app, "admin"), "Me (admin)"),
    ]
    # Staff by the host's rule may be assigned; dora, admin by the column only, may not.
    assert assign(admin, ticket_id, key(app, "carol")).status_code == 303
    assert assignee_of(app, ticket_id) == user_id(app, "carol")
    refused = assign(admin, ticket_id, key(app, "dora"), seen=key(app, "carol"))
    assert refused.status_code == 400
    assert "dora is not staff" in text(refused)
    assert assign(dora, ticket_id, "", seen=key(app, "carol")).status_code == 403
    assert assignee_of(app, ticket_id) == user_id(app, "carol")


@pytest.mark.parametrize("setting", [[], "admin", ["admin"]], ids=["list", "str", "names"])
def test_an_assignable_staff_setting_that_is_not_callable_is_refused_at_start_up(
    setting: Any,
) -> None:
    with pytest.raises(ConfigError, match="FLASKET_ASSIGNABLE_STAFF must be None or a callable"):
        create_app(FLASKET_ASSIGNABLE_STAFF=setting)


# --- refused: nothing changes, nothing is mailed, no signal ---------------------------------


@pytest.mark.parametrize(
    ("who", "assignee", "code", "message"),
    [
        ("alice", "admin", 403, "Only staff can assign tickets."),
        ("alice", "alice", 403, "Only staff can assign tickets."),
        ("carol", "admin", 403, "Only staff can assign tickets."),
        ("admin", "alice", 400, "alice is not staff, so tickets cannot be assigned to them."),
        ("admin", "carol", 400, "carol is not staff, so tickets cannot be assigned to them."),
        ("admin", "#99999", 400, "There is no such user."),
        ("admin", "#2147483647", 400, "There is no such user."),
    ],
)
def test_an_assignment_that_is_not_allowed_is_refused_and_changes_nothing(
    app: Flask,
    ticket_id: int,
    login: Any,
    inbox: Inbox,
    assigned: list[Any],
    who: str,
    assignee: str,
    code: int,
    message: str,
) -> None:
    before = state(app, ticket_id)
    wanted = assignee[1:] if assignee.startswith("#") else key(app, assignee)

    response = assign(login(who), ticket_id, wanted)

    assert response.status_code == code
    assert message in text(response)
    assert state(app, ticket_id) == before
    assert inbox.messages == []
    assert assigned == []


@pytest.mark.parametrize("assignee", ["abc", "042", " 4x", "9" * 30, "x" * 300, "x" * 400])
def test_an_assignee_key_that_is_no_users_key_is_400_without_a_warning(
    app: Flask, ticket_id: int, admin: Client, inbox: Inbox, assignee: str
) -> None:
    before = state(app, ticket_id)

    response = assign(admin, ticket_id, assignee)

    assert response.status_code == 400
    assert "There is no such user." in text(response)
    assert state(app, ticket_id) == before
    assert inbox.messages == []


@pytest.mark.parametrize("seen", ["abc", "042", "9" * 30])
def test_a_from_assignee_that_is_no_users_key_is_400(
    app: Flask, ticket_id: int, admin: Client, inbox: Inbox, seen: str
) -> None:
    before = state(app, ticket_id)

    response = assign(admin, ticket_id, key(app, "admin"), seen=seen)

    assert response.status_code == 400
    assert "There is no such user." in text(response)
    assert state(app, ticket_id) == before
    assert inbox.messages == []


def test_an_assign_post_without_a_fresh_token_or_login_or_by_get_changes_nothing(
    app: Flask, ticket_id: int, admin: Client, inbox: Inbox, assigned: list[Any]
) -> None:
    before = state(app, ticket_id)
    url = f"/ticket/{ticket_id}/assign"
    form = {"assignee": key(app, "admin"), "from_assignee": ""}

    missing = admin.post(url, form, csrf=False)
    stale = admin.post(url, {**form, "csrf_token": "IjEyMyI.stale.token"}, csrf=False)
    anonymous = app.test_client().post(url, data=form)
    fetched = admin.get(url, query_string=form)

    for refused in (missing, stale):
        assert refused.status_code == 400
        assert "Nothing was changed because the page with that button had expired." in text(
            refused
        )
    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]
    assert fetched.status_code == 405
    assert state(app, ticket_id) == before
    assert inbox.messages == []
    assert assigned == []


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}])
def test_a_ticket_the_user_may_not_read_answers_404_to_an_assign_post(
    app: Flask, alice: Client, carol: Client, admin: Client, inbox: Inbox, assigned: list[Any]
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    inbox.clear()
    before = state(app, ticket_id)

    response = assign(carol, ticket_id, key(app, "admin"))

    assert response.status_code == 404
    assert f"There is no ticket #{ticket_id}." in text(response)
    assert state(app, ticket_id) == before
    assert inbox.messages == []
    assert assigned == []
    # Staff read every ticket under "own", so they may assign it.
    assert assign(admin, ticket_id, key(app, "admin")).status_code == 303
    assert assignee_of(app, ticket_id) == user_id(app, "admin")


def test_an_assign_form_sent_twice_changes_nothing_more_and_says_where_the_ticket_is(
    app: Flask, ticket_id: int, admin: Client, dora: Client, inbox: Inbox, assigned: list[Any]
) -> None:
    assert assign(admin, ticket_id, key(app, "dora")).status_code == 303
    assert len(inbox.messages) == 1
    inbox.clear()
    before = state(app, ticket_id)

    again = assign(admin, ticket_id, key(app, "dora"))

    assert flashes(admin, again) == [("info", f"Ticket #{ticket_id} is assigned to dora now.")]
    assert state(app, ticket_id) == before
    assert inbox.messages == []
    assert assigned == [(ticket_id, "admin", "dora")]

    # Unassigning twice, likewise.
    assert assign(admin, ticket_id, "", seen=key(app, "dora")).status_code == 303
    before = state(app, ticket_id)
    again = assign(admin, ticket_id, "", seen=key(app, "dora"))
    assert flashes(admin, again) == [("info", f"Ticket #{ticket_id} is assigned to nobody now.")]
    assert state(app, ticket_id) == before
    assert len(assigned) == 2


def test_an_assign_form_from_a_page_shown_before_someone_else_assigned_it_changes_nothing(
    app: Flask, ticket_id: int, admin: Client, dora: Client, inbox: Inbox, assigned: list[Any]
) -> None:
    # Both pages show "nobody"; dora takes it first.
    assert assign(dora, ticket_id, key(app, "dora"), seen="").status_code == 303
    before = state(app, ticket_id)

    late = assign(admin, ticket_id, key(app, "admin"), seen="")

    assert flashes(admin, late) == [
        (
            "info",
            f"Ticket #{ticket_id} changed meanwhile; nothing was changed. Look at it again.",
        )
    ]
    assert state(app, ticket_id) == before
    assert assignee_of(app, ticket_id) == user_id(app, "dora")
    assert inbox.messages == []
    assert assigned == [(ticket_id, "dora", "dora")]

    # Unassigning from a page that showed someone else: refused too.
    late = assign(admin, ticket_id, "", seen=key(app, "admin"))
    assert (
        "info",
        f"Ticket #{ticket_id} changed meanwhile; nothing was changed. Look at it again.",
    ) in flashes(admin, late)
    assert assignee_of(app, ticket_id) == user_id(app, "dora")
    assert len(assigned) == 1


# --- the assigned mail is worked out at fan-out -----------------------------------------------


@pytest.mark.parametrize(
    "app_config", [{"FLASKET_DELIVERY": "worker", "FLASKET_VISIBILITY": "own"}], ids=["worker"]
)
def test_the_assigned_mail_goes_to_its_one_recipient_only_while_they_may_read_the_ticket(
    app: Flask, alice: Client, bob: Client, admin: Client, dora: Client, inbox: Inbox
) -> None:
    models = ext_models(app)
    first = alice.submit("First", "One.")
    second = alice.submit("Second", "Two.")
    for number in (first, second):
        assert assign(admin, number, key(app, "dora")).status_code == 303
    events = [e for e in rows(app, models.OutboxEvent) if e.event == "assigned"]
    assert sorted(e.ticket_id for e in events) == [first, second]
    assert {e.recipient_key for e in events} == {key(app, "dora")}
    assert {e.actor_key for e in events} == {key(app, "admin")}

    deliver_once(app)
    assert sorted(m.envelope_to[0] for m in inbox.messages) == ["dora@example.test"] * 2
    inbox.clear()

    # Dora is no longer staff when the next one fans out: under "own" she may not read it.
    assert assign(admin, first, key(app, "admin"), seen=key(app, "dora")).status_code == 303
    assert assign(admin, first, key(app, "dora"), seen=key(app, "admin")).status_code == 303
    with app.app_context():
        db.session.execute(sa.update(User).where(User.username == "dora").values(is_admin=False))
        db.session.commit()
    deliver_once(app)
    assert inbox.messages == []
    # Nobody else got it either: the outbox has no copy for anyone.
    assert [
        r for r in rows(app, models.Outbox) if r.ticket_id == first and r.status != "sent"
    ] == []


def test_an_assignee_without_a_valid_address_gets_no_mail_and_the_assignment_stands(
    app: Flask, ticket_id: int, admin: Client, dora: Client, inbox: Inbox
) -> None:
    with app.app_context():
        db.session.execute(
            sa.update(User).where(User.username == "dora").values(email="dora at home")
        )
        db.session.commit()

    assert assign(admin, ticket_id, key(app, "dora")).status_code == 303

    assert assignee_of(app, ticket_id) == user_id(app, "dora")
    assert inbox.messages == []
    assert rows(app, ext_models(app).Outbox) == []


def deliver_once(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["flasket", "deliver", "--once"])
    assert result.exit_code == 0, result.output


# --- the host deletes a staff member ---------------------------------------------------------


def test_a_staff_member_the_host_deletes_with_sql_leaves_their_tickets_unassigned(
    app: Flask, ticket_id: int, alice: Client, admin: Client, dora: Client, inbox: Inbox
) -> None:
    other = alice.submit("Scanner is slow", "Very slow.")
    for number in (ticket_id, other):
        assert assign(admin, number, key(app, "dora")).status_code == 303
    kept = alice.submit("Admin's own", "Assigned to admin.")
    assert assign(admin, kept, key(app, "admin")).status_code == 303
    dora_id = user_id(app, "dora")

    with app.app_context():
        # As a host would, in plain SQL; SQLite runs without the foreign keys pragma.
        db.session.execute(sa.text("DELETE FROM accounts WHERE id = :key"), {"key": dora_id})
        db.session.commit()

    assert assignee_of(app, ticket_id) is None
    assert assignee_of(app, other) is None
    assert assignee_of(app, kept) == user_id(app, "admin")
    page = text(admin.get(f"/ticket/{ticket_id}"))
    assert "assigned to nobody" in page
    assert "dora" not in page
    listed = text(admin.get("/ticket/all?queue=unassigned"))
    assert "Printer jams" in listed
    assert "Scanner is slow" in listed
    assert "Admin's own" not in listed
    # A new account given the deleted one's key (where keys are reused) inherits nothing.
    with app.app_context():
        db.session.add(User(id=dora_id, username="gina", email="gina@example.test", is_admin=True))
        db.session.commit()
    assert assignee_of(app, ticket_id) is None
    assert "Printer jams" not in text(Client(app, "gina").get("/ticket/all?queue=mine"))
