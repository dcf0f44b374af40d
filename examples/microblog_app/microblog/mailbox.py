"""The demo mailbox: mail that was not delivered is printed and kept for the /mailbox page.

Active only when the app runs without ``MAIL_SERVER`` (``create_app`` then sets
``MICROBLOG_DEMO_MAILBOX``); with a real mail server, mail is simply delivered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from email.utils import parseaddr

import click
import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_mail import Message, email_dispatched
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db
from .models import DemoMail

bp = Blueprint("mailbox", __name__)

_echo: ContextVar[bool] = ContextVar("microblog_mailbox_echo", default=True)


@contextmanager
def quiet() -> Iterator[None]:
    """Keep mail in the mailbox without printing it (the seed command sends a lot)."""
    token = _echo.set(False)
    try:
        yield
    finally:
        _echo.reset(token)


def _address(recipient: str | tuple[str, str]) -> str:
    if isinstance(recipient, tuple):
        return recipient[1]
    return parseaddr(recipient)[1] or recipient


def keep_dispatched_mail(
    sender: object, message: Message | None = None, app: Flask | None = None, **extra: object
) -> None:
    """Receives Flask-Mail's ``email_dispatched``: print the mail, keep one row per recipient.

    Flask-Mail 0.10 sends the signal as ``(app, message=message)``, 0.9 as
    ``(message, app=app)``; either way the app and the message arrive here.
    """
    if message is None and isinstance(sender, Message):
        message = sender
    if app is None and isinstance(sender, Flask):
        app = sender
    if message is None or app is None or not app.config.get("MICROBLOG_DEMO_MAILBOX"):
        return
    recipients = sorted({_address(r) for r in message.send_to})
    text = message.body or ""
    if _echo.get():
        rule = "-" * 72
        click.echo(
            f"{rule}\nDemo mail (not delivered; see /mailbox)\n"
            f"To: {', '.join(recipients)}\nSubject: {message.subject}\n\n{text.rstrip()}\n{rule}"
        )
    try:
        db.session.add_all(
            DemoMail(
                recipient=address,
                subject=message.subject or "",
                text=text,
                html=message.html or "",
            )
            for address in recipients
        )
        # Flasket sends mail after its own commit, so this commit holds only the mailbox rows.
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        app.logger.exception("Could not keep the demo mail %r", message.subject)


# Connected once, at import; the config check above keeps other apps' mail out.
email_dispatched.connect(keep_dispatched_mail)


@bp.route("/mailbox")
@login_required
def index() -> ResponseReturnValue:
    query = sa.select(DemoMail).order_by(DemoMail.sent_at.desc(), DemoMail.id.desc())
    if not current_user.is_admin:
        query = query.where(sa.func.lower(DemoMail.recipient) == current_user.email.lower())
    mails = db.session.scalars(query.limit(current_app.config["MAILBOX_LIMIT"])).all()
    return render_template(
        "mailbox.html",
        mails=mails,
        active=bool(current_app.config.get("MICROBLOG_DEMO_MAILBOX")),
    )
