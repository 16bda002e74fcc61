"""The errors of a load: a whole file that cannot be read, a warehouse of another layout, a load aborted."""

from __future__ import annotations

import errno

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


class LoadAborted(IngestError):
    """A load stopped half-way (out of disk, a failing write): rolled back, the warehouse as it was."""

    code = "ingest_aborted"
    status = None
    title_zh = "导入中止，数据仓库保持导入前的状态"

    def __init__(self, message: str, *, out_of_disk: bool = False) -> None:
        super().__init__(message)
        self.out_of_disk = out_of_disk

    @classmethod
    def of(cls, where: object, exc: BaseException) -> LoadAborted:
        """The error for ``exc`` raised while loading ``where`` (a file, or the load's id)."""
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        out_of_disk = getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc)
        what = "out of disk space" if out_of_disk else "the load failed"
        return cls(
            f"{what} while loading {where}: {text}. Nothing of this load was kept: the warehouse is exactly "
            "as it was before it. "
            + ("Free disk space and run the same command again." if out_of_disk else "Run the command again."),
            out_of_disk=out_of_disk,
        )
