"""Alembic hooks for hosts that migrate with Flask-Migrate (or plain Alembic).

::

    from flask_migrate import Migrate
    from flasket.migrations import include_object, render_item

    migrate = Migrate(include_object=include_object, render_item=render_item)

``include_object`` leaves out an index declared for another database (ticket
search has a GIN index on PostgreSQL and a FULLTEXT index on MariaDB/MySQL,
each naming its database in ``Index.info["dialects"]``): autogenerate does not
read ``ddl_if`` and would otherwise write both into every revision.
``render_item`` adds ``import flasket.models`` to a revision that uses Flasket's
timestamp type. A host with hooks of its own calls these from them.
"""

from __future__ import annotations

from typing import Any


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    dialects = obj.info.get("dialects") if type_ == "index" and not reflected else None
    if not dialects:
        return True
    from alembic import context

    return bool(context.get_context().dialect.name in dialects)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    module = type(obj).__module__
    if type_ == "type" and module.startswith("flasket."):
        autogen_context.imports.add(f"import {module}")
    # False: Alembic renders the item itself; only the import is added.
    return False
