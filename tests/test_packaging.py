"""What ``pip install flasket`` gives an integrator: metadata, package data, a working install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "flasket"
FLASK_DEPENDENCIES = {"flask", "flask-sqlalchemy", "flask-wtf", "flask-login", "flask-mail"}
#: Copied with the source tree would be slow (.venv) or stale (earlier build output).
NOT_SOURCE = (".venv", ".git", "build", "dist", "*.egg-info", "*_cache", "__pycache__", "*.db")


def pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")
    with (ROOT / "pyproject.toml").open("rb") as file:
        data: dict[str, Any] = tomllib.load(file)["project"]
    return data


def test_pyproject_names_the_package_and_supported_pythons() -> None:
    project = pyproject()
    assert project["name"] == "flasket"
    assert project["requires-python"] == ">=3.10"


def test_dependencies_have_lower_bounds_only() -> None:
    dependencies = [Requirement(line) for line in pyproject()["dependencies"]]
    names = {canonicalize_name(requirement.name) for requirement in dependencies}
    assert names >= FLASK_DEPENDENCIES
    for requirement in dependencies:
        operators = {spec.operator for spec in requirement.specifier}
        assert operators == {">="}, f"{requirement} should only have a lower bound"


def test_readme_named_by_pyproject_exists() -> None:
    readme = pyproject()["readme"]
    assert isinstance(readme, str)
    assert (ROOT / readme).is_file()


def run(command: list[str], timeout: float = 600, **kwargs: Any) -> str:
    """Run a command; on failure, show what it printed."""
    try:
        done = subprocess.run(
            command, check=True, capture_output=True, text=True, timeout=timeout, **kwargs
        )
    except subprocess.CalledProcessError as error:
        print(error.stdout)
        print(error.stderr, file=sys.stderr)
        raise
    return done.stdout


def clean_environment() -> dict[str, str]:
    """The environment minus anything that would let the repo or our venv leak in."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(name, None)
    return env


def package_files(folder: str) -> set[str]:
    base = PACKAGE / folder
    return {
        path.relative_to(ROOT).as_posix()
        for path in base.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


INSTALLED_APP = textwrap.dedent(
    """
    import sys
    import sysconfig
    from pathlib import Path

    import flasket
    from flask import Flask, redirect, request
    from flask_login import LoginManager, UserMixin, login_user
    from flask_sqlalchemy import SQLAlchemy
    from jinja2 import StrictUndefined
    from sqlalchemy.orm import Mapped, mapped_column

    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    location = Path(flasket.__file__).resolve()
    assert location.is_relative_to(site_packages), (location, site_packages)
    assert Path(sys.prefix).resolve() == Path(sys.argv[1]).resolve(), sys.prefix

    db = SQLAlchemy()
    login = LoginManager()


    class User(UserMixin, db.Model):
        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(db.String(64))
        email: Mapped[str] = mapped_column(db.String(120))


    @login.user_loader
    def load_user(user_id):
        return db.session.get(User, int(user_id))


    app = Flask(__name__)
    app.jinja_env.undefined = StrictUndefined
    app.config.update(
        SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://", WTF_CSRF_ENABLED=False
    )
    db.init_app(app)
    login.init_app(app)
    login.login_view = "log_in"


    @app.post("/login")
    def log_in():
        login_user(db.session.execute(db.select(User)).scalar_one())
        return redirect("/")


    flasket.init_flasket(app, db, User)
    with app.app_context():
        db.create_all()
        db.session.add(User(username="alice", email="alice@example.test"))
        db.session.commit()

    client = app.test_client()
    anonymous = client.get("/ticket/submit")
    assert anonymous.status_code == 302, anonymous.status_code
    assert anonymous.headers["Location"].startswith("/login"), anonymous.headers
    assert client.post("/login").status_code == 302
    page = client.get("/ticket/submit")
    assert page.status_code == 200, page.status_code
    assert "Submit a ticket" in page.get_data(as_text=True)
    with client.get("/ticket/static/flasket/flasket.css") as css:
        assert css.status_code == 200, css.status_code
        assert css.mimetype == "text/css"
        assert b".flasket" in css.data
    created = client.post(
        "/ticket/submit",
        data={
            "title": "Installed",
            "body": "From the wheel.",
            "urgency": "Low",
            "application": "API",
            "topic": "Question",
        },
    )
    assert created.status_code == 303, created.get_data(as_text=True)
    assert "Installed" in client.get(created.headers["Location"]).get_data(as_text=True)
    print("installed flasket works from", location)
    """
)


@pytest.mark.slow
def test_wheel_carries_package_data_and_works_installed_in_a_fresh_virtualenv(
    tmp_path: Path,
) -> None:
    # Build from a copy so the shared checkout gets no build/ or egg-info changes.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)])
    (wheel,) = dist.glob("flasket-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        contents = set(archive.namelist())
    templates = package_files("templates/flasket")
    assert {
        f"flasket/templates/flasket/{name}"
        for name in ("layout.html", "submit.html", "email/created.txt", "email/created.html")
    } <= templates
    assert any(name.endswith(".txt") for name in templates)
    expected = templates | {"flasket/py.typed", "flasket/static/flasket/flasket.css"}
    missing = expected - contents
    assert not missing, f"missing from the wheel: {sorted(missing)}"

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = clean_environment()
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], env=env, cwd=tmp_path)

    script = tmp_path / "host_app.py"
    script.write_text(INSTALLED_APP)
    output = run([str(python), str(script), str(venv)], env=env, cwd=tmp_path)
    assert "installed flasket works from" in output
