"""One-click unfollow links: signed, expiring tokens naming one ticket and one user.

The token is the credential: whoever holds the e-mail may stop it, without
logging in. It is signed with the app's ``SECRET_KEY`` and a Flasket salt,
expires after ``FLASKET_UNFOLLOW_MAX_AGE`` seconds, and names exactly one
``(ticket, user)`` pair, so it can unfollow nothing else. The ticket is named by
its :attr:`~flasket.models.TicketBase.mail_key` (number and creation time), so a
token for a deleted ticket does not act on a later ticket given the same number.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from .config import config_value
from .i18n import gettext

#: The itsdangerous salt of unfollow tokens: a token signed for anything else with the
#: same ``SECRET_KEY`` is not an unfollow token.
SALT = "flasket.unfollow"


class BadUnfollowToken(ValueError):
    """The link was altered, has expired, or was not made by this app.

    Raised by :func:`read_token` and :func:`ticket_number`; the message is for a person.
    """


def _serializer() -> URLSafeTimedSerializer:
    secret = current_app.config.get("SECRET_KEY")
    if not secret:
        raise RuntimeError("Flasket's unfollow links need the app's SECRET_KEY.")
    return URLSafeTimedSerializer(secret, salt=SALT)


def _json_id(user_id: Any) -> Any:
    return user_id if isinstance(user_id, (int, str)) else str(user_id)


def make_token(ticket_key: str, user_id: Any) -> str:
    """A signed token naming one ticket (by its ``mail_key``) and one user (by primary key).

    :param ticket_key: the ticket's :attr:`~flasket.models.TicketBase.mail_key`.
    :param user_id: the user's primary key (int, str, UUID, ...; sent as JSON or text).
    :return: a URL-safe token (itsdangerous ``URLSafeTimedSerializer``, signed with
        ``SECRET_KEY`` and :data:`SALT`, time-stamped), to put in a link's path.
    :raises RuntimeError: when the app has no ``SECRET_KEY``.
    """
    return _serializer().dumps([ticket_key, _json_id(user_id)])


def ticket_number(ticket_key: str) -> int:
    """The ticket number at the start of a ``mail_key`` (``"<number>.<stamp>"``).

    :param ticket_key: a ``mail_key`` as :func:`read_token` returned it.
    :return: the ticket's number (its primary key).
    :raises BadUnfollowToken: when ``ticket_key`` does not start with 1 to 12 ASCII
        digits, a dot and a stamp.
    """
    number, _, stamp = ticket_key.partition(".")
    if not (number.isascii() and number.isdigit() and stamp) or len(number) > 12:
        raise BadUnfollowToken(gettext("This unfollow link is not valid."))
    return int(number)


def read_token(token: str) -> tuple[str, Any]:
    """The ``(ticket_key, user_id)`` a token names.

    :param token: a token made by :func:`make_token`, as the link carried it.
    :return: the ticket's ``mail_key`` and the user's id as JSON carried it (int or str;
        see :func:`user_key`).
    :raises RuntimeError: when the app has no ``SECRET_KEY``.
    :raises BadUnfollowToken: when the token was altered, has expired (after
        ``FLASKET_UNFOLLOW_MAX_AGE`` seconds) or was not made by this app.
    """
    try:
        payload = _serializer().loads(token, max_age=config_value("unfollow_max_age"))
    except SignatureExpired:
        raise BadUnfollowToken(gettext("This unfollow link has expired.")) from None
    except BadData:
        raise BadUnfollowToken(gettext("This unfollow link is not valid.")) from None
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not isinstance(payload[0], str)
        or not isinstance(payload[1], (int, str))
    ):
        raise BadUnfollowToken(gettext("This unfollow link is not valid."))
    return payload[0], payload[1]


def user_key(python_type: type[Any], value: Any) -> Any:
    """Turn a token's user id back into the type of the host's primary key.

    :param python_type: the Python type of the user model's primary key (``int``, ``str``,
        :class:`uuid.UUID`, ...).
    :param value: the user id :func:`read_token` returned (int or str).
    :return: ``python_type(value)``; for a UUID, ``uuid.UUID(str(value))``.
    :raises ValueError: when ``value`` is not text of that type (``int("x")``, a malformed
        UUID).
    """
    if python_type is uuid.UUID:
        return uuid.UUID(str(value))
    return python_type(value)
