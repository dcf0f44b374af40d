"""``flask --app microblog seed``: demo users, posts and tickets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
import flask_migrate
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from flasket import actions, current_flasket, delivery
from flasket.config import ConfigError, link_root, parse_base_url

from . import mailbox
from .extensions import db
from .models import DemoMail, Post, User, utcnow

DEMO_PASSWORD = "demo"
DEMO_USERS = ("admin", "sam", "lee", "alice", "bob", "carol")
#: The demo's support team: staff, who see every ticket and work the queues.
STAFF = ("admin", "sam", "lee")

POSTS = (
    ("alice", "First post! Setting up my microblog profile."),
    ("bob", "Anyone else think the new mobile app is snappier?"),
    ("carol", "Reading the Flask docs on app factories tonight."),
    ("alice", "Found the Tickets link in the menu. Nice to ask for help right here."),
    ("admin", "Welcome to Microblog! Questions or bugs? File a ticket under Tickets."),
    ("bob", "Weekend project: a tiny weather bot that posts here every morning."),
)

# (author, title, body, categories, then what happens to the ticket)
TICKETS: tuple[dict[str, Any], ...] = (
    {
        "author": "alice",
        "title": "Password reset e-mail never arrives",
        "body": "I asked for a password reset twice this morning, but no e-mail came. "
        "It is not in my spam folder either.",
        "categories": {"urgency": "High", "application": "Website", "topic": "Account"},
        "assignee": ("admin", "sam"),
        "replies": [
            ("sam", "Thanks for the report. I am checking the mail server logs now."),
            ("alice", "Still nothing an hour later, in case that helps."),
        ],
        # Internal notes: only staff read them.
        "notes": [
            (
                "sam",
                "The reset mails bounce: our SPF record does not list the new mail relay."
                " Asked ops to add it.",
            ),
            ("admin", "Ops added the relay to SPF at 11:40; resends should arrive now."),
        ],
        "followers": ["bob"],
    },
    {
        "author": "bob",
        "title": "Mobile app crashes when I attach a photo",
        "body": "Steps: open the app, write a post, tap the camera icon, pick a photo. "
        "The app closes immediately.",
        "categories": {"urgency": "High", "application": "Mobile app", "topic": "Bug report"},
        "assignee": ("lee", "lee"),
        "replies": [
            ("carol", "Same here on my phone, with any photo."),
            ("lee", "Reproduced. A fix is in testing; I will post here when it ships."),
        ],
    },
    {
        "author": "carol",
        "title": "Dark mode for the desktop app?",
        "body": "The desktop app is very bright at night. A dark theme would be lovely.",
        "categories": {
            "urgency": "Low",
            "application": "Desktop app",
            "topic": "Feature request",
        },
        "replies": [("bob", "+1, I would use it every evening.")],
        "followers": ["alice"],
    },
    {
        "author": "alice",
        "title": "How do I export my posts?",
        "body": "I would like a copy of everything I posted. Is there an export?",
        "categories": {"urgency": "Medium", "application": "Website", "topic": "Question"},
        "replies": [
            ("admin", "Yes: Settings, then Export. You get a zip file by e-mail."),
            ("alice", "Found it, thank you!"),
        ],
        "closed_by": "alice",
    },
    {
        "author": "bob",
        "title": "API returns 500 for page=0",
        "body": "GET /api/posts?page=0 answers 500 Internal Server Error instead of 400.",
        "categories": {"urgency": "Medium", "application": "API", "topic": "Bug report"},
        "replies": [("admin", "Fixed: page=0 now answers 400 with a clear message.")],
        "closed_by": "admin",
        "resolution": "solved",
    },
    {
        "author": "carol",
        "title": "Can I change my username?",
        "body": "I registered as carol but would prefer carol_writes. Is that possible?",
        "categories": {"urgency": "Low", "application": "Website", "topic": "Account"},
        "assignee": ("admin", "admin"),
        "replies": [("admin", "Yes, if it is free. Do you also want your old posts renamed?")],
        # Staff wait for carol's answer; her reply puts the ticket back to open.
        "status": ("admin", "waiting"),
    },
    {
        "author": "alice",
        "title": "Notifications arrive twice",
        "body": "Since yesterday every notification shows up twice on my phone.",
        "categories": {"urgency": "Medium", "application": "Mobile app", "topic": "Bug report"},
        "replies": [("carol", "I see duplicates too, but only for replies.")],
        "followers": ["carol"],
    },
    {
        "author": "bob",
        "title": "Typo on the About page",
        "body": "The About page says 'micorblog' in the second paragraph.",
        "categories": {"urgency": "Low", "application": "Website", "topic": "Other"},
        "followers": ["admin"],
    },
    {
        "author": "carol",
        "title": "Spam account posting links to a shop",
        "body": "The account deals4u posts the same shop link under every post I write.",
        "categories": {"urgency": "High", "application": "Website", "topic": "Other"},
        "assignee": ("sam", "sam"),
        "replies": [("sam", "Thanks! The account is suspended while we look at it.")],
        "notes": [("sam", "Same shop link from two more new accounts; all three suspended.")],
    },
    {
        "author": "bob",
        "title": "No e-mail when I reset my password",
        "body": "The reset page says an e-mail is on its way, but nothing arrives.",
        "categories": {"urgency": "Medium", "application": "Website", "topic": "Account"},
        # Staff close it as a duplicate: bob now follows the first report.
        "duplicate_of": ("sam", "Password reset e-mail never arrives"),
    },
    {
        "author": "alice",
        "title": "Search does not find posts with hashtags",
        "body": "Searching for #flask finds nothing, although I posted with that tag today.",
        "categories": {"urgency": "Medium", "application": "Website", "topic": "Bug report"},
    },
)


def seed_demo_data() -> dict[str, int] | None:
    """Create the demo content; None (and no change) if the database has users already."""
    # `flask db upgrade`: the migrations create (or bring up to date) every table, Flasket's too.
    flask_migrate.upgrade()
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        return None
    users = {}
    for name in DEMO_USERS:
        user = User(username=name, email=f"{name}@example.com", is_admin=name in STAFF)
        user.set_password(DEMO_PASSWORD)
        users[name] = user
    db.session.add_all(users.values())
    start = utcnow() - timedelta(hours=len(POSTS))
    db.session.add_all(
        Post(author=users[name], body=body, created_at=start + timedelta(hours=number))
        for number, (name, body) in enumerate(POSTS)
    )
    db.session.commit()

    # Through Flasket's own services, so counters, follows and notification mail are real.
    by_title = {}
    for spec in TICKETS:
        ticket = actions.create_ticket(
            users[spec["author"]], spec["title"], spec["body"], spec["categories"]
        )
        for name in spec.get("followers", []):
            actions.follow_ticket(ticket, users[name])
        if "assignee" in spec:
            actor, assignee = spec["assignee"]
            actions.assign_ticket(ticket, users[actor], users[assignee])
        for name, body in spec.get("replies", []):
            actions.post_reply(ticket, users[name], body)
        for name, body in spec.get("notes", []):
            actions.add_note_once(ticket, users[name], body, form_key=None)
        if "closed_by" in spec:
            actions.close_ticket(ticket, users[spec["closed_by"]], spec.get("resolution"))
        by_title[spec["title"]] = ticket
        if "duplicate_of" in spec:
            name, title = spec["duplicate_of"]
            actions.close_as_duplicate(ticket, users[name], by_title[title])
        if "status" in spec:
            name, status_name = spec["status"]
            status = current_flasket.status_named(status_name)
            if status is not None:  # a FLASKET_STATUSES without it: the ticket stays open
                actions.set_status(ticket, users[name], status)
    # Each action hands its mail to a background delivery; count the mailbox once they are done.
    if not delivery.wait_for_idle(timeout=60):
        current_app.logger.warning("Some demo mail was still being delivered after 60 s.")
    mails = db.session.scalar(sa.select(sa.func.count()).select_from(DemoMail)) or 0
    return {"users": len(users), "posts": len(POSTS), "tickets": len(TICKETS), "mails": mails}


@click.command("seed")
@click.option(
    "--base-url",
    default=None,
    help="Where the demo will be served (default: FLASKET_BASE_URL); links in the seeded"
    " e-mails point there.",
)
@with_appcontext
def seed_command(base_url: str | None) -> None:
    """Upgrade the database (flask db upgrade), then add demo users, posts and tickets."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    # Flasket builds the links in its e-mails from FLASKET_BASE_URL alone, request or not.
    if base_url is not None:
        try:
            app.config["FLASKET_BASE_URL"] = parse_base_url(base_url).url
        except ConfigError as error:
            raise click.BadParameter(str(error), param_hint="--base-url") from error
    base_url = link_root(app).url
    with mailbox.quiet():
        created = seed_demo_data()
    if created is None:
        click.echo("Nothing to do: demo data already present.")
        return
    click.echo(
        f"Created {created['users']} users, {created['posts']} posts and "
        f"{created['tickets']} tickets ({created['mails']} demo e-mails in the mailbox)."
    )
    click.echo(f"Log in at {base_url}/auth/login as one of (password '{DEMO_PASSWORD}'):")
    for name in DEMO_USERS:
        role = " (staff: works the queues, sees and manages every ticket)" if name in STAFF else ""
        click.echo(f"  {name}{role}")


def register(app: Flask) -> None:
    app.cli.add_command(seed_command)
