"""Table files in and out: CSV, TSV and JSON Lines read with the line of every record, and
predictions written.

Files are parsed with the csv and json modules rather than pandas so that the line of every
record is known exactly, quoted newlines included; every problem raises TfclfError naming
the file and the line.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from tfclf.errors import TfclfError
from tfclf.storage.atomic import atomic_write_text

csv.field_size_limit(2**31 - 1)  # documents of megabytes are legitimate text


@dataclasses.dataclass
class Table:
    frame: pd.DataFrame  # CSV and TSV: every cell a string; JSON Lines and DataFrames: their values
    source: str
    rows: list[str]
    typed: bool = True  # whether cells keep their types (a CSV's integers are text)


def read_table(path: str | Path, encoding: str = "utf-8") -> Table:
    """Read a CSV (.csv), TSV (.tsv, .tab, .txt) or JSON Lines (.jsonl, .json, .ndjson) file."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise TfclfError(f"{source}: no such file")
    if path.is_dir():
        raise TfclfError(f"{source}: is a folder, not a data file")
    text = _decode(path.read_bytes(), source, encoding)
    if not text.strip():
        raise TfclfError(f"{source}: the file is empty")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _read_jsonl(text, source)
    if suffix in (".csv", ".tsv", ".tab", ".txt"):
        return _read_delimited(text, source, "," if suffix == ".csv" else "\t")
    raise TfclfError(f"{source}: unknown file type {suffix!r}; use .csv, .tsv or .jsonl")


def _decode(raw: bytes, source: str, encoding: str) -> str:
    try:
        return raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except LookupError:
        raise TfclfError(f"unknown encoding {encoding!r} (try utf-8 or latin-1)") from None
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise TfclfError(
            f"{source} line {line}: byte 0x{raw[err.start]:02x} at column {column} is not valid "
            f"{encoding}; save the file as UTF-8 or pass --encoding (for example latin-1)") from None


def _read_delimited(text: str, source: str, delimiter: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records, rows = [], []
    try:
        header = next(reader)
        _check_header(header, source)
        start = reader.line_num + 1
        for record in reader:
            if not record or record == [""] * len(record) and len(record) < len(header):
                start = reader.line_num + 1
                continue  # blank line
            if len(record) != len(header):
                raise TfclfError(f"{source} line {start}: {len(record)} fields where the header has "
                                 f"{len(header)}; check the quoting and the delimiter")
            records.append(record)
            rows.append(f"line {start}")
            start = reader.line_num + 1
    except csv.Error as err:
        raise TfclfError(f"{source} line {reader.line_num}: broken {'CSV' if delimiter == ',' else 'TSV'} "
                         f"({err}); check the quoting") from None
    if not records:
        raise TfclfError(f"{source}: a header but no data rows")
    return Table(pd.DataFrame(records, columns=header, dtype=object), source, rows, typed=False)


def _check_header(header: list[str], source: str) -> None:
    seen = set()
    for name in header:
        if name in seen:
            raise TfclfError(f"{source} line 1: the column {name!r} appears twice in the header")
        seen.add(name)


def _read_jsonl(text: str, source: str) -> Table:
    records, rows = [], []
    # JSON Lines end lines at \n (\r\n too); str.splitlines would also cut at U+2028, U+0085 and
    # the like, which JSON allows unescaped inside a string (and `tfclf predict --out` writes)
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise TfclfError(f"{source} line {number}: not valid JSON ({err.msg}); "
                             "JSON Lines needs one object per line") from None
        if not isinstance(record, dict):
            raise TfclfError(f"{source} line {number}: a JSON {type(record).__name__} where an object "
                             "like {\"text\": ..., \"labels\": ...} was expected")
        records.append(record)
        rows.append(f"line {number}")
    frame = pd.DataFrame.from_records(records).astype(object)
    frame = frame.where(pd.notna(frame), None)
    return Table(frame, source, rows)


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


def prediction_rows(texts: Sequence[str], probs, labels: Sequence, classes: Sequence[str], key: str) -> list[dict]:
    """One dict per text: the decided label(s) under `key` and every class's probability."""
    return [{"text": text, key: label, "probabilities": dict(zip(classes, map(float, p)))}
            for text, p, label in zip(texts, probs, labels)]


def write_predictions(path: Path, rows: list[dict], label_sep: str) -> None:
    """Predictions as JSON Lines (the rows as they are) or CSV/TSV (one probability column per class)."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return
    if suffix not in (".csv", ".tsv", ".tab", ".txt"):
        raise TfclfError(f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .jsonl")
    flat = []
    for r in rows:
        label = r.get("label", None)
        flat.append({"text": r["text"],
                     "prediction": label if label is not None else label_sep.join(r["labels"]),
                     **{f"p_{k}": v for k, v in r["probabilities"].items()}})
    atomic_write_text(path, pd.DataFrame(flat).to_csv(index=False, sep="," if suffix == ".csv" else "\t"))
