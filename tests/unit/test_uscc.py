import duckdb
import pytest

from scoring.data.uscc import (
    CHARSET,
    UsccFault,
    check_character,
    make_uscc,
    org_code_ok,
    sql_check_expression,
    sql_shape_expression,
    validate,
)

REAL = ["91320100748204660Q", "91430122707233692A"]


@pytest.mark.parametrize("code", REAL)
def test_real_codes_are_valid(code: str) -> None:
    assert validate(code) == []
    assert check_character(code[:17]) == code[17]
    assert org_code_ok(code)


@pytest.mark.parametrize("code", REAL)
def test_every_single_character_change_is_caught(code: str) -> None:
    for pos in range(18):
        for c in CHARSET:
            if c == code[pos]:
                continue
            changed = code[:pos] + c + code[pos + 1 :]
            assert validate(changed), f"{changed} passed"


def test_faults_are_named() -> None:
    assert validate("91320100748204660")[0].fault == UsccFault.LENGTH
    wrong = validate("9132010074820466OQ")[0]
    assert wrong.fault == UsccFault.CHARACTER and wrong.position == 17 and "'O'" in wrong.message_en
    check = validate("91320100748204660X")[0]
    assert check.fault == UsccFault.CHECK and "'Q'" in check.message_en and "校验码" in check.message_zh
    assert validate("91320100748204660q")[0].fault == UsccFault.CHARACTER  # lower case is not in the charset


def test_made_codes_are_valid() -> None:
    code = make_uscc(authority="9", entity_type="1", division="341323", org_body="12345678")
    assert len(code) == 18 and validate(code) == [] and org_code_ok(code)


def test_sql_expressions_agree_with_python() -> None:
    codes = [
        *REAL,
        "91320100748204660X",
        "91430122707233692B",
        make_uscc(authority="9", entity_type="2", division="341302", org_body="00001234"),
    ]
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT c, {sql_shape_expression('c')}, {sql_check_expression('c')} FROM unnest(?) t(c)", [codes]
    ).fetchall()
    for code, shape_ok, check_ok in rows:
        assert shape_ok
        assert check_ok == (validate(code) == [])
    assert not con.execute(f"SELECT {sql_shape_expression(chr(39) + '9132010074820466OQ' + chr(39))}").fetchone()[0]
