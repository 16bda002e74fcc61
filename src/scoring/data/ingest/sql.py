"""Small helpers for the SQL the load writes: quoting, counting, dropping temporary tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def count(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> int:
    """The first value of the first row of ``sql``, its parameters bound to ``params``, as an int (0 when
    there is no row)."""
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a temporary table or view of that name, whichever it is.

    The kind is looked up first: a DROP of the wrong kind is an error, and an error inside the
    load's transaction would abort it.
    """
    kinds = con.execute(
        "SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = $n AND temporary "
        "UNION ALL SELECT 'VIEW' FROM duckdb_views() WHERE view_name = $n AND temporary",
        {"n": name},
    ).fetchall()
    for (kind,) in kinds:
        con.execute(f"DROP {kind} IF EXISTS {ident(name)}")
