"""Absolute URLs for mail, built from configuration and never from the request.

A link in an e-mail outlives the request that caused it and goes to people who
did not send that request, so its host cannot come from the request's ``Host``
header (which whoever sends the request chooses) nor need a request at all:
:func:`external_url` routes against :func:`flasket.config.link_root`
(``FLASKET_BASE_URL``, else ``SERVER_NAME`` with ``PREFERRED_URL_SCHEME``), in a
request, a CLI command or a worker alike.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from .config import link_root


def external_url(endpoint: str, **values: Any) -> str:
    """The absolute URL of ``endpoint`` with ``values``, at the configured link root.

    The app's ``url_defaults`` apply as they do for ``url_for``; a request, if any,
    plays no part. Needs an app context.

    :param endpoint: a Flask endpoint name, such as ``"flasket.ticket"``.
    :param values: the endpoint's URL arguments; a name the rule does not use becomes a
        query parameter, as with ``url_for``.
    :return: an absolute URL (scheme, host, script root, path and query).
    :raises flasket.config.ConfigError: when no link root is configured.
    :raises werkzeug.routing.BuildError: when ``endpoint`` cannot be built with ``values``.
    """
    root = link_root()
    adapter = current_app.url_map.bind(
        root.host, script_name=root.script_name, url_scheme=root.scheme
    )
    current_app.inject_url_defaults(endpoint, values)
    return adapter.build(endpoint, values, force_external=True)
