"""flasket.sql: the typed row count of a change, and a clear error for a result without one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from flasket.sql import affected_rows


def test_affected_rows_counts_what_a_change_matched() -> None:
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    table.create(engine)
    with Session(engine) as session:
        assert affected_rows(session.execute(sa.insert(table), [{"id": 1}, {"id": 2}])) == 2
        assert affected_rows(session.execute(sa.delete(table).where(table.c.id == 1))) == 1
        assert affected_rows(session.execute(sa.delete(table).where(table.c.id == 1))) == 0
        frozen = session.execute(sa.select(table)).freeze()()
        with pytest.raises(TypeError, match="no row count"):
            affected_rows(frozen)


def test_per_app_keeps_one_object_per_app_and_key() -> None:
    from flask import Flask

    from flasket.sql import per_app

    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    first, second = Flask("first"), Flask("second")
    with first.app_context():
        assert per_app("flasket.test", make) is per_app("flasket.test", make)
    assert per_app("flasket.test", make, first) is made[0]
    assert per_app("flasket.test", make, second) is made[1]
    assert per_app("flasket.other", make, second) is made[2]
    assert len(made) == 3
