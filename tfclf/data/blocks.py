"""Examples a block at a time, from a file of any size (or a DataFrame, one block): what
`predict` and `evaluate` stream through, so that memory holds one block, never the file."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

import pandas as pd

from tfclf.console import warn
from tfclf.data.examples import Columns, Examples, examples_of, kept_rows, subset
from tfclf.data.labels import MAX_SHOWN
from tfclf.data.tables import BLOCK_ROWS, TableReader, table_from_frame


@dataclasses.dataclass
class Block:
    """A block's examples, with each kept row's input record and number in the whole input."""
    examples: Examples  # texts (and labels) of the rows kept
    records: list[dict]  # their input records (every column)
    numbers: list[int]  # their record numbers in the whole input, from 0
    read: int  # records this block read, dropped ones included
    columns: list[str]  # the input's columns

    @property
    def texts(self) -> list[str]:
        return self.examples.texts


class ExampleStream:
    """Iterate for Blocks; `reader` tells how much of the file was read (None for a DataFrame)."""

    def __init__(self, data: str | Path | pd.DataFrame, columns: Columns = Columns(), *, task: str = "multiclass",
                 with_labels: bool = True, drop_empty: bool = False, encoding: str = "utf-8",
                 rows: int | None = None, skip: int = 0):
        self.data, self.columns, self.task, self.with_labels = data, columns, task, with_labels
        self.drop_empty, self.rows, self.skip = drop_empty, rows or BLOCK_ROWS, skip
        self.reader = None if isinstance(data, pd.DataFrame) else TableReader(data, encoding)

    def __iter__(self) -> Iterator[Block]:
        tables = [table_from_frame(self.data)] if self.reader is None else \
            self.reader.blocks(self.rows, text_column=self.columns.text, skip=self.skip)
        number, dropped = self.skip, []
        for table in tables:
            examples = examples_of(table, self.columns, self.task, self.with_labels)
            keep = kept_rows(examples, self.drop_empty)
            records = table.frame.to_dict("records")
            dropped += [examples.rows[i] for i in sorted(set(range(len(examples))) - set(keep))]
            yield Block(subset(examples, keep), [records[i] for i in keep], [number + i for i in keep], len(examples),
                        list(table.frame.columns))
            number += len(examples)
        if dropped:
            shown = ", ".join(dropped[:MAX_SHOWN]) + (", ..." if len(dropped) > MAX_SHOWN else "")
            warn(f"{self.reader.source if self.reader else 'DataFrame'}: dropped {len(dropped)} rows with empty "
                 f"text ({shown})")


def stream_examples(data, columns: Columns = Columns(), **options) -> ExampleStream:
    return ExampleStream(data, columns, **options)
