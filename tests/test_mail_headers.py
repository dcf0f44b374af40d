"""Every header field of notification mail decodes to exactly what Flasket meant.

Messages are built as delivery builds them (``delivery.message_for``), turned into
bytes as Flask-Mail's ``Connection.send`` does (``as_bytes()``, in 0.9.1 and 0.10),
and parsed back with ``email.policy.default``, as a receiving program would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask_mail import Mail
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flasket import delivery, notify
from flasket import outbox as flasket_outbox
from flasket.mailmessage import NotificationMessage
from tests.helpers import Client, Inbox

LONG_CYRILLIC_TITLE = (
    "Не могу войти в личный кабинет: после ввода пароля при входе в систему страница "  # noqa: RUF001
    "обновляется и снова просит логин, пробовал другой браузер и очистку кэша, ничего"
)
LONG_HOST = "helpdesk.customer-support.eu-west-1.example-company-with-a-long-name.test"
SENDER = "support@example.test"
ROOT = "<flasket-ticket-7@example.test>"
BOUNDED = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

titles = st.text(max_size=300)
names = st.text(max_size=80)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
hosts = st.lists(label, min_size=1, max_size=5).map(lambda labels: ".".join([*labels, "test"]))
paths = st.from_regex(r"(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,60}){0,6}", fullmatch=True)
urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}{path}",
    st.sampled_from(["http", "https"]),
    hosts,
    paths,
)


@pytest.fixture
def mail_app() -> Iterator[Flask]:
    """Just what building a message needs: Flask-Mail and Flasket's sender and prefix keys."""
    app = Flask(__name__)
    app.config.update(
        MAIL_DEFAULT_SENDER=f"Support <{SENDER}>",
        FLASKET_MAIL_SENDER=None,
        FLASKET_SUBJECT_PREFIX="",
    )
    Mail(app)
    with app.app_context():
        yield app


def claimed(
    subject: str,
    recipient: str = "alice@example.test",
    message_id: str = "<flasket-ticket-7-replied-0123456789abcdef0123456789abcdef@example.test>",
    **headers: str,
) -> Any:
    """An outbox row as ``flasket.outbox.claim`` returns it, with the headers a reply mail has."""
    return flasket_outbox.Claimed(
        id=1,
        recipient=recipient,
        subject=subject,
        text="Text with a long line " * 100,
        html="<p>Html</p>",
        message_id=message_id,
        headers={
            "Auto-Submitted": "auto-generated",
            "X-Flasket-Ticket": "7",
            "In-Reply-To": ROOT,
            "References": ROOT,
            **headers,
        },
        attempts=0,
        token="t",
        until=datetime.now(timezone.utc),
    )


def sent(row: Any) -> tuple[bytes, EmailMessage]:
    """The bytes Flask-Mail's Connection.send would send for ``row``, and how they parse."""
    raw = delivery.message_for(row).as_bytes()
    return raw, message_from_bytes(raw, policy=policy.default)


def header_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def field_names(raw: bytes) -> list[str]:
    """The names of the top-level header fields (a continuation line starts with a space)."""
    return [line.split(b":", 1)[0].decode() for line in header_lines(raw) if line[:1] != b" "]


def raw_value(message: EmailMessage, name: str) -> str:
    """The field as it was on the wire, unfolded (only CRLF removed, RFC 5322 2.2.3)."""
    values = [value for key, value in message.raw_items() if key.lower() == name.lower()]
    assert len(values) == 1, f"{name} appears {len(values)} times"
    return re.sub(r"\r?\n", "", str(values[0]))


def assert_well_formed(raw: bytes, row: Any) -> None:
    """ASCII only, each field once, lines of 78 (998 for one token that cannot fold)."""
    fixed = ["Content-Type", "MIME-Version", "Subject", "From", "To", "Date", "Message-ID"]
    assert sorted(field_names(raw)) == sorted([*fixed, *row.headers])
    for line in header_lines(raw):
        assert all(byte < 0x80 for byte in line), line
        if len(line) > 78:
            token = line.split(b": ", 1)[-1].strip()
            assert b" " not in token, line
            assert len(line) <= 998, line


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ticket(title: str, number: int = 7) -> Any:
    return SimpleNamespace(id=number, title=title)


@BOUNDED
@given(title=titles, number=st.integers(1, 10**9), prefix=st.sampled_from(["", "[Acme]"]))
@example(title=LONG_CYRILLIC_TITLE, number=4242, prefix="")
@example(title="Printer\r\nBcc: evil@example.test", number=1, prefix="")
@example(title="=?utf-8?q?Hello?= =?utf-8?b?0J/RgNC40LLQtdGC?=", number=1, prefix="")
@example(title="\x00\x1b[31m red\x7f \x85 tab\tend ", number=1, prefix="[Acme]")
def test_subject_decodes_to_the_subject_flasket_meant(
    mail_app: Flask, title: str, number: int, prefix: str
) -> None:
    mail_app.config["FLASKET_SUBJECT_PREFIX"] = prefix
    for event in (notify.CREATED, notify.REPLIED):
        subject = notify.subject_for(event, ticket(title, number))
        assert subject == " ".join(subject.split())
        assert not any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in subject)
        row = claimed(subject)
        raw, message = sent(row)

        assert str(message["Subject"]) == subject
        assert_well_formed(raw, row)


@BOUNDED
@given(subject=st.text(min_size=1, max_size=300))
@example(subject=" leading, trailing and  double spaces ")
@example(subject="Line\r\nBcc: evil@example.test\r\n\r\nbody")
@example(subject="x" * 200 + " " + "я" * 3)
def test_any_subject_text_round_trips_without_new_fields(mail_app: Flask, subject: str) -> None:
    message = NotificationMessage(subject=subject, recipients=["a@example.test"], body="b")
    raw = message.as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)

    assert str(parsed["Subject"]) == subject
    mime = ["Content-Type", "MIME-Version", "Content-Transfer-Encoding"]
    fields = ["Subject", "From", "To", "Date", "Message-ID"]
    assert sorted(field_names(raw)) == sorted([*mime, *fields])


@BOUNDED
@given(name=names, host=hosts, url=urls, recipient_name=names)
@example(
    name="Служба поддержки клиентов компании «Рога и копыта»",  # noqa: RUF001
    host="x.test",
    url="https://a.test/u",
    recipient_name="",
)
@example(
    name='Acme, "Inc." (support) \\ <desk>',
    host="x.test",
    url="http://a.test/",
    recipient_name="Zoë",
)
@example(
    name="=?utf-8?q?Mallory?=",
    host="x.test",
    url="http://a.test/",
    recipient_name="A\r\nBcc: evil@example.test",
)
def test_every_field_flasket_sets_decodes_to_what_it_meant(
    mail_app: Flask, name: str, host: str, url: str, recipient_name: str
) -> None:
    mail_app.config["FLASKET_MAIL_SENDER"] = (name, SENDER)
    message_id = f"<flasket-ticket-7-replied-{'0' * 32}@{host}>"
    row = claimed(
        "Re: [Ticket #7] Printer",
        recipient=f"{quoted(recipient_name)} <staff@{host}>",
        message_id=message_id,
        **{
            "References": f"{ROOT} {message_id}",
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    raw, message = sent(row)

    assert_well_formed(raw, row)
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (" ".join(name.split()), SENDER)
    (recipient,) = message["To"].addresses
    assert recipient.display_name == " ".join(recipient_name.split())
    assert recipient.addr_spec == f"staff@{host}"
    assert raw_value(message, "List-Unsubscribe") == f"<{url}>"
    expected = {
        "Message-ID": message_id,
        "In-Reply-To": ROOT,
        "References": f"{ROOT} {message_id}",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",
        "X-Flasket-Ticket": "7",
    }
    for field, value in expected.items():
        assert " ".join(raw_value(message, field).split()) == value
        assert " ".join(str(message[field]).split()) == value


def test_long_list_unsubscribe_url_stays_one_plain_line(mail_app: Flask) -> None:
    url = f"https://{LONG_HOST}/ticket/unfollow/" + "eyJ0IjoxMjM0NSwidSI6Njc4OTB9." * 3
    raw, message = sent(claimed("Re: [Ticket #7] Printer", **{"List-Unsubscribe": f"<{url}>"}))

    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert str(message["List-Unsubscribe"]) == f"<{url}>"


def test_long_cyrillic_subject_keeps_every_space(mail_app: Flask) -> None:
    subject = f"Re: [Ticket #4242] {LONG_CYRILLIC_TITLE}"
    message = delivery.message_for(claimed(subject))

    as_bytes = message_from_bytes(message.as_bytes(), policy=policy.default)
    as_string = message_from_string(message.as_string(), policy=policy.default)
    assert str(as_bytes["Subject"]) == str(as_string["Subject"]) == subject


def test_a_value_that_cannot_be_written_fails_instead_of_going_out_mangled(
    mail_app: Flask,
) -> None:
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        delivery.message_for(claimed("S", **{"List-Unsubscribe": "<https://é.test/>"})).as_bytes()
    with pytest.raises(ValueError, match="998"):
        delivery.message_for(
            claimed("S", **{"List-Unsubscribe": "<" + "x" * 1000 + ">"})
        ).as_bytes()


@pytest.mark.one_database
@pytest.mark.parametrize(
    "app_config",
    [{"SERVER_NAME": LONG_HOST, "FLASKET_STAFF_RECIPIENTS": ["helpdesk@example.test"]}],
    ids=["long-host"],
)
def test_smtp_server_receives_long_cyrillic_subject_and_plain_one_click_unsubscribe(
    alice: Client, login: Any, inbox: Inbox
) -> None:
    ticket_id = alice.submit(LONG_CYRILLIC_TITLE)
    login("bob").reply(ticket_id)

    (created,) = inbox.to("helpdesk@example.test")
    assert created.subject == f"[Ticket #{ticket_id}] {LONG_CYRILLIC_TITLE}"
    (replied,) = inbox.to("alice@example.test")
    assert replied.subject == f"Re: [Ticket #{ticket_id}] {LONG_CYRILLIC_TITLE}"
    unsubscribe = raw_value(replied.message, "List-Unsubscribe")
    assert re.fullmatch(rf"<http://{re.escape(LONG_HOST)}/\S+>", unsubscribe), unsubscribe
    assert len(f"List-Unsubscribe: {unsubscribe}") > 78
    assert str(replied.message["List-Unsubscribe"]) == unsubscribe
    assert raw_value(replied.message, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
