"""The store's own PREPARE/EXECUTE path: placeholders numbered, values bound right, bounded per connection."""

from __future__ import annotations

import uuid

import pytest

from memory.settings import Settings
from stores import open_store
from stores.postgres import PostgresStore, prepared
from stores.postgres.prepared import preparable, prepared_statement


def test_named_placeholders_share_one_parameter_each() -> None:
    statement = prepared_statement("select %(a)s::text, %(b)s::int, %(a)s::text || '%%'")
    assert statement.prepare_sql.decode().endswith("as select $1::text, $2::int, $1::text || '%'")
    assert statement.names == ("a", "b")
    assert statement.values({"b": 2, "a": "x", "unused": 0}) == ["x", 2]
    assert statement.execute_template == f"execute {statement.name}(%s, %s)"


def test_positional_placeholders_and_their_count_are_checked() -> None:
    statement = prepared_statement("select %s::text where %s::int > 0")
    assert b"$1::text where $2::int" in statement.prepare_sql
    assert statement.values(["a", 1]) == ["a", 1]
    with pytest.raises(TypeError, match="takes 2 positional parameters, got 1"):
        statement.values(["a"])
    assert prepared_statement("select 1").execute_template == f"execute {prepared_statement('select 1').name}"


def test_mixed_or_unknown_placeholders_are_refused() -> None:
    with pytest.raises(ValueError, match="mixes"):
        prepared_statement("select %s, %(a)s")
    with pytest.raises(ValueError, match="unsupported placeholder"):
        prepared_statement("select %d")


def test_only_data_statements_are_prepared() -> None:
    assert preparable("\n  WITH x as (select 1) select * from x")
    assert preparable("delete from t")
    assert not preparable("do $$ begin end $$")
    assert not preparable("lock table t")


async def test_values_round_trip_through_execute(postgres_store_url: str) -> None:
    """Quotes, NULLs, arrays, big integers and timestamps reach the server as they were."""
    async with await open_store(f"{postgres_store_url}?pool_max=1", settings=Settings()) as store:
        assert isinstance(store, PostgresStore)
        query = "select %s::text, %s::text, %s::text[], %s::bigint, %s::smallint[]"
        values = ["it's; drop table x; --", None, ["a,b", 'c"d', "{e}"], 2**40, [1, 2]]
        assert await store._db.run(None, (query, values)) == [tuple(values)]


async def test_ad_hoc_statements_beyond_the_cap_run_unprepared(
    postgres_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection never holds more prepared statements than the cap; the rest still run."""
    monkeypatch.setattr(prepared, "MAX_PREPARED_PER_CONNECTION", 3)
    user_id = str(uuid.uuid4())
    async with await open_store(f"{postgres_store_url}?pool_max=1", settings=Settings()) as store:
        assert isinstance(store, PostgresStore)
        for number in range(8):
            assert await store._db.run(user_id, (f"select {number} + %s::int", [1])) == [(number + 1,)]
        rows = await store._db.run(None, ("select count(*) from pg_prepared_statements", None))
        assert rows == [(3,)]
