"""Ingestion loses nothing: every row is loaded, unchanged, kept in history, or quarantined with its reason."""

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from scoring.data.ingest import IngestError, ingest

HEADER_ZH = "处罚决定书文号,统一社会信用代码,处罚领域,违法程度,罚没金额(元),处罚决定日期,公示截止日期,信用修复日期"


def _latest_loads(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT table_name, rows_read, inserted, replaced, unchanged, duplicates_in_file, quarantined FROM loads "
        "WHERE load_id = (SELECT arg_max(load_id, loaded_at) FROM loads)"
    ).fetchall()


def test_every_injected_fault_is_quarantined_and_nothing_is_lost(county) -> None:
    con = duckdb.connect(str(county.settings.warehouse_path), read_only=True)
    for table, read, inserted, replaced, unchanged, dups, quarantined in _latest_loads(con):
        assert inserted + replaced + unchanged + dups + quarantined == read, table
        expected = sum(county.manifest["injected_errors"].get(table, {}).values())
        assert quarantined == expected, table
        assert read == county.manifest["rows"][table]
    reasons = " ".join(r[0] for r in con.execute("SELECT DISTINCT reason FROM quarantine").fetchall())
    for fault in ("malformed USCC", "unknown enterprise", "negative amount", "impossible date"):
        assert fault in reasons
    row = con.execute("SELECT source_file, line, field, record FROM quarantine LIMIT 1").fetchone()
    assert row[0].endswith(".parquet") and row[1] >= 1 and row[2] and row[3].startswith("{")


def test_pilot_codes_are_kept_with_a_warning(county) -> None:
    con = duckdb.connect(str(county.settings.warehouse_path), read_only=True)
    kept = con.execute("SELECT count(*) FROM enterprises WHERE NOT uscc_check_ok").fetchone()[0]
    assert kept == county.manifest["pilot_codes"]


@pytest.fixture()
def enterprises(county) -> list[str]:
    con = duckdb.connect(str(county.settings.warehouse_path), read_only=True)
    return [
        r[0]
        for r in con.execute(
            "SELECT uscc FROM enterprises WHERE registered_date < DATE '2020-01-01' AND uscc_check_ok ORDER BY uscc LIMIT 3"
        ).fetchall()
    ]


@pytest.fixture()
def fresh(county, tmp_path: Path) -> Path:
    """A warehouse holding only the county's enterprises (loaded from its Parquet file)."""
    wh = tmp_path / "w.duckdb"
    folder = tmp_path / "reg"
    folder.mkdir()
    shutil.copy(county.raw / "enterprises.parquet", folder)
    shutil.copy(county.raw / "manifest.json", folder)
    ingest([folder], wh)
    return wh


def _penalty_csv(path: Path, lines: list[str], encoding: str) -> Path:
    path.write_text("\n".join([HEADER_ZH, *lines]) + "\n", encoding=encoding)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "gbk", "utf-8-sig"])
def test_csv_with_chinese_headers_in_utf8_or_gbk(fresh, enterprises, tmp_path: Path, encoding: str) -> None:
    a, b, _ = enterprises
    csv = _penalty_csv(
        tmp_path / "行政处罚.csv",
        [
            f"皖市监罚〔2024〕1号,{a},市场监管,一般,5000,2024-03-01,2025-03-01,",
            f'皖环罚〔2024〕7号,{b},生态环境,较重,"120,000",2024/05/20,2027/05/20,2025-01-10',
        ],
        encoding,
    )
    report = ingest([csv], fresh, extract_date=None)
    (load,) = report.tables
    assert (load.table, load.rows_read, load.inserted, load.quarantined) == ("penalties", 2, 2, 0)
    con = duckdb.connect(str(fresh), read_only=True)
    rows = con.execute(
        "SELECT penalty_id, domain, amount, decision_date, repair_date FROM penalties ORDER BY amount"
    ).fetchall()
    assert rows[0][:3] == ("皖市监罚〔2024〕1号", "市场监管", 5000.0)
    assert (
        rows[1][1:3] == ("生态环境", 120000.0) and str(rows[1][3]) == "2024-05-20" and str(rows[1][4]) == "2025-01-10"
    )


def test_each_bad_row_is_quarantined_with_line_and_reason_each_good_row_loaded(
    fresh, enterprises, tmp_path: Path
) -> None:
    a, b, c = enterprises
    lines = [
        f"P-1,{a},市场监管,一般,5000,2024-03-01,2025-03-01,",  # line 2: good
        f"P-2,{a[:-1]}O,市场监管,一般,5000,2024-03-01,2025-03-01,",  # 3: malformed USCC
        "P-3,91110105000000001X,市场监管,一般,5000,2024-03-01,2025-03-01,",  # 4: unregistered code
        f"P-4,{b},市场监管,一般,-5,2024-03-01,2025-03-01,",  # 5: negative amount
        f"P-5,{b},市场监管,一般,5000,2031-03-01,2032-03-01,",  # 6: after the extraction date
        f"P-6,{b},市场监管,很重,5000,2024-03-01,2025-03-01,",  # 7: severity not allowed
        f"P-7,{c},市场监管,一般,五千,2024-03-01,2025-03-01,",  # 8: not a number
        f"P-8,{c},市场监管,一般,5000,2024-03-01",  # 9: too few columns
        f"P-9,{c},市场监管,一般,5000,2024-03-01,2025-03-01,2023-01-01",  # 10: repaired before decided
        f"P-10,{c},市场监管,轻微,100,2024-04-01,2024-07-01,",  # 11: good
    ]
    report = ingest([_penalty_csv(tmp_path / "penalties.csv", lines, "gbk")], fresh)
    (load,) = report.tables
    assert (load.rows_read, load.inserted, load.quarantined) == (10, 2, 8)
    con = duckdb.connect(str(fresh), read_only=True)
    assert sorted(r[0] for r in con.execute("SELECT penalty_id FROM penalties").fetchall()) == ["P-1", "P-10"]
    got = {
        line: (field, reason)
        for line, field, reason in con.execute("SELECT line, field, reason FROM quarantine").fetchall()
    }
    assert got[3][0] == "uscc" and "malformed USCC" in got[3][1]
    assert got[4][0] == "uscc" and "unknown enterprise" in got[4][1]
    assert got[5] == ("amount", "negative amount (金额/数量为负)")
    assert got[6][0] == "decision_date" and "extraction date" in got[6][1]
    assert got[7][0] == "severity" and "not allowed" in got[7][1]
    assert got[8] == ("amount", "not a valid DOUBLE (格式错误)")
    assert "malformed line" in got[9][1]
    assert got[10][0] == "repair_date" and "before decision_date" in got[10][1]
    assert sorted(got) == [3, 4, 5, 6, 7, 8, 9, 10]


def test_loading_twice_or_overlapping_adds_no_duplicates_and_keeps_history(fresh, enterprises, tmp_path: Path) -> None:
    a, b, _ = enterprises
    (tmp_path / "a").mkdir()
    first = _penalty_csv(
        tmp_path / "a" / "penalties.csv",
        [f"P-1,{a},市场监管,一般,5000,2024-03-01,2025-03-01,", f"P-2,{b},市场监管,一般,800,2024-04-01,2025-04-01,"],
        "utf-8",
    )
    ingest([first], fresh)
    again = ingest([first], fresh).tables[0]
    assert (again.inserted, again.replaced, again.unchanged) == (0, 0, 2)
    # an overlapping later file: P-2 repaired (a new version), P-3 new, and P-3 twice in the file
    (tmp_path / "b").mkdir()
    later = _penalty_csv(
        tmp_path / "b" / "penalties.csv",
        [
            f"P-2,{b},市场监管,一般,800,2024-04-01,2025-04-01,2024-10-01",
            f"P-3,{b},税务,轻微,100,2024-05-01,2024-08-01,",
            f"P-3,{b},税务,轻微,200,2024-05-01,2024-08-01,",
        ],
        "utf-8",
    )
    load = ingest([later], fresh).tables[0]
    assert (load.inserted, load.replaced, load.unchanged, load.duplicates_in_file) == (1, 1, 0, 1)
    con = duckdb.connect(str(fresh), read_only=True)
    rows = dict(
        con.execute(
            "SELECT penalty_id, coalesce(CAST(repair_date AS VARCHAR), CAST(amount AS VARCHAR)) FROM penalties"
        ).fetchall()
    )
    assert rows == {"P-1": "5000.0", "P-2": "2024-10-01", "P-3": "200.0"}  # the later record wins
    history = con.execute(
        "SELECT penalty_id, amount, repair_date FROM penalties_history ORDER BY penalty_id"
    ).fetchall()
    assert history == [("P-2", 800.0, None), ("P-3", 100.0, None)]


def test_loading_the_county_twice_gives_the_same_warehouse(county, tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    ingest([county.raw], wh)
    first = _counts(wh)
    report = ingest([county.raw], wh)
    assert _counts(wh) == first
    assert sum(t.inserted + t.replaced for t in report.tables) == 0


def _counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = ["enterprises", "tax_monthly", "penalties", "loans", "objections", "penalties_history"]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def test_report_has_rates_against_the_target_and_coverage(county, tmp_path: Path) -> None:
    report = ingest([county.raw], tmp_path / "w.duckdb")
    injected_uscc = sum(
        v.get("bad_uscc", 0) + v.get("unknown_enterprise", 0) for v in county.manifest["injected_errors"].values()
    )
    assert report.uscc_error_rate == pytest.approx(injected_uscc / report.rows_read)
    assert 0.5 < report.coverage["tax_monthly"] < 0.95 and report.coverage["penalties"] > 0
    text = report.to_markdown()
    assert "target ≤ 0.01%" in text and "Coverage among live enterprises" in text


def test_an_unreadable_file_is_reported_and_the_command_exits_non_zero(county, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    shutil.copytree(county.raw, folder)
    (folder / "penalties.parquet").write_bytes(b"not a parquet file")
    report = ingest([folder], tmp_path / "w.duckdb")
    assert "penalties.parquet" in next(iter(report.failures)) and "Parquet" in next(iter(report.failures.values()))
    assert {t.table for t in report.tables} >= {"enterprises", "tax_monthly"}  # the rest still loads
    cli = subprocess.run(
        [sys.executable, "-m", "scoring.cli", "ingest", str(folder)],
        env={"SCORING_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "400"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert cli.returncode == 1 and "penalties.parquet" in cli.stdout


def test_a_missing_column_is_an_error_that_names_it(county, tmp_path: Path) -> None:
    con = duckdb.connect()
    target = tmp_path / "penalties.parquet"
    con.execute(
        f"COPY (SELECT * EXCLUDE (severity) FROM read_parquet('{county.raw}/penalties.parquet')) TO '{target}' (FORMAT parquet)"
    )
    report = ingest([county.raw / "enterprises.parquet", target], tmp_path / "w.duckdb")
    assert "severity" in report.failures[str(target)] and "违法程度" in report.failures[str(target)]


def test_without_enterprises_nothing_loads(county, tmp_path: Path) -> None:
    (tmp_path / "enterprises.csv").write_text("nonsense\n", encoding="utf-8")
    with pytest.raises(IngestError, match="enterprises"):
        ingest([tmp_path / "enterprises.csv"], tmp_path / "w.duckdb")


def test_rejects_of_one_csv_do_not_leak_into_the_next(fresh, enterprises, tmp_path: Path) -> None:
    a, b, _ = enterprises
    _penalty_csv(
        tmp_path / "penalties.csv",
        [f"P-1,{a},市场监管,一般,5000,2024-03-01", f"P-2,{b},市场监管,一般,5,2024-03-01,2025-03-01,"],
        "utf-8",
    )
    (tmp_path / "patents.csv").write_text(
        f"patent_no,uscc,patent_type,granted_date\nZL1,{a},发明,2024-01-05\n", encoding="utf-8"
    )
    report = ingest([tmp_path], fresh)
    loads = {t.table: (t.rows_read, t.inserted, t.quarantined) for t in report.tables}
    assert loads["penalties"] == (2, 1, 1) and loads["patents"] == (1, 1, 0)


def test_reloading_a_file_with_in_file_duplicates_keeps_one_history_copy(fresh, enterprises, tmp_path: Path) -> None:
    a, _, _ = enterprises
    csv = _penalty_csv(
        tmp_path / "penalties.csv",
        [f"P-1,{a},税务,轻微,100,2024-05-01,2024-08-01,", f"P-1,{a},税务,轻微,200,2024-05-01,2024-08-01,"],
        "utf-8",
    )
    for _ in range(3):
        ingest([csv], fresh)
    con = duckdb.connect(str(fresh), read_only=True)
    assert con.execute("SELECT count(*) FROM penalties_history").fetchone()[0] == 1
    assert con.execute("SELECT amount FROM penalties").fetchall() == [(200.0,)]


def test_a_warehouse_loaded_before_a_table_joined_the_schema_still_has_a_fingerprint(warehouse_copy: Path) -> None:
    """loan_applications joined the schema after warehouses were loaded; until the next ingestion
    creates it, the fingerprint (the lineage of every model) leaves it out instead of failing."""
    from scoring.data.ingest import data_fingerprint

    with duckdb.connect(str(warehouse_copy)) as con:
        with_table = data_fingerprint(con)
        con.execute("DROP TABLE loan_applications")
        without = data_fingerprint(con)
    assert len(without) == 16 and without != with_table
