"""Flasket's shipped message catalogs are complete, correct and compiled.

Each language's ``flasket.po`` must hold every message the code uses (extracted afresh
here, with the keywords and mapping of ``scripts/translations``), translated, not fuzzy,
with the English's placeholders and its language's number of plural forms (CLDR); its
``flasket.mo`` must be the compiled ``.po``; and ``flasket.pot`` must be current.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import re
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from flasket import i18n

pytestmark = pytest.mark.one_database

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = Path(i18n.TRANSLATIONS_DIRECTORY)
#: The languages Flasket promises (docs/languages.rst).
SHIPPED = ("es", "fr", "de", "pt_BR", "it", "ja", "zh_Hans", "ar")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def translations_script() -> ModuleType:
    """``scripts/translations``, imported: its keywords are the ones the catalogs use."""
    path = ROOT / "scripts" / "translations"
    loader = importlib.machinery.SourceFileLoader("flasket_translations_script", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def message_key(message_id: object, context: str | None) -> tuple[object, ...]:
    """A message's identity: its context and singular (a plural's msgid is a sequence)."""
    if isinstance(message_id, (tuple, list)):
        return (context, message_id[0])
    return (context, message_id)


@pytest.fixture(scope="module")
def extracted() -> dict[tuple[object, ...], str | tuple[str, ...]]:
    """Every message in the code now: (context, msgid) to its msgid (a tuple with a plural)."""
    script = translations_script()
    keywords: dict[str, object] = {}
    for spec in script.KEYWORDS:
        name, _, args = spec.partition(":")
        if not args:
            keywords[name] = None
            continue
        parts = args.split(",")
        if parts[0].endswith("c"):
            keywords[name] = ((int(parts[0][:-1]), "c"), *[int(p) for p in parts[1:]])
        else:
            keywords[name] = tuple(int(p) for p in parts)
    method_map = [
        ("**.py", "python"),
        ("templates/**.html", "jinja2"),
        ("templates/**.txt", "jinja2"),
    ]
    found: dict[tuple[object, ...], str | tuple[str, ...]] = {}
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT / "flasket"),
        method_map,
        keywords=keywords,  # type: ignore[arg-type]
    ):
        found[message_key(message, context)] = message
    assert len(found) > 200, "the extraction found too few messages to be right"
    return found


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def real_messages(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id]


def test_the_template_holds_exactly_the_messages_of_the_code(
    extracted: dict[tuple[object, ...], str | tuple[str, ...]],
) -> None:
    template = read_catalog(CATALOGS / "flasket.pot")
    held = {message_key(m.id, m.context): m.id for m in real_messages(template)}
    missing = sorted(str(key) for key in extracted.keys() - held.keys())
    stale = sorted(str(key) for key in held.keys() - extracted.keys())
    assert not missing, f"run scripts/translations all: not in flasket.pot: {missing}"
    assert not stale, f"run scripts/translations all: no longer in the code: {stale}"


def test_every_promised_language_is_shipped() -> None:
    present = sorted(p.parent.parent.name for p in CATALOGS.glob("*/LC_MESSAGES/flasket.po"))
    assert sorted(SHIPPED) == sorted(set(present) & set(SHIPPED))
    for language in present:
        assert (CATALOGS / language / "LC_MESSAGES" / "flasket.mo").is_file(), language


@pytest.mark.parametrize("language", SHIPPED)
def test_a_catalog_translates_every_message_with_its_placeholders_and_plural_forms(
    language: str, extracted: dict[tuple[object, ...], str | tuple[str, ...]]
) -> None:
    catalog = read_catalog(CATALOGS / language / "LC_MESSAGES" / "flasket.po", language)
    assert not catalog.fuzzy, f"{language}: the catalog's header is marked fuzzy"
    # The header's Plural-Forms is what gettext uses at run time, whatever Babel is installed
    # (older Babels know fewer of CLDR's forms: 2.12 gives French two, the catalog three).
    expected_forms = catalog.num_plurals
    assert f"nplurals={expected_forms};" in catalog.plural_forms
    held = {message_key(m.id, m.context): m for m in real_messages(catalog)}
    missing = sorted(str(key) for key in extracted.keys() - held.keys())
    assert not missing, f"{language}: not in the catalog (scripts/translations update): {missing}"
    problems = []
    for key in extracted:
        message = held[key]
        ids = [str(i) for i in message.id] if isinstance(message.id, tuple) else [str(message.id)]
        strings = (
            [str(s) for s in message.string]
            if isinstance(message.string, (tuple, list))
            else [str(message.string or "")]
        )
        wanted = set(PLACEHOLDER.findall(" ".join(ids)))
        if message.fuzzy:
            problems.append(f"fuzzy: {ids[0]!r}")
        if isinstance(message.id, tuple) and len(strings) != expected_forms:
            problems.append(f"{len(strings)} plural forms, not {expected_forms}: {ids[0]!r}")
        for string in strings:
            if not string:
                problems.append(f"untranslated: {ids[0]!r}")
            elif set(PLACEHOLDER.findall(string)) != wanted:
                problems.append(f"placeholders {sorted(wanted)} changed: {ids[0]!r} -> {string!r}")
    for message, errors in catalog.check():
        problems.extend(f"{message.id!r}: {error}" for error in errors)
    assert not problems, f"{language}:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", SHIPPED)
def test_a_catalogs_compiled_file_is_the_compiled_catalog(language: str) -> None:
    folder = CATALOGS / language / "LC_MESSAGES"
    compiled = io.BytesIO()
    write_mo(compiled, read_catalog(folder / "flasket.po", language))
    compiled.seek(0)
    fresh = Translations(compiled, domain="flasket")
    with (folder / "flasket.mo").open("rb") as file:
        shipped = Translations(file, domain="flasket")
    # The header entry ("") names the Babel that compiled it; every message must be equal.
    shipped._catalog.pop("", None)
    fresh._catalog.pop("", None)
    assert shipped._catalog == fresh._catalog, (
        f"{language}: flasket.mo is older than flasket.po (scripts/translations compile)"
    )


@pytest.mark.parametrize(
    ("language", "count", "expected_form"),
    [
        ("ar", 0, 0),
        ("ar", 1, 1),
        ("ar", 2, 2),
        ("ar", 3, 3),
        ("ar", 11, 4),
        ("ar", 100, 5),
        ("ja", 5, 0),
        ("de", 1, 0),
        ("de", 2, 1),
        ("fr", 0, 0),
        ("fr", 1_000_000, 1),
    ],
)
def test_the_plural_rules_pick_each_languages_form(
    language: str, count: int, expected_form: int
) -> None:
    catalog = read_catalog(CATALOGS / language / "LC_MESSAGES" / "flasket.po", language)
    assert catalog.plural_expr is not None
    # The header's expression, evaluated as gettext does.
    from gettext import c2py

    assert c2py(catalog.plural_expr)(count) == expected_form
