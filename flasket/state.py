"""What Flasket keeps for the apps it serves: the host's db and user model, and the models.

:class:`FlasketState` is the part of the extension every layer reads (through
:data:`flasket.proxies.current_flasket`); :class:`flasket.Flasket` adds registering the pages
on an app. Keeping the two apart keeps the web and mail code from importing the module that
imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import config
from .models import Models, TicketBase, get_models

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


class FlasketState:
    """Flasket's models on the host's ``db``, for one user model.

    :param db: the host's ``flask_sqlalchemy.SQLAlchemy`` instance; Flasket's tables join
        its metadata.
    :param user_model: the host's user model class (a model of ``db``).
    :param options: defaults for ``FLASKET_*`` options, named without the prefix in lower
        case (``url_prefix="/help"``); a key the app's config sets itself wins.
    :raises TypeError: when ``options`` names an option Flasket does not have.
    """

    def __init__(self, db: SQLAlchemy, user_model: type[Any], **options: Any) -> None:
        unknown = set(options) - set(config.DEFAULTS)
        if unknown:
            raise TypeError(f"Unknown Flasket option(s): {', '.join(sorted(unknown))}")
        self.db = db
        self.user_model = user_model
        self.options = options
        self.models: Models = get_models(db, user_model)

    def categories(self) -> tuple[config.Category, ...]:
        """The configured categories of the current app (``FLASKET_CATEGORIES``, parsed)."""
        return config.parse_categories(config.config_value("categories"))

    def categories_of(
        self, ticket: TicketBase, categories: tuple[config.Category, ...] | None = None
    ) -> list[tuple[config.Category, str]]:
        """A ticket's category values, in configured order, with their categories.

        A value whose category is no longer configured is left out.

        :param ticket: the ticket.
        :param categories: the configured categories, when the caller parsed them
            already (a list does once per request); else :meth:`categories`.
        :return: ``[(category, value), ...]``; ``category.label_for(value)`` is its label.
        """
        values = ticket.category_values()
        if not values:
            return []
        configured = self.categories() if categories is None else categories
        return [(c, values[c.name]) for c in configured if c.name in values]
