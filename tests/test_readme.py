"""The README against the code: the tables, settings and pages it names are the ones that exist."""

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

README = (ROOT / "README.md").read_text(encoding="utf-8")
#: Three or more `flasket_...` names in a row ("`a`, `b` and `c`"): tables, or template blocks.
NAME_LIST = re.compile(r"`flasket_\w+`(?:(?:,\s*|,?\s+and\s+)`flasket_\w+`){2,}")
#: A row of the configuration table: | `FLASKET_KEY` | default | meaning |
CONFIG_ROW = re.compile(r"^\| `(FLASKET_[A-Z_]+)` \| ([^|]*) \|", re.MULTILINE)


@pytest.fixture(scope="module")
def host() -> Flask:
    return create_app()


def name_lists(text: str) -> list[set[str]]:
    return [set(re.findall(r"`(flasket_\w+)`", found[0])) for found in NAME_LIST.finditer(text)]


def section(title: str) -> str:
    """The README's text from the heading ``title`` to the next heading of the same level."""
    match = re.search(
        rf"^(#+) {re.escape(title)}\n(.*?)(?=^\1 )", README, re.MULTILINE | re.DOTALL
    )
    assert match, f"no section {title!r} in the README"
    return match[2]


def test_table_lists_are_found_in_a_text_that_has_them() -> None:
    text = "Tables (`flasket_a`, `flasket_b`,\n`flasket_c` and `flasket_d`); also `flasket_e`."
    assert name_lists(text) == [{"flasket_a", "flasket_b", "flasket_c", "flasket_d"}]


def test_every_table_list_in_the_readme_names_every_flasket_table(host: Flask) -> None:
    with host.app_context():
        declared = {name for name in db.metadata.tables if name.startswith("flasket_")}
    # A list that names one table is a list of the tables; the layout's blocks name none.
    lists = [names for names in name_lists(README) if names & declared]
    # "Add it to your app" and "The first migration" each list them.
    assert len(lists) >= 2, "the README's lists of Flasket tables were not found"
    for listed in lists:
        assert listed == declared, f"missing {declared - listed}, unknown {listed - declared}"


def test_configuration_table_lists_exactly_the_settings() -> None:
    rows = dict(CONFIG_ROW.findall(section("Configuration")))
    assert sorted(rows) == sorted(PREFIX + name.upper() for name in DEFAULTS)


@pytest.mark.parametrize(
    "name", [name for name, value in DEFAULTS.items() if isinstance(value, (int, str))]
)
def test_configuration_table_shows_each_plain_default(name: str) -> None:
    rows = dict(CONFIG_ROW.findall(section("Configuration")))
    cell = rows[PREFIX + name.upper()]
    value: Any = DEFAULTS[name]
    shown = re.match(r"`([^`]*)`", cell.strip())
    assert shown, f"{PREFIX + name.upper()}: the default {value!r} is not shown as code"
    if isinstance(value, str):
        assert shown[1] in (value, f'"{value}"'), (name, cell)
    else:
        assert shown[1] == str(value), (name, cell)


def documented_routes() -> set[str]:
    """The routes of the Pages table; ``/reopen`` after ``/ticket/<id>/close`` is spelled out."""
    routes: set[str] = set()
    for line in section("Pages").splitlines():
        cells = line.split("|")
        if len(cells) < 3 or not cells[1].strip().startswith("`/"):
            continue
        base = ""
        for path in re.findall(r"`(/[^`]*)`", cells[1]):
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


def test_requirements_list_states_the_lower_bounds_of_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    text = section("Add it to your app")
    for line in [*project["dependencies"], *project["optional-dependencies"]["rq"]]:
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        stated = re.findall(rf"(?<![\w-]){re.escape(requirement.name)} ([0-9.]+)\+", text)
        assert stated, f"the README does not say which {requirement.name} it needs"
        assert {Version(version) for version in stated} == {Version(spec.version)}, requirement
