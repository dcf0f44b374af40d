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
