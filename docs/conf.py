"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``."""

from pallets_sphinx_themes import ProjectLink, get_version

project = "Flasket"
copyright = "The Flasket developers"
author = "The Flasket developers"
release, version = get_version("flasket-desk")

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",
    "pallets_sphinx_themes",
]
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "DESIGN.md"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
# Members without a docstring of their own (SQLAlchemy type hooks) stay out of the API page.
autodoc_inherit_docstrings = False

# MyST parses the two Markdown files the site includes: CHANGELOG.md and DESIGN.md.
myst_heading_anchors = 3

html_theme = "flask"
html_title = f"Flasket Documentation ({version})"
html_context = {
    "project_links": [
        ProjectLink("PyPI Releases", "https://pypi.org/project/flasket-desk/"),
    ]
}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
html_show_sourcelink = False
# The banner script asks Read the Docs for newer versions from the reader's browser.
version_banner = False

# Every cross-reference to Flasket's own names must resolve (-n in the build command);
# other projects' names are not documented here (no intersphinx: the build is offline).
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(sqlalchemy|sa|collections|c|flask|flask_\w+|datetime|werkzeug|jinja2|wtforms)"
        r"(\..*)?",
    ),
    (r"py:.*", r"(typing|threading|smtplib|email|click|markupsafe|itsdangerous|blinker)(\..*)?"),
    (r"py:.*", r"(logging|re|io|uuid|secrets|alembic|rq|redis|importlib|babel|zoneinfo)(\..*)?"),
    (r"py:class", r"(Flask|SQLAlchemy|Session|ResponseReturnValue|HTTPException|CSRFError)"),
    (r"py:class", r"(Attachment|Response|Mail|Message|Queue|Map|flasket\.\w+\.T)"),
    # markupsafe.Markup's own signature, which flasket.i18n.Pattern inherits.
    (r"py:class", r"(t\.Any|te\.Self)"),
]
