"""The SMTP transport: envelope addresses, a connection with hard deadlines, and error verdicts.

Flasket sends through the host's own mail server, configured for Flask-Mail
(``MAIL_SERVER``, ``MAIL_PORT``, ``MAIL_USE_TLS``/``MAIL_USE_SSL``,
``MAIL_USERNAME``/``MAIL_PASSWORD``, ``MAIL_SUPPRESS_SEND``), and sends
Flask-Mail's ``email_dispatched`` signal for each message, as Flask-Mail does.

Three things it adds to Flask-Mail's ``Connection``:

- **Deadlines.** A socket timeout bounds each read, not a conversation: a server
  that answers one byte every 29 s holds a 30 s timeout for ever. Here every
  step (opening a connection, sending one message) has a wall-clock deadline of
  ``FLASKET_SMTP_TIMEOUT`` seconds, enforced by shutting the socket down, so
  :data:`OPEN_COST` and :data:`SEND_COST` bound what a step can take, and the
  outbox can check that a lease outlasts the step before starting it.
- **Addresses** (:func:`envelope_address`). A recipient or sender is checked
  against RFC 5321's syntax once, before it is sent; an internationalised
  domain is sent in its IDNA form, and a non-ASCII local part with the
  ``SMTPUTF8`` extension (RFC 6531) when the server offers it. An address that
  can never be sent raises :class:`AddressError`.
- **Verdicts** (:func:`verdict`). Every error is classified as permanent or
  temporary, and by what it rules out: this message, this connection, or the
  server for now. See :func:`verdict` for the table.

Address syntax is checked here rather than with ``email-validator``: that
library refuses special-use domains (``localhost``, ``.local``, ``.test``)
that a host's own mail server may well deliver, and a refusal here is final.
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
import socket
import string
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import current_app
from flask_mail import email_dispatched

from .mailmessage import split_mailbox

#: What a verdict rules out: only this message (the connection carries the next one) ...
MESSAGE = "message"
#: ... this connection (it is gone; a new one may carry the rest) ...
CONNECTION = "connection"
#: ... or the server for now (it takes no mail from this site: every message would fail alike).
SERVER = "server"

#: Opening a connection takes at most this many ``FLASKET_SMTP_TIMEOUT``: the TCP (and TLS)
#: connect, bounded by the socket timeout, then EHLO, STARTTLS and AUTH under one deadline.
OPEN_COST = 2
#: Sending one message takes at most one ``FLASKET_SMTP_TIMEOUT`` (MAIL, RCPT, DATA, the data).
SEND_COST = 1

#: RFC 5321 4.5.3.1: octet limits of a local part, a domain and a whole path.
LOCAL_PART_LIMIT = 64
DOMAIN_LIMIT = 255
PATH_LIMIT = 256
LABEL_LIMIT = 63

_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")


class AddressError(ValueError):
    """An address that no mail server will ever accept as it is: a permanent failure.

    Raised by :func:`envelope_address` for a syntax RFC 5321 does not allow, and by
    :meth:`SMTPConnection.send` for an address that needs ``SMTPUTF8`` (RFC 6531)
    when the server does not offer it. The message says what is wrong, for a person.
    """


@dataclass(frozen=True)
class EnvelopeAddress:
    """An address as ``MAIL FROM`` or ``RCPT TO`` carries it.

    ``address`` has its domain in IDNA (ASCII) form; ``utf8`` says whether its local
    part is non-ASCII, so that sending it needs the ``SMTPUTF8`` extension (RFC 6531).
    """

    address: str
    utf8: bool


@dataclass(frozen=True)
class Failure:
    """The verdict on one error: ``reason`` for logs and ``last_error``, whether it is
    ``permanent`` (retrying cannot help) and its ``scope`` (:data:`MESSAGE`,
    :data:`CONNECTION` or :data:`SERVER`)."""

    reason: str
    permanent: bool
    scope: str


def envelope_address(address: str) -> EnvelopeAddress:
    """Check ``address`` (a bare ``local@domain``) against RFC 5321 and RFC 6531 syntax.

    The local part is a dot-string or a quoted string, at most 64 octets, and may be
    non-ASCII (RFC 6531); the domain is a host name, given in Unicode or IDNA form, with
    labels of letters, digits and hyphens of at most 63 octets, or an address literal
    (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``); the whole at most 256 octets.

    :param address: the address, without a display name or angle brackets.
    :returns: the address as it is sent, with its domain in IDNA form.
    :raises AddressError: saying what is wrong, when it is not such an address.
    """
    local, at, domain = address.rpartition("@")
    if not at:
        raise AddressError(f"{address!r} is not an e-mail address: it has no @")
    if not local or not domain:
        raise AddressError(f"{address!r} is not an e-mail address: nothing before or after @")
    if not _is_local_part(local):
        raise AddressError(f"{address!r} is not an e-mail address: its local part is malformed")
    if len(local.encode("utf-8")) > LOCAL_PART_LIMIT:
        raise AddressError(f"{address!r}: the local part is longer than 64 octets (RFC 5321)")
    ascii_domain = _ascii_domain(address, domain)
    sent = f"{local}@{ascii_domain}"
    if len(sent.encode("utf-8")) + 2 > PATH_LIMIT:
        raise AddressError(f"{address!r} is longer than 254 octets (RFC 5321)")
    return EnvelopeAddress(sent, utf8=not local.isascii())


def envelope_of(message: Any) -> tuple[EnvelopeAddress, EnvelopeAddress]:
    """The envelope sender and recipient of a Flask-Mail ``Message`` to one recipient.

    :raises smtplib.SMTPSenderRefused: when the sender is not an address that can be
        sent (the site's configuration, so :func:`verdict` has it retried).
    :raises AddressError: when the recipient is not.
    """
    try:
        sender = envelope_address(split_mailbox(message.sender, utf8=True)[1])
    except ValueError as error:
        raise smtplib.SMTPSenderRefused(553, str(error).encode(), str(message.sender)) from error
    try:
        recipient = envelope_address(split_mailbox(message.recipients[0], utf8=True)[1])
    except AddressError:
        raise
    except ValueError as error:
        raise AddressError(str(error)) from error
    return sender, recipient


def _is_local_part(local: str) -> bool:
    """RFC 5321 ``Local-part``: a dot-string or a quoted string (RFC 6531: UTF-8 allowed)."""
    if local.startswith('"'):
        return _is_quoted_string(local)
    return all(
        atom and all(char in _ATEXT or (ord(char) > 0x7F and char.isprintable()) for char in atom)
        for atom in local.split(".")
    )


def _is_quoted_string(local: str) -> bool:
    if len(local) < 2 or not local.endswith('"'):
        return False
    inner = local[1:-1]
    index = 0
    while index < len(inner):
        char = inner[index]
        if char == "\\":
            if index + 1 == len(inner) or not 32 <= ord(inner[index + 1]) <= 126:
                return False
            index += 2
            continue
        if char == '"' or (char.isascii() and not 32 <= ord(char) <= 126):
            return False
        if not char.isascii() and not char.isprintable():
            return False
        index += 1
    return True


def _ascii_domain(address: str, domain: str) -> str:
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        try:
            if literal[:5].lower() == "ipv6:":
                ipaddress.IPv6Address(literal[5:])
            else:
                ipaddress.IPv4Address(literal)
        except ValueError:
            raise AddressError(f"{address!r}: {domain} is not an IP address literal") from None
        return domain
    try:
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise AddressError(f"{address!r}: the domain {domain!r} is not a valid name") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > DOMAIN_LIMIT or not all(
        len(label) <= LABEL_LIMIT and _LABEL.match(label) for label in labels
    ):
        raise AddressError(f"{address!r}: the domain {domain!r} is not a valid host name")
    return ascii_domain


def verdict(error: BaseException, connecting: bool = False) -> Failure:
    """Classify an error met while opening a connection (``connecting``) or sending.

    ==========================================  =========  ==========
    error                                       permanent  scope
    ==========================================  =========  ==========
    any error while connecting (refused, DNS,   no         server
    timeout, TLS, 4xx/5xx greeting, AUTH)
    :class:`AddressError`; a message that       yes        message
    cannot be encoded (``ValueError``,
    ``UnicodeError``)
    recipient refused, data refused: 5xx        yes        message
    the same with 4xx                           no         message
    sender refused (4xx or 5xx)                 no         server
    421 (the server is closing), connection     no         connection
    lost, deadline passed, network error
    any other SMTP reply: 5xx / 4xx             yes / no   message
    anything else                               no         message
    ==========================================  =========  ==========

    A refused sender is the site's configuration (``FLASKET_MAIL_SENDER``, the
    relay's rules), not the message's fault, and every message would be refused
    alike: it is retried with backoff, so mail goes out once it is fixed. An
    unknown error is retried, up to ``FLASKET_DELIVERY_MAX_ATTEMPTS``.

    :param error: the exception.
    :param connecting: whether it was raised while opening the connection.
    :returns: the :class:`Failure`.
    """
    reason = describe(error)
    if connecting:
        return Failure("could not reach the mail server: " + reason, False, SERVER)
    if isinstance(error, AddressError):
        return Failure(f"undeliverable address: {error}", True, MESSAGE)
    if isinstance(error, (UnicodeError, ValueError)):
        return Failure(f"the message cannot be encoded: {reason}", True, MESSAGE)
    if isinstance(error, smtplib.SMTPSenderRefused):
        return Failure(
            f"the mail server refused the sender {_text(error.sender)}"
            " (check FLASKET_MAIL_SENDER or MAIL_DEFAULT_SENDER): " + reason,
            False,
            SERVER,
        )
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        if any(code == 421 for code in codes):
            return Failure(reason, False, CONNECTION)
        return Failure(reason, bool(codes) and all(code >= 500 for code in codes), MESSAGE)
    if isinstance(error, smtplib.SMTPResponseException):
        if error.smtp_code == 421:
            return Failure(reason, False, CONNECTION)
        return Failure(reason, error.smtp_code >= 500, MESSAGE)
    if isinstance(error, (smtplib.SMTPServerDisconnected, OSError)):
        return Failure("connection lost: " + reason, False, CONNECTION)
    return Failure(reason, False, MESSAGE)


def describe(error: BaseException) -> str:
    """A one-line account of an SMTP or network error, for logs and ``last_error``."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        parts = [
            f"{code} {_text(message)} ({address})"
            for address, (code, message) in error.recipients.items()
        ]
        return "recipient refused: " + "; ".join(parts)
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__}: {error.smtp_code} {_text(error.smtp_error)}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class DeadlinePassed(smtplib.SMTPServerDisconnected):
    """A step of the conversation did not finish within ``FLASKET_SMTP_TIMEOUT`` seconds."""


class SMTPConnection:
    """One connection to the host's mail server, with Flask-Mail's settings.

    ``SMTPConnection(mail, timeout)`` then :meth:`open`, :meth:`send` any number of
    messages, :meth:`close`. With ``MAIL_SUPPRESS_SEND`` (or ``TESTING``) nothing
    is sent and ``email_dispatched`` still fires, as with Flask-Mail.

    :param mail: the app's ``flask_mail.Mail`` (``app.extensions["mail"]``).
    :param timeout: seconds; the socket timeout and the deadline of each step.
    """

    def __init__(self, mail: Any, timeout: float) -> None:
        self.mail = mail
        self.timeout = timeout
        self.host: smtplib.SMTP | None = None
        self.sent = 0

    def open(self) -> None:
        """Connect, read the greeting, EHLO, STARTTLS and log in, under one deadline.

        The deadline is ``timeout`` seconds from the start; the TCP connect itself is
        bounded by the socket timeout, so opening takes at most :data:`OPEN_COST` x
        ``timeout``, even against a server that trickles its greeting.

        :raises OSError: or :class:`smtplib.SMTPException` when the server cannot be used.
        """
        if self.mail.suppress:
            return
        host: smtplib.SMTP
        if self.mail.use_ssl:
            host = smtplib.SMTP_SSL(timeout=self.timeout)
        else:
            host = smtplib.SMTP(timeout=self.timeout)
        self.host = host
        try:
            with self._deadline():
                host.set_debuglevel(int(self.mail.debug))
                host.connect(self.mail.server, self.mail.port)
                host.ehlo()
                if self.mail.use_tls:
                    host.starttls()
                    host.ehlo()
                if self.mail.username and self.mail.password:
                    host.login(self.mail.username, self.mail.password)
        except BaseException:
            self.close()
            raise

    def send(self, message: Any) -> None:
        """Send ``message`` (a Flask-Mail ``Message`` to one recipient), see :func:`envelope_of`.

        The whole exchange (``MAIL``, ``RCPT``, ``DATA`` and the data) has one deadline
        of ``timeout`` seconds (:data:`SEND_COST`).

        :raises AddressError: when an address needs ``SMTPUTF8`` and the server lacks it.
        :raises ValueError: when the message cannot be written (see :mod:`flasket.mailmessage`).
        :raises smtplib.SMTPException: or ``OSError``, as :func:`verdict` classifies.
        """
        sender, recipient = envelope_of(message)
        utf8 = sender.utf8 or recipient.utf8
        options = ["SMTPUTF8"] if utf8 else []
        if self.host is not None:
            if utf8 and not self.host.has_extn("smtputf8"):
                needing = recipient.address if recipient.utf8 else sender.address
                raise AddressError(
                    f"{needing!r} has a non-ASCII local part, which needs SMTPUTF8 (RFC 6531),"
                    " and the mail server does not offer it"
                )
            data = message.as_bytes()
            with self._deadline():
                self.host.sendmail(sender.address, [recipient.address], data, options)
        else:
            message.as_bytes()
        _dispatched(message)
        self.sent += 1

    def close(self) -> None:
        """Say goodbye if the server still listens (briefly); close the socket either way."""
        host, self.host = self.host, None
        if host is None:
            return
        try:
            if host.sock is not None:
                host.sock.settimeout(min(self.timeout, 5.0))
                host.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            host.close()

    @contextmanager
    def _deadline(self) -> Iterator[None]:
        """Shut the socket down if the block has not finished after ``timeout`` seconds."""
        host = self.host
        passed = threading.Event()

        def cut() -> None:
            sock = None if host is None else host.sock
            if sock is not None:
                passed.set()
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.timeout, cut)
        timer.daemon = True
        timer.start()
        try:
            yield
        except (smtplib.SMTPException, OSError) as error:
            if passed.is_set():
                raise DeadlinePassed(f"no answer within {self.timeout:g} s") from error
            raise
        finally:
            timer.cancel()


def _flask_mail_signals_with_app_first() -> bool:
    """Flask-Mail 0.10 sends ``email_dispatched`` as ``(app, message=...)``; 0.9 as
    ``(message, app=...)``."""
    try:
        major, minor = (int(part) for part in version("Flask-Mail").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return True
    return (major, minor) >= (0, 10)


_APP_FIRST = _flask_mail_signals_with_app_first()


def _dispatched(message: Any) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if _APP_FIRST:
        email_dispatched.send(app, message=message)
    else:
        email_dispatched.send(message, app=app)
