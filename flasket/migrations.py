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
``render_item`` adds ``import flasket.models`` to a revision that uses Flasket's
timestamp type.

``process_revision_directives`` (the statistics step, then Flask-Migrate's
empty-revision check) stays for an ``env.py`` that calls Flasket's hooks itself;
given to ``Migrate``, it fails in a 2.x ``env.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]
RenderItem = Callable[[str, Any, Any], str | bool]
RevisionDirectives = Callable[[Any, Any, list[Any]], None]

CATEGORY_TABLE = "flasket_ticket_category"


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
    """Alembic's ``include_object`` hook: whether autogenerate compares this object.

    :param obj: the schema item (table, column, index, ...).
    :param name: its name.
    :param type_: ``"table"``, ``"column"``, ``"index"``, ...
    :param reflected: True when it was read from the database, not the models.
    :param compare_to: what it is compared with, None when the other side lacks it.
    :return: False for an index Flasket declares for another database, else True.
        When ``obj`` is Flasket's category table about to be created, it first puts
        Flasket's statistics step in front of the migration context's
        ``process_revision_directives``.
    """
    if type_ == "table" and name == CATEGORY_TABLE and not reflected and compare_to is None:
        _add_statistics_step_to_revision_hook()
    dialects = obj.info.get("dialects") if type_ == "index" and not reflected else None
    if not dialects:
        return True
    from alembic import context

    return bool(context.get_context().dialect.name in dialects)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Alembic's ``render_item`` hook: imports ``flasket.models`` for Flasket's column types.

    :param type_: what is rendered (``"type"``, ``"column"``, ...).
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
    :param directives: Alembic's ``MigrationScript`` list, changed in place.
    """
    _add_category_statistics(context, revision, directives)
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
