"""Load platform exchange files into the DuckDB warehouse; lose nothing.

Files are Parquet, or CSV in UTF-8 or GBK with English or Chinese headers (mapped through the
data contract). Every row read ends in exactly one place:

- its table, when it passes every check (inserted, or replacing an older version of the same
  natural key: the later record wins and the older version moves to ``<table>_history``);
- nowhere new, when an identical version is already there (loading a file twice changes nothing);
- ``<table>_history``, when a later line of the same file has the same natural key;
- ``quarantine``, with table, source file, line, field and reason, when a check fails.

A whole file that cannot be read is an :class:`IngestError` naming the file and why. A load is one
transaction: stopped half-way (killed, out of disk), it leaves the warehouse as it was.

The modules: ``load`` (a load of many files, and its coverage), ``upsert`` (one file into one
table), ``reading`` (encoding, header, staging a file), ``checks`` (the row checks as SQL),
``warehouse`` (connecting, the table layout and its format, fingerprint, extraction date),
``report`` (what a load did), ``exchange`` (a CSV's records with their physical lines), ``marker``
(a load killed half-way, reported by the next), ``errors`` and ``sql`` (quoting and counting helpers).
"""

from scoring.data.ingest.checks import EARLIEST_DATE
from scoring.data.ingest.errors import IngestError, LoadAborted, WarehouseFormatError
from scoring.data.ingest.load import coverage, discover, ingest, ingest_directory, table_for
from scoring.data.ingest.reading import detect_encoding
from scoring.data.ingest.report import QUALITY_TARGET, LoadReport, TableLoad
from scoring.data.ingest.upsert import load_file
from scoring.data.ingest.warehouse import WAREHOUSE_FORMAT, connect, data_fingerprint, extract_date_of

__all__ = [
    "EARLIEST_DATE",
    "QUALITY_TARGET",
    "WAREHOUSE_FORMAT",
    "IngestError",
    "LoadAborted",
    "LoadReport",
    "TableLoad",
    "WarehouseFormatError",
    "connect",
    "coverage",
    "data_fingerprint",
    "detect_encoding",
    "discover",
    "extract_date_of",
    "ingest",
    "ingest_directory",
    "load_file",
    "table_for",
]
