"""Users' primary keys in URLs: the text of a key, and reading one back from a request.

A user's page and the ticket list's author filter name a user by primary key alone,
never by name (``/ticket/user/42``, ``?author_id=42``), whatever the type of the host's
key column. :mod:`flasket.views` reads keys with :func:`parse_user_key`;
:mod:`flasket.templating` writes them with :func:`key_text` and
:func:`needs_query_form`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import unfollow as unfollow_tokens
from .proxies import current_flasket

#: A primary key longer than this is no user's: the page answers 400 without a lookup.
MAX_KEY_LENGTH = 320


def key_text(key: Any) -> str:
    """A primary key as it appears in URLs: ``str()`` of it (a UUID in its canonical form).

    :param key: a value of the host's user primary key (an int, a str, a UUID ...).
    :return: its text.
    """
    return str(key)


def parse_user_key(text: str) -> Any:
    """``text`` as a value of the host's user primary key, or None when it is not one.

    Only the canonical spelling counts (``"42"``, not ``"042"`` or ``" 42"``), so a user has
    exactly one address.

    :param text: a key as a URL carries it (``/user/42``, ``?author_id=42``).
    :return: the key, of the primary key column's Python type; None when ``text`` is not
        the canonical spelling of one, or an integer the column cannot hold.
    :raises RuntimeError: outside an application context with Flasket initialised.
    """
    models = current_flasket.models
    column = getattr(models.user, models.user_pk)
    python_type = sa_python_type(column)
    try:
        key = unfollow_tokens.user_key(python_type, text)
    except (ValueError, TypeError, AttributeError):
        return None
    if isinstance(key, int) and not fits_key_column(column.type, key):
        return None
    return key if key_text(key) == text else None


def fits_key_column(column_type: Any, number: int) -> bool:
    """Whether an integer key column can hold ``number``: a larger one is no user's key.

    SQLAlchemy's SmallInteger, Integer and BigInteger are 16, 32 and 64-bit signed on every
    database Flasket supports; a database refuses a comparison with a larger number.

    :param column_type: the key column's SQLAlchemy type.
    :param number: an integer key.
    :return: True when the column can hold it; a column of another type is held to the
        64-bit signed range.
    """
    bits = 16 if isinstance(column_type, sa.SmallInteger) else 32
    if isinstance(column_type, sa.BigInteger) or not isinstance(column_type, sa.Integer):
        bits = 64
    return bool(-(2 ** (bits - 1)) <= number < 2 ** (bits - 1))


def sa_python_type(column: Any) -> type[Any]:
    """The Python type of a column's values (``int`` for an Integer column).

    :param column: a SQLAlchemy column or mapped attribute.
    :return: the type SQLAlchemy names for it.
    :raises NotImplementedError: for a column type with no Python type.
    """
    python_type: type[Any] = column.type.python_type
    return python_type


#: Characters a primary key may hold and still be a path segment of its own: no "/" (a
#: server would split it, or merge it with the next), and the key is not "." or ".." (which
#: browsers resolve, also percent-encoded: WHATWG URL Standard, "single-dot and double-dot
#: URL path segments").
_SEGMENT_UNSAFE = frozenset({"", ".", ".."})


def needs_query_form(key: str) -> bool:
    """Whether a key goes in the user page's query rather than its path.

    See :func:`flasket.templating.user_url`.

    :param key: a key's text (:func:`key_text`).
    :return: True for an empty key, ``.``, ``..`` and a key holding ``/``.
    """
    return key in _SEGMENT_UNSAFE or "/" in key
