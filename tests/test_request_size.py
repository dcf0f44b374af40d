"""Flasket's size limit holds however a body is sent, and an error page never echoes a huge one.

A chunked body has no Content-Length, so only reading it can tell its size: Flasket stops
reading past its cap (500,000 bytes, or the host's smaller ``MAX_CONTENT_LENGTH``) and answers
413. A body under the cap whose fields are far too long comes back as a form without them.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import Flask, request

from flasket.params import MAX_REQUEST_SIZE
from tests.helpers import Client, Inbox, ext_models
from tests.hostapp import db

STAFF = "staff@example.test"
TEN_MEGABYTES = 10_000_000
GOOD_TICKET = {
    "title": "Printer is on fire",
    "body": "Flames everywhere.",
    "urgency": "Medium",
    "application": "Desktop app",
    "topic": "Bug report",
}
BOUNDARY = "flasket-test-boundary"
TOO_LARGE = "What you sent is too large. Shorten it and try again."
NOT_SHOWN_AGAIN = "What you sent was too long to show again."


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    # New tickets mail staff, so a ticket stored by mistake would also show in the inbox.
    return {"FLASKET_STAFF_RECIPIENTS": [STAFF], **getattr(request, "param", {})}


#: Bytes past the cap the body may be read: Flasket reads one to tell "at the cap" from "over
#: it"; Werkzeug 2.2's test client reads one more through its own input wrapper. Anything near
#: the ten megabytes sent would fail these tests.
READ_AHEAD = 2


class Body(io.RawIOBase):
    """A request body of ``head`` and then ``size`` more bytes of filler, counting what is read.

    Made as it is read, so a test can send ten megabytes without holding them.
    """

    def __init__(self, head: bytes, size: int, tail: bytes = b"", filler: bytes = b"a") -> None:
        super().__init__()
        self.parts = [head, filler * size, tail] if size < 1_000_000 else [head]
        self.filler, self.left, self.tail = filler, size, tail
        self.generated = size >= 1_000_000
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._next(len(buffer))
        buffer[: len(chunk)] = chunk
        self.read_bytes += len(chunk)
        return len(chunk)

    def _next(self, wanted: int) -> bytes:
        while self.parts and not self.parts[0]:
            self.parts.pop(0)
        if self.parts:
            chunk, self.parts[0] = self.parts[0][:wanted], self.parts[0][wanted:]
            return chunk
        if self.generated and self.left:
            count = min(wanted, self.left)
            self.left -= count
            if not self.left:
                self.parts.append(self.tail)
            return self.filler * count
        return b""


def form_body(fields: dict[str, str], big_field: str, size: int, kind: str) -> Body:
    """``fields`` encoded as ``kind``, then ``big_field`` with ``size`` bytes of ``a``."""
    if kind == "multipart":
        head = "".join(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        head += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{big_field}"\r\n\r\n'
        return Body(head.encode(), size, f"\r\n--{BOUNDARY}--\r\n".encode())
    return Body(f"{urlencode(fields)}&{big_field}=".encode(), size)


CONTENT_TYPES = {
    "urlencoded": "application/x-www-form-urlencoded",
    "multipart": f"multipart/form-data; boundary={BOUNDARY}",
}


def post_chunked(client: Client, url: str, body: Body, content_type: str) -> Any:
    """POST ``body`` chunked, as a WSGI server that decodes chunked bodies passes it on."""
    # Set in the environ: the test client would replace a multipart boundary with its own.
    environ = {"CONTENT_TYPE": content_type, "wsgi.input": body, "wsgi.input_terminated": True}
    return client.http.post(
        url, headers={"Transfer-Encoding": "chunked"}, environ_overrides=environ
    )


def count(app: Flask, model_name: str) -> int:
    with app.app_context():
        model = getattr(ext_models(app), model_name)
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


@pytest.fixture
def ticket_id(alice: Client, inbox: Inbox) -> int:
    found = alice.submit("Printer is on fire")
    inbox.clear()
    return found


@pytest.mark.one_database
@pytest.mark.parametrize("kind", list(CONTENT_TYPES))
def test_a_chunked_ten_megabyte_ticket_is_413_after_reading_no_more_than_the_cap(
    app: Flask, alice: Client, inbox: Inbox, kind: str
) -> None:
    fields = {"csrf_token": alice.csrf(), **GOOD_TICKET}
    body = form_body(
        {k: v for k, v in fields.items() if k != "title"}, "title", TEN_MEGABYTES, kind
    )

    response = post_chunked(alice, "/ticket/submit", body, CONTENT_TYPES[kind])

    assert response.status_code == 413
    assert TOO_LARGE in response.get_data(as_text=True)
    assert len(response.get_data()) < 20_000
    assert body.read_bytes <= MAX_REQUEST_SIZE + READ_AHEAD
    assert count(app, "Ticket") == 0
    assert inbox.messages == []


@pytest.mark.one_database
@pytest.mark.parametrize("kind", list(CONTENT_TYPES))
def test_a_chunked_ten_megabyte_reply_is_413_and_stores_nothing(
    app: Flask, alice: Client, inbox: Inbox, ticket_id: int, kind: str
) -> None:
    body = form_body({"csrf_token": alice.csrf()}, "body", TEN_MEGABYTES, kind)

    response = post_chunked(alice, f"/ticket/{ticket_id}", body, CONTENT_TYPES[kind])

    assert response.status_code == 413
    assert body.read_bytes <= MAX_REQUEST_SIZE + READ_AHEAD
    assert count(app, "Reply") == 0
    assert inbox.messages == []


@pytest.mark.parametrize("kind", list(CONTENT_TYPES))
def test_a_small_chunked_form_still_works(
    app: Flask, alice: Client, inbox: Inbox, kind: str
) -> None:
    fields = {"csrf_token": alice.csrf(), **GOOD_TICKET}
    body = form_body({k: v for k, v in fields.items() if k != "body"}, "body", 100, kind)

    response = post_chunked(alice, "/ticket/submit", body, CONTENT_TYPES[kind])

    assert response.status_code == 303
    assert count(app, "Ticket") == 1
    assert [m.subject for m in inbox.to(STAFF)] != []


@pytest.mark.one_database
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "sized"])
def test_a_json_body_is_still_415_and_stores_nothing(
    app: Flask, alice: Client, inbox: Inbox, chunked: bool
) -> None:
    data = json.dumps({**GOOD_TICKET, "csrf_token": alice.csrf(), "title": 12345}).encode()
    if chunked:
        response = post_chunked(alice, "/ticket/submit", Body(data, 0), "application/json")
    else:
        response = alice.http.post("/ticket/submit", data=data, content_type="application/json")

    assert response.status_code == 415
    assert count(app, "Ticket") == 0
    assert inbox.messages == []


@pytest.mark.one_database
@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 10_000}], indirect=True)
def test_a_smaller_max_content_length_of_the_host_holds_for_chunked_bodies_too(
    app: Flask, alice: Client, inbox: Inbox
) -> None:
    # A good ticket whose description runs past the limit: Werkzeug 3 alone would read up to
    # the limit, parse that and store the description cut short.
    fields = {"csrf_token": alice.csrf(), **GOOD_TICKET}
    del fields["body"]
    body = form_body(fields, "body", 15_000, "urlencoded")

    response = post_chunked(alice, "/ticket/submit", body, CONTENT_TYPES["urlencoded"])

    assert response.status_code == 413
    assert body.read_bytes <= 10_000 + READ_AHEAD
    assert count(app, "Ticket") == 0
    assert inbox.messages == []


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 10_000}], indirect=True)
def test_a_chunked_form_of_exactly_the_hosts_limit_is_accepted(app: Flask, alice: Client) -> None:
    fields = {"csrf_token": alice.csrf(), **GOOD_TICKET}
    del fields["body"]
    head = f"{urlencode(fields)}&body=".encode()
    body = Body(head, 10_000 - len(head))

    response = post_chunked(alice, "/ticket/submit", body, CONTENT_TYPES["urlencoded"])

    assert response.status_code == 303
    assert count(app, "Ticket") == 1


@pytest.mark.one_database
@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 50_000_000}], indirect=True)
def test_flaskets_cap_holds_when_the_hosts_limit_is_larger(app: Flask, alice: Client) -> None:
    sized = {**GOOD_TICKET, "csrf_token": alice.csrf(), "body": "b" * (MAX_REQUEST_SIZE + 1)}
    chunked = form_body({"csrf_token": alice.csrf()}, "body", TEN_MEGABYTES, "urlencoded")

    refused = [
        alice.http.post("/ticket/submit", data=sized).status_code,
        post_chunked(alice, "/ticket/submit", chunked, CONTENT_TYPES["urlencoded"]).status_code,
    ]

    assert refused == [413, 413]
    assert chunked.read_bytes <= MAX_REQUEST_SIZE + READ_AHEAD
    assert count(app, "Ticket") == 0


@pytest.mark.one_database
def test_the_hosts_own_pages_keep_their_own_limit(app: Flask) -> None:
    @app.post("/upload")
    def upload() -> str:
        return str(len(request.get_data()))

    body = Body(b"", 2_000_000)

    response = app.test_client().post(
        "/upload",
        content_type="application/octet-stream",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True},
    )

    assert response.get_data(as_text=True) == "2000000"


# Under the cap: a refused form comes back with what was typed, unless that is far too long


@pytest.mark.one_database
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "sized"])
@pytest.mark.parametrize("field", ["title", "body"])
def test_a_refused_ticket_never_echoes_a_huge_field(
    app: Flask, alice: Client, inbox: Inbox, field: str, chunked: bool
) -> None:
    fields = {"csrf_token": alice.csrf(), **GOOD_TICKET}
    del fields[field]
    size = 400_000
    if chunked:
        body = form_body(fields, field, size, "urlencoded")
        response = post_chunked(alice, "/ticket/submit", body, CONTENT_TYPES["urlencoded"])
    else:
        response = alice.http.post("/ticket/submit", data={**fields, field: "a" * size})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert NOT_SHOWN_AGAIN in page
    assert "a" * 1000 not in page
    assert len(page) < 20_000
    assert GOOD_TICKET["topic"] in page
    assert count(app, "Ticket") == 0
    assert inbox.messages == []


@pytest.mark.one_database
def test_a_refused_reply_far_too_long_is_not_echoed(
    app: Flask, alice: Client, inbox: Inbox, ticket_id: int
) -> None:
    response = alice.reply(ticket_id, "r" * 100_000)

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "A reply may be at most 20000 characters long." in page
    assert NOT_SHOWN_AGAIN in page
    assert "r" * 1000 not in page
    assert count(app, "Reply") == 0
    assert inbox.messages == []


@pytest.mark.one_database
@pytest.mark.parametrize(
    ("url", "field", "message"),
    [
        ("/ticket/submit", "body", "The description may be at most 20000 characters."),
        ("/ticket/{id}", "body", "A reply may be at most 20000 characters long."),
    ],
)
def test_a_text_a_little_too_long_comes_back_to_be_shortened(
    app: Flask, alice: Client, ticket_id: int, url: str, field: str, message: str
) -> None:
    text = "w" * 25_000
    data = {**GOOD_TICKET, field: text} if url == "/ticket/submit" else {field: text}

    response = alice.post(url.format(id=ticket_id), data)

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert text in page
    assert NOT_SHOWN_AGAIN not in page
