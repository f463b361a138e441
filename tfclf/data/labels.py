"""What labels mean: read as scikit-learn reads them, and the label space that turns them into
targets and back (saved with the run as labels.json).

scikit-learn's `type_of_target` decides what a container of labels is, and tfclf follows it:
one value per text (class names, integers or booleans) is a class per text; rows of 0/1 of one
width (a 2-D array, or multi-hot lists, as Keras users hold them) are label indicators, one
column per label; lists of names are the labels of each text. Integers sort as integers. A
label space remembers how its user held the labels, so `classes_` and `predict` give them back
in that form; label names (strings) are what files, the CLI and the SavedModel show.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Callable, Iterable, Sequence

import numpy as np

from tfclf import tasks
from tfclf.errors import TfclfError, option

MAX_SHOWN = 10  # how many rows or labels an error message lists before "..."
KINDS = ("str", "int", "bool", "float")  # what the values of a user's labels are (float: regression targets)


@dataclasses.dataclass(frozen=True)
class LabelFormat:
    """How a user holds labels: the kind of their values, and whether they come as indicator rows
    (multi-hot), whose columns `names` (or 0..k-1) name."""
    kind: str = "str"
    multi_hot: bool = False
    names: tuple[str, ...] = ()


def listing(names: Iterable) -> str:
    names = list(names)
    return ", ".join(map(repr, names[:MAX_SHOWN])) + (", ..." if len(names) > MAX_SHOWN else "")


def read_labels(values: Sequence, task: str, sep: str | None = None, names: Sequence | None = None,
                text_cells: bool = False, where: Callable[[int], str] = lambda i: f"labels row {i}"
                ) -> tuple[list[list[str]], LabelFormat]:
    """Label names per row, and the format they were held in, from any container of labels.

    `sep` splits a string into several names (multi-label cells); `names` names indicator
    columns; `text_cells` says the values are a CSV's text, where a column of integers is
    written as digits (pandas reads it as integers, and so does tfclf). A regression's labels are
    one finite number per row (numbers, or text that reads as one)."""
    values = [_python(v) for v in _rows(values)]
    if task == "regression":
        return [[repr(_number(v, where(i)))] for i, v in enumerate(values)], LabelFormat("float")
    if any(isinstance(v, (list, tuple)) for v in values):
        width = _indicator_width(values, where)
        if width:
            return _from_indicators(values, task, width, names, where)
    split = [_leaves(v, sep, where(i)) for i, v in enumerate(values)]
    if text_cells and all(_is_integer_text(x) for row in split for x in row) and any(split):
        split = [[int(x) for x in row] for row in split]
    kind = _kind([x for row in split for x in row], split, where)
    labels = [[_name(x) for x in row] for row in split]
    if task != "multilabel":
        for i, row in enumerate(labels):
            if len(row) != 1:
                what = "no label" if not row else f"{len(row)} labels ({listing(row)})"
                raise TfclfError(f"{where(i)}: {what} where a {task} task needs exactly one")
    return labels, LabelFormat(kind)


def _number(value, where: str) -> float:
    try:
        number = float("nan") if isinstance(value, (bool, list)) else float(value)  # float() strips spaces
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise TfclfError(f"{where}: {'nothing' if value is None else repr(value)[:40]} where a regression task "
                         "needs a finite number")
    return number


def _rows(values) -> list:
    """One entry per text: a 2-D array gives its rows, a pandas Series or Categorical its values."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy(dtype=object) if getattr(values, "ndim", 1) == 1 else values.to_numpy()
    if isinstance(values, np.ndarray):
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]  # a column vector is one label per row, as scikit-learn reads it
        if values.ndim > 2:
            raise TfclfError(f"labels: an array of {values.ndim} dimensions, where one label per text or 0/1 "
                             "indicator rows (2 dimensions) were expected")
        return [list(row) for row in values] if values.ndim == 2 else list(values)
    return list(values)


def _python(value):
    """numpy scalars as Python's, sets and arrays as lists, NaN as missing."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=str)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_python(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def _is_01(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, complex) and value in (0, 1)


def _indicator_width(values: list, where) -> int:
    """The width of 0/1 indicator rows, or 0 when the rows are lists of names. Rows of 0/1 of
    different widths are neither, said in one line."""
    rows = [v for v in values if isinstance(v, list)]
    if len(rows) != len(values) or not all(row and all(_is_01(x) for x in row) for row in rows):
        return 0
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        i = next(i for i, row in enumerate(rows) if len(row) != len(rows[0]))
        raise TfclfError(f"{where(i)}: {len(rows[i])} 0/1 values where row 0 has {len(rows[0])}: indicator "
                         "rows need one 0/1 per label in every row (for label names, give strings)")
    width = widths.pop()
    return width if width > 1 else 0  # one column: one label per text, as scikit-learn reads it


def _from_indicators(rows: list, task: str, width: int, names, where) -> tuple[list[list[str]], LabelFormat]:
    if names is not None and len(names) > 0:
        if len(names) != width:
            raise TfclfError(f"labels: {width} indicator columns but {len(names)} names ({listing(names)}) "
                             "in classes (or label_columns)")
        kind = _kind(list(names), [list(names)], lambda i: "classes")
        columns = [_name(n) for n in names]
    else:
        kind, columns = "int", [str(j) for j in range(width)]
    if len(set(columns)) != width:
        raise TfclfError(f"labels: the indicator columns' names repeat ({listing(columns)})")
    labels = [[columns[j] for j in range(width) if row[j] == 1] for row in rows]
    if task != "multilabel":
        for i, row in enumerate(labels):
            if len(row) != 1:
                raise TfclfError(f"{where(i)}: {len(row)} ones in an indicator row where a {task} task needs "
                                 "exactly one (one-hot); use task multilabel for several labels per text")
    return labels, LabelFormat(kind, multi_hot=True, names=tuple(columns))


def _leaves(value, sep: str | None, where: str) -> list:
    """The label values of one row: none, one, or several (a list, or a string cut at `sep`)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        if isinstance(item, (dict, list)):
            raise TfclfError(f"{where}: a label is a {type(item).__name__} ({item!r:.40}), where a name or number "
                             "was expected")
        if isinstance(item, float):
            if item in (float("inf"), float("-inf")) or not item.is_integer():
                raise TfclfError(f"{where}: the label {item!r} is not a class: class names or whole numbers "
                                 "were expected")
            item = int(item)  # 1.0 and 1 are the same class
        if isinstance(item, str):
            parts = item.split(sep) if sep and not isinstance(value, list) else [item]
            found += [p.strip() for p in parts if p.strip()]
        elif item is not None:
            found.append(item)
    return found


def _is_integer_text(text) -> bool:
    if not isinstance(text, str):
        return isinstance(text, int) and not isinstance(text, bool)
    body = text[1:] if text[:1] in "+-" else text
    return body.isascii() and body.isdigit()


def _kind(leaves: list, rows: list, where) -> str:
    kinds = {("bool" if isinstance(x, bool) else "int" if isinstance(x, int) else "str") for x in leaves}
    if len(kinds) > 1:
        def first(kind):
            return next((i, x) for i, row in enumerate(rows) for x in row
                        if ("bool" if isinstance(x, bool) else "int" if isinstance(x, int) else "str") == kind)
        (i, a), (j, b) = first(sorted(kinds)[0]), first(sorted(kinds)[1])
        raise TfclfError(f"labels mix kinds: {where(i)} holds {a!r}, {where(j)} holds {b!r}; give every label "
                         "as a name, or every label as a number")
    return kinds.pop() if kinds else "str"


def _name(value) -> str:
    return value if isinstance(value, str) else str(value)


def _value(name: str, kind: str):
    if kind == "float":
        return float(name)
    return int(name) if kind == "int" else (name == "True") if kind == "bool" else name


def sorted_classes(names: Iterable[str], kind: str) -> list[str]:
    """Class names in scikit-learn's order: integers as integers, False before True, else text."""
    unique = set(names)
    if kind == "int":
        return sorted(unique, key=int)
    if kind == "bool":
        return sorted(unique, key=lambda n: n == "True")
    return sorted(unique)


class LabelSpace:
    """The label vocabulary of a run, in the order of the head's units, saved with it.

    Binary and multi-class targets are class indices (for binary the second class is the
    positive one); multi-label targets are multi-hot rows. The order is the one `fit` chose
    (scikit-learn's) or the one labels.json holds: a saved order is never re-sorted."""

    def __init__(self, task: str, classes: Sequence[str], label_format: LabelFormat = LabelFormat()):
        self.task = task
        self.classes = [str(c) for c in classes]
        self.format = label_format
        self._index = {name: i for i, name in enumerate(self.classes)}

    @classmethod
    def fit(cls, examples, task: str) -> "LabelSpace":
        """From Examples (data/examples.py): the declared columns in their order, else the names seen."""
        fmt = examples.label_format or LabelFormat()
        if task == "regression":
            return cls(task, [tasks.prediction_key(task)], LabelFormat("float"))  # one name: its output's
        seen = list(examples.declared_labels) or sorted_classes((n for names in examples.labels for n in names),
                                                                fmt.kind)
        if len(seen) < 2:
            found = f"only {seen[0]!r}" if seen else "none"
            raise TfclfError(f"{examples.source}: fewer than two classes in the labels ({found}); "
                             "a classifier needs at least two")
        if task == "binary" and len(seen) != 2:
            raise TfclfError(f"{examples.source}: a binary task needs exactly two classes, found {len(seen)} "
                             f"({listing(seen)}); use {option('task', value='multiclass')}")
        return cls(task, seen, fmt)

    @property
    def num_outputs(self) -> int:
        """Units of the Dense head."""
        return tasks.units(self.task, len(self.classes))

    @property
    def classes_(self) -> np.ndarray:
        """The classes as the user held them (scikit-learn's `classes_`): names, integers or booleans."""
        return np.array([_value(c, self.format.kind) for c in self.classes])

    def encode(self, examples) -> np.ndarray:
        """Targets for the loss; a label the vocabulary lacks is an error naming its row."""
        if self.task == "regression":
            return tasks.targets(self.task, np.array([float(names[0]) for names in examples.labels], np.float64))
        for i, names in enumerate(examples.labels):
            unknown = [n for n in names if n not in self._index]
            if unknown:
                raise TfclfError(f"{examples.where(i)}: label {unknown[0]!r} was never seen in training "
                                 f"(known: {listing(self.classes)})")
        if self.task == "multilabel":
            encoded = np.zeros((len(examples.labels), len(self.classes)), np.int64)
            for i, names in enumerate(examples.labels):
                encoded[i, [self._index[n] for n in names]] = 1
        else:
            encoded = np.array([self._index[names[0]] for names in examples.labels], np.int64)
        return tasks.targets(self.task, encoded)

    def names(self, decided: np.ndarray) -> list:
        """Label names of decisions (tasks.decide): one per row, a list per row (multi-label), or scores."""
        if self.task == "regression":
            return [float(v) for v in decided]
        if self.task == "multilabel":
            return [[self.classes[j] for j in np.flatnonzero(row)] for row in decided]
        return [self.classes[i] for i in decided]

    def values(self, decided: np.ndarray):
        """Decisions as the user held the labels: indicator rows when they came so, else the
        labels' values (a list per row for multi-label; regression's scores, an array)."""
        if self.task == "regression":
            return np.asarray(decided, np.float64)
        if self.format.multi_hot:
            decided = np.asarray(decided)
            return decided.astype(np.int64) if self.task == "multilabel" else \
                np.eye(len(self.classes), dtype=np.int64)[decided]
        if self.task == "multilabel":
            return [[_value(n, self.format.kind) for n in names] for names in self.names(decided)]
        return [_value(n, self.format.kind) for n in self.names(decided)]

    def to_json(self) -> dict:
        found = {"task": self.task, "classes": self.classes}
        if self.format != LabelFormat():
            found["format"] = dataclasses.asdict(self.format)
        return found

    @classmethod
    def from_json(cls, data: dict) -> "LabelSpace":
        fmt = data.get("format") or {}
        return cls(data["task"], data["classes"], LabelFormat(fmt.get("kind", "str"), bool(fmt.get("multi_hot")),
                                                              tuple(fmt.get("names", ()))))
