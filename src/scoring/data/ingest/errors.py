"""The errors of a load: a whole file that cannot be read, a warehouse of another layout."""

from __future__ import annotations

from scoring.errors import ScoringError


class IngestError(ScoringError, RuntimeError):
    """A whole file could not be read or lacks required columns."""

    code = "ingest_failed"
    status = None
    title_zh = "数据文件无法导入"


class WarehouseFormatError(IngestError):
    """The warehouse file was written by a version with another table layout."""

    code = "warehouse_format"
    status = None
    title_zh = "数据仓库文件的版本不符"
