"""An exchange CSV as its lines really are: each record with its physical line, malformed ones set aside.

Platform exchange files are wrong in the ways such files are: a quoted field holding line breaks,
blank lines, a byte-order mark, GBK lines among UTF-8 ones (files concatenated from two systems),
a last line cut short, columns the contract does not know. DuckDB's CSV reader cannot say on which
physical line a row began once a quoted line break or a blank line has passed, and reads one
encoding per file, so one pass here (Python's C ``csv`` module, which counts the physical lines
it consumes) decodes every line on its own, numbers every record by the line it starts on, sets
aside every record that cannot be a row, and writes the rest as a clean UTF-8 CSV of the file's
fields, led by ``_line``, that DuckDB then reads with no guessing.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from scoring.data.ingest.errors import IngestError

csv.field_size_limit(1 << 24)  # a free-text field may be long; 16 MB bounds a runaway quote


def decode_line(raw: bytes) -> tuple[str, str | None]:
    """(the text of one line, the encoding it was in: 'utf-8', 'gbk', or None for neither, replaced)."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "gbk"
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), None


@dataclass
class Lines:
    """The physical lines of a file that is not UTF-8 throughout, each decoded on its own (UTF-8, else
    GB18030, a superset of GBK); the lines in neither encoding are noted."""

    f: BinaryIO
    undecodable: set[int] = field(default_factory=set)
    gbk: int = 0  # lines that are GBK (not UTF-8)
    utf8: int = 0  # lines with non-ASCII text in UTF-8

    def __iter__(self) -> Iterator[str]:
        for number, raw in enumerate(self.f, start=1):
            text, encoding = decode_line(
                raw[len(codecs.BOM_UTF8) :] if number == 1 and raw.startswith(codecs.BOM_UTF8) else raw
            )
            if encoding == "gbk":
                self.gbk += 1
            elif encoding is None:
                self.undecodable.add(number)
            elif not raw.isascii():
                self.utf8 += 1
            yield text


def decodes_as(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes in ``encoding`` (read in blocks, so any size is fine)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class Normalized:
    """What :func:`normalize` wrote and set aside."""

    rows: Path  # UTF-8 CSV: _line, then the file's fields in its order, named c0, c1, ...
    rejects: Path  # UTF-8 CSV: line, field, reason, record
    header: list[str]
    records: int = 0
    rejected: int = 0
    blank_lines: int = 0
    gbk_lines: int = 0
    utf8_lines: int = 0
    cr_marked: bool = False  # carriage returns inside fields were written as CR_MARK (DuckDB's reader refuses them)


# DuckDB's CSV reader will not take a carriage return inside a quoted field when lines end with LF: in the
# clean copy a field's CR is written as this private-use character, and the staging query puts it back
CR_MARK = "\ue000"


def _holds(path: Path, needle: bytes) -> bool:
    """Whether the file's bytes hold ``needle`` (read in blocks; a needle split across two is found too)."""
    tail = b""
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            if needle in tail + block:
                return True
            tail = block[-len(needle) :]
    return False


def read_header(path: Path) -> tuple[list[str], str]:
    """(the column names of the header line, the delimiter); an error for a file without one."""
    with path.open("rb") as f:
        first = next(iter(Lines(f)), "")  # (a header in GBK is read as well)
    if not first.strip():
        raise IngestError(f"{path}: empty file (no header line)")
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",\t;|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        header = next(csv.reader([first], delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise IngestError(
            f"{path}: the header line cannot be read as CSV ({exc}); lines must end with LF or CRLF"
        ) from exc
    return [h.strip() for h in header], delimiter


def normalize(path: Path, workdir: Path) -> Normalized:
    """Read ``path`` record by record; write the good ones (``_line``, then fields ``c0``, ``c1``, ... in the
    header's order) and the rejects.

    A record is rejected, with the physical line it starts on, when it is not valid CSV (a stray
    quote, a quote never closed before the end of the file), when its number of fields differs from
    the header's (a truncated line, a delimiter too many), or when a line of it is in neither
    encoding. Blank lines are not records and are only counted. A file that is UTF-8 throughout (the
    common case) is read through the C text layer; any other line by line (:class:`Lines`).
    """
    header, delimiter = read_header(path)
    out = Normalized(rows=workdir / "rows.csv", rejects=workdir / "rejects.csv", header=header)
    rejected: list[tuple[int, int, str]] = []  # (first line, last line, reason)
    out.cr_marked = _holds(path, b"\r")
    if out.cr_marked and _holds(path, CR_MARK.encode()):
        raise IngestError(f"{path}: holds both carriage returns and U+E000, which the load uses to carry them")
    with path.open("rb") as f, out.rows.open("w", encoding="utf-8", newline="") as rows_file:
        lines = None if decodes_as(path, "utf-8") else Lines(f)
        # newline="\n": a line ends at LF alone, as in Lines and the rejects' second pass (a lone CR
        # is text, and csv reads CRLF as the end of a record)
        text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="\n") if lines is None else lines
        rows = csv.writer(rows_file, lineterminator="\n")
        rows.writerow(["_line", *(f"c{i}" for i in range(len(header)))])
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        next(reader)  # the header, read above
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rejected.append((start, reader.line_num, f"malformed line: {exc}"))
                continue
            if not record or (len(record) == 1 and not record[0].strip()):
                out.blank_lines += reader.line_num - start + 1
            elif lines is not None and lines.undecodable.intersection(range(start, reader.line_num + 1)):
                rejected.append((start, reader.line_num, "malformed line: neither UTF-8 nor GBK text (编码无法识别)"))
            elif len(record) != len(header):
                why = f"malformed line: {len(record)} fields where the header has {len(header)} (字段数不符)"
                rejected.append((start, reader.line_num, why))
            else:
                if out.cr_marked:
                    record = [f.replace("\r", CR_MARK) for f in record]
                record.insert(0, start)  # type: ignore[arg-type]  # (in place: this loop runs once a record)
                rows.writerow(record)
                out.records += 1
    if lines is not None:
        out.gbk_lines, out.utf8_lines = lines.gbk, lines.utf8
    out.rejected = len(rejected)
    _write_rejects(path, rejected, out.rejects)
    return out


def _write_rejects(path: Path, rejected: list[tuple[int, int, str]], target: Path) -> None:
    """The rejected records with the text of their lines as read (a second pass, over their lines only)."""
    wanted = iter(rejected)
    current = next(wanted, None)
    held: list[str] = []
    with path.open("rb") as f, target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line", "field", "reason", "record"])
        for number, raw in enumerate(f, start=1):
            if current is None:
                break
            first, last, reason = current
            if number < first:
                continue
            held.append(decode_line(raw)[0])
            if number == last:
                text = "".join(held).rstrip("\r\n").replace("\r", CR_MARK)  # (put back by the staging query)
                writer.writerow([first, "(line)", reason, text])
                held, current = [], next(wanted, None)
    if current is not None:  # the first pass and this one disagree on the lines: never lose a record silently
        raise IngestError(
            f"{path}: rejected record at line {current[0]} not found again; nothing of the file was loaded"
        )
