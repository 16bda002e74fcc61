"""`scoring export`: the warehouse's validated tables as a Parquet lake, read back by DuckDB and Spark."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scoring.cli import app
from scoring.data import schema
from scoring.data.ingest import connect
from scoring.data.lake import LakeError, export_lake, read_manifest


@pytest.fixture(scope="module")
def lake(county, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lake")
    with connect(county.settings.warehouse_path, read_only=True) as con:
        export_lake(con, out, buckets=4)
    return out


def test_every_validated_table_is_in_the_lake_row_for_row(county, lake: Path) -> None:
    manifest = read_manifest(lake)
    with connect(county.settings.warehouse_path, read_only=True) as con:
        for name, table in schema.TABLES.items():
            assert name in manifest["tables"], name
            columns = ", ".join(c.name for c in table.columns)
            glob = f"{lake / name}/**/*.parquet"
            # every row and every value, compared as sets of rows: nothing lost, nothing added
            missing = con.execute(
                f"SELECT count(*) FROM (SELECT {columns} FROM {name} EXCEPT ALL "
                f"SELECT {columns} FROM read_parquet('{glob}', hive_partitioning = true))"
            ).fetchone()
            extra = con.execute(
                f"SELECT count(*) FROM (SELECT {columns} FROM read_parquet('{glob}', hive_partitioning = true) "
                f"EXCEPT ALL SELECT {columns} FROM {name})"
            ).fetchone()
            assert missing == (0,) and extra == (0,), name
        assert manifest["tables"]["penalties"]["rows"] > 0 and manifest["buckets"] == 4
    assert sorted(p.name for p in (lake / "penalties").iterdir()) == [f"bucket={k}" for k in range(4)]
    assert (lake / "synthetic_regimes" / "data_0.parquet").exists()  # no USCC: one file


def test_one_enterprise_lives_in_one_bucket_of_every_table(lake: Path) -> None:
    import duckdb

    con = duckdb.connect()
    spread = con.execute(
        f"""SELECT max(n) FROM (
              SELECT uscc, count(DISTINCT bucket) AS n FROM (
                SELECT uscc, bucket FROM read_parquet('{lake}/penalties/**/*.parquet', hive_partitioning = true)
                UNION ALL
                SELECT uscc, bucket FROM read_parquet('{lake}/tax_monthly/**/*.parquet', hive_partitioning = true))
              GROUP BY uscc)"""
    ).fetchone()
    assert spread == (1,)


def test_spark_reads_the_lake_as_duckdb_holds_it(county, lake: Path, spark) -> None:
    frame = spark.read.option("basePath", str(lake / "penalties")).parquet(str(lake / "penalties"))
    got = frame.selectExpr("count(*) AS n", "sum(amount) AS total", "count(DISTINCT uscc) AS firms").collect()[0]
    with connect(county.settings.warehouse_path, read_only=True) as con:
        want = con.execute("SELECT count(*), sum(amount), count(DISTINCT uscc) FROM penalties").fetchone()
    assert want is not None
    assert (got["n"], got["firms"]) == (want[0], want[2])
    assert got["total"] == pytest.approx(want[1], rel=1e-12)


def test_the_command_writes_the_lake_and_a_non_lake_is_refused(county, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCORING_HOME", str(county.home))
    done = CliRunner().invoke(app, ["export", "--out", str(tmp_path / "lake"), "--buckets", "2"])
    assert done.exit_code == 0, done.output
    assert "exported" in done.output and (tmp_path / "lake" / "_lake.json").exists()
    with pytest.raises(LakeError, match="not a lake"):
        read_manifest(tmp_path)
