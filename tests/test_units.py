"""Pure functions, tested alone: no host app, no database, no mail server.

Each function here is also exercised through pages and mail elsewhere; these tests pin down
its own contract (edges, errors, properties) where a failure names the function at fault.
"""

from __future__ import annotations

import smtplib
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from flasket import outbox, search, smtp
from flasket.config import (
    DEFAULT_RESPONSE_HEADERS,
    ConfigError,
    LinkRoot,
    parse_base_url,
    parse_categories,
    parse_response_headers,
)
from flasket.templating import exact_time, relative_time

# Retry delays: base, doubled per failed attempt, capped


def delay(attempts: int, base: float = 60, cap: float = 6 * 3600) -> float:
    """``outbox.retry_delay`` under the given settings (it reads them from the current app)."""
    app = Flask(__name__)
    app.config.update(FLASKET_DELIVERY_RETRY_BASE=base, FLASKET_DELIVERY_RETRY_CAP=cap)
    with app.app_context():
        return outbox.retry_delay(attempts)


def test_the_first_retry_waits_the_base_and_each_next_one_twice_as_long() -> None:
    assert [delay(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]


def test_retries_wait_at_most_the_cap() -> None:
    assert delay(9) == 60 * 2**8 < 6 * 3600
    assert delay(10) == 6 * 3600
    assert delay(1000) == 6 * 3600
    assert delay(3, base=10, cap=25) == 25


def test_any_number_of_attempts_waits_the_cap() -> None:
    """FLASKET_DELIVERY_MAX_ATTEMPTS has no upper bound, nor do a stalled mailbox's stalls."""
    assert delay(1026) == delay(10**9) == 6 * 3600
    assert delay(10**9, base=0) == 0


def test_an_attempt_count_below_one_waits_the_base() -> None:
    assert delay(0) == delay(-5) == 60


@given(
    attempts=st.integers(min_value=1, max_value=200),
    base=st.floats(min_value=0.001, max_value=3600),
    cap=st.floats(min_value=0.001, max_value=10**6),
)
def test_retry_delays_grow_never_shrink_and_stay_between_base_and_cap(
    attempts: int, base: float, cap: float
) -> None:
    first, later = delay(attempts, base, cap), delay(attempts + 1, base, cap)

    assert first <= later <= cap
    assert later >= min(base, cap)
    assert later == min(cap, 2 * first) or first == cap


# Relative times on pages


NOW = datetime.now(timezone.utc)


@pytest.mark.parametrize(
    ("ago", "shown"),
    [
        (timedelta(seconds=0), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(seconds=61), "1 minute ago"),
        (timedelta(minutes=5, seconds=10), "5 minutes ago"),
        (timedelta(minutes=59, seconds=59), "59 minutes ago"),
        (timedelta(hours=1, minutes=1), "1 hour ago"),
        (timedelta(hours=23, minutes=1), "23 hours ago"),
        (timedelta(days=1, minutes=1), "1 day ago"),
        (timedelta(days=6, hours=23), "6 days ago"),
    ],
)
def test_a_recent_time_reads_as_how_long_ago(ago: timedelta, shown: str) -> None:
    assert relative_time(datetime.now(timezone.utc) - ago) == shown


def test_a_time_a_week_ago_or_older_reads_as_its_date() -> None:
    value = datetime(2024, 3, 5, 14, 30, tzinfo=timezone.utc)

    assert relative_time(value) == "Mar 5, 2024"
    assert exact_time(value) == "Mar 5, 2024, 2:30\N{NARROW NO-BREAK SPACE}PM UTC"


def test_exact_times_are_shown_in_utc_whatever_the_zone_given() -> None:
    value = datetime(2024, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))

    assert exact_time(value) == "Jan 1, 2025, 1:30\N{NARROW NO-BREAK SPACE}AM UTC"


def test_a_time_in_the_future_reads_as_just_now() -> None:
    assert relative_time(datetime.now(timezone.utc) + timedelta(hours=2)) == "just now"


@given(st.integers(min_value=60, max_value=7 * 86400 - 1))
def test_every_time_within_the_week_says_ago_with_a_count_from_1(seconds: int) -> None:
    shown = relative_time(datetime.now(timezone.utc) - timedelta(seconds=seconds))

    count, unit, ago = shown.split()
    assert ago == "ago"
    assert int(count) >= 1
    assert unit in ("minute", "minutes", "hour", "hours", "day", "days")
    assert unit.endswith("s") == (int(count) != 1)


# Search words: folded, split on anything but letters and digits


def test_words_are_lower_cased_and_split_on_punctuation_and_underscores() -> None:
    assert search.words("Printer ON_fire, v2.0!") == ["printer", "on", "fire", "v2", "0"]


def test_words_lose_their_accents_and_final_sigma() -> None:
    assert search.words("Café NAÏVE σοφός ΣΟΦΌΣ") == ["cafe", "naive", "σοφοσ", "σοφοσ"]


def test_words_of_composed_and_decomposed_forms_are_the_same() -> None:
    composed = "Ångström"
    decomposed = unicodedata.normalize("NFD", composed)

    assert search.words(composed) == search.words(decomposed) == ["angstrom"]


def test_at_most_ten_words_are_searched_for() -> None:
    query = " ".join(f"w{n}" for n in range(15))

    assert search.words(query) == [f"w{n}" for n in range(search.MAX_WORDS)]


def test_a_query_of_punctuation_alone_has_no_words() -> None:
    assert search.words("%_\\ -- ...") == []


@given(st.text(max_size=60))
def test_words_are_folded_and_folding_them_again_changes_nothing(query: str) -> None:
    found = search.words(query)

    assert len(found) <= search.MAX_WORDS
    for word in found:
        assert word
        assert all(char.isalnum() for char in word)
        assert search.words(word) == [word]
        assert word == unicodedata.normalize("NFC", word)


def test_typed_forms_keep_the_word_as_it_was_written_in_lower_case() -> None:
    assert search.typed_forms("Σοφός café") == {"σοφοσ": "σοφός", "cafe": "café"}


def test_typed_forms_keep_the_first_spelling_of_a_repeated_word() -> None:
    assert search.typed_forms("Café cafe CAFÉ") == {"cafe": "café"}


@given(st.text(max_size=40))
def test_every_typed_form_folds_to_its_word(query: str) -> None:
    for word, typed in search.typed_forms(query).items():
        assert search.words(typed) == [word]


def test_spellings_offer_the_other_german_sharp_s() -> None:
    assert search.spellings("strasse") == ["strasse", "straße"]
    assert search.spellings("straße") == ["straße", "strasse"]
    assert search.spellings("printer") == ["printer"]


@given(st.text(alphabet="abß s", max_size=12))
def test_spellings_start_with_the_word_and_repeat_none(word: str) -> None:
    found = search.spellings(word)

    assert found[0] == word
    assert len(found) == len(set(found))


@pytest.mark.parametrize(
    ("word", "unspaced"),
    [
        ("東京", True),
        ("ひらがな", True),
        ("カタカナ", True),
        ("ภาษาไทย", True),
        ("ｶﾀｶﾅ", True),
        ("abc東", True),
        ("printer", False),
        ("москва", False),
        ("한국어", False),
        ("", False),
    ],
)
def test_scripts_written_without_spaces_are_recognised(word: str, unspaced: bool) -> None:
    assert search.is_unspaced(word) is unspaced


# Categories: FLASKET_CATEGORIES parsed and checked


def test_categories_keep_their_order_and_labels() -> None:
    [urgency, topic] = parse_categories(
        [
            {"name": "urgency", "label": "Urgency", "choices": ["Low", "High"], "default": "Low"},
            {"name": "topic", "label": "Topic", "choices": [("bug", "Bug report"), "Other"]},
        ]
    )

    assert (urgency.name, urgency.label, urgency.values, urgency.default) == (
        "urgency",
        "Urgency",
        ("Low", "High"),
        "Low",
    )
    assert topic.choices == (("bug", "Bug report"), ("Other", "Other"))
    assert topic.label_for("bug") == "Bug report"
    assert topic.label_for("gone") == "gone"


def test_no_categories_is_allowed() -> None:
    assert parse_categories([]) == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("urgency", "must be a list of category dicts"),
        ({"name": "urgency"}, "must be a list of category dicts"),
        (["urgency"], "must be a dict"),
        ([{"name": "not an identifier", "choices": ["a"]}], "must be a short identifier"),
        ([{"name": "x" * 41, "choices": ["a"]}], "must be a short identifier"),
        ([{"name": "urgency", "choices": []}], "needs at least one choice"),
        ([{"name": "urgency", "choices": ["a"]}] * 2, "is used by two categories"),
        ([{"name": "status", "choices": ["a"]}], "is taken by the ticket list's own"),
        ([{"name": "urgency", "choices": ["a"], "colour": "red"}], "colour"),
        ([{"name": "urgency", "choices": ["a", "b", "a"]}], "the choice 'a' is given twice"),
        ([{"name": "urgency", "choices": ["a"], "widget": "slider"}], "widget must be one of"),
        ([{"name": "urgency", "choices": [""]}], "choice values are 1 to 100 characters"),
        ([{"name": "urgency", "choices": [("a", "b", "c")]}], "a string or a .value, label. pair"),
        (
            [{"name": "urgency", "choices": ["a", "b"], "default": "c"}],
            "default 'c' is not one of its choices",
        ),
    ],
)
def test_a_category_list_flasket_cannot_use_is_refused_saying_why(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_categories(raw)


# Response headers: the setting merged over the defaults


def test_response_headers_default_to_the_protective_ones() -> None:
    assert parse_response_headers({}) == DEFAULT_RESPONSE_HEADERS
    assert parse_response_headers(False) == {}


def test_a_header_set_in_another_case_replaces_the_default() -> None:
    headers = parse_response_headers({"x-frame-options": "DENY", "Cache-Control": None})

    assert headers["x-frame-options"] == "DENY"
    assert "X-Frame-Options" not in headers
    assert "Cache-Control" not in headers


@given(
    st.dictionaries(
        st.sampled_from([*DEFAULT_RESPONSE_HEADERS, "X-Extra", "x-frame-options"]),
        st.one_of(st.none(), st.text(alphabet="abc ;=-'", min_size=1, max_size=20)),
        max_size=4,
    ).filter(lambda raw: len({name.lower() for name in raw}) == len(raw))
)
def test_merged_headers_hold_each_value_set_and_each_default_not_named(
    raw: dict[str, str | None],
) -> None:
    headers = parse_response_headers(raw)

    named = {name.lower() for name in raw}
    for name, value in DEFAULT_RESPONSE_HEADERS.items():
        if name.lower() not in named:
            assert headers[name] == value
    for name, given_value in raw.items():
        assert headers.get(name) == given_value
    assert len({name.lower() for name in headers}) == len(headers)


# FLASKET_BASE_URL


@pytest.mark.parametrize(
    ("value", "root"),
    [
        ("https://example.com", LinkRoot("https", "example.com", "/")),
        ("HTTPS://Example.COM/", LinkRoot("https", "example.com", "/")),
        ("http://example.com:8080/app/", LinkRoot("http", "example.com:8080", "/app")),
        ("https://example.com/hélp", LinkRoot("https", "example.com", "/h%C3%A9lp")),
    ],
)
def test_a_base_url_is_read_as_scheme_host_and_path(value: str, root: LinkRoot) -> None:
    assert parse_base_url(value) == root


def test_a_base_url_root_is_one_url_without_a_trailing_slash() -> None:
    assert parse_base_url("https://example.com/app/").url == "https://example.com/app"
    assert parse_base_url("https://example.com").url == "https://example.com"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "is not a string"),
        ("example.com", "is not an absolute http"),
        ("ftp://example.com", "is not an absolute http"),
        ("https://exa mple.com", "holds a space"),
        ("https://example.com:0", "has port 0"),
        ("https://example.com:99999", "has a port that is not a number"),
        ("https://user:pw@example.com", "holds a user name"),
        ("https://example.com/?x=1", "has a query or a fragment"),
        ("https://example.com/#top", "has a query or a fragment"),
    ],
)
def test_a_base_url_flasket_cannot_use_is_refused_saying_why(value: Any, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_base_url(value)


# SMTP: envelope addresses and the verdict on each error


@pytest.mark.parametrize(
    ("given_address", "sent", "utf8"),
    [
        ("alice@example.com", "alice@example.com", False),
        ("alice@example.com.", "alice@example.com", False),
        ("alice@bücher.example", "alice@xn--bcher-kva.example", False),
        ("jörg@example.com", "jörg@example.com", True),
        ('"john doe"@example.com', '"john doe"@example.com', False),
        ("x@[192.0.2.1]", "x@[192.0.2.1]", False),
        ("x@[IPv6:2001:db8::1]", "x@[IPv6:2001:db8::1]", False),
    ],
)
def test_an_address_is_sent_with_its_domain_in_ascii(
    given_address: str, sent: str, utf8: bool
) -> None:
    assert smtp.envelope_address(given_address) == smtp.EnvelopeAddress(sent, utf8)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("alice", "it has no @"),
        ("@example.com", "nothing before or after @"),
        ("alice@", "nothing before or after @"),
        ("al..ice@example.com", "local part is malformed"),
        ("a b@example.com", "local part is malformed"),
        ("x" * 65 + "@example.com", "longer than 64 octets"),
        ("x@" + "a" * 64 + ".com", "not a valid host name"),
        ("x@-bad-.com", "not a valid host name"),
        ("x@[300.1.1.1]", "not an IP address literal"),
        ("x" * 64 + "@" + ".".join(["a" * 63] * 3) + ".com", "longer than 254 octets"),
        ("x@" + ".".join(["a" * 60] * 5), "not a valid host name"),
    ],
)
def test_an_address_no_server_would_take_is_refused_saying_why(address: str, why: str) -> None:
    with pytest.raises(smtp.AddressError, match=why):
        smtp.envelope_address(address)


@given(
    st.from_regex(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}", fullmatch=True),
    st.lists(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True), min_size=1),
)
def test_every_plain_dot_atom_address_is_sent_as_written(local: str, labels: list[str]) -> None:
    address = f"{local}@{'.'.join(labels)}"
    if len(address) > 254:
        return

    assert smtp.envelope_address(address) == smtp.EnvelopeAddress(address, utf8=False)


def refused(*answers: tuple[str, int, bytes]) -> smtplib.SMTPRecipientsRefused:
    return smtplib.SMTPRecipientsRefused({to: (code, text) for to, code, text in answers})


@pytest.mark.parametrize(
    ("error", "connecting", "permanent", "scope"),
    [
        (ConnectionRefusedError("refused"), True, False, smtp.SERVER),
        (smtplib.SMTPResponseException(550, b"no"), True, False, smtp.SERVER),
        (smtp.AddressError("bad"), False, True, smtp.MESSAGE),
        (smtp.MessageError("too big"), False, True, smtp.MESSAGE),
        (refused(("a@x.test", 550, b"No such user")), False, True, smtp.MESSAGE),
        (refused(("a@x.test", 450, b"Busy")), False, False, smtp.MESSAGE),
        (refused(("a@x.test", 552, b"Too many recipients")), False, False, smtp.MESSAGE),
        (refused(("a@x.test", 550, b"Relaying denied")), False, False, smtp.SERVER),
        (refused(("a@x.test", 421, b"Closing")), False, False, smtp.CONNECTION),
        (smtplib.SMTPSenderRefused(550, b"Not you", "desk@x.test"), False, False, smtp.SERVER),
        (smtplib.SMTPSenderRefused(552, b"Too large", "desk@x.test"), False, True, smtp.MESSAGE),
        (smtplib.SMTPDataError(554, b"Rejected"), False, True, smtp.MESSAGE),
        (smtplib.SMTPDataError(451, b"Try later"), False, False, smtp.MESSAGE),
        (smtplib.SMTPResponseException(421, b"Bye"), False, False, smtp.CONNECTION),
        (smtplib.SMTPResponseException(500, b"Line too long."), False, False, smtp.CONNECTION),
        (smtplib.SMTPServerDisconnected("gone"), False, False, smtp.CONNECTION),
        (TimeoutError("slow"), False, False, smtp.CONNECTION),
        (RuntimeError("odd"), False, False, smtp.MESSAGE),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_each_error_is_permanent_or_not_with_its_scope(
    error: BaseException, connecting: bool, permanent: bool, scope: str
) -> None:
    found = smtp.verdict(error, connecting=connecting)

    assert (found.permanent, found.scope) == (permanent, scope)
    # Flasket's own errors say what is wrong in words; SMTP and network errors by their codes.
    own = isinstance(error, (smtp.AddressError, smtp.MessageError))
    assert (str(error) if own else smtp.describe(error)) in found.reason


def test_a_refused_sender_says_which_setting_to_check() -> None:
    found = smtp.verdict(smtplib.SMTPSenderRefused(553, b"Not local", "desk@x.test"))

    assert "refused the sender desk@x.test" in found.reason
    assert "FLASKET_MAIL_SENDER" in found.reason


def test_errors_are_described_on_one_line_with_their_codes() -> None:
    assert smtp.describe(refused(("a@x.test", 550, b"No such user"))) == (
        "recipient refused: 550 No such user (a@x.test)"
    )
    assert smtp.describe(smtplib.SMTPDataError(554, b"Rejal\xe9")) == (
        "SMTPDataError: 554 Rejal\ufffd"
    )
    assert smtp.describe(ConnectionResetError()) == "ConnectionResetError"
    assert smtp.describe(OSError("network down")) == "OSError: network down"
