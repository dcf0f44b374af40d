"""The microblog's settings; every secret and server can come from the environment."""

import os

from flasket.i18n import browser_locale


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY") or "microblog-demo-only-secret"

    # A relative SQLite path lands in the instance folder: examples/microblog_app/instance/.
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or "sqlite:///microblog.db"

    # Without MAIL_SERVER nothing is delivered: mails are printed and kept for /mailbox.
    MAIL_SERVER = os.environ.get("MAIL_SERVER")
    MAIL_PORT = int(os.environ.get("MAIL_PORT") or 25)
    MAIL_USE_TLS = os.environ.get("MAIL_USE_TLS") is not None
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER") or (
        "Microblog Support <support@example.com>"
    )

    POSTS_PER_PAGE = 20
    MAILBOX_LIMIT = 50
    # The login page lists the seeded accounts; turn this off anywhere but a demo.
    SHOW_DEMO_LOGINS = os.environ.get("SHOW_DEMO_LOGINS", "1") != "0"

    # Flasket: where users reach the site (links in e-mails point there, never at the Host
    # header of a request); scripts/demo sets it from PORT.
    FLASKET_BASE_URL = os.environ.get("FLASKET_BASE_URL") or "http://127.0.0.1:5000"
    # Flasket: ticket pages wear this site's layout; new tickets are mailed to the admin.
    FLASKET_BASE_TEMPLATE = "base.html"
    FLASKET_STAFF_RECIPIENTS = ("admin@example.com",)
    FLASKET_SUBJECT_PREFIX = "[Microblog]"
    # Flasket: its pages speak the browser's language (this site itself is English only).
    FLASKET_LOCALE_SELECTOR = browser_locale
