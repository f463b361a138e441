"""Prediction files: the rows `tfclf predict` writes, block by block, and shards merged back.

Each output row carries its input record's columns (an id, say), then the prediction: in JSON
Lines `label` (or `labels`, multi-label) and `probabilities` by class name; in CSV and TSV
`prediction` (several labels joined by the label separator) and one `p_<class>` column per
class. An input column whose name the prediction uses is carried as `input_<name>`. A shard
of the input (`--shard K/N`) adds `row`, the record's number in the whole input, by which
`merge` restores the input's order.
"""
from __future__ import annotations

import csv
import heapq
import io
import json
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from tfclf import tasks
from tfclf.data.tables import DELIMITED, JSONL, TableReader
from tfclf.errors import TfclfError, option

ROW = "row"


def output_format(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in JSONL:
        return "jsonl"
    if suffix in DELIMITED:
        return "csv" if suffix == ".csv" else "tsv"
    raise TfclfError(f"{path}: unknown file type {suffix!r} for predictions; use .csv, .tsv or .jsonl")


SCORE = tasks.prediction_key("regression")  # a number, and no probabilities


class PredictionWriter:
    """Rows of predictions appended to an open text file, in the format of `path`'s suffix. A
    regression's rows carry the score (`score` in JSON Lines, `prediction` in CSV), no probabilities."""

    def __init__(self, path: Path, file: IO[str], classes: Sequence[str], key: str, label_sep: str = ",",
                 columns: Sequence[str] | None = None, with_row: bool = False):
        self.format = output_format(path)
        classes = [] if key == SCORE else classes
        self.file, self.classes, self.key, self.label_sep, self.with_row = file, list(classes), key, label_sep, with_row
        ours = ({ROW} if with_row else set()) | ({key, "probabilities"} if self.format == "jsonl" else
                                                 {"prediction", *(f"p_{c}" for c in self.classes)})
        self.rename = {c: f"input_{c}" for c in (columns or ()) if c in ours}
        self.columns = [self.rename.get(c, c) for c in (columns or ())]
        self.header = ([ROW] if with_row else []) + self.columns + \
            (["prediction"] + [f"p_{c}" for c in self.classes] if self.format != "jsonl" else [])

    def write_header(self) -> None:
        if self.format != "jsonl":
            self.file.write(self._line(self.header))

    def write(self, records: Sequence[dict], rows: Sequence[int], labels: Sequence, probs) -> None:
        out = io.StringIO()
        for record, row, label, p in zip(records, rows, labels, probs):
            carried = {self.rename.get(k, k): v for k, v in record.items()}
            if self.format == "jsonl":
                found = {**({ROW: row} if self.with_row else {}), **carried, self.key: label,
                         **({"probabilities": dict(zip(self.classes, map(float, p)))} if self.classes else {})}
                out.write(json.dumps(found, ensure_ascii=False) + "\n")
            else:
                shown = label if isinstance(label, str) else repr(float(label)) if self.key == SCORE else \
                    self.label_sep.join(label)
                cells = ([row] if self.with_row else []) + [_cell(carried.get(c)) for c in self.columns]
                out.write(self._line(cells + [shown] + [repr(float(v)) for v in p][:len(self.classes)]))
        self.file.write(out.getvalue())

    def _line(self, cells: list) -> str:
        out = io.StringIO()
        csv.writer(out, delimiter="," if self.format == "csv" else "\t", lineterminator="\n").writerow(cells)
        return out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def merge(parts: Sequence[Path], out: IO[str], path: Path) -> int:
    """Shards' prediction files (each with `row`) into one file in the input's order, without
    `row`; streams (one row of each part in memory). Returns the rows written; a row missing or
    twice (a shard not given, or given twice) is a TfclfError."""
    fmt = output_format(path)
    if any(output_format(p) != fmt for p in parts):
        raise TfclfError(f"merge-predictions: every part must be {fmt} as {path} is")
    streams = [_rows_of(Path(p), fmt) for p in parts]
    header = None
    expected = 0
    for row, part, line in heapq.merge(*streams, key=lambda item: item[0]):
        if header is None and fmt != "jsonl":
            header = part
            out.write(header)
        if row != expected:
            what = "twice" if row < expected else f"missing (next found: {row})"
            raise TfclfError(f"merge-predictions: input row {expected} is {what}: give every shard's file once")
        out.write(line)
        expected += 1
    return expected


def _rows_of(path: Path, fmt: str) -> Iterator[tuple[int, str, str]]:
    """(row, header line, line without `row`) of each record of a shard's file."""
    if not path.is_file():
        raise TfclfError(f"{path}: no such file")
    if fmt == "jsonl":
        with open(path, encoding="utf-8", newline="") as f:
            for number, line in enumerate(_lines(f), start=1):
                record = json.loads(line)
                if ROW not in record:
                    raise TfclfError(f"{path} line {number}: no {ROW!r}: not a shard's predictions ({option('shard')})")
                row = record.pop(ROW)
                yield row, "", json.dumps(record, ensure_ascii=False) + "\n"
        return
    delimiter = "," if fmt == "csv" else "\t"
    reader = TableReader(path)
    for table in reader.blocks():
        columns = list(table.frame.columns)
        if not columns or columns[0] != ROW:
            raise TfclfError(f"{path}: no {ROW!r} column first: not a shard's predictions ({option('shard')})")
        header = _join(columns[1:], delimiter)
        for values in table.frame.itertuples(index=False):
            yield int(values[0]), header, _join(["" if v is None else v for v in values[1:]], delimiter)


def _lines(f) -> Iterable[str]:
    for line in f:  # newline="": lines end at \n (and \r\n), as JSON Lines do
        if line.strip():
            yield line


def _join(cells: list, delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(cells)
    return out.getvalue()
