"""The label space: label names to targets and back, fitted by scikit-learn's encoders and saved
with the run (labels.json)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tfclf import tasks
from tfclf.data.examples import Examples, listing
from tfclf.errors import TfclfError


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
                             f"({listing(seen)}); use --task multiclass")
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
                                 f"(known: {listing(self.classes)})")
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
