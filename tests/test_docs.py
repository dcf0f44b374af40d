"""The docs against the code: the tables, settings and pages they name are the ones that exist.

The manual lives in docs/ (reStructuredText); the README keeps the requirements.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from packaging.requirements import Requirement
from packaging.version import Version

from flasket.config import DEFAULTS, PREFIX
from tests.helpers import ROOT
from tests.hostapp import create_app, db

DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: Three or more ``flasket_...`` names in a row ("``a``, ``b`` and ``c``"): tables, or blocks.
NAME_LIST = re.compile(r"``flasket_\w+``(?:(?:,\s*|,?\s+and\s+)``flasket_\w+``){2,}")
#: A row of the configuration list-table: ``* - ``FLASKET_KEY```` then ``- default``.
CONFIG_ROW = re.compile(r"^   \* - ``(FLASKET_[A-Z_]+)``\n     - ([^\n]*)$", re.MULTILINE)
#: The first cell of a list-table row.
FIRST_CELL = re.compile(r"^   \* - ([^\n]*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def host() -> Flask:
    return create_app()


def page(name: str) -> str:
    """The text of ``docs/<name>.rst``."""
    return (DOCS / f"{name}.rst").read_text(encoding="utf-8")


def name_lists(text: str) -> list[set[str]]:
    return [set(re.findall(r"``(flasket_\w+)``", found[0])) for found in NAME_LIST.finditer(text)]


def rst_section(text: str, title: str) -> str:
    """A reST page's text from the heading ``title`` to the next heading of the same level."""
    match = re.search(
        rf"^{re.escape(title)}\n([=\-~^])\1+\n(.*?)(?=^[^\n]+\n\1{{3,}}\n|\Z)",
        text,
        re.MULTILINE | re.DOTALL,
    )
    assert match, f"no section {title!r}"
    return match[2]


def md_section(text: str, title: str) -> str:
    """A Markdown text from the heading ``title`` to the next heading of the same level."""
    match = re.search(
        rf"^(#+) {re.escape(title)}\n(.*?)(?=^\1 |\Z)", text, re.MULTILINE | re.DOTALL
    )
    assert match, f"no section {title!r}"
    return match[2]


def test_table_lists_are_found_in_a_text_that_has_them() -> None:
    text = (
        "Tables (``flasket_a``, ``flasket_b``,\n``flasket_c`` and ``flasket_d``); "
        "also ``flasket_e``."
    )
    assert name_lists(text) == [{"flasket_a", "flasket_b", "flasket_c", "flasket_d"}]


def test_sections_end_at_the_next_heading_of_their_level() -> None:
    text = "Top\n===\n\nAlpha\n-----\n\none\n\nSub\n~~~\n\ntwo\n\nBeta\n----\n\nthree\n"
    assert rst_section(text, "Alpha") == "\none\n\nSub\n~~~\n\ntwo\n\n"
    assert rst_section(text, "Beta") == "\nthree\n"


def test_every_table_list_in_the_docs_names_every_flasket_table(host: Flask) -> None:
    with host.app_context():
        declared = {name for name in db.metadata.tables if name.startswith("flasket_")}
    # A list that names one table is a list of the tables; the layout's blocks name none.
    lists = [
        names
        for name in ("quickstart", "migrations")
        for names in name_lists(page(name))
        if names & declared
    ]
    # The quickstart ("Add it to your app") and "The first migration" each list them.
    assert len(lists) >= 2, "the docs' lists of Flasket tables were not found"
    for listed in lists:
        assert listed == declared, f"missing {declared - listed}, unknown {listed - declared}"


def configuration_rows() -> dict[str, str]:
    return dict(CONFIG_ROW.findall(rst_section(page("configuration"), "Settings")))


def test_configuration_table_lists_exactly_the_settings() -> None:
    assert sorted(configuration_rows()) == sorted(PREFIX + name.upper() for name in DEFAULTS)


@pytest.mark.parametrize(
    "name", [name for name, value in DEFAULTS.items() if isinstance(value, (int, str))]
)
def test_configuration_table_shows_each_plain_default(name: str) -> None:
    cell = configuration_rows()[PREFIX + name.upper()]
    value: Any = DEFAULTS[name]
    shown = re.match(r"``([^`]*)``", cell.strip())
    assert shown, f"{PREFIX + name.upper()}: the default {value!r} is not shown as code"
    if isinstance(value, str):
        assert shown[1] in (value, f'"{value}"'), (name, cell)
    else:
        assert shown[1] == str(value), (name, cell)


def documented_routes() -> set[str]:
    """The routes of the pages table; ``/reopen`` after ``/ticket/<id>/close`` is spelled out."""
    routes: set[str] = set()
    for cell in FIRST_CELL.findall(rst_section(page("pages"), "The pages")):
        base = ""
        for path in re.findall(r"``(/[^`]*)``", cell):
            if path.startswith("/ticket"):
                base = path.rsplit("/", 1)[0]
                routes.add(path)
            else:
                routes.add(base + path)
    return routes


def test_pages_table_lists_every_route(host: Flask) -> None:
    prefix = host.config["FLASKET_URL_PREFIX"]
    served = {
        re.sub(r"<(?:[^:>]+:)?(\w+)>", r"<\1>", rule.rule).replace("<ticket_id>", "<id>")
        for rule in host.url_map.iter_rules()
        if rule.endpoint.startswith("flasket.") and rule.endpoint != "flasket.static"
    }
    assert prefix == "/ticket"
    assert documented_routes() == served


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda: md_section(README, "Requirements"), id="README"),
        pytest.param(lambda: rst_section(page("quickstart"), "Requirements"), id="quickstart"),
    ],
)
def test_requirements_list_states_the_lower_bounds_of_pyproject(where: Any) -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    text = where()
    for line in [*project["dependencies"], *project["optional-dependencies"]["rq"]]:
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        stated = re.findall(rf"(?<![\w-]){re.escape(requirement.name)} ([0-9.]+)\+", text)
        assert stated, f"the requirements do not say which {requirement.name} they need"
        assert {Version(version) for version in stated} == {Version(spec.version)}, requirement


TEMPLATES = ROOT / "flasket" / "templates"


def template_section(name: str) -> str:
    """The part of docs/templates.rst about template ``name`` (``flasket/ticket.html``)."""
    text = page("templates")
    match = re.search(
        rf"^``{re.escape(name)}``\n(~+)\n(.*?)(?=^[^\n]+\n[~\-=]{{3,}}\n|\Z)",
        text,
        re.MULTILINE | re.DOTALL,
    )
    assert match, f"docs/templates.rst has no section for {name}"
    return match[2]


def render_calls() -> list[tuple[str, list[str]]]:
    """Each ``render_template("flasket/...", name=...)`` in the package: template, names."""
    import ast

    found = []
    for path in (ROOT / "flasket").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "id", "") == "render_template"
            ):
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names = [keyword.arg for keyword in node.keywords if keyword.arg]
                found.append((first.value, names))
    return found


def test_every_template_is_documented() -> None:
    text = page("templates")
    for path in sorted(TEMPLATES.rglob("*.*")):
        name = path.relative_to(TEMPLATES).as_posix()
        short = f"``{path.name}``" if "/email/" in name else None
        assert f"``{name}``" in text or (short and short in text), name


def test_every_variable_a_page_receives_is_documented() -> None:
    calls = render_calls()
    assert len(calls) >= 6, calls  # the pages and the error page, found by the walk
    for template, names in calls:
        section = template_section(template)
        for variable in names:
            assert f"``{variable}``" in section, (template, variable)


def test_the_template_helpers_are_exactly_the_ones_registered(host: Flask) -> None:
    section = rst_section(page("templates"), "Template helpers")
    documented = set(re.findall(r"^``(flasket_\w+)", section, re.MULTILINE))
    registered = {
        name
        for name in [*host.jinja_env.globals, *host.jinja_env.filters]
        if name.startswith("flasket_")
    }
    assert documented == registered


def test_every_variable_an_email_receives_is_documented() -> None:
    import ast

    tree = ast.parse((ROOT / "flasket" / "notify.py").read_text(encoding="utf-8"))
    contexts = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(getattr(target, "id", "") == "context" for target in node.targets)
        and isinstance(node.value, ast.Dict)
    ]
    assert len(contexts) == 1, "notify.render's context dict was not found"
    names = [
        key.value
        for key in contexts[0].keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    ]
    assert "unfollow_url" in names
    section = rst_section(page("templates"), "E-mail templates")
    for name in names:
        assert f"``{name}``" in section, name
