"""Table files read as they stream: CSV, TSV, JSON Lines and Parquet, in blocks of rows, with the
line of every record.

Files are parsed with the csv and json modules (and pyarrow for Parquet) rather than pandas so
that the line of every record is known exactly, quoted newlines included, and so that a file of
any size is read a block at a time: memory holds one block, never the file. Every problem raises
TfclfError naming the file and the line. `read_table` is the whole file as one block.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Iterator

import pandas as pd

from tfclf.errors import TfclfError, option

csv.field_size_limit(2**31 - 1)  # documents of megabytes are legitimate text

BLOCK_ROWS = 4096  # rows per block: enough for length-sorted batches, small enough to stream
BLOCK_CHARS = 16 * 2**20  # and a block ends early past this many characters of text (long documents)
JSONL, DELIMITED, PARQUET = (".jsonl", ".json", ".ndjson"), (".csv", ".tsv", ".tab", ".txt"), (".parquet", ".pq")


@dataclasses.dataclass
class Table:
    frame: pd.DataFrame  # CSV and TSV: every cell a string; JSON Lines, Parquet and DataFrames: their values
    source: str
    rows: list[str]  # "line 7" or "row 3", one per record
    typed: bool = True  # whether cells keep their types (a CSV's integers are text)


class TableReader:
    """A file's records in blocks (`blocks`), and how far the reading got (`bytes_read` of `size`)."""

    def __init__(self, path: str | Path, encoding: str = "utf-8"):
        self.path = Path(path)
        self.source = str(self.path)
        if not self.path.exists():
            raise TfclfError(f"{self.source}: no such file")
        if self.path.is_dir():
            raise TfclfError(f"{self.source}: is a folder, not a data file")
        self.suffix = self.path.suffix.lower()
        if self.suffix not in JSONL + DELIMITED + PARQUET:
            raise TfclfError(f"{self.source}: unknown file type {self.suffix!r}; use .csv, .tsv, .jsonl or .parquet")
        self.encoding = _codec(encoding)
        self.size = self.path.stat().st_size
        self.bytes_read = 0
        self.typed = self.suffix not in DELIMITED

    def blocks(self, rows: int = BLOCK_ROWS, chars: int = BLOCK_CHARS, text_column: str | None = None,
               skip: int = 0) -> Iterator[Table]:
        """Tables of at most `rows` records (fewer once their `text_column` holds `chars` characters),
        after the first `skip` records (parsed, not kept: a resumed prediction's)."""
        records, labels, held = [], [], 0
        found = self._records()
        for _ in range(skip):
            if next(found, None) is None:
                return
        for label, record in found:
            records.append(record)
            labels.append(label)
            if text_column is not None:
                value = record.get(text_column) if isinstance(record, dict) else None
                held += len(value) if isinstance(value, str) else 0
            if len(records) >= rows or held >= chars:
                yield self._table(records, labels)
                records, labels, held = [], [], 0
        if records:
            yield self._table(records, labels)

    def _table(self, records: list[dict], labels: list[str]) -> Table:
        frame = pd.DataFrame.from_records(records, columns=self.columns).astype(object)
        return Table(frame.where(pd.notna(frame), None), self.source, labels, self.typed)

    def _records(self) -> Iterator[tuple[str, dict]]:
        if self.suffix in PARQUET:
            yield from self._parquet()
            return
        with open(self.path, "rb") as raw:
            if not raw.read(self.size if self.size < 2**16 else 2**16).strip():
                raise TfclfError(f"{self.source}: the file is empty")
            raw.seek(0)
            read = self._jsonl(raw) if self.suffix in JSONL else self._delimited(raw)
            found = False
            for found, item in enumerate(read, start=1):
                yield item
            if not found:
                raise TfclfError(f"{self.source}: a header but no data rows" if self.suffix in DELIMITED
                                 else f"{self.source}: the file is empty")

    def _delimited(self, raw) -> Iterator[tuple[str, dict]]:
        delimiter = "," if self.suffix == ".csv" else "\t"
        counted = _CountingReader(raw, self)
        text = io.TextIOWrapper(counted, encoding=self.encoding, newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
            _check_header(header, self.source)
            self.columns = header
            start = reader.line_num + 1
            for record in reader:
                if not record or record == [""] * len(record) and len(record) < len(header):
                    start = reader.line_num + 1
                    continue  # blank line
                if len(record) != len(header):
                    raise TfclfError(f"{self.source} line {start}: {len(record)} fields where the header has "
                                     f"{len(header)}; check the quoting and the delimiter")
                yield f"line {start}", dict(zip(header, record))
                start = reader.line_num + 1
        except csv.Error as err:
            raise TfclfError(f"{self.source} line {reader.line_num}: broken {'CSV' if delimiter == ',' else 'TSV'} "
                             f"({err}); check the quoting") from None
        except UnicodeDecodeError:
            raise self._undecodable() from None
        except StopIteration:
            return

    def _jsonl(self, raw) -> Iterator[tuple[str, dict]]:
        """JSON Lines end lines at \\n (\\r\\n too): str.splitlines would also cut at U+2028, U+0085
        and the like, which JSON allows unescaped inside a string (and `tfclf predict --out` writes)."""
        self.columns = None
        for number, line in enumerate(raw, start=1):
            self.bytes_read += len(line)
            try:
                text = line.decode(self.encoding if number == 1 else self.encoding.replace("-sig", ""))
            except UnicodeDecodeError as err:
                raise self._bad_byte(number, line, err.start) from None
            text = text.removesuffix("\n").removesuffix("\r")
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise TfclfError(f"{self.source} line {number}: not valid JSON ({err.msg}); "
                                 "JSON Lines needs one object per line") from None
            if not isinstance(record, dict):
                raise TfclfError(f"{self.source} line {number}: a JSON {type(record).__name__} where an object "
                                 "like {\"text\": ..., \"labels\": ...} was expected")
            yield f"line {number}", record

    def _parquet(self) -> Iterator[tuple[str, dict]]:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise TfclfError(f"{self.source}: Parquet needs pyarrow: pip install 'tfclf[parquet]'") from None
        try:
            found = pq.ParquetFile(self.path)
        except Exception as err:  # pyarrow's own words, on one line
            raise TfclfError(f"{self.source}: not a readable Parquet file ({' '.join(str(err).split())[:200]})") \
                from None
        self.columns = found.schema_arrow.names
        row, total = 0, max(found.metadata.num_rows, 1)
        for batch in found.iter_batches(batch_size=BLOCK_ROWS):  # one row group's pages at a time
            for record in batch.to_pylist():
                yield f"row {row}", record
                row += 1
            self.bytes_read = round(self.size * row / total)

    def _undecodable(self) -> TfclfError:
        """The first byte the encoding cannot read, by line and column (read again, in binary)."""
        decoder = codecs.getincrementaldecoder(self.encoding)()
        with open(self.path, "rb") as raw:
            number, offset = 1, 0
            for line in raw:
                try:
                    decoder.decode(line)
                except UnicodeDecodeError as err:
                    return self._bad_byte(number, line, max(err.start, 0))
                number, offset = number + 1, offset + len(line)
        return TfclfError(f"{self.source}: not valid {self.encoding} text; save the file as UTF-8 or pass "
                          f"{option('encoding')}")

    def _bad_byte(self, number: int, line: bytes, at: int) -> TfclfError:
        return TfclfError(f"{self.source} line {number}: byte 0x{line[at]:02x} at column {at + 1} is not valid "
                          f"{self.encoding.replace('-sig', '')}; save the file as UTF-8 or pass --encoding (for "
                          "example latin-1)")


class _CountingReader(io.RawIOBase):
    """A binary file that counts what it hands out into `progress.bytes_read`."""

    def __init__(self, raw, progress):
        self.raw, self.progress = raw, progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.progress.bytes_read += n or 0
        return n


def _codec(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise TfclfError(f"unknown encoding {encoding!r} (try utf-8 or latin-1)") from None
    return "utf-8-sig" if name == "utf-8" else name


def _check_header(header: list[str], source: str) -> None:
    seen = set()
    for name in header:
        if name in seen:
            raise TfclfError(f"{source} line 1: the column {name!r} appears twice in the header")
        seen.add(name)


def read_table(path: str | Path, encoding: str = "utf-8") -> Table:
    """A whole CSV (.csv), TSV (.tsv, .tab, .txt), JSON Lines (.jsonl, .json, .ndjson) or Parquet file."""
    reader = TableReader(path, encoding)
    return next(reader.blocks(rows=2**62, chars=2**62))


def table_from_frame(frame: pd.DataFrame, source: str = "DataFrame") -> Table:
    if frame.columns.duplicated().any():
        name = frame.columns[frame.columns.duplicated()][0]
        raise TfclfError(f"{source}: the column {name!r} appears twice")
    if len(frame) == 0:
        raise TfclfError(f"{source}: no rows")
    frame = frame.astype(object)
    frame = frame.where(pd.notna(frame), None)
    rows = [f"row {i} (index {label!r})" for i, label in enumerate(frame.index)]
    return Table(frame.reset_index(drop=True), source, rows)
