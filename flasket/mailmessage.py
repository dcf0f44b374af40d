"""Notification messages whose header fields decode to exactly what Flasket meant.

Flask-Mail sets headers through ``email.header.Header`` (the compat32 API) and
then applies ``email.policy.SMTP``, which refolds every line over 78
characters: a long non-ASCII subject loses the space at each fold point, and a
``List-Unsubscribe`` URL comes out RFC 2047-encoded, so mail clients offer no
one-click unsubscribe (RFC 8058). The modern header classes are no cure: they
decode ``=?...?=`` found in the text they are given, and Python's parser (until
CPython gh-128110) keeps the space between two encoded-words of a display name.
So this module writes each field itself, in ASCII, already folded (RFC 5322
folding is a CRLF before a space that is part of the field), and
:class:`NotificationMessage` stores them as they are:

- text (``Subject``): printable ASCII words stay as they are; each run of other
  words becomes encoded-words of at most 75 characters holding whole characters
  and the spaces inside the run (space between two encoded-words is not text).
- addresses (``From``, ``To`` ...): a display name of printable ASCII is an atom
  or a quoted string; any other is one encoded-word, never two in a row.
- anything else (``Message-ID``, ``References``, ``List-Unsubscribe`` ...):
  printable ASCII, never encoded, folded only at its own spaces, so one long
  token (a URL) may make a line longer than 78 characters, never than 998.

A value that cannot be written so raises ``ValueError``; delivery records it as
a failed attempt rather than sending a header that means something else.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Iterable, Sequence
from email.charset import QP, Charset
from email.mime.base import MIMEBase
from email.mime.text import MIMEText
from email.policy import SMTP, compat32
from email.utils import getaddresses

from flask_mail import Message

#: Lines of at most 78 characters (RFC 5322 2.1.1), and CRLF line ends; no refolding,
#: because every field :class:`NotificationMessage` writes is folded already.
POLICY = SMTP.clone(refold_source="none")
#: The same for a message sent with SMTPUTF8 (RFC 6531): its address fields may hold UTF-8
#: (RFC 6532), which is then written as it is.
UTF8_POLICY = POLICY.clone(utf8=True)

#: Characters a header line should not exceed (RFC 5322 2.1.1), CRLF not counted.
LINE_LENGTH = 78
#: Characters a header line must not exceed (RFC 5322 2.1.1), CRLF not counted.
LINE_LIMIT = 998
#: Characters an encoded-word may have (RFC 2047 section 2).
ENCODED_WORD_LENGTH = 75

#: Header fields (lower case) written as unstructured text by :func:`field`.
TEXT_FIELDS = frozenset({"subject", "comments"})
#: Header fields (lower case) written as address lists by :func:`field`.
ADDRESS_FIELDS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})

_PRINTABLE = frozenset(chr(code) for code in range(0x21, 0x7F))
# The characters that may stand for themselves in a "Q" encoded-word anywhere, phrases included.
_Q_LITERAL = frozenset(string.ascii_letters + string.digits + "!*+-/")
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_EW_OVERHEAD = len("=?utf-8?q??=")
_PLACEHOLDER = "placeholder@invalid"


class NotificationMessage(Message):
    """Flask-Mail's message with quoted-printable bodies and the header fields of this module.

    Works with Flask-Mail 0.9.1 and 0.10: both build the MIME tree in ``_message()``,
    which this class finishes by rewriting the header fields Flask-Mail encoded.

    ``utf8`` is for a message sent with SMTPUTF8 (RFC 6531): its addresses may then
    have a non-ASCII local part, written in UTF-8 (RFC 6532); other text is still
    encoded as RFC 2047 asks, which every reader understands.

    It takes Flask-Mail's ``Message`` arguments. Building it (``as_string()``,
    ``as_bytes()``, sending it) raises ``ValueError`` when a field cannot be written as
    this module writes fields (see :meth:`header_fields`).
    """

    #: Whether the message is sent with SMTPUTF8 (RFC 6531); set it on the instance.
    utf8 = False

    def _mimetext(self, text: str | None, subtype: str = "plain") -> MIMEText:
        # Quoted-printable: a 20,000-character line still fits SMTP's 998-byte line limit.
        encoding = Charset("utf-8")
        encoding.body_encoding = QP
        return MIMEText(text or "", _subtype=subtype, _charset=encoding)  # type: ignore[arg-type]

    def _message(self) -> MIMEBase:
        if self.utf8:
            # Flask-Mail writes the address fields in ASCII and fails on a UTF-8 local part;
            # it gets placeholders, which header_fields() below replaces.
            sender, recipients = self.sender, self.recipients
            self.sender, self.recipients = _PLACEHOLDER, [_PLACEHOLDER]
            try:
                message = super()._message()
            finally:
                self.sender, self.recipients = sender, recipients
        else:
            message = super()._message()
        message.policy = compat32  # stores the folded values below unchanged
        for name, value in self.header_fields():
            if name in message:
                message.replace_header(name, value)
            else:
                message[name] = value
        message.policy = UTF8_POLICY if self.utf8 else POLICY
        return message

    def header_fields(self) -> list[tuple[str, str]]:
        """The header fields this message sets, each value folded and ASCII.

        ``Subject`` (if any), ``From``, ``To``, ``Cc`` (if any), ``Reply-To`` (if any),
        ``Message-ID``, then ``extra_headers`` in their order, each written by
        :func:`field`'s rules. With :attr:`utf8`, address fields may hold UTF-8 local parts.

        :return: ``(name, value)`` pairs; each value is folded with CRLF and a space
            (RFC 5322 2.2.3) and has no leading space after the colon.
        :raises ValueError: when a value cannot be written so (see :func:`text`,
            :func:`addresses`, :func:`tokens`).
        """
        fields = []
        if self.subject:
            fields.append(("Subject", text("Subject", self.subject)))
        utf8 = self.utf8
        fields.append(("From", addresses("From", [self.sender], utf8)))
        fields.append(("To", addresses("To", self.recipients, utf8)))
        if self.cc:
            fields.append(("Cc", addresses("Cc", self.cc, utf8)))
        if self.reply_to:
            fields.append(("Reply-To", addresses("Reply-To", [self.reply_to], utf8)))
        fields.append(("Message-ID", tokens("Message-ID", self.msgId)))
        for name, value in (self.extra_headers or {}).items():
            fields.append((name, field(name, value)))
        return fields


def field(name: str, value: str) -> str:
    """``value`` as the body of header field ``name``, by the kind of field it is.

    A name in :data:`TEXT_FIELDS` is written by :func:`text`, one in
    :data:`ADDRESS_FIELDS` by :func:`addresses` (one mailbox), any other by
    :func:`tokens`.

    :param name: the field name, in any case (``"List-Unsubscribe"``).
    :param value: the field's value, unencoded and unfolded.
    :return: the field body, ASCII, folded (RFC 5322 2.2.3), without the name and colon.
    :raises ValueError: when ``value`` cannot be written as that kind of field.
    """
    kind = name.lower()
    if kind in TEXT_FIELDS:
        return text(name, value)
    if kind in ADDRESS_FIELDS:
        return addresses(name, [value])
    return tokens(name, value)


def text(name: str, value: str) -> str:
    """Unstructured text (RFC 5322 3.2.5), with RFC 2047 encoded-words where needed.

    Words of printable ASCII that do not look encoded stay as they are; each run of other
    words becomes UTF-8 "Q" or "B" encoded-words (whichever is shorter) of at most
    :data:`ENCODED_WORD_LENGTH` characters. A value with leading, trailing or repeated
    spaces is encoded whole, so the spaces survive.

    :param name: the field name, for the length of the first line and error messages.
    :param value: the text, without line breaks.
    :return: the field body, ASCII, folded at lines of at most :data:`LINE_LENGTH`
        characters.
    :raises ValueError: when a line would exceed :data:`LINE_LIMIT` characters.
    """
    lines = _Lines(name)
    words = value.split(" ")
    if value != " ".join(word for word in words if word):
        # Spaces at either end or two in a row survive only inside encoded-words.
        _add_encoded(lines, value)
        return lines.value()
    run: list[str] = []
    for word in words:
        if _plain(word) and lines.fits_some_line(word):
            if run:
                _add_encoded(lines, " ".join(run))
                run = []
            lines.add(word)
        else:
            run.append(word)
    if run:
        _add_encoded(lines, " ".join(run))
    return lines.value()


def addresses(name: str, mailboxes: Iterable[str | tuple[str, str]], utf8: bool = False) -> str:
    """An address list: each mailbox ``name <address>`` or ``address``, comma-separated.

    RFC 5322 3.4: a display name of printable ASCII is atoms or a quoted string, any
    other one RFC 2047 encoded-word; a domain is written in its IDNA form. An address
    given twice (in any case) is written once.

    :param name: the field name, for the length of the first line and error messages.
    :param mailboxes: Flask-Mail senders or recipients: ``"Name <address>"``,
        ``"address"`` or ``(name, address)``.
    :param utf8: allow a non-ASCII local part (RFC 6532), for a message sent with
        SMTPUTF8 (RFC 6531).
    :return: the field body, folded between words (RFC 5322 2.2.3).
    :raises ValueError: for a mailbox that is not one address (see
        :func:`split_mailbox`), or a line over :data:`LINE_LIMIT` characters.
    """
    lines = _Lines(name)
    seen: set[str] = set()
    pieces: list[list[str]] = []
    for mailbox in mailboxes:
        display, address = split_mailbox(mailbox, utf8)
        if address.lower() not in seen:
            seen.add(address.lower())
            pieces.append(_mailbox_pieces(display, address))
    for index, mailbox_pieces in enumerate(pieces):
        if index < len(pieces) - 1:
            mailbox_pieces[-1] += ","
        for piece in mailbox_pieces:
            lines.add(piece)
    return lines.value()


def tokens(name: str, value: str) -> str:
    """Structured ASCII tokens (message ids, ``<URL>``): folded at spaces, never encoded.

    Runs of white space become one space or a fold; a token longer than
    :data:`LINE_LENGTH` characters gets a line of its own.

    :param name: the field name, for the length of the first line and error messages.
    :param value: the tokens, separated by white space.
    :return: the field body, folded (RFC 5322 2.2.3).
    :raises ValueError: for a character outside printable ASCII, or a token too long for
        a line (over :data:`LINE_LIMIT` characters).
    """
    words = value.split()
    if any(not _PRINTABLE.issuperset(word) for word in words):
        raise ValueError(f"{name}: {value!r} is not printable ASCII")
    lines = _Lines(name)
    for word in words:
        lines.add(word)
    return lines.value()


class _Lines:
    """A header field's lines; a piece that does not fit the current line starts the next."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines = [f"{name}:"]

    def room(self) -> int:
        """Characters left on this line for the next piece (after its separating space)."""
        return LINE_LENGTH - len(self.lines[-1]) - 1

    def fresh(self) -> bool:
        return self.lines[-1] in {"", f"{self.name}:"}

    def fits_some_line(self, piece: str) -> bool:
        return len(piece) <= (self.room() if self.lines == [f"{self.name}:"] else LINE_LENGTH - 1)

    def break_line(self) -> None:
        if not self.fresh():
            self.lines.append("")

    def add(self, piece: str) -> None:
        if len(piece) > self.room():
            self.break_line()
        self.lines[-1] += " " + piece

    def value(self) -> str:
        for line in self.lines:
            if len(line) > LINE_LIMIT:
                raise ValueError(f"{self.name}: a line of {len(line)} characters (limit 998)")
        return "\r\n".join(self.lines)[len(self.name) + 2 :]


def _plain(word: str) -> bool:
    """Whether ``word`` may be sent as it is: printable ASCII that no decoder takes for encoded."""
    return bool(word) and _PRINTABLE.issuperset(word) and "=?" not in word


def _q_cost(char: str) -> int:
    return 1 if char in _Q_LITERAL or char == " " else 3 * len(char.encode("utf-8"))


def _b_length(size: int) -> int:
    return 4 * -(-size // 3)


def _encoded_word(chunk: str, method: str) -> str:
    if method == "b":
        return "=?utf-8?b?" + base64.b64encode(chunk.encode("utf-8")).decode("ascii") + "?="
    quoted = "".join(
        "_"
        if char == " "
        else char
        if char in _Q_LITERAL
        else "".join(f"={byte:02X}" for byte in char.encode("utf-8"))
        for char in chunk
    )
    return "=?utf-8?q?" + quoted + "?="


def _method(run: str) -> str:
    """The shorter encoding of ``run``: "q" keeps mostly-ASCII text readable, "b" the rest."""
    q_size = sum(_q_cost(char) for char in run)
    return "q" if q_size <= _b_length(len(run.encode("utf-8"))) else "b"


def _fit(run: str, method: str, room: int) -> int:
    """How many characters of ``run`` (at least one) make an encoded-word of ``room`` or less."""
    size = 0
    for count, char in enumerate(run):
        size += _q_cost(char) if method == "q" else len(char.encode("utf-8"))
        length = _EW_OVERHEAD + (size if method == "q" else _b_length(size))
        if length > room:
            return max(count, 1)
    return len(run)


def _add_encoded(lines: _Lines, run: str) -> None:
    """``run`` as encoded-words, each as long as the line allows (at most 75 characters)."""
    method = _method(run)
    while run:
        room = min(lines.room(), ENCODED_WORD_LENGTH)
        if len(_encoded_word(run[:1], method)) > room:
            lines.break_line()
            room = min(lines.room(), ENCODED_WORD_LENGTH)
        count = _fit(run, method, room)
        lines.add(_encoded_word(run[:count], method))
        run = run[count:]


def split_mailbox(mailbox: str | tuple[str, str], utf8: bool = False) -> tuple[str, str]:
    """``(display name, address)`` of a Flask-Mail sender or recipient, on one line each.

    The address has its domain in IDNA form, and a fully qualified domain's final dot
    dropped; runs of white space in the display name become one space.

    :param mailbox: ``"Name <address>"``, ``"address"`` or ``(name, address)``.
    :param utf8: allow a non-ASCII local part (RFC 6531, RFC 6532).
    :return: the display name (``""`` when there is none) and the address.
    :raises ValueError: when ``mailbox`` is not one mailbox, or needs ``utf8`` and lacks it.
    """
    if isinstance(mailbox, str):
        found = getaddresses([" ".join(mailbox.split())])
        if len(found) != 1:
            raise ValueError(f"{mailbox!r} is not one mailbox")
        display, address = found[0]
    else:
        display, address = mailbox
    return " ".join(display.split()), _address(address, utf8)


def _address(address: str, utf8: bool = False) -> str:
    """An addr-spec in ASCII (or UTF-8 with ``utf8``): a Unicode domain becomes its IDNA form,
    a fully qualified domain's final dot is dropped."""
    local, at, domain = address.strip().rpartition("@")
    if not local or not at or not domain:
        raise ValueError(f"{address!r} is not an e-mail address")
    if domain.endswith(".") and not domain.startswith("["):
        domain = domain[:-1]
    if not _PRINTABLE.issuperset(domain):
        domain = domain.encode("idna").decode("ascii")
    # A quoted local part may hold spaces (RFC 5321 qtextSMTP).
    allowed = _PRINTABLE | {" "} if local.startswith('"') else _PRINTABLE
    if not allowed.issuperset(char for char in local if char.isascii()):
        raise ValueError(f"{address!r} is not an e-mail address")
    if not utf8 and not local.isascii():
        raise ValueError(f"{address!r} needs SMTPUTF8 (RFC 6531) to be written")
    if any(not char.isprintable() for char in local if not char.isascii()):
        raise ValueError(f"{address!r} is not an e-mail address")
    return f"{local}@{domain}"


def _mailbox_pieces(display: str, address: str) -> list[str]:
    if not display:
        return [address]
    return [*_phrase(display), f"<{address}>"]


def _phrase(display: str) -> Sequence[str]:
    """A display name: atoms, a quoted string, or one encoded-word (never two in a row)."""
    words = display.split(" ")
    if all(_plain(word) for word in words):
        if all(_ATEXT.issuperset(word) for word in words):
            return words
        escaped = [word.replace("\\", "\\\\").replace('"', '\\"') for word in words]
        escaped[0] = '"' + escaped[0]
        escaped[-1] += '"'
        return escaped
    method = _method(display)
    whole = _encoded_word(display, method)
    if len(whole) < LINE_LIMIT - len("Reply-To: "):
        # Longer than 75 characters if need be: Python's parser (until CPython gh-128110)
        # would add a space between two encoded-words of a display name.
        return [whole]
    chunks = []
    while display:
        count = _fit(display, method, ENCODED_WORD_LENGTH)
        chunks.append(_encoded_word(display[:count], method))
        display = display[count:]
    return chunks
