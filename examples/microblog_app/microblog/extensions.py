"""The host's own Flask extensions, created once and bound to each app in ``create_app``."""

from __future__ import annotations

from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from flasket.migrations import migrate_options

db = SQLAlchemy()
login = LoginManager()
mail = Mail()
migrate = Migrate(**migrate_options())
