"""``current_flasket``: the current app's Flasket, for every module of the package.

It depends on nothing of Flasket's but :mod:`flasket.state`, so any module may import it
without an import cycle (the way Flask-Security keeps its proxies apart).
"""

from __future__ import annotations

from typing import cast

from flask import current_app
from werkzeug.local import LocalProxy

from .state import FlasketState

#: The key of the extension in ``app.extensions``.
EXTENSION_NAME = "flasket"


def _current() -> FlasketState:
    try:
        return cast(FlasketState, current_app.extensions[EXTENSION_NAME])
    except KeyError:
        raise RuntimeError(
            "Flasket is not registered on this app: call init_flasket(app, ...)"
        ) from None


#: The current app's :class:`flasket.Flasket` (in an app context).
#:
#: :raises RuntimeError: on use outside an app context, or in an app without Flasket.
current_flasket: FlasketState = cast(FlasketState, LocalProxy(_current))
