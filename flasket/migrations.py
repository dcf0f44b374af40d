"""Alembic hooks for hosts that migrate with Flask-Migrate (or plain Alembic).

::

    from flask_migrate import Migrate
    from flasket.migrations import include_object, process_revision_directives, render_item

    migrate = Migrate(
        include_object=include_object,
        render_item=render_item,
        process_revision_directives=process_revision_directives,
    )

``include_object`` leaves out an index declared for another database (ticket
search has a GIN index on PostgreSQL and a FULLTEXT index on MariaDB/MySQL,
each naming its database in ``Index.info["dialects"]``): autogenerate does not
read ``ddl_if`` and would otherwise write both into every revision.
``render_item`` adds ``import flasket.models`` to a revision that uses Flasket's
timestamp type. ``process_revision_directives`` adds to a revision what
autogenerate cannot see: on PostgreSQL, the planner statistics on
``flasket_ticket_category`` (``models.CATEGORY_STATISTICS``) in the revision that
creates that table. Like Flask-Migrate's own ``env.py`` hook, which it replaces,
it writes no revision when autogenerate finds nothing to change. A host with
hooks of its own calls these from them.
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


def category_statistics_sql(table: str = "flasket_ticket_category") -> str:
    """The PostgreSQL ``CREATE STATISTICS`` statement for a revision's ``op.execute()``."""
    from .models import CATEGORY_STATISTICS

    return CATEGORY_STATISTICS % {"fullname": table}


def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
    from alembic.operations import ops

    script = directives[0]
    upgrade = script.upgrade_ops
    if context.dialect.name == "postgresql":
        for index, operation in enumerate(list(upgrade.ops)):
            if (
                isinstance(operation, ops.CreateTableOp)
                and operation.table_name == "flasket_ticket_category"
            ):
                table = operation.table_name
                if operation.schema:
                    table = f"{operation.schema}.{table}"
                statistics = ops.ExecuteSQLOp(category_statistics_sql(table))
                upgrade.ops.insert(index + 1, statistics)
    command_options = getattr(context.config, "cmd_opts", None)
    if getattr(command_options, "autogenerate", False) and upgrade.is_empty():
        directives[:] = []
