"""The public API is declared (``__all__``) and documented: every name a host may use has a
docstring, and every public function's says what it takes."""

from __future__ import annotations

import importlib
import inspect

import pytest

#: The modules whose names hosts are told to use.
PUBLIC_MODULES = ["flasket", "flasket.migrations", "flasket.delivery", "flasket.rq"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_declared_name_exists_and_has_a_docstring(name: str) -> None:
    module = importlib.import_module(name)
    declared = module.__all__
    assert len(declared) == len(set(declared)), declared
    for attribute in declared:
        value = getattr(module, attribute)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert inspect.getdoc(value), f"{name}.{attribute} has no docstring"


def test_the_removed_names_are_gone() -> None:
    from flasket import delivery, models, notify, views

    for module, attribute in [
        (models, "STATUSES"),
        (models, "OUTBOX_STATUSES"),
        (notify, "EVENTS"),
        (models.TicketBase, "is_open"),
        (delivery, "claim"),
        (delivery, "send"),
        (views, "load_ticket"),
    ]:
        assert not hasattr(module, attribute), attribute


def test_init_flasket_documents_its_arguments_and_errors() -> None:
    from flasket import Flasket, init_flasket

    for function in (init_flasket, Flasket.init_app):
        doc = inspect.getdoc(function) or ""
        assert ":param app:" in doc, function
        assert ":raises RuntimeError:" in doc, function


def package_modules() -> list[str]:
    import pkgutil

    import flasket

    return ["flasket"] + [
        f"flasket.{info.name}" for info in pkgutil.iter_modules(flasket.__path__)
    ]


@pytest.mark.parametrize("name", package_modules())
def test_every_public_function_and_class_has_a_docstring(name: str) -> None:
    """Public means no leading underscore: what a module defines, and its classes' methods."""
    module = importlib.import_module(name)
    assert inspect.getdoc(module), f"{name} has no module docstring"
    missing = []
    for attribute, value in vars(module).items():
        defined_here = getattr(value, "__module__", None) == name
        if attribute.startswith("_") or not defined_here:
            continue
        if not (inspect.isfunction(value) or inspect.isclass(value)):
            continue
        if not inspect.getdoc(value):
            missing.append(attribute)
        if inspect.isclass(value):
            for member, function in vars(value).items():
                if member.startswith("_") or not inspect.isfunction(function):
                    continue
                # getdoc finds an overridden method's docstring on the base class.
                if not inspect.getdoc(getattr(value, member)):
                    missing.append(f"{attribute}.{member}")
    assert not missing, f"{name}: no docstring on {', '.join(missing)}"


def test_configuration_errors_are_exported() -> None:
    import flasket
    from flasket.config import ConfigError

    assert flasket.ConfigError is ConfigError
    assert issubclass(ConfigError, ValueError)
