"""``models.db.id_array``: a list of ids bound as one array literal, read back by the server as ``bigint[]``."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from sqlalchemy import any_, column, create_engine, func, select, values
from sqlalchemy.engine import Engine
from sqlalchemy.types import BigInteger

db_module = importlib.import_module("models.db")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("ids", [[], [7], [3, 1, 2], list(range(1, 1001)), [2**62, -5]])
def test_ids_reach_the_server_as_the_same_bigint_array(engine: Engine, ids: list[int]) -> None:
    with engine.connect() as conn:
        echoed = conn.execute(select(db_module.id_array("ids")), {"ids": ids}).scalar_one()
        # and as the right side of "= ANY": which of 1..5 are among them
        rows = values(column("n", BigInteger), name="v").data([(n,) for n in range(1, 6)])
        hits = conn.execute(select(rows.c.n).where(rows.c.n == any_(db_module.id_array("ids")))
                            .order_by(rows.c.n), {"ids": ids}).scalars().all()
    assert echoed == ids
    assert hits == [n for n in range(1, 6) if n in ids]


def test_no_list_binds_null(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(select(func.coalesce(func.cardinality(db_module.id_array("ids")), -1)),
                            {"ids": None}).scalar_one() == -1
