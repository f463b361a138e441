"""Texts and their labels from a table (tables.py reads the files), checked row by row.

Every problem a user can fix raises TfclfError naming the file, the line and what was
expected. What the label names mean as targets is the label space's (labels.py).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from tfclf.console import warn
from tfclf.data.tables import Table, read_table, table_from_frame
from tfclf.errors import TfclfError
from tfclf.tasks import TASKS

_MAX_SHOWN = 10  # how many rows or labels an error message lists before "..."


@dataclasses.dataclass(frozen=True)
class Columns:
    """Where the text and the labels are: one label column, or one 0/1 column per label."""

    text: str = "text"
    label: str = "labels"
    label_sep: str | None = ","
    label_columns: tuple[str, ...] = ()

    @classmethod
    def of(cls, config) -> "Columns":
        """Where a run's config (RunConfig) says the text and the labels are."""
        return cls(config.text_column, config.label_column, config.label_sep or None, config.label_columns)


@dataclasses.dataclass
class Examples:
    """Texts, their labels (a list of label names per row) and where each row came from."""

    texts: list[str]
    labels: list[list[str]] | None
    source: str
    rows: list[str]  # "line 7" or "row 3", one per example, for messages
    declared_labels: tuple[str, ...] = ()  # the one-hot layout's columns, positive somewhere or not

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, i: int) -> str:
        return f"{self.source} {self.rows[i]}"


def load_examples(data: str | Path | pd.DataFrame | Table, columns: Columns = Columns(), *,
                  task: str = "multiclass", with_labels: bool = True, drop_empty: bool = False,
                  encoding: str = "utf-8") -> Examples:
    """Read a file or a DataFrame into validated Examples."""
    if task not in TASKS:
        raise TfclfError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if isinstance(data, pd.DataFrame):
        table = table_from_frame(data)
    elif isinstance(data, Table):
        table = data
    else:
        table = read_table(data, encoding)
    texts = _texts(table, columns.text)
    labels = _labels(table, columns, task) if with_labels else None
    examples = Examples(texts, labels, table.source, table.rows, tuple(columns.label_columns))
    return _drop_or_reject_empty(examples, drop_empty)


def _column(table: Table, name: str, option: str) -> pd.Series:
    if name not in table.frame.columns:
        shown = ", ".join(map(str, list(table.frame.columns)[:_MAX_SHOWN]))
        raise TfclfError(f"{table.source}: no column {name!r} (columns: {shown}); choose one with {option}")
    return table.frame[name]


def _texts(table: Table, name: str) -> list[str]:
    column = _column(table, name, "--text-column")
    texts = []
    for i, value in enumerate(column):
        if value is not None and not isinstance(value, str):
            if isinstance(value, (int, float, bool)):
                value = str(value)
            else:
                raise TfclfError(f"{table.source} {table.rows[i]}: the text is a "
                                 f"{type(value).__name__}, a string was expected")
        texts.append(value if value is not None else "")
    return texts


def _labels(table: Table, columns: Columns, task: str) -> list[list[str]]:
    if columns.label_columns:
        return _labels_from_indicator_columns(table, columns.label_columns, task)
    column = _column(table, columns.label, "--label-column")
    split = task == "multilabel" and columns.label_sep
    labels = []
    for i, value in enumerate(column):
        try:
            names = _label_names(value, columns.label_sep if split else None)
        except TfclfError as err:
            raise TfclfError(f"{table.source} {table.rows[i]}: {err}") from None
        if task != "multilabel" and len(names) != 1:
            what = "no label" if not names else f"{len(names)} labels"
            raise TfclfError(f"{table.source} {table.rows[i]}: {what} where a {task} task needs exactly "
                             f"one in column {columns.label!r}")
        labels.append(names)
    return labels


def _label_names(value, sep: str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):  # JSON Lines: "labels": ["a", "b"]
        return [_label_text(v) for v in value if _label_text(v)]
    text = _label_text(value)
    if sep is None:
        return [text] if text else []
    return [part.strip() for part in text.split(sep) if part.strip()]


def _label_text(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1.0 and 1 are the same label
    if isinstance(value, (dict, list)):
        raise TfclfError(f"a label is a {type(value).__name__} ({value!r:.40}), where a name or number "
                         "was expected")
    return str(value).strip() if value is not None else ""


_TRUE = {"1", "1.0", "true", "True", "yes"}
_FALSE = {"0", "0.0", "false", "False", "no", ""}


def _labels_from_indicator_columns(table: Table, names: Sequence[str], task: str) -> list[list[str]]:
    """The one-hot layout: one 0/1 column per label."""
    frame = [_column(table, name, "--label-columns") for name in names]
    labels = []
    for i in range(len(table.frame)):
        row = []
        for name, column in zip(names, frame):
            value = _label_text(column.iloc[i])
            if value in _TRUE:
                row.append(name)
            elif value not in _FALSE:
                raise TfclfError(f"{table.source} {table.rows[i]}: column {name!r} holds {value!r:.40}, "
                                 "where 0 or 1 was expected")
        if task != "multilabel" and len(row) != 1:
            raise TfclfError(f"{table.source} {table.rows[i]}: {len(row)} of the label columns are 1 "
                             f"where a {task} task needs exactly one")
        labels.append(row)
    return labels


def _drop_or_reject_empty(examples: Examples, drop_empty: bool) -> Examples:
    empty = [i for i, text in enumerate(examples.texts) if not text.strip()]
    if not empty:
        return examples
    if not drop_empty:
        raise TfclfError(f"{examples.where(empty[0])}: the text is empty"
                         + (f" (and {len(empty) - 1} more rows)" if len(empty) > 1 else "")
                         + "; fix it or pass --drop-empty to skip such rows")
    keep = [i for i in range(len(examples)) if i not in set(empty)]
    if not keep:
        raise TfclfError(f"{examples.source}: every text is empty")
    shown = ", ".join(examples.rows[i] for i in empty[:_MAX_SHOWN]) + (", ..." if len(empty) > _MAX_SHOWN else "")
    warn(f"{examples.source}: dropped {len(empty)} rows with empty text ({shown})")
    return Examples([examples.texts[i] for i in keep],
                    None if examples.labels is None else [examples.labels[i] for i in keep],
                    examples.source, [examples.rows[i] for i in keep], examples.declared_labels)


def listing(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(map(repr, names[:_MAX_SHOWN])) + (", ..." if len(names) > _MAX_SHOWN else "")


def subset(examples: Examples, index: Sequence[int]) -> Examples:
    index = sorted(index)
    return Examples([examples.texts[i] for i in index], [examples.labels[i] for i in index],
                    examples.source, [examples.rows[i] for i in index], examples.declared_labels)


def read_texts(path: str | Path, text_column: str = "text", encoding: str = "utf-8") -> list[str]:
    """Unlabelled text: a .txt file (one text per non-empty line) or a .csv/.tsv/.jsonl column."""
    path = Path(path)
    if not path.is_file():
        raise TfclfError(f"--text {path}: no such file")
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding=encoding).splitlines()
        except UnicodeDecodeError as err:
            raise TfclfError(f"{path}: not {encoding} text (byte {err.start}); pass --encoding") from None
        texts = [line.strip() for line in lines if line.strip()]
    else:
        texts = load_examples(path, Columns(text=text_column), with_labels=False, drop_empty=True,
                              encoding=encoding).texts
    if not texts:
        raise TfclfError(f"{path}: no text to pre-train on")
    return texts
