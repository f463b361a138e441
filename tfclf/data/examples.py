"""Texts and their labels from a table (tables.py reads the files), checked row by row.

Every problem a user can fix raises TfclfError naming the file, the line and what was
expected. What the label names mean as targets is the label space's (labels.py).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from tfclf.console import warn
from tfclf.data.labels import MAX_SHOWN, LabelFormat, read_labels
from tfclf.data.tables import Table, read_table, table_from_frame
from tfclf.errors import TfclfError, option
from tfclf.tasks import TASKS

_SURROGATE = re.compile("[\ud800-\udfff]")
# A sentence pair travels through tfclf as one string, its two texts joined by U+001E (the
# record separator): files, blocks, batches and predictions carry it as they carry a text, and
# the tokenizer packs it as the checkpoint packs a pair (text/wordpiece.py). A text never holds
# one: clean_text drops it, as the tokenizer's normalizer drops every control character.
PAIR_SEP = "\x1e"


class Pair(str):
    """A sentence pair as one string (its texts joined by PAIR_SEP): passed on as it is wherever a
    text is cleaned, since cleaning a plain string drops PAIR_SEP."""


def join_pair(text: str, pair: str) -> Pair:
    return Pair(clean_text(text) + PAIR_SEP + clean_text(pair))


def is_pair(text: str) -> bool:
    return PAIR_SEP in text


def shown(text: str) -> str:
    """A text, or a pair as a reader sees it: `first ‖ second`."""
    return text.replace(PAIR_SEP, " \u2016 ")


@dataclasses.dataclass(frozen=True)
class Columns:
    """Where the text and the labels are: one label column, or one 0/1 column per label."""

    text: str = "text"
    label: str = "labels"
    label_sep: str | None = ","
    label_columns: tuple[str, ...] = ()
    pair: str | None = None  # the second text of a sentence pair

    @classmethod
    def of(cls, config) -> "Columns":
        """Where a run's config (RunConfig) says the text (and its pair) and the labels are."""
        return cls(config.text_column, config.label_column, config.label_sep or None, config.label_columns,
                   config.pair_column)


@dataclasses.dataclass
class Examples:
    """Texts, their labels (a list of label names per row) and where each row came from."""

    texts: list[str]
    labels: list[list[str]] | None
    source: str
    rows: list[str]  # "line 7" or "row 3", one per example, for messages
    declared_labels: tuple[str, ...] = ()  # the one-hot layout's columns, positive somewhere or not
    label_format: LabelFormat | None = None  # how the labels were held (data/labels.py)

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, i: int) -> str:
        return f"{self.source} {self.rows[i]}"


def load_examples(data: str | Path | pd.DataFrame | Table, columns: Columns = Columns(), *,
                  task: str = "multiclass", with_labels: bool = True, drop_empty: bool = False,
                  encoding: str = "utf-8") -> Examples:
    """Read a file or a DataFrame into validated Examples."""
    if isinstance(data, pd.DataFrame):
        table = table_from_frame(data)
    elif isinstance(data, Table):
        table = data
    else:
        table = read_table(data, encoding)
    return drop_or_reject_empty(examples_of(table, columns, task, with_labels), drop_empty)


def examples_of(table: Table, columns: Columns, task: str, with_labels: bool) -> Examples:
    """A table's texts (and labels), every row checked; empty texts still in."""
    if task not in TASKS:
        raise TfclfError(f"{option('task')} must be one of {', '.join(TASKS)}, got {task!r}")
    texts = _texts(table, columns.text)
    if columns.pair is not None:
        texts = [Pair(first + PAIR_SEP + second) for first, second in
                 zip(texts, _texts(table, columns.pair, "--pair-column"))]
    labels, label_format = _labels(table, columns, task) if with_labels else (None, None)
    return Examples(texts, labels, table.source, table.rows, tuple(columns.label_columns), label_format)


def _column(table: Table, name: str, option: str) -> pd.Series:
    if name not in table.frame.columns:
        shown = ", ".join(map(str, list(table.frame.columns)[:MAX_SHOWN]))
        raise TfclfError(f"{table.source}: no column {name!r} (columns: {shown}); choose one with {option}")
    return table.frame[name]


def clean_text(text: str | bytes) -> str:
    """A text TensorFlow can take, the same way everywhere (fit, predict, evaluate, and the
    SavedModel's graph, text/wordpiece.py): undecodable bytes and lone surrogates (a truncated
    tweet's half emoji) become U+FFFD, which the tokenizer then drops as Hugging Face does; U+001E
    (PAIR_SEP) is dropped, as the tokenizer drops it."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if PAIR_SEP in text:
        text = text.replace(PAIR_SEP, "")
    if _SURROGATE.search(text) is None:
        return text
    # a pair written as two code points becomes its character; a lone half, U+FFFD
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _texts(table: Table, name: str, flag: str = "--text-column") -> list[str]:
    column = _column(table, name, flag)
    texts = []
    for i, value in enumerate(column):
        if value is not None and not isinstance(value, (str, bytes)):
            if isinstance(value, (int, float, bool)):
                value = str(value)
            else:
                raise TfclfError(f"{table.source} {table.rows[i]}: the text is a "
                                 f"{type(value).__name__}, a string was expected")
        texts.append(clean_text(value) if value is not None else "")
    return texts


def _labels(table: Table, columns: Columns, task: str) -> tuple[list[list[str]], LabelFormat]:
    if columns.label_columns:
        return _labels_from_indicator_columns(table, columns.label_columns, task), LabelFormat()
    column = _column(table, columns.label, "--label-column")
    return read_labels(list(column), task, columns.label_sep if task == "multilabel" else None,
                       text_cells=not table.typed, where=lambda i: f"{table.source} {table.rows[i]}")


def _label_text(value) -> str:
    """A one-hot column's cell as text: 1, 1.0 and True are "1"."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
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


def kept_rows(examples: Examples, drop_empty: bool) -> list[int]:
    """The rows a reading keeps: all, or (with `drop_empty`) those whose text is not empty; an
    empty text without `drop_empty` is a TfclfError naming its row."""
    empty = [i for i, text in enumerate(examples.texts) if not all(part.strip() for part in text.split(PAIR_SEP))]
    if empty and not drop_empty:
        what = "a text of the pair is" if is_pair(examples.texts[empty[0]]) else "the text is"
        raise TfclfError(f"{examples.where(empty[0])}: {what} empty"
                         + (f" (and {len(empty) - 1} more rows)" if len(empty) > 1 else "")
                         + "; fix it or pass --drop-empty to skip such rows")
    gone = set(empty)
    return [i for i in range(len(examples)) if i not in gone]


def drop_or_reject_empty(examples: Examples, drop_empty: bool) -> Examples:
    keep = kept_rows(examples, drop_empty)
    if len(keep) == len(examples):
        return examples
    if not keep:
        raise TfclfError(f"{examples.source}: every text is empty")
    empty = sorted(set(range(len(examples))) - set(keep))
    shown = ", ".join(examples.rows[i] for i in empty[:MAX_SHOWN]) + (", ..." if len(empty) > MAX_SHOWN else "")
    warn(f"{examples.source}: dropped {len(empty)} rows with empty text ({shown})")
    return subset(examples, keep)


def subset(examples: Examples, index: Sequence[int]) -> Examples:
    """The rows `index` names, in the order of the file."""
    index = sorted(index)
    return dataclasses.replace(examples, texts=[examples.texts[i] for i in index],
                               labels=None if examples.labels is None else [examples.labels[i] for i in index],
                               rows=[examples.rows[i] for i in index])


def read_texts(path: str | Path, text_column: str = "text", encoding: str = "utf-8") -> list[str]:
    """Unlabelled text: a .txt file (one text per non-empty line) or a .csv/.tsv/.jsonl column."""
    path = Path(path)
    if not path.is_file():
        raise TfclfError(f"--text {path}: no such file")
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding=encoding).split("\n")  # not at U+2028 and the like: text
        except UnicodeDecodeError as err:
            raise TfclfError(f"{path}: not {encoding} text (byte {err.start}); pass {option('encoding')}") from None
        texts = [clean_text(line.strip()) for line in lines if line.strip()]
    else:
        texts = load_examples(path, Columns(text=text_column), with_labels=False, drop_empty=True,
                              encoding=encoding).texts
    if not texts:
        raise TfclfError(f"{path}: no text to pre-train on")
    return texts
