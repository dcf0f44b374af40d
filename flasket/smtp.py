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

import functools
import ipaddress
import logging
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

from flask_mail import email_dispatched

from .mailmessage import split_mailbox
from .sql import app_object

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
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


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
    (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``); the whole at most 256 octets. A
    fully qualified domain's final dot (``example.com.``) is dropped.

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
    if domain.endswith(".") and not domain.startswith("["):
        domain = domain[:-1]  # the root's dot: the same domain, which SMTP writes without it
    ascii_domain = _ascii_domain(address, domain)
    sent = f"{local}@{ascii_domain}"
    if len(sent.encode("utf-8")) + 2 > PATH_LIMIT:
        raise AddressError(f"{address!r} is longer than 254 octets (RFC 5321)")
    return EnvelopeAddress(sent, utf8=not local.isascii())


def envelope_of(message: Any) -> tuple[EnvelopeAddress, EnvelopeAddress]:
    """The envelope sender and recipient of a Flask-Mail ``Message`` to one recipient.

    :param message: a Flask-Mail ``Message`` with a sender and one recipient.
    :return: ``(sender, recipient)``, each an address as ``MAIL FROM`` and ``RCPT TO`` take it.
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
                if "%" in literal:
                    raise ValueError("a scope id")
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
        len(label) <= LABEL_LIMIT and _LABEL.fullmatch(label) for label in labels
    ):
        raise AddressError(f"{address!r}: the domain {domain!r} is not a valid host name")
    return ascii_domain


def verdict(error: BaseException, connecting: bool = False) -> Failure:
    """Classify an error met while opening a connection (``connecting``) or sending.

    Each kind of error, whether its failure is permanent, and its scope:

    - any error while connecting (refused, DNS, timeout, TLS, 4xx/5xx greeting, AUTH):
      not permanent, :data:`SERVER`;
    - :class:`AddressError`, :class:`MessageError` (the message cannot be written):
      permanent, :data:`MESSAGE`;
    - recipient refused, data refused, with a 5xx: permanent, :data:`MESSAGE`;
    - the same with a 4xx, and 552 to ``RCPT`` (RFC 5321 4.5.3.1.10: too many
      recipients): not permanent, :data:`MESSAGE`;
    - 552 to ``MAIL`` (the message is too large): permanent, :data:`MESSAGE`;
    - recipient refused because the server does not relay for this site ("relay" in
      the answer): not permanent, :data:`SERVER`;
    - sender refused (4xx or 5xx): not permanent, :data:`SERVER`;
    - 421 (the server is closing), connection lost, deadline passed, network error, an
      over-long reply line: not permanent, :data:`CONNECTION`;
    - any other SMTP reply: permanent for a 5xx, not for a 4xx, :data:`MESSAGE`;
    - anything else: not permanent, :data:`MESSAGE`.

    A refused sender, or a relay that does not relay for this site, is the site's
    configuration (``FLASKET_MAIL_SENDER``, the relay's rules), not the message's
    fault, and every message would be refused alike: it is retried with backoff, so
    mail goes out once it is fixed. An unknown error is retried, up to
    ``FLASKET_DELIVERY_MAX_ATTEMPTS``.

    :param error: the exception.
    :param connecting: whether it was raised while opening the connection.
    :returns: the :class:`Failure`.
    """
    reason = describe(error)
    if connecting:
        return Failure("could not reach the mail server: " + reason, False, SERVER)
    if isinstance(error, AddressError):
        return Failure(f"undeliverable address: {error}", True, MESSAGE)
    if isinstance(error, MessageError):
        return Failure(f"{error}", True, MESSAGE)
    if isinstance(error, smtplib.SMTPResponseException):
        return _answer_verdict(error, reason)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = list(error.recipients.values())
        if any(code == 421 for code, _ in answers):
            return Failure(reason, False, CONNECTION)
        if any(_relay_denied(text) for _, text in answers):
            reason = "the mail server does not relay for this site: " + reason
            return Failure(reason, False, SERVER)
        permanent = bool(answers) and all(code >= 500 and code != 552 for code, _ in answers)
        return Failure(reason, permanent, MESSAGE)
    if isinstance(error, (smtplib.SMTPServerDisconnected, OSError)):
        return Failure("connection lost: " + reason, False, CONNECTION)
    return Failure(reason, False, MESSAGE)


def _answer_verdict(error: smtplib.SMTPResponseException, reason: str) -> Failure:
    code = error.smtp_code
    if code == 421 or _text(error.smtp_error) == "Line too long.":
        # 421: the server closes the connection (a per-connection limit, a shutdown);
        # smtplib closes it after an over-long reply line.
        return Failure(reason, False, CONNECTION)
    if isinstance(error, smtplib.SMTPSenderRefused):
        if code == 552:
            # 552 to MAIL FROM ... SIZE=n: this message is too large, not the sender.
            return Failure(reason, True, MESSAGE)
        return Failure(
            f"the mail server refused the sender {_text(error.sender)}"
            " (check FLASKET_MAIL_SENDER or MAIL_DEFAULT_SENDER): " + reason,
            False,
            SERVER,
        )
    return Failure(reason, code >= 500, MESSAGE)


def _relay_denied(text: bytes | str) -> bool:
    """Whether a refusal says the server does not relay for us: the site's configuration."""
    return "relay" in _text(text).lower()


def no_answer(error: BaseException) -> bool:
    """Whether ``error`` is a server that stopped answering: a deadline passed, or a read
    timed out (smtplib reports that as a lost connection, caused by ``TimeoutError``).

    :param error: what sending or connecting raised.
    :return: True for :class:`DeadlinePassed`, a ``TimeoutError``, or an error raised while
        handling one.
    """
    return isinstance(error, (DeadlinePassed, TimeoutError)) or isinstance(
        error.__context__, TimeoutError
    )


def describe(error: BaseException) -> str:
    """A one-line account of an SMTP or network error, for logs and ``last_error``.

    :param error: what sending or connecting raised.
    :return: the error's class, and the server's code and text when it answered.
    """
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


class MessageError(ValueError):
    """The message cannot be written as mail (see :mod:`flasket.mailmessage`), or is larger
    than the server takes (its ``SIZE``, RFC 1870): a permanent failure."""


class DeadlinePassed(smtplib.SMTPServerDisconnected):
    """A step of the conversation did not finish within ``FLASKET_SMTP_TIMEOUT`` seconds."""


class SMTPConnection:
    """One connection to the host's mail server, with Flask-Mail's settings.

    ``SMTPConnection(mail, timeout)`` then :meth:`open`, :meth:`send` messages
    while :attr:`usable`, :meth:`close`. With ``MAIL_SUPPRESS_SEND`` (or
    ``TESTING``) nothing is sent and ``email_dispatched`` still fires, as with
    Flask-Mail; after ``MAIL_MAX_EMAILS`` messages the connection is no longer
    :attr:`usable`, and the caller opens a new one.

    :param mail: the app's ``flask_mail.Mail`` (``app.extensions["mail"]``).
    :param timeout: seconds; the socket timeout and the deadline of each step.
    """

    def __init__(self, mail: Any, timeout: float) -> None:
        self.mail = mail
        self.timeout = timeout
        self.host: smtplib.SMTP | None = None
        self.sent = 0
        self.cut = False

    @property
    def usable(self) -> bool:
        """False once ``MAIL_MAX_EMAILS`` messages went over this connection, or once a
        deadline shut its socket down (even as the step finished in time)."""
        if self.cut:
            return False
        limit = getattr(self.mail, "max_emails", None)
        return not limit or self.sent < int(limit)

    def open(self) -> None:
        """Connect, read the greeting, EHLO, STARTTLS and log in, under one deadline.

        The deadline is ``timeout`` seconds from the start. The socket does not exist
        until the TCP (and, with ``MAIL_USE_SSL``, TLS) connect returns, which each
        address of the host name may make last up to the socket timeout; a deadline
        passed meanwhile is raised as soon as it returns. So opening takes about
        :data:`OPEN_COST` x ``timeout``, even against a server that trickles its
        greeting, unless the name has several unreachable addresses.

        :raises OSError: or :class:`smtplib.SMTPException` when the server cannot be used.
        """
        if self.mail.suppress:
            return
        host: smtplib.SMTP
        name = _local_hostname()
        if self.mail.use_ssl:
            host = smtplib.SMTP_SSL(local_hostname=name, timeout=self.timeout)
        else:
            host = smtplib.SMTP(local_hostname=name, timeout=self.timeout)
        # TLS checks the certificate against the name smtplib keeps from its constructor,
        # which connects outside any deadline; connect() below does not set it.
        host._host = self.mail.server  # type: ignore[attr-defined]
        self.host = host
        try:
            with self._deadline(self.timeout) as passed:
                host.set_debuglevel(int(self.mail.debug))
                host.connect(self.mail.server, self.mail.port)
                if passed.is_set():
                    raise DeadlinePassed(f"no answer within {self.timeout:g} s")
                host.ehlo()
                if self.mail.use_tls:
                    host.starttls()
                    host.ehlo()
                if self.mail.username and self.mail.password:
                    host.login(self.mail.username, self.mail.password)
            if self.cut:
                raise DeadlinePassed(f"no answer within {self.timeout:g} s")
        except BaseException:
            self.close()
            raise

    def send(self, message: Any) -> None:
        """Send ``message`` (a Flask-Mail ``Message`` to one recipient), see :func:`envelope_of`.

        The whole exchange (``MAIL``, ``RCPT``, ``DATA`` and the data) has one deadline
        of ``timeout`` seconds (:data:`SEND_COST`). Once the server accepted it,
        nothing here raises: an ``email_dispatched`` receiver that fails is logged.

        :param message: the message, as ``flasket.delivery.message_for`` builds it.
        :raises AddressError: when the recipient needs ``SMTPUTF8`` and the server lacks it.
        :raises MessageError: when the message cannot be written, or exceeds ``SIZE``.
        :raises smtplib.SMTPSenderRefused: (not sent to the server) when the sender needs
            ``SMTPUTF8`` and the server lacks it.
        :raises smtplib.SMTPException: or ``OSError``, as :func:`verdict` classifies.
        """
        sender, recipient = envelope_of(message)
        utf8 = sender.utf8 or recipient.utf8
        options = ["SMTPUTF8"] if utf8 else []
        try:
            data = message.as_bytes()
        except (ValueError, UnicodeError) as error:
            raise MessageError(f"the message cannot be encoded: {describe(error)}") from error
        if self.host is not None:
            if utf8 and not self.host.has_extn("smtputf8"):
                if sender.utf8:
                    raise smtplib.SMTPSenderRefused(
                        553,
                        b"a non-ASCII local part needs SMTPUTF8 (RFC 6531), not offered",
                        sender.address,
                    )
                raise AddressError(
                    f"{recipient.address!r} has a non-ASCII local part, which needs SMTPUTF8"
                    " (RFC 6531), and the mail server does not offer it"
                )
            limit = self.host.esmtp_features.get("size", "")
            if limit.isdigit() and int(limit) and len(data) > int(limit):
                raise MessageError(
                    f"the message has {len(data)} bytes; the mail server takes at most {limit}"
                )
            with self._deadline(self.timeout):
                self.host.sendmail(sender.address, [recipient.address], data, options)
        self.sent += 1
        try:
            _dispatched(message)
        except Exception:
            log.exception("An email_dispatched receiver failed; the message was sent")

    def close(self) -> None:
        """Say goodbye if the server still listens (within 5 s); close the socket either way."""
        host, self.host = self.host, None
        if host is None:
            return
        try:
            if host.sock is not None:
                self.host = host
                with self._deadline(min(self.timeout, 5.0)):
                    host.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            self.host = None
            host.close()

    @contextmanager
    def _deadline(self, seconds: float) -> Iterator[threading.Event]:
        """Shut the socket down if the block has not finished after ``seconds``.

        Yields the event that is set when the deadline passed (the socket may not
        exist yet then: the block checks it once it does).
        """
        host = self.host
        passed = threading.Event()
        lock = threading.Lock()
        done = False

        def cut() -> None:
            with lock:
                if done:
                    return
                passed.set()
                sock = None if host is None else host.sock
                if sock is not None:
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(seconds, cut)
        timer.daemon = True
        timer.start()
        try:
            yield passed
        except (smtplib.SMTPException, OSError, ValueError) as error:
            if passed.is_set():
                raise DeadlinePassed(f"no answer within {seconds:g} s") from error
            raise
        finally:
            with lock:
                done = True
                if passed.is_set():
                    self.cut = True
            timer.cancel()


@functools.lru_cache(maxsize=1)
def _local_hostname() -> str:
    """The name for EHLO, looked up once (smtplib would look it up for every connection)."""
    return socket.getfqdn()


def _flask_mail_signals_with_app_first() -> bool:
    """Flask-Mail 0.10 sends ``email_dispatched`` as ``(app, message=...)``; 0.9 as
    ``(message, app=...)``."""
    try:
        major, minor = (int(part) for part in version("Flask-Mail").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return True
    return (major, minor) >= (0, 10)


_APP_FIRST = _flask_mail_signals_with_app_first()


log = logging.getLogger("flasket.notify")


def _dispatched(message: Any) -> None:
    app = app_object()
    if _APP_FIRST:
        email_dispatched.send(app, message=message)
    else:
        email_dispatched.send(message, app=app)
