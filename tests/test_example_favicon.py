"""The demo names its icon, so browsers find one instead of logging a 404 for /favicon.ico."""

from __future__ import annotations

import re
from types import ModuleType

from flask import Flask


def test_the_demo_pages_link_an_icon_the_demo_serves(microblog: ModuleType) -> None:
    app: Flask = microblog.create_app(
        {"SQLALCHEMY_DATABASE_URI": "sqlite://", "MAIL_SERVER": None}
    )
    client = app.test_client()

    page = client.get("/auth/login").get_data(as_text=True)
    match = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    assert match, "no icon link in the demo's layout"

    with client.get(match.group(1)) as icon:
        assert icon.status_code == 200
        assert icon.mimetype == "image/svg+xml"
        assert icon.get_data(as_text=True).lstrip().startswith("<svg")
