"""An exchange CSV as its lines really are: each record with its physical line, malformed ones set aside.

Platform exchange files are wrong in the ways such files are: a quoted field holding line breaks,
blank lines, a byte-order mark, GBK lines among UTF-8 ones (files concatenated from two systems),
a last line cut short, columns the contract does not know. DuckDB's CSV reader cannot say on which
physical line a row began once a quoted line break or a blank line has passed, and reads one
encoding per file, so one pass here (Python's C ``csv`` module, which counts the physical lines
it consumes) decodes every line on its own, numbers every record by the line it starts on, sets
aside every record that cannot be a row, and writes the rest as a clean UTF-8 CSV of the contract's
columns, led by ``_line``, that DuckDB then reads with no guessing.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from scoring.data.ingest.errors import IngestError

csv.field_size_limit(1 << 24)  # a free-text field may be long; 16 MB bounds a runaway quote


@dataclass
class Lines:
    """The physical lines of a file, each decoded on its own (UTF-8, else GB18030, a superset of GBK)."""

    f: BinaryIO
    pending: list[str] = field(default_factory=list)  # the lines of the record being read
    undecodable: set[int] = field(default_factory=set)  # physical lines in neither encoding
    gbk: int = 0  # lines that are GBK (not UTF-8)
    utf8: int = 0  # lines with non-ASCII text in UTF-8
    number: int = 0  # physical lines read so far

    def __iter__(self) -> Iterator[str]:
        for raw in self.f:
            self.number += 1
            if self.number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            text = self._decode(raw)
            self.pending.append(text)
            yield text

    def _decode(self, raw: bytes) -> str:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            self.utf8 += not raw.isascii()
            return text
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            self.undecodable.add(self.number)
            return raw.decode("utf-8", errors="replace")
        self.gbk += 1
        return text


@dataclass
class Normalized:
    """What :func:`normalize` wrote and set aside."""

    rows: Path  # UTF-8 CSV: _line, then the contract's columns by their canonical names
    rejects: Path  # UTF-8 CSV: line, field, reason, record
    header: list[str]
    records: int = 0
    rejected: int = 0
    blank_lines: int = 0
    gbk_lines: int = 0
    utf8_lines: int = 0


def read_header(path: Path) -> tuple[list[str], str]:
    """(the column names of the header line, the delimiter); an error for a file without one."""
    with path.open("rb") as f:
        first = next(iter(Lines(f)), "")
    if not first.strip():
        raise IngestError(f"{path}: empty file (no header line)")
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",\t;|").delimiter
    except csv.Error:
        delimiter = ","
    header = next(csv.reader([first], delimiter=delimiter))
    return [h.strip() for h in header], delimiter


def normalize(path: Path, columns: dict[str, str], workdir: Path) -> Normalized:
    """Read ``path`` record by record; write the good ones' ``columns`` (canonical -> file column) and the rejects.

    A record is rejected, with the physical line it starts on, when it is not valid CSV (a stray
    quote, a quote never closed before the end of the file), when its number of fields differs from
    the header's (a truncated line, a delimiter too many), or when a line of it is in neither
    encoding. Blank lines are not records and are only counted.
    """
    header, delimiter = read_header(path)
    out = Normalized(rows=workdir / "rows.csv", rejects=workdir / "rejects.csv", header=header)
    index = {canonical: header.index(name) for canonical, name in columns.items()}
    with (
        path.open("rb") as f,
        out.rows.open("w", encoding="utf-8", newline="") as rows_file,
        out.rejects.open("w", encoding="utf-8", newline="") as rejects_file,
    ):
        lines = Lines(f)
        rows, rejects = csv.writer(rows_file, lineterminator="\n"), csv.writer(rejects_file, lineterminator="\n")
        rows.writerow(["_line", *index])
        rejects.writerow(["line", "field", "reason", "record"])
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        next(reader)  # the header, read above
        lines.pending.clear()
        while True:
            start = lines.number + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                _reject(out, rejects, lines, start, f"malformed line: {exc}")
                continue
            if not record or (len(record) == 1 and not record[0].strip()):
                out.blank_lines += lines.number - start + 1
                lines.pending.clear()
                continue
            if lines.undecodable.intersection(range(start, lines.number + 1)):
                _reject(out, rejects, lines, start, "malformed line: neither UTF-8 nor GBK text (编码无法识别)")
            elif len(record) != len(header):
                _reject(
                    out,
                    rejects,
                    lines,
                    start,
                    f"malformed line: {len(record)} fields where the header has {len(header)} (字段数不符)",
                )
            else:
                rows.writerow([start, *(record[i] for i in index.values())])
                out.records += 1
                lines.pending.clear()
    out.gbk_lines, out.utf8_lines = lines.gbk, lines.utf8
    return out


def _reject(out: Normalized, rejects: Any, lines: Lines, start: int, reason: str) -> None:
    """One rejected record: its first physical line, the reason and the text of its lines as read."""
    rejects.writerow([start, "(line)", reason, "".join(lines.pending).rstrip("\r\n")])
    out.rejected += 1
    lines.pending.clear()
