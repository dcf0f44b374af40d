"""Alembic hooks for hosts that migrate with Flask-Migrate (or plain Alembic).

::

    from flask_migrate import Migrate
    from flasket.migrations import migrate_options

    migrate = Migrate(**migrate_options())
    # a host with hooks of its own: Migrate(**migrate_options(include_object=host_include_object))

:func:`migrate_options` returns ``include_object`` and ``render_item``, each combined
with the host's own hook of that name, and nothing else of Flasket's, so it works
with the ``env.py`` of every Flask-Migrate release: the 2.x one passes its own
``process_revision_directives`` to ``context.configure()`` next to ``Migrate``'s
arguments (a second one there is a ``TypeError``), the 4.x one uses ``Migrate``'s
if given, else its own. A hand-written ``env.py`` passes the same dict to
``context.configure()``.

``include_object`` leaves out an index declared for another database (ticket
search has a GIN index on PostgreSQL and a FULLTEXT index on MariaDB/MySQL,
each naming its database in ``Index.info["dialects"]``): autogenerate does not
read ``ddl_if`` and would otherwise write both into every revision. When
autogenerate is about to create ``flasket_ticket_category``, it also puts
Flasket's statistics step in front of the ``process_revision_directives`` the
``env.py`` configured, whichever it is: on PostgreSQL that step adds the planner
statistics autogenerate cannot see (``models.CATEGORY_STATISTICS``) to the
revision, after the ``create_table``. The ``env.py``'s own hook still runs after
it, and still writes no revision when autogenerate finds nothing to change.
On SQLite the same step adds the triggers that clean up after a host's deletion
of a user or a ticket (:func:`sqlite_trigger_sql`) once the revision creates
``flasket_ticket``: autogenerate cannot see triggers either.
``render_item`` adds ``import flasket.models`` to a revision that uses Flasket's
timestamp type.

``process_revision_directives`` (the statistics step, then Flask-Migrate's
empty-revision check) stays for an ``env.py`` that calls Flasket's hooks itself;
given to ``Migrate``, it fails in a 2.x ``env.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Alembic's ``include_object(object, name, type_, reflected, compare_to)`` hook.
IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]
#: Alembic's ``render_item(type_, object, autogen_context)`` hook.
RenderItem = Callable[[str, Any, Any], str | bool]
#: Alembic's ``process_revision_directives(context, revision, directives)`` hook.
RevisionDirectives = Callable[[Any, Any, list[Any]], None]

__all__ = [
    "category_statistics_sql",
    "include_object",
    "is_sqlite_search_table",
    "migrate_options",
    "process_revision_directives",
    "render_item",
    "sqlite_drop_search_sql",
    "sqlite_drop_trigger_sql",
    "sqlite_search_sql",
    "sqlite_trigger_sql",
]

#: The table whose creation brings the PostgreSQL statistics step.
CATEGORY_TABLE = "flasket_ticket_category"
#: The table whose creation brings the SQLite cleanup triggers.
TICKET_TABLE = "flasket_ticket"
#: The table whose creation brings the SQLite search tables.
REPLY_TABLE = "flasket_reply"


def migrate_options(
    *,
    include_object: IncludeObject | None = None,
    render_item: RenderItem | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The keyword arguments for ``Migrate(...)`` (or ``context.configure(...)``).

    ::

        migrate = Migrate(**migrate_options(include_object=host_include_object))

    :param include_object: the host's own Alembic ``include_object``, or None. An object
        goes into a revision only when Flasket's hook and this one both return True.
    :param render_item: the host's own Alembic ``render_item``, or None. It renders
        first; what it leaves to Alembic (returns ``False`` for) goes to Flasket's.
    :param options: any other ``Migrate``/``context.configure`` keyword argument
        (``compare_server_default=True``, ...), returned unchanged.
    :return: a new dict: ``include_object`` and ``render_item`` (Flasket's, or
        Flasket's combined with the host's) and ``options``. It holds no
        ``process_revision_directives`` unless ``options`` does.
    :raises TypeError: if ``include_object`` or ``render_item`` is given and is not callable.
    """
    for name, hook in (("include_object", include_object), ("render_item", render_item)):
        if hook is not None and not callable(hook):
            raise TypeError(f"migrate_options({name}=...) must be callable, not {hook!r}")
    return {
        **options,
        "include_object": _with_host_include_object(include_object),
        "render_item": _with_host_render_item(render_item),
    }


def _with_host_include_object(host: IncludeObject | None) -> IncludeObject:
    if host is None:
        return include_object

    def include_object_of_flasket_and_host(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        return include_object(obj, name, type_, reflected, compare_to) and bool(
            host(obj, name, type_, reflected, compare_to)
        )

    return include_object_of_flasket_and_host


def _with_host_render_item(host: RenderItem | None) -> RenderItem:
    if host is None:
        return render_item

    def render_item_of_host_then_flasket(type_: str, obj: Any, autogen_context: Any) -> str | bool:
        rendered = host(type_, obj, autogen_context)
        if rendered is not False:
            return rendered
        return render_item(type_, obj, autogen_context)

    return render_item_of_host_then_flasket


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    r"""Alembic's ``include_object`` hook: whether autogenerate compares this object.

    :param obj: the schema item (table, column, index, ...).
    :param name: its name.
    :param type\_: ``"table"``, ``"column"``, ``"index"``, ...
    :param reflected: True when it was read from the database, not the models.
    :param compare_to: what it is compared with, None when the other side lacks it.
    :return: False for an index Flasket declares for another database and for Flasket's
        SQLite search tables read from the database (:func:`is_sqlite_search_table`),
        else True.
        When ``obj`` is Flasket's ticket or category table about to be created, it first
        puts Flasket's statistics and triggers step in front of the migration context's
        ``process_revision_directives``.
    """
    created = type_ == "table" and not reflected and compare_to is None
    if created and name in (CATEGORY_TABLE, TICKET_TABLE):
        _add_statistics_step_to_revision_hook()
    if type_ == "table" and reflected and is_sqlite_search_table(name):
        return False
    dialects = obj.info.get("dialects") if type_ == "index" and not reflected else None
    if not dialects:
        return True
    from alembic import context

    return bool(context.get_context().dialect.name in dialects)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    r"""Alembic's ``render_item`` hook: imports ``flasket.models`` for Flasket's column types.

    :param type\_: what is rendered (``"type"``, ``"column"``, ...).
    :param obj: the object rendered.
    :param autogen_context: Alembic's ``AutogenContext``; its ``imports`` gain the module.
    :return: False, so that Alembic renders the item itself.
    """
    module = type(obj).__module__
    if type_ == "type" and module.startswith("flasket."):
        autogen_context.imports.add(f"import {module}")
    return False


def category_statistics_sql(table: str = CATEGORY_TABLE) -> str:
    """The PostgreSQL ``CREATE STATISTICS`` statement for a revision's ``op.execute()``.

    :param table: the category table's name, schema-qualified if it has a schema.
    :return: the SQL statement.
    """
    from .models import CATEGORY_STATISTICS

    return CATEGORY_STATISTICS % {"fullname": table}


def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
    """Alembic's ``process_revision_directives`` hook, for an ``env.py`` that calls it itself.

    Adds the category statistics on PostgreSQL (see :func:`include_object`), then, like
    Flask-Migrate's own hook, writes no revision when autogenerate found nothing to change.

    :param context: Alembic's ``MigrationContext``.
    :param revision: the revision (or revisions) being generated.
    :param directives: Alembic's ``MigrationScript`` list, changed in place (emptied
        when an autogenerate run found nothing to change).
    """
    _add_category_statistics(context, revision, directives)
    _add_sqlite_triggers(context, directives)
    _add_sqlite_search_tables(context, directives)
    command_options = getattr(context.config, "cmd_opts", None)
    if getattr(command_options, "autogenerate", False) and all(
        upgrade.is_empty() for script in directives for upgrade in script.upgrade_ops_list
    ):
        directives[:] = []


def _add_category_statistics(context: Any, revision: Any, directives: list[Any]) -> None:
    """The statistics step: on PostgreSQL, ``CREATE STATISTICS`` right after the revision's
    ``create_table`` of Flasket's category table, unless the revision already runs it."""
    if context.dialect.name != "postgresql":
        return
    for script in directives:
        for upgrade in script.upgrade_ops_list:
            _insert_statistics_after_create_table(upgrade.ops)


def _insert_statistics_after_create_table(operations: list[Any]) -> None:
    from alembic.operations import ops

    for created in [
        operation
        for operation in operations
        if isinstance(operation, ops.CreateTableOp) and operation.table_name == CATEGORY_TABLE
    ]:
        table = f"{created.schema}.{created.table_name}" if created.schema else CATEGORY_TABLE
        statement = category_statistics_sql(table)
        if not any(
            isinstance(operation, ops.ExecuteSQLOp) and operation.sqltext == statement
            for operation in operations
        ):
            operations.insert(operations.index(created) + 1, ops.ExecuteSQLOp(statement))


class _StatisticsStepThen:
    """A ``process_revision_directives`` hook: Flasket's statistics step, then ``then``."""

    def __init__(self, then: RevisionDirectives | None) -> None:
        self.then = then

    def __call__(self, context: Any, revision: Any, directives: list[Any]) -> None:
        _add_category_statistics(context, revision, directives)
        _add_sqlite_triggers(context, directives)
        _add_sqlite_search_tables(context, directives)
        if self.then is not None:
            self.then(context, revision, directives)


def _add_statistics_step_to_revision_hook() -> None:
    """Put the statistics step before the hook the env.py gave ``context.configure()``.

    Every env.py passes ``include_object`` through, but the 2.x one refuses a second
    ``process_revision_directives``; Alembic reads that hook from the migration
    context's options only after comparing, so wrapping it here reaches any env.py.
    """
    from alembic import context

    try:
        options = context.get_context().opts
    except NameError:  # compare_metadata() outside an env.py: no revision is written
        return
    hook = options.get("process_revision_directives")
    if not isinstance(hook, _StatisticsStepThen):
        options["process_revision_directives"] = _StatisticsStepThen(hook)


def sqlite_trigger_sql(user_table: str, user_key: str = "id") -> list[str]:
    """The SQLite ``CREATE TRIGGER`` statements for a revision's ``op.execute()``.

    They clean up after a host's deletion of a user or a ticket when SQLite does not
    enforce foreign keys (see ``flasket.models.sqlite_cleanup_triggers``).

    :param user_table: the host's user table (``User.__tablename__``).
    :param user_key: the name of its primary-key column.
    :return: the statements, each safe to run again (``IF NOT EXISTS``).
    """
    from .models import sqlite_cleanup_triggers

    return list(sqlite_cleanup_triggers(user_table, user_key))


def sqlite_drop_trigger_sql() -> list[str]:
    """The SQLite ``DROP TRIGGER IF EXISTS`` statements undoing :func:`sqlite_trigger_sql`.

    :return: the statements, for a revision's ``downgrade()``.
    """
    from .models import SQLITE_TRIGGERS

    return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]


def _add_sqlite_triggers(context: Any, directives: list[Any]) -> None:
    """The triggers step: on SQLite, :func:`sqlite_trigger_sql` after the revision's last
    ``create_table`` once it creates ``flasket_ticket`` (autogenerate cannot see triggers),
    and :func:`sqlite_drop_trigger_sql` first in its downgrade."""
    if context.dialect.name != "sqlite":
        return
    from alembic.operations import ops

    for script in directives:
        for upgrade, downgrade in zip(
            script.upgrade_ops_list, script.downgrade_ops_list, strict=True
        ):
            operations = upgrade.ops
            created = [op for op in operations if isinstance(op, ops.CreateTableOp)]
            tickets = [op for op in created if op.table_name == TICKET_TABLE]
            if not tickets:
                continue
            statements = sqlite_trigger_sql(*_user_key_of(tickets[0]))
            if any(
                isinstance(op, ops.ExecuteSQLOp) and op.sqltext in statements for op in operations
            ):
                continue
            at = operations.index(created[-1]) + 1
            operations[at:at] = [ops.ExecuteSQLOp(statement) for statement in statements]
            downgrade.ops[:0] = [ops.ExecuteSQLOp(sql) for sql in sqlite_drop_trigger_sql()]


def _user_key_of(created_ticket_table: Any) -> tuple[str, str]:
    """The host's user table and key column, as the ticket table's ``author_id`` names them."""
    for constraint in created_ticket_table.to_table().foreign_key_constraints:
        if constraint.column_keys == ["author_id"]:
            [element] = constraint.elements
            table, _, column = element.target_fullname.rpartition(".")
            return table.rpartition(".")[2], column
    raise LookupError("flasket_ticket has no foreign key on author_id")


def is_sqlite_search_table(name: str | None) -> bool:
    """Whether ``name`` is one of Flasket's SQLite FTS5 tables or one of their shadow tables.

    Autogenerate reads them from the database but finds them in no model, and would write
    a ``drop_table`` for each: :func:`include_object` leaves them out.

    :param name: a table's name.
    :return: True for ``flasket_ticket_search``, ``flasket_reply_search`` and their
        ``_data``, ``_idx``, ``_docsize``, ``_config`` (and ``_content``) tables.
    """
    from .search_index import SQLITE_SEARCH_TABLES

    return any(name == fts or (name or "").startswith(fts + "_") for fts in SQLITE_SEARCH_TABLES)


def sqlite_search_sql() -> list[str]:
    """The SQLite statements creating Flasket's FTS5 search tables, for ``op.execute()``.

    Each table comes with its triggers and is then filled from the rows already there.

    :return: the statements (see :func:`flasket.search_index.sqlite_search_ddl`), safe to run
        again.
    """
    from .search_index import SQLITE_SEARCH_TABLES, sqlite_search_ddl, sqlite_search_rebuild

    return [
        statement
        for name in SQLITE_SEARCH_TABLES
        for statement in (*sqlite_search_ddl(name), sqlite_search_rebuild(name))
    ]


def sqlite_drop_search_sql() -> list[str]:
    """The SQLite statements undoing :func:`sqlite_search_sql`.

    The triggers are on the tickets and replies tables, which stay, so they are dropped
    by name before the search tables.

    :return: the statements, for a revision's ``downgrade()``.
    """
    from .search_index import SQLITE_SEARCH_TABLES

    return [
        *(
            f"DROP TRIGGER IF EXISTS {name}_{event}"
            for name in SQLITE_SEARCH_TABLES
            for event in ("insert", "delete", "update")
        ),
        *(f"DROP TABLE IF EXISTS {name}" for name in SQLITE_SEARCH_TABLES),
    ]


def _add_sqlite_search_tables(context: Any, directives: list[Any]) -> None:
    """The search step: on SQLite, :func:`sqlite_search_sql` after the revision's last
    ``create_table`` once it creates ``flasket_reply`` (autogenerate sees no virtual table
    or trigger), and :func:`sqlite_drop_search_sql` first in its downgrade."""
    if context.dialect.name != "sqlite":
        return
    from alembic.operations import ops

    statements = sqlite_search_sql()
    for script in directives:
        for upgrade, downgrade in zip(
            script.upgrade_ops_list, script.downgrade_ops_list, strict=True
        ):
            operations = upgrade.ops
            created = [op for op in operations if isinstance(op, ops.CreateTableOp)]
            if not any(op.table_name == REPLY_TABLE for op in created) or any(
                isinstance(op, ops.ExecuteSQLOp) and op.sqltext in statements for op in operations
            ):
                continue
            at = operations.index(created[-1]) + 1
            operations[at:at] = [ops.ExecuteSQLOp(statement) for statement in statements]
            downgrade.ops[:0] = [ops.ExecuteSQLOp(sql) for sql in sqlite_drop_search_sql()]
