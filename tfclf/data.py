"""Labelled text from a table (tables.py reads the files): texts, labels, and the label space.

Every problem a user can fix raises TfclfError naming the file, the line and what was
expected.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from tfclf import tasks
from tfclf.errors import TfclfError
from tfclf.tables import Table, read_table, table_from_frame
from tfclf.settings import TASKS

_MAX_SHOWN = 10  # how many rows or labels an error message lists before "..."


@dataclasses.dataclass(frozen=True)
class Columns:
    """Where the text and the labels are: one label column, or one 0/1 column per label."""

    text: str = "text"
    label: str = "labels"
    label_sep: str | None = ","
    label_columns: tuple[str, ...] = ()


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


class LabelSpace:
    """The label vocabulary, fitted by scikit-learn's encoders and saved with the run.

    Binary and multi-class use LabelEncoder (targets are class indices; for binary the
    second class is the positive one); multi-label uses MultiLabelBinarizer (multi-hot rows).
    """

    def __init__(self, task: str, classes: Sequence[str]):
        from sklearn.preprocessing import LabelEncoder, MultiLabelBinarizer

        self.task = task
        self.classes = [str(c) for c in classes]
        if task == "multilabel":
            self.encoder = MultiLabelBinarizer(classes=self.classes).fit([self.classes])
        else:
            self.encoder = LabelEncoder().fit(self.classes)
            self.classes = [str(c) for c in self.encoder.classes_]

    @classmethod
    def fit(cls, examples: Examples, task: str) -> "LabelSpace":
        seen = list(examples.declared_labels) or sorted({name for names in examples.labels for name in names})
        if len(seen) < 2:
            found = f"only {seen[0]!r}" if seen else "none"
            raise TfclfError(f"{examples.source}: fewer than two classes in the labels ({found}); "
                             "a classifier needs at least two")
        if task == "binary" and len(seen) != 2:
            raise TfclfError(f"{examples.source}: a binary task needs exactly two classes, found {len(seen)} "
                             f"({_listing(seen)}); use --task multiclass")
        return cls(task, seen)

    @property
    def num_outputs(self) -> int:
        """Units of the Dense head."""
        return tasks.units(self.task, len(self.classes))

    def encode(self, examples: Examples) -> np.ndarray:
        """Targets for the loss; a label the vocabulary lacks is an error naming its row."""
        known = set(self.classes)
        for i, names in enumerate(examples.labels):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise TfclfError(f"{examples.where(i)}: label {unknown[0]!r} was never seen in training "
                                 f"(known: {_listing(self.classes)})")
        multi = self.task == "multilabel"
        return tasks.targets(self.task, self.encoder.transform(examples.labels if multi else
                                                               [names[0] for names in examples.labels]))

    def names(self, decided: np.ndarray) -> list:
        """Label names of decisions (tasks.decide): one per row, or a list per row for multi-label."""
        if self.task == "multilabel":
            return [[self.classes[j] for j in np.flatnonzero(row)] for row in decided]
        return [self.classes[i] for i in decided]

    def to_json(self) -> dict:
        return {"task": self.task, "classes": self.classes}

    @classmethod
    def from_json(cls, data: dict) -> "LabelSpace":
        return cls(data["task"], data["classes"])


def _listing(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(map(repr, names[:_MAX_SHOWN])) + (", ..." if len(names) > _MAX_SHOWN else "")


def train_valid_split(examples: Examples, fraction: float, seed: int) -> tuple[Examples, Examples]:
    """Hold out a seeded, label-stratified fraction for validation where every class allows it."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise TfclfError(f"--valid-fraction must be between 0 and 1, got {fraction}")
    index = np.arange(len(examples))
    strata = [names[0] if len(names) == 1 else "|".join(sorted(names)) for names in examples.labels]
    counts = pd.Series(strata).value_counts()
    stratify = strata if counts.min() >= 2 and len(counts) <= fraction * len(examples) else None
    train, valid = train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)
    return _subset(examples, train), _subset(examples, valid)


def _subset(examples: Examples, index: Sequence[int]) -> Examples:
    index = sorted(index)
    return Examples([examples.texts[i] for i in index], [examples.labels[i] for i in index],
                    examples.source, [examples.rows[i] for i in index], examples.declared_labels)


def warn(message: str) -> None:
    print(f"tfclf: warning: {message}", file=sys.stderr)


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
