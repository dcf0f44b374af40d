"""The benchmark's host app for gunicorn: ``FLASKET_BENCH_DB=<url> gunicorn bench.wsgi:app``."""

from __future__ import annotations

import os

from bench.bench import build_app

app = build_app(os.environ["FLASKET_BENCH_DB"], mail_suppress=True)
