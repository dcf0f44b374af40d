"""The host's own Flask extensions, created once and bound to each app in ``create_app``."""

from __future__ import annotations

from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from flasket.migrations import include_object, process_revision_directives, render_item

db = SQLAlchemy()
login = LoginManager()
mail = Mail()
migrate = Migrate(
    include_object=include_object,
    render_item=render_item,
    process_revision_directives=process_revision_directives,
)
