"""E-mail notifications: who gets them, what they say, and writing them to the outbox.

:func:`enqueue` runs inside the event's transaction, before its commit: the
mail, rendered once, becomes one ``flasket_outbox_event`` row that commits
together with the event, or not at all. After the commit, a deliverer
fans it out to one ``flasket_outbox`` row per recipient
(:func:`recipients_of`) and sends those. Rendering never raises
into the request: a template that fails is logged and the event still commits
without its mail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, has_request_context, render_template
from sqlalchemy.orm import Session

from . import i18n, policy
from .config import config_value, link_root
from .i18n import gettext
from .links import external_url
from .models import Models, ReplyBase, TicketBase, utcnow
from .proxies import current_flasket
from .unfollow import make_token, user_key

log = logging.getLogger("flasket.notify")

#: The event of a new ticket, whose mail goes to the staff addresses. Each event names
#: its templates, ``flasket/email/<event>.txt`` and ``.html``, which receive it as ``event``.
CREATED = "created"
#: Sent to the followers when someone replies to a ticket.
REPLIED = "replied"
#: Sent to the followers when a ticket is closed.
CLOSED = "closed"
#: Sent to the followers when a ticket is reopened.
REOPENED = "reopened"
#: Sent to the followers when a ticket moves to another status of the same kind (open to
#: waiting for the requester).
STATUS_CHANGED = "status"
#: Sent to the new assignee alone when staff assign a ticket to them.
ASSIGNED = "assigned"
#: Sent to the followers who are staff when staff add an internal note; nobody else.
NOTE = "note"


#: :attr:`Copy.staff_copy` of a staff address's copy of a follow-up (nobody is assigned).
TO_STAFF_ADDRESS = "address"
#: :attr:`Copy.staff_copy` of the assignee's copy of a follow-up, when they do not follow.
TO_ASSIGNEE = "assignee"

#: The token in the unfollow link follower mail is rendered with; each copy gets its own.
TOKEN_PLACEHOLDER = "FLASKET-UNFOLLOW-TOKEN"  # noqa: S105 (a marker, not a secret)


@dataclass(frozen=True)
class Copy:
    """One recipient's copy of an event's mail, ready to become an outbox row."""

    #: The address it goes to, as configured or as the user model holds it.
    recipient: str
    #: Its ``Message-ID`` (RFC 5322 3.6.4), angle brackets included.
    message_id: str
    #: Header fields of this copy alone: ``List-Unsubscribe`` (RFC 2369) and
    #: ``List-Unsubscribe-Post`` (RFC 8058) for a follower.
    headers: dict[str, str] = field(default_factory=dict)
    #: The follower's own one-click unfollow link, or None.
    unfollow_url: str | None = None
    #: The follower's primary key (None for a staff address): their copies go with them.
    user_id: Any = None
    #: The language and time zone the copy is written for: the follower's own
    #: (:func:`flasket.i18n.user_reader`), the site's for a staff address; None: the event's.
    reader: i18n.Reader | None = None
    #: A copy of a requester's follow-up for staff who do not follow the ticket, written for
    #: them (no unfollow link; the footer says why it came): :data:`TO_STAFF_ADDRESS` (an
    #: unassigned ticket's ``FLASKET_STAFF_RECIPIENTS``) or :data:`TO_ASSIGNEE`; None: a
    #: follower's copy.
    staff_copy: str | None = None


def enqueue(
    session: Session,
    event: str,
    ticket: TicketBase,
    actor: Any,
    reply: ReplyBase | None = None,
    to: Any = None,
    note: Any = None,
) -> list[int]:
    """Write the mail about ``event`` to the outbox in the current transaction.

    One ``flasket_outbox_event`` row, rendered once, whatever the number of
    followers: the recipients are worked out when a deliverer fans it out
    (:func:`recipients_of`). Returns the new event's id in a list (for
    delivery after the commit). A rendering failure is logged and yields no
    row; a database error propagates, so the event and its mail commit
    together or not at all. A new ticket when no staff address is left to tell
    (:func:`staff_addresses`) writes nothing.

    :param session: the session of the event's transaction; the row is added and
        flushed, not committed.
    :param event: :data:`CREATED`, :data:`REPLIED`, :data:`CLOSED`, :data:`REOPENED`,
        :data:`STATUS_CHANGED` or :data:`ASSIGNED`.
    :param ticket: the ticket the event happened to, flushed (it has an id).
    :param actor: the host user who acted, or None.
    :param reply: the new reply, for :data:`REPLIED`.
    :param to: the one host user the event is for (:data:`ASSIGNED`: the new assignee);
        None: the followers, or the staff addresses for :data:`CREATED`.
    :param note: the new internal note, for :data:`NOTE`.
    :return: the new ``flasket_outbox_event`` row's id in a list, or an empty list.
    :raises sqlalchemy.exc.SQLAlchemyError: when the flush fails.
    """
    if event == CREATED and not staff_addresses(actor):
        return []
    try:
        row = render(event, ticket, actor, reply, note)
    except Exception:
        log.exception("Could not prepare %s notifications for ticket #%s", event, ticket.id)
        return []
    if to is not None:
        row.recipient_key = str(current_flasket.models.user_id(to))
    session.add(row)
    session.flush()
    return [row.id]


def render(
    event: str, ticket: TicketBase, actor: Any, reply: ReplyBase | None, note: Any = None
) -> Any:
    """The event's outbox row: subject, both bodies and the headers every copy shares.

    Its links point at the configured link root (:func:`flasket.links.external_url`),
    never at the host the request named, so rendering needs no request. The templates
    ``flasket/email/<event>.txt`` and ``.html`` receive ``when`` (the event's time, UTC),
    ``event``, ``ticket``,
    ``actor``, ``reply`` and ``note`` (or None), ``original_url`` (for a ticket closed as
    a duplicate, the original's address; else None), ``staff_copy`` (for whom of staff a
    copy that is not a follower's is: :attr:`Copy.staff_copy`), ``recipient`` (None: one
    rendering serves every
    copy), ``ticket_url``, ``categories`` (``(category, value)`` pairs, as
    :meth:`flasket.state.FlasketState.categories_of` gives them) and ``unfollow_url`` (None for
    :data:`CREATED`; else a link holding :data:`TOKEN_PLACEHOLDER`). The shared headers
    are ``Auto-Submitted: auto-generated`` (RFC 3834), ``X-Flasket-Ticket`` and, after
    the first message, ``In-Reply-To`` and ``References`` naming :func:`thread_id`
    (RFC 5322 3.6.4).

    :param event: :data:`CREATED`, :data:`REPLIED`, :data:`CLOSED`, :data:`REOPENED` or
        :data:`STATUS_CHANGED`.
    :param ticket: the ticket, flushed (it has an id).
    :param actor: the host user who acted, or None.
    :param reply: the new reply, for :data:`REPLIED`; else None.
    :param note: the new internal note, for :data:`NOTE`; else None.
    :return: a new, unsaved ``OutboxEvent`` of the current Flasket's models.
    :raises flasket.config.ConfigError: when no link root is configured.
    :raises jinja2.TemplateError: when a template is missing or fails.
    """
    unfollow_url = None
    if event != CREATED:
        # Followers (never the staff addresses of new tickets) may stop in one click (RFC 8058).
        unfollow_url = external_url("flasket.unfollow_link", token=TOKEN_PLACEHOLDER)
    when = utcnow()
    headers = {"Auto-Submitted": "auto-generated", "X-Flasket-Ticket": str(ticket.id)}
    if event != CREATED:
        root = thread_id(ticket)
        headers.update({"In-Reply-To": root, "References": root})
    actor_id = current_flasket.models.user_id(actor) if actor is not None else None
    # In the site's language, not the actor's: the fan-out writes each recipient's own.
    site = i18n.default_reader()
    subject, text, html = _render_mail(
        site, event, ticket, actor, reply, when, unfollow_url, note=note
    )
    return current_flasket.models.OutboxEvent(
        ticket_id=ticket.id,
        event=event,
        actor_key=None if actor_id is None else str(actor_id),
        subject=subject,
        text=text,
        html=html,
        headers=json.dumps(headers),
        unfollow_url=unfollow_url,
        created_at=when,
        fanned_out_at=None,
        reply_id=reply.id if reply is not None else None,
        note_id=note.id if note is not None else None,
        locale=str(site.locale),
        time_zone=site.zone_name,
    )


def _render_mail(
    reader: i18n.Reader,
    event: str,
    ticket: TicketBase,
    actor: Any,
    reply: ReplyBase | None,
    when: datetime,
    unfollow_url: str | None,
    staff_copy: str | None = None,
    note: Any = None,
) -> tuple[str, str, str]:
    """Subject, text and HTML of an event's mail, written for ``reader`` (for a staff
    address's copy with ``staff_copy``)."""
    context = {
        "staff_copy": staff_copy,
        "when": when,
        "event": event,
        "ticket": ticket,
        "actor": actor,
        "reply": reply,
        "note": note,
        "recipient": None,
        "ticket_url": external_url("flasket.ticket", ticket_id=ticket.id)
        + (f"#reply-{reply.id}" if reply is not None else "")
        + (f"#note-{note.id}" if note is not None else ""),
        "categories": current_flasket.categories_of(ticket),
        "unfollow_url": unfollow_url,
        # A ticket closed as a duplicate: where its conversation goes on.
        "original_url": external_url("flasket.ticket", ticket_id=ticket.duplicate_of_id)
        if event == CLOSED and ticket.duplicate_of_id is not None
        else None,
    }
    with i18n.force_locale(reader):
        return (
            subject_for(event, ticket),
            render_template(f"flasket/email/{event}.txt", **context),
            render_template(f"flasket/email/{event}.html", **context),
        )


@contextmanager
def _request_for_templates() -> Iterator[None]:
    """A request at the link root around a rendering that a deliverer does (no request).

    ``render_template`` runs the host's context processors, which may read ``request`` (a
    menu's active endpoint); in the request that wrote the event they could. Nothing of
    this request reaches the mail: its links come from :func:`flasket.links.external_url`.
    """
    if has_request_context():
        yield
        return
    with current_app.test_request_context("/", base_url=link_root().url):
        yield


def event_reader_key(outbox_event: Any) -> tuple[str, str]:
    """The ``(locale, time zone)`` an event's own rendering is written for.

    :param outbox_event: an ``OutboxEvent`` row.
    :return: its ``locale`` and ``time_zone``; English and UTC for an event from before
        those columns.
    """
    return outbox_event.locale or i18n.SOURCE_LANGUAGE, outbox_event.time_zone or "UTC"


def render_for(
    outbox_event: Any, ticket: TicketBase, reader: i18n.Reader, staff_copy: str | None = None
) -> tuple[str, str, str] | None:
    """An event's mail written again for another reader, at fan-out (never in the request).

    The ticket is read as it is now; the reply (``reply_id``), the note (``note_id``) and
    the actor (``actor_key``) are looked up again; the time is the event's. Unfollow links keep the
    placeholder token, which each copy's own link replaces when it is sent.

    :param outbox_event: the event's ``OutboxEvent`` row.
    :param ticket: the ticket it is about.
    :param reader: the recipients' language and time zone.
    :param staff_copy: write it for staff who do not follow (:attr:`Copy.staff_copy`): no
        unfollow link, their own footer.
    :return: ``(subject, text, html)``; None when the reply or note is gone, the event predates
        the columns this needs (``locale`` is null), or a template fails (logged): those
        recipients then get the event's own rendering.
    """
    if outbox_event.locale is None:
        return None  # written before reply_id was kept: a reply could not be shown again
    models = current_flasket.models
    reply = None
    if outbox_event.reply_id is not None:
        reply = current_flasket.session.get(models.Reply, outbox_event.reply_id)
        if reply is None:
            return None
    note = None
    if outbox_event.note_id is not None:
        note = current_flasket.session.get(models.Note, outbox_event.note_id)
        if note is None:
            return None
    actor = _user_by_key(models, outbox_event.actor_key)
    try:
        with _request_for_templates():
            return _render_mail(
                reader,
                outbox_event.event,
                ticket,
                actor,
                reply,
                outbox_event.created_at,
                None if staff_copy else outbox_event.unfollow_url,
                staff_copy,
                note,
            )
    except Exception:
        log.exception(
            "Could not write outbox event %s in %s; its recipients get the site's language",
            outbox_event.id,
            reader.locale,
        )
        return None


def recipients_of(outbox_event: Any, ticket: TicketBase) -> list[Copy]:
    """Who gets a copy of ``outbox_event`` now: staff for a new ticket, the one user an
    event is addressed to (``recipient_key``: the new assignee), the followers who are staff
    for an internal note, else the followers (and, for a requester's follow-up, the
    assignee or the staff addresses).

    Worked out when the event is fanned out, so someone who stopped following
    or lost access since the event gets nothing. Each follower's copy has its own
    Message-ID and its own one-click unfollow link (RFC 2369, RFC 8058).

    :param outbox_event: the event's ``OutboxEvent`` row.
    :param ticket: the ticket it is about.
    :return: one copy per mailbox (:func:`mailbox_key`), in following order; empty when
        nobody is left to tell.
    :raises flasket.config.ConfigError: when no link root is configured.
    :raises RuntimeError: when the app has no ``SECRET_KEY`` (unfollow links need it).
    """
    models = current_flasket.models
    actor = _user_by_key(models, outbox_event.actor_key)
    if outbox_event.event == CREATED:
        site = i18n.default_reader()
        return [
            Copy(recipient=address, message_id=thread_id(ticket), reader=site)
            for address in staff_addresses(actor)
        ]
    staff_copies: list[Copy] = []
    if outbox_event.recipient_key is not None:
        addressed = _user_by_key(models, outbox_event.recipient_key)
        users = [] if addressed is None else _readers(models, ticket, [addressed], actor)
    else:
        users = follower_recipients(models, ticket, actor, outbox_event.created_at)
        if outbox_event.event == NOTE:
            # Internal: the followers who are staff, and nobody else.
            users = [u for u in users if policy.may_read_notes(models, u, ticket)]
        elif outbox_event.event == REPLIED and _by_requester(models, outbox_event, ticket):
            users, staff_copies = _staff_for_follow_up(models, ticket, actor, users)
    copies = []
    for user in users:
        # The event's link was rendered once with a placeholder: only the token is new.
        token = make_token(ticket.mail_key, models.user_id(user))
        link = (outbox_event.unfollow_url or "").replace(TOKEN_PLACEHOLDER, token) or None
        copies.append(
            Copy(
                recipient=email_of(user),
                message_id=copy_message_id(ticket),
                headers=(
                    {
                        "List-Unsubscribe": f"<{link}>",
                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                    }
                    if link
                    else {}
                ),
                unfollow_url=link,
                user_id=models.user_id(user),
                reader=i18n.user_reader(user),
            )
        )
    return copies + staff_copies


def _by_requester(models: Models, outbox_event: Any, ticket: TicketBase) -> bool:
    """Whether the event's actor is the ticket's requester."""
    return (
        outbox_event.actor_key is not None
        and ticket.author_id is not None
        and outbox_event.actor_key == str(ticket.author_id)
    )


def _staff_for_follow_up(
    models: Models, ticket: TicketBase, actor: Any, followers: list[Any]
) -> tuple[list[Any], list[Copy]]:
    """Who of staff hears of a requester's follow-up, besides the followers.

    The assignee, even after they stopped following (in their own language, with a footer
    that says why, and no unfollow link); while nobody is assigned, the
    ``FLASKET_STAFF_RECIPIENTS`` addresses when ``FLASKET_STAFF_FOLLOW_UPS`` is on. Nobody
    twice (:func:`mailbox_key`), never the actor.

    :return: the followers, and the copies for staff who do not follow.
    """
    taken = {mailbox_key(email_of(user)) for user in followers}
    if ticket.assignee_id is not None:
        assignee = current_flasket.session.get(models.user, ticket.assignee_id)
        extra = [] if assignee is None else _readers(models, ticket, [assignee], actor)
        return followers, [
            Copy(
                recipient=email_of(user),
                message_id=copy_message_id(ticket),
                user_id=models.user_id(user),
                reader=i18n.user_reader(user),
                staff_copy=TO_ASSIGNEE,
            )
            for user in extra
            if mailbox_key(email_of(user)) not in taken
        ]
    if not config_value("staff_follow_ups"):
        return followers, []
    site = i18n.default_reader()
    return followers, [
        Copy(
            recipient=address,
            message_id=copy_message_id(ticket),
            reader=site,
            staff_copy=TO_STAFF_ADDRESS,
        )
        for address in staff_addresses(actor)
        if mailbox_key(address) not in taken
    ]


def _user_by_key(models: Models, key: str | None) -> Any:
    if key is None:
        return None
    python_type = getattr(models.user, models.user_pk).type.python_type
    try:
        user_id = user_key(python_type, key)
    except (ValueError, TypeError):
        return None
    return current_flasket.session.get(models.user, user_id)


def email_of(user: Any) -> str:
    """The e-mail address of a host user, from the ``FLASKET_USER_EMAIL_ATTR`` attribute.

    :param user: an instance of the host's user model.
    :return: the address, stripped; ``""`` when the attribute is missing or not text.
    """
    value = getattr(user, config_value("user_email_attr"), None)
    return value.strip() if isinstance(value, str) else ""


def _valid_address(address: str) -> bool:
    _, parsed = parseaddr(address)
    return bool(parsed) and "@" in parsed and not any(c in address for c in "\r\n")


def mailbox_key(address: str) -> str:
    """One key per mailbox, however its address is written, so nobody gets two copies.

    The address part of ``Name <addr>``, in Unicode NFC and lower case, its domain
    without a trailing dot and with ``xn--`` labels decoded (Punycode, RFC 3492), so
    ``Bob <Bob@Bücher.example.>`` and ``bob@xn--bcher-kva.example`` are one
    mailbox. Local parts are compared without case, as virtually every mail server
    treats them, although RFC 5321 lets a server tell them apart. Nothing else is
    folded (``lower``, not ``casefold``: "straße" and "strasse" stay two names).

    :param address: an address, bare or with a display name.
    :return: the key, for comparison only (never for sending).
    """
    _, parsed = parseaddr(address)
    local, _, domain = parsed.strip().rpartition("@")
    labels = [_unicode_label(label) for label in domain.rstrip(".").split(".")]
    unicode_domain = ".".join(labels)
    return unicodedata.normalize("NFC", f"{local}@{unicode_domain}").lower()


def _unicode_label(label: str) -> str:
    if label[:4].lower() != "xn--":
        return label
    try:
        return label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return label  # not valid Punycode: compared as written


def staff_addresses(actor: Any) -> list[str]:
    """Configured staff recipients of new tickets, minus the person who filed it.

    :param actor: the host user who filed the ticket, or None.
    :return: the ``FLASKET_STAFF_RECIPIENTS`` addresses, stripped, in config order,
        without invalid ones, duplicates (:func:`mailbox_key`) and the actor's own.
    """
    actor_email = email_of(actor) if actor is not None else ""
    actor_key = mailbox_key(actor_email) if actor_email else ""
    return _unique(
        address
        for address in config_value("staff_recipients")
        if mailbox_key(address) != actor_key
    )


def follower_recipients(
    models: Models, ticket: TicketBase, actor: Any, followed_by: datetime | None = None
) -> list[Any]:
    """Followers who may still read the ticket, minus the actor, one per address.

    With ``followed_by``, only those who already followed then: the event's time, so
    someone who follows after it but before its fan-out does not get its mail.

    :param models: the current Flasket's models.
    :param ticket: the ticket whose followers are wanted.
    :param actor: the host user who acted (left out), or None.
    :param followed_by: a timezone-aware UTC time, or None for every follower.
    :return: host users, in the order they followed, one per mailbox
        (:func:`mailbox_key`), each with a valid address and allowed to read the ticket
        (:func:`flasket.policy.may_read`).
    """
    user_pk = getattr(models.user, models.user_pk)
    query = (
        sa.select(models.user)
        .join(models.Follow, models.Follow.user_id == user_pk)
        .where(models.Follow.ticket_id == ticket.id)
        .order_by(models.Follow.created_at, user_pk)
    )
    if followed_by is not None:
        query = query.where(models.Follow.created_at <= followed_by)
    return _readers(models, ticket, current_flasket.session.scalars(query).all(), actor)


def _readers(models: Models, ticket: TicketBase, users: Iterable[Any], actor: Any) -> list[Any]:
    """``users`` but the actor, those without a valid address or who may no longer read
    the ticket, one per mailbox (:func:`mailbox_key`), in the order given."""
    actor_id = models.user_id(actor) if actor is not None else None
    seen: set[str] = set()
    chosen = []
    for user in users:
        address = email_of(user)
        if models.user_id(user) == actor_id or not _valid_address(address):
            continue
        key = mailbox_key(address)
        if key in seen or not policy.may_read(models, user, ticket):
            continue
        seen.add(key)
        chosen.append(user)
    return chosen


def _unique(addresses: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for address in addresses:
        address = address.strip()
        key = mailbox_key(address)
        if _valid_address(address) and key not in seen:
            seen.add(key)
            result.append(address)
    return result


def message_id_parts() -> tuple[str, str]:
    """The right-hand side of Flasket's Message-IDs and a tag that tells sites apart.

    RFC 5322 (section 3.6.4) asks for an id unique for ever; the right-hand side names
    the site that makes it: the host of the links in mail (``FLASKET_BASE_URL`` or
    ``SERVER_NAME``), not the sender's domain, which several sites may share. A site
    mounted under a path or on a port adds a short hash of them to the left-hand side,
    so two sites on one host differ too. An IPv6 host is written as an address literal
    (``[2001:db8::1]``).

    :return: ``(domain, tag)``: ``tag`` is ``""`` or ``"." + 8 hex digits``.
    :raises flasket.config.ConfigError: when no link root is configured.
    """
    root = link_root()
    parts = urlsplit(root.url)
    host = parts.hostname or "flasket.invalid"
    if ":" in host:
        host = f"[{host}]"
    place = f"{parts.port or ''}{root.script_name.rstrip('/')}"
    tag = "." + hashlib.sha256(place.encode()).hexdigest()[:8] if place else ""
    return host, tag


def thread_id(ticket: TicketBase) -> str:
    """The Message-ID of a ticket's first message, which every later message refers to.

    ``<flasket.{mail_key}{tag}@{site}>``: the ticket's number and creation time
    (:attr:`~flasket.models.TicketBase.mail_key`), so a later ticket given a deleted
    one's number starts a thread of its own, and the site (:func:`message_id_parts`),
    so two sites sending from one domain never share one.

    :param ticket: the ticket, flushed (it has an id and a creation time).
    :return: the id with its angle brackets (RFC 5322 3.6.4 ``msg-id``).
    :raises flasket.config.ConfigError: when no link root is configured.
    """
    domain, tag = message_id_parts()
    return f"<flasket.{ticket.mail_key}{tag}@{domain}>"


def copy_message_id(ticket: TicketBase) -> str:
    """A new Message-ID for one recipient's copy of a message about ``ticket`` (random part).

    ``<flasket.{mail_key}.{32 hex digits}{tag}@{site}>``, as :func:`thread_id` with a
    random UUID added, so no two copies share an id (RFC 5322 3.6.4).

    :param ticket: the ticket the message is about.
    :return: the id with its angle brackets.
    :raises flasket.config.ConfigError: when no link root is configured.
    """
    domain, tag = message_id_parts()
    return f"<flasket.{ticket.mail_key}.{uuid.uuid4().hex}{tag}@{domain}>"


def subject_for(event: str, ticket: TicketBase) -> str:
    """The Subject of ``event``'s mail: one line, no control characters, however the title reads.

    Runs of white space (line breaks included) become one space, so a title never
    starts a header field of its own; :mod:`flasket.mailmessage` encodes the rest.

    :param event: one of :data:`CREATED`, :data:`REPLIED`, :data:`CLOSED`,
        :data:`REOPENED`, :data:`STATUS_CHANGED`; all but the first add ``Re:``.
    :param ticket: the ticket, flushed (it has an id).
    :return: ``"[Re: ]{FLASKET_SUBJECT_PREFIX} [Ticket #{id}] {title}"``, without control
        characters (Unicode ``Cc``) or lone surrogates (``Cs``), unencoded.
    """
    prefix = config_value("subject_prefix")
    number = gettext("[Ticket #%(number)s]", number=ticket.id)
    subject = f"{prefix} {number} {ticket.title}"
    if event != CREATED:
        subject = "Re: " + subject
    shown = "".join(
        char if char.isspace() or unicodedata.category(char) not in {"Cc", "Cs"} else ""
        for char in subject
    )
    return " ".join(shown.split())
