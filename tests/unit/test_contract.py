from pathlib import Path

from scoring.data import schema
from scoring.data.contract import render_contract

REPO = Path(__file__).resolve().parents[2]


def test_the_data_contract_document_is_current() -> None:
    current = (REPO / "docs" / "data-contract.md").read_text(encoding="utf-8")
    assert current == render_contract(), "docs/data-contract.md is stale: run `scoring contract`"


def test_every_record_type_the_seeds_name_has_a_table() -> None:
    wanted = {
        "enterprises",
        "licenses",
        "penalties",
        "admin_actions",
        "executee_list",
        "serious_dishonesty_list",
        "commitments",
        "tax_monthly",
        "tax_ratings",
        "utility_monthly",
        "social_insurance_monthly",
        "housing_fund_monthly",
        "real_estate",
        "hightech_certificates",
        "patents",
        "loans",
        "objections",
    }
    assert wanted <= set(schema.TABLES)
    for table in schema.TABLES.values():
        assert set(table.key) <= set(table.column_names), table.name
        assert table.date_column is None or table.date_column in table.column_names, table.name
        headers = table.header_map()
        assert all(headers[c.label_zh.lower()] == c.name for c in table.columns), table.name
