"""Exchange files wrong in the ways real ones are: every bad record quarantined at its exact physical line.

Quoted fields with line breaks, blank lines, a BOM, GBK lines among UTF-8 ones, a stray quote, a
truncated last line, a column the contract does not know; and a million rows of which a tenth are
bad. Nothing is dropped without a quarantine row, and no row is half-loaded.
"""

from __future__ import annotations

import codecs
import shutil
from pathlib import Path

import duckdb
import pytest

from scoring.data.generate.messy import HEADER, write_messy_penalties
from scoring.data.ingest import ingest


@pytest.fixture()
def fresh(county, tmp_path: Path) -> Path:
    """A warehouse holding only the county's enterprises."""
    folder = tmp_path / "reg"
    folder.mkdir()
    shutil.copy(county.raw / "enterprises.parquet", folder)
    shutil.copy(county.raw / "manifest.json", folder)
    ingest([folder], tmp_path / "w.duckdb")
    return tmp_path / "w.duckdb"


@pytest.fixture()
def codes(fresh: Path) -> list[str]:
    con = duckdb.connect(str(fresh), read_only=True)
    rows = con.execute(
        "SELECT uscc FROM enterprises WHERE registered_date < DATE '2020-01-01' AND deregistered_date IS NULL AND uscc_check_ok "
        "ORDER BY uscc LIMIT 50"
    ).fetchall()
    return [r[0] for r in rows]


def _quarantine(warehouse: Path) -> dict[int, tuple[str, str, str]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    rows = con.execute("SELECT line, field, reason, record FROM quarantine WHERE table_name = 'penalties'").fetchall()
    got = {line: (field, reason, record) for line, field, reason, record in rows}
    assert len(got) == len(rows), "one quarantine row per bad record"
    return got


def test_each_bad_record_is_named_by_its_physical_line(fresh: Path, codes: list[str], tmp_path: Path) -> None:
    a, b, c = codes[:3]
    utf8 = [
        (1, HEADER),
        (2, f"P-1,{a},市场监管,一般,5000,2024-03-01,2025-03-01,,"),  # good
        (3, f'P-2,{a},市场监管,一般,100,2024-03-02,2025-03-02,,"第一行'),  # good, its note runs over 3 lines
        (4, "第二行"),
        (5, '第三行"'),
        (6, ""),  # blank
        (7, f"P-3,{b},市场监管,一般,-5,2024-03-01,2025-03-01,,"),  # negative amount
        (8, "   "),  # blank (spaces)
        (9, f'P-4,{b},"市场\n监管",一般,5,2024-03-01,2025-03-01,,'),  # a line break in a checked field: not allowed
        (11, f"P-5,{b},市场监管,一般,5,2024-03-01,2025-03-01,,x"),  # good
    ]
    gbk = (12, f"P-6,{c},生态环境,较重,800,2024-06-01,2025-06-01,,环保")  # good, GBK among UTF-8
    tail = [
        (13, f'P-7,{c},市场监管,一般,5,2024-03-01,2025-03-01,,"a"b'),  # a stray quote
        (14, f"P-8,{c},市场监管,一般,5,2024-03-01,2025-03-01,,,extra"),  # a field too many
        (15, f"P-9,{c},市场监管,一般,5,2024-03-01,2025-03-01,,"),  # good
        (16, f"P-10,{c},市场监管,一"),  # truncated last line, no line break
    ]
    body = codecs.BOM_UTF8 + "\n".join(text for _, text in utf8).encode("utf-8") + b"\n"
    body += gbk[1].encode("gbk") + b"\n"
    body += "\n".join(text for _, text in tail).encode("utf-8")
    path = tmp_path / "行政处罚.csv"
    path.write_bytes(body)

    (load,) = ingest([path], fresh).tables

    assert (load.rows_read, load.inserted, load.quarantined) == (10, 5, 5)
    assert load.warnings == {
        "columns not in the contract, ignored: ['备注']": 1,
        "blank lines skipped (空行)": 2,
        "lines in GBK among UTF-8 ones, each read in its own encoding (编码混合)": 1,
    }
    con = duckdb.connect(str(fresh), read_only=True)
    loaded = dict(con.execute("SELECT penalty_id, _line FROM penalties").fetchall())
    assert loaded == {"P-1": 2, "P-2": 3, "P-5": 11, "P-6": 12, "P-9": 15}
    assert con.execute("SELECT domain FROM penalties WHERE penalty_id = 'P-6'").fetchone() == ("生态环境",)
    got = _quarantine(fresh)
    assert sorted(got) == [7, 9, 13, 14, 16]
    assert got[7][:2] == ("amount", "negative amount (金额/数量为负)")
    assert got[9][0] == "domain" and "市场\\n监管" in got[9][2]
    assert got[13][0] == "(line)" and "malformed line" in got[13][1] and "P-7" in got[13][2]
    assert got[14][1] == "malformed line: 10 fields where the header has 9 (字段数不符)"
    assert got[16][1] == "malformed line: 4 fields where the header has 9 (字段数不符)" and "P-10" in got[16][2]


def test_a_quote_never_closed_quarantines_the_rest_of_the_file_as_one_record(
    fresh: Path, codes: list[str], tmp_path: Path
) -> None:
    a = codes[0]
    path = tmp_path / "penalties.csv"
    path.write_text(
        f"{HEADER}\nP-1,{a},市场监管,一般,5,2024-03-01,2025-03-01,,\n"
        f'P-2,{a},市场监管,一般,5,2024-03-01,2025-03-01,,"never closed\nP-3,{a},市场监管,一般,5,2024-03-01,2025-03-01,,\n',
        encoding="utf-8",
    )
    (load,) = ingest([path], fresh).tables
    assert (load.rows_read, load.inserted, load.quarantined) == (2, 1, 1)
    ((line, (field, reason, record)),) = _quarantine(fresh).items()
    assert line == 3 and field == "(line)" and "malformed line" in reason and "P-3" in record


def test_bytes_in_neither_encoding_are_quarantined_not_guessed(fresh: Path, codes: list[str], tmp_path: Path) -> None:
    a = codes[0]
    path = tmp_path / "penalties.csv"
    path.write_bytes(
        f"{HEADER}\nP-1,{a},市场监管,一般,5,2024-03-01,2025-03-01,,\n".encode()
        + f"P-2,{a},市场监管,一般,5,2024-03-01,2025-03-01,,".encode()
        + b"\xff\xfe\n"
    )
    (load,) = ingest([path], fresh).tables
    assert (load.rows_read, load.inserted, load.quarantined) == (2, 1, 1)
    assert _quarantine(fresh)[3][1] == "malformed line: neither UTF-8 nor GBK text (编码无法识别)"


def test_a_million_rows_a_tenth_bad_each_at_its_line(fresh: Path, codes: list[str], tmp_path: Path) -> None:
    """Every tenth record is bad in one of five ways; quoted line breaks and blank lines move the lines."""
    messy = write_messy_penalties(tmp_path / "penalties.csv", codes, 1_000_000)

    (load,) = ingest([messy.path], fresh).tables

    assert (load.rows_read, load.inserted, load.quarantined) == (1_000_000, 900_000, 100_000)
    assert load.warnings["blank lines skipped (空行)"] == messy.blank_lines == 1000
    con = duckdb.connect(str(fresh), read_only=True)
    stored = con.execute("SELECT count(*), count(DISTINCT penalty_id) FROM penalties").fetchone()
    assert stored == (900_000, 900_000)
    mismatched = con.execute(
        "SELECT count(*) FROM penalties p JOIN (SELECT unnest($ids) AS id, unnest($lines) AS line) g "
        "ON g.id = p.penalty_id WHERE g.line <> p._line",
        {"ids": list(messy.good), "lines": list(messy.good.values())},
    ).fetchone()
    assert mismatched == (0,)
    got = con.execute("SELECT line, field FROM quarantine WHERE table_name = 'penalties' ORDER BY line").fetchall()
    assert dict(got) == messy.bad and len(got) == len(messy.bad)


def test_a_lone_carriage_return_is_text_and_moves_no_line(fresh: Path, codes: list[str], tmp_path: Path) -> None:
    a = codes[0]
    path = tmp_path / "penalties.csv"
    path.write_bytes(
        (
            f"{HEADER}\r\n"  # CRLF line ends
            f'P-1,{a},市场监管,一般,5,2024-03-01,2025-03-01,,"x\ry"\r\n'  # a CR inside a quoted note
            f"P-2,{a},市场监管,一般,5\r\n"  # too few fields
            f"P-3,{a},市场监管,一般,5,2024-03-01,2025-03-01,,z\r\n"
        ).encode()
    )
    (load,) = ingest([path], fresh).tables
    assert (load.rows_read, load.inserted, load.quarantined) == (3, 2, 1)
    con = duckdb.connect(str(fresh), read_only=True)
    assert dict(con.execute("SELECT penalty_id, _line FROM penalties").fetchall()) == {"P-1": 2, "P-3": 4}
    ((line, (_, _, record)),) = _quarantine(fresh).items()
    assert line == 3 and "P-2" in record


def test_a_file_of_cr_line_ends_is_a_named_failure_not_a_crash(fresh: Path, codes: list[str], tmp_path: Path) -> None:
    path = tmp_path / "penalties.csv"
    path.write_bytes(f"{HEADER}\rP-1,{codes[0]},市场监管,一般,5,2024-03-01,2025-03-01,,\r".encode())
    report = ingest([path], fresh)
    assert "lines must end with LF or CRLF" in report.failures[str(path)]
