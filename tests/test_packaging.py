"""What ``pip install flasket-desk`` gives an integrator: metadata, package data, an install."""

from __future__ import annotations

import importlib.metadata
import os
import re
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
#: On PyPI, ``flasket`` is an unrelated project; the import package is still ``flasket``.
DISTRIBUTION = "flasket-desk"
#: The oldest version of each dependency, which scripts/test installs and tests.
MINIMUM_CONSTRAINTS = ROOT / "constraints" / "minimum.txt"
FLASK_DEPENDENCIES = {"flask", "flask-sqlalchemy", "flask-wtf", "flask-login", "flask-mail"}
#: Copied with the source tree would be slow (.venv) or stale (earlier build output).
NOT_SOURCE = (
    ".venv",
    ".venv-floors",
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "*_cache",
    "__pycache__",
    "*.db",
)


def pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")
    with (ROOT / "pyproject.toml").open("rb") as file:
        data: dict[str, Any] = tomllib.load(file)["project"]
    return data


def test_pyproject_names_the_package_and_supported_pythons() -> None:
    project = pyproject()
    assert project["name"] == DISTRIBUTION
    assert project["requires-python"] == ">=3.10"


def test_extras_that_name_the_project_use_its_distribution_name() -> None:
    extras = pyproject()["optional-dependencies"]
    own = [
        Requirement(line)
        for lines in extras.values()
        for line in lines
        if Requirement(line).name.lower().startswith("flasket")
    ]
    assert own, "the dev extra should pull in the test extra"
    assert {canonicalize_name(requirement.name) for requirement in own} == {DISTRIBUTION}


def test_version_comes_from_the_installed_distribution() -> None:
    import flasket

    assert flasket.__version__ == importlib.metadata.version(DISTRIBUTION)
    assert flasket.__version__ == pyproject()["version"]


def test_dependencies_have_lower_bounds_only() -> None:
    dependencies = [Requirement(line) for line in pyproject()["dependencies"]]
    names = {canonicalize_name(requirement.name) for requirement in dependencies}
    assert names >= FLASK_DEPENDENCIES
    for requirement in dependencies:
        operators = {spec.operator for spec in requirement.specifier}
        assert operators == {">="}, f"{requirement} should only have a lower bound"


def minimum_constraints() -> dict[str, str]:
    """``constraints/minimum.txt`` as {canonical name: pinned version}."""
    pins: dict[str, str] = {}
    for line in MINIMUM_CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.]+)", text)
        assert match, f"{line!r} in {MINIMUM_CONSTRAINTS.name} is not name==version"
        name = canonicalize_name(match[1])
        assert name not in pins, f"{name} is pinned twice"
        pins[name] = match[2]
    return pins


def test_every_lower_bound_is_the_version_the_floors_job_installs() -> None:
    project = pyproject()
    lines = [*project["dependencies"], *project["optional-dependencies"]["rq"]]
    bounds: dict[str, str] = {}
    for requirement in map(Requirement, lines):
        (spec,) = requirement.specifier
        bounds[canonicalize_name(requirement.name)] = spec.version
    pins = minimum_constraints()
    assert {name: pins.get(name) for name in bounds} == bounds
    # The test extra is installed with the same constraints: its floors may not be higher.
    for requirement in map(Requirement, project["optional-dependencies"]["test"]):
        name = canonicalize_name(requirement.name)
        if name in pins:
            assert requirement.specifier.contains(pins[name]), (requirement, pins[name])


def test_the_test_command_runs_the_suite_on_the_minimum_versions() -> None:
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert "-c constraints/minimum.txt" in script
    assert ".venv-floors/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


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
    return str(done.stdout)


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

    import importlib.metadata

    import flasket
    from flask import Flask, redirect, request
    from flask_login import LoginManager, UserMixin, login_user
    from flask_mail import Mail
    from flask_sqlalchemy import SQLAlchemy
    from jinja2 import StrictUndefined
    from sqlalchemy.orm import Mapped, mapped_column

    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    location = Path(flasket.__file__).resolve()
    assert location.is_relative_to(site_packages), (location, site_packages)
    assert Path(sys.prefix).resolve() == Path(sys.argv[1]).resolve(), sys.prefix
    assert flasket.__version__ == importlib.metadata.version("flasket-desk"), flasket.__version__

    db = SQLAlchemy()
    login = LoginManager()
    mail = Mail()


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
        SECRET_KEY="x",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        WTF_CSRF_ENABLED=False,
        MAIL_DEFAULT_SENDER="support@example.test",
        MAIL_SUPPRESS_SEND=True,
        FLASKET_BASE_URL="https://example.test",
    )
    db.init_app(app)
    login.init_app(app)
    mail.init_app(app)
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
    (wheel,) = dist.glob("flasket_desk-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        contents = set(archive.namelist())
        (metadata_file,) = (name for name in contents if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_file).decode("utf-8")
    headers = metadata.split("\n\n", 1)[0].splitlines()
    assert f"Name: {DISTRIBUTION}" in headers, headers[:3]
    assert f"Version: {pyproject()['version']}" in headers, headers[:3]
    templates = package_files("templates/flasket")
    assert {
        f"flasket/templates/flasket/{name}"
        for name in ("layout.html", "submit.html", "email/created.txt", "email/created.html")
    } <= templates
    assert any(name.endswith(".txt") for name in templates)
    catalogs = {
        name for name in package_files("translations") if name.endswith((".mo", ".po", ".pot"))
    }
    assert "flasket/translations/de/LC_MESSAGES/flasket.mo" in catalogs
    static = {"flasket/static/flasket/flasket.css", "flasket/static/flasket/flasket-bootstrap.css"}
    expected = templates | catalogs | {"flasket/py.typed"} | static
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
