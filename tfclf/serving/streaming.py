"""Predicting a file of any size: read a block, predict it, write it, and the next; memory holds
one block, never the file.

The output grows in a hidden partial file beside it (.OUT.partial), with a record of how far it
got (.OUT.progress.json) after every block; the finished file is renamed into place. A prediction
killed midway and started again with `resume` continues after the last block it wrote, on the
same input, model and shard. `shard=(K, N)` predicts the records whose number (from 0, in the
whole input) is K modulo N: N machines split one file with no coordinator, and
data/predictions.merge gives back the input's order.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tfclf.data.blocks import stream_examples
from tfclf.data.examples import Columns
from tfclf.data.predictions import PredictionWriter
from tfclf.data.tables import BLOCK_ROWS
from tfclf.errors import TfclfError, option
from tfclf.storage.atomic import atomic_write_json, read_json

# texts -> (probabilities, one column per class; the decided label names, one entry per text)
PredictBlock = Callable[[list[str]], tuple[np.ndarray, list]]


@dataclasses.dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """"K/N": the K-th (from 0) of N interleaved parts, as an indexed Kubernetes Job numbers its pods."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            index, count = -1, 0
        if not 0 <= index < count:
            raise TfclfError(f"{option('shard')} must be K/N with 0 <= K < N (JOB_COMPLETION_INDEX/N), got {text!r}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def predict_file(predict: PredictBlock, classes: Sequence[str], key: str, data: Path, out: Path, *, model: str,
                 columns: Columns = Columns(), label_sep: str = ",", encoding: str = "utf-8",
                 drop_empty: bool = False, shard: Shard | None = None, resume: bool = False,
                 block_rows: int = BLOCK_ROWS, progress: bool = False) -> int:
    """Predict every record of `data` (of `shard`) into `out`, a block at a time; returns the rows
    written. `model` names what predicts (a run's id), so a resume never mixes two models."""
    out = Path(out)
    partial, record = out.with_name(f".{out.name}.partial"), out.with_name(f".{out.name}.progress.json")
    identity = {"input": str(Path(data).resolve()), "input_bytes": Path(data).stat().st_size,
                "input_mtime_ns": Path(data).stat().st_mtime_ns, "model": model, "shard": str(shard or ""),
                "output": out.suffix.lower()}
    done = _resumed(record, partial, identity) if resume else None
    state = done or {**identity, "rows_read": 0, "rows_written": 0, "bytes": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    examples = stream_examples(data, columns, with_labels=False, drop_empty=drop_empty, encoding=encoding,
                               rows=block_rows, skip=state["rows_read"])
    bar = _bar(progress, examples)
    with open(partial, "r+" if done else "w", encoding="utf-8", newline="") as file:
        file.truncate(state["bytes"])
        file.seek(state["bytes"])
        writer = None
        for block in examples:
            first = state["rows_read"]
            state["rows_read"] += block.read
            keep = [i for i, n in enumerate(block.numbers) if shard is None or n % shard.count == shard.index]
            if writer is None:
                writer = PredictionWriter(out, file, classes, key, label_sep, block.columns, with_row=shard is not None)
                if state["bytes"] == 0:
                    writer.write_header()
            if keep:
                probs, labels = predict([block.texts[i] for i in keep])
                writer.write([block.records[i] for i in keep], [block.numbers[i] for i in keep], labels, probs)
                state["rows_written"] += len(keep)
            _commit(file, state, record)
            if bar is not None:
                bar.update(state["rows_read"] - first)
                bar.total = _estimated_rows(examples, state["rows_read"])
        if writer is None:  # no record at all: the header still says what the columns are
            PredictionWriter(out, file, classes, key, label_sep, [columns.text], shard is not None).write_header()
            _commit(file, state, record)
    if bar is not None:
        bar.close()
    os.replace(partial, out)
    record.unlink(missing_ok=True)
    return state["rows_written"]


def _commit(file, state: dict, record: Path) -> None:
    """A block on disk, then the record that says so: a kill between them only costs that block."""
    file.flush()
    os.fsync(file.fileno())
    state["bytes"] = file.tell()
    atomic_write_json(record, state)


def _resumed(record: Path, partial: Path, identity: dict) -> dict | None:
    if not (record.is_file() and partial.is_file()):
        return None
    state = read_json(record)
    differs = [k for k in identity if state.get(k) != identity[k]]
    if differs:
        raise TfclfError(f"{partial} is another prediction's (its {differs[0].replace('_', ' ')} differs); drop "
                         "--resume to start again, or give the same input, model and shard")
    print(f"tfclf: resuming {partial.name.removesuffix('.partial').lstrip('.')} after {state['rows_read']} input "
          f"rows", file=sys.stderr)
    return state


def _bar(show: bool, examples):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(desc="predicting", unit="rows", file=sys.stderr, smoothing=0.1)


def _estimated_rows(examples, rows_read: int) -> int | None:
    """The input's rows, from the share of its bytes read so far: what the bar's ETA needs."""
    reader = getattr(examples, "reader", None)
    if reader is None or not reader.bytes_read:
        return None
    return max(rows_read, round(rows_read * reader.size / reader.bytes_read))
