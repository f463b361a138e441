"""What the Python API accepts as data, checked at the boundary as scikit-learn does.

A file path or a DataFrame carries its labels in a column; a list of texts takes `labels`
beside it, one per text. One string is never iterated into characters: where texts are
expected it is an error, where data is expected it names a file.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

import numpy as np
import pandas as pd

from tfclf.data.blocks import ExampleStream
from tfclf.data.examples import (PAIR_SEP, Columns, Examples, Pair, clean_text, drop_or_reject_empty, join_pair,
                                 load_examples, subset)
from tfclf.data.labels import LabelSpace, read_labels
from tfclf.data.tables import BLOCK_CHARS, BLOCK_ROWS
from tfclf.errors import TfclfError, option

Data = Union[str, Path, pd.DataFrame, Sequence[str]]


def text_blocks(texts, rows: int | None = None, chars: int = BLOCK_CHARS) -> Iterator[list[str]]:
    """Any iterable of texts as lists of at most `rows` (BLOCK_ROWS; fewer past `chars` characters),
    each text as TensorFlow can take it: a generator of ten million texts is never held whole."""
    rows = rows or BLOCK_ROWS
    if isinstance(texts, (str, bytes)):
        as_texts(texts)  # refused, in one line
    block, held = [], 0
    for text in texts:
        block.append(_one(text))
        held += len(block[-1])
        if len(block) >= rows or held >= chars:
            yield block
            block, held = [], 0
    if block:
        yield block


def stream(data: Data, labels, config) -> Iterable:
    """Labelled examples a block at a time: a file streams (data/blocks.py); texts with their labels
    and DataFrames are one block."""
    if isinstance(data, (str, Path)) and labels is None:
        return ExampleStream(data, Columns.of(config), task=config.task, drop_empty=config.drop_empty,
                             encoding=config.encoding)
    return [examples(data, labels, config)]


def as_texts(texts, pairs=None) -> list[str]:
    """A list of texts from any iterable of them, each as TensorFlow can take it (clean_text); a
    (text, pair) tuple, or a second list `pairs`, makes sentence pairs (PAIR_SEP). One string is
    refused, since iterating it would make one text of every character."""
    if isinstance(texts, (str, bytes)):
        raise TfclfError("an iterable of texts expected, one string received: wrap a single text in a list, "
                         "[text]")
    if pairs is not None:
        texts, pairs = list(texts), as_texts(pairs)
        if len(texts) != len(pairs):
            raise TfclfError(f"{len(texts)} texts but {len(pairs)} pairs: one second text per text")
        return [join_pair(_one(t), p) for t, p in zip(texts, pairs)]
    return [_one(t) for t in texts]


def paired(X, pairs):
    """X, or with `pairs` its texts paired with them (sentence pairs, as (text, pair) tuples give)."""
    return X if pairs is None else as_texts(X, pairs)


def _one(text) -> str:
    """One text as TensorFlow can take it, or a (text, pair) tuple as one sentence pair."""
    if isinstance(text, Pair):
        return text
    if isinstance(text, (str, bytes)):
        return clean_text(text)
    if isinstance(text, (tuple, list)) and len(text) == 2 and all(isinstance(t, (str, bytes)) for t in text):
        return join_pair(*text)
    return str(text)


def require_pairs(texts: list[str], pairs: bool) -> None:
    """What a run reads, sentence pairs or single texts, and nothing else: one line otherwise."""
    wrong = next((i for i, t in enumerate(texts) if (PAIR_SEP in t) != pairs), None)
    if wrong is not None:
        raise TfclfError(f"text {wrong + 1}: this run reads sentence pairs; pass (text, pair) tuples, pairs=[...] "
                         "or a pair column" if pairs else
                         f"text {wrong + 1} is a sentence pair, but this run was trained on single texts")


def examples(data: Data, labels=None, config=None, with_labels: bool = True,
             classes: Sequence | None = None, pairs: Sequence[str] | None = None) -> Examples:
    """Validated examples from a file, a DataFrame, or a list of texts (or of (text, pair) tuples,
    or texts with `pairs`) with `labels` (any container scikit-learn reads: data/labels.py;
    `classes` names indicator columns)."""
    if isinstance(data, Examples):
        return data
    if isinstance(data, (pd.DataFrame, str, Path)):
        if labels is not None:
            raise TfclfError("labels given beside a file or DataFrame: a string names a file, whose labels are in "
                             f"a column (label_column, default {Columns.of(config).label!r}); to fit on texts, "
                             "pass the texts as a list")
        return load_examples(data, Columns.of(config), task=config.task, with_labels=with_labels,
                             drop_empty=config.drop_empty, encoding=config.encoding)
    texts = as_texts(data, pairs)
    if labels is None:
        if with_labels:
            raise TfclfError("texts without labels: pass labels=[...] beside the texts, or a file with a label "
                             "column")
        return drop_or_reject_empty(Examples(texts, None, "texts", _rows(texts)), config.drop_empty)
    if len(labels) != len(texts):
        raise TfclfError(f"{len(texts)} texts but {len(labels)} labels: one label (or list of labels) per text")
    names, label_format = read_labels(labels, config.task, config.label_sep if config.task == "multilabel" else None,
                                      classes if classes is not None else config.label_columns,
                                      where=lambda i: f"labels row {i}")
    found = Examples(texts, names, "texts", _rows(texts), label_format.names, label_format)
    return drop_or_reject_empty(found, config.drop_empty)


def _rows(texts: list) -> list[str]:
    return [f"row {i}" for i in range(len(texts))]


def train_valid_split(examples: Examples, fraction: float, seed: int) -> tuple[Examples, Examples]:
    """Hold out a seeded, label-stratified fraction for validation where every class allows it."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise TfclfError(f"{option('valid_fraction')} must be between 0 and 1, got {fraction}")
    index = np.arange(len(examples))
    strata = [names[0] if len(names) == 1 else "|".join(sorted(names)) for names in examples.labels]
    counts = pd.Series(strata).value_counts()
    stratify = strata if counts.min() >= 2 and len(counts) <= fraction * len(examples) else None
    train, valid = train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)
    return subset(examples, train), subset(examples, valid)


@dataclasses.dataclass
class Labelled:
    """What a fit learns from: the examples, their label space, and their targets."""
    train: Examples
    valid: Examples | None
    labels: LabelSpace
    y_train: object
    y_valid: object
    held_out: bool = False  # valid is the valid_fraction of the training data
    pairs: bool = False  # the examples are sentence pairs

    def in_space(self, labels: LabelSpace) -> "Labelled":
        """The same examples encoded in another label space of the same classes (its order)."""
        return dataclasses.replace(self, labels=labels, y_train=labels.encode(self.train),
                                   y_valid=labels.encode(self.valid) if self.valid is not None else None)

    def fingerprint(self) -> str:
        """A hash of the training and validation texts and labels: a resumed training must be on
        the data it started with."""
        digest = hashlib.sha256()
        for part, found in (("train", self.train), ("valid", self.valid)):
            digest.update(part.encode())
            for text, names in zip(found.texts, found.labels) if found is not None else ():
                digest.update(text.encode("utf-8", "replace") + b"\0" + "\x1f".join(names).encode() + b"\n")
        return digest.hexdigest()


def labelled(train: Data, labels, valid: Data | None, valid_labels, config, space: LabelSpace | None = None,
             classes: Sequence | None = None, pairs=None, valid_pairs=None) -> Labelled:
    """Training and validation examples with their targets. Without `valid`, the seeded
    valid_fraction of `train` is held out; the label space is fitted on all of `train` before
    that (a rare class the split puts in validation alone is still a class), unless `space` is
    given (a warm start, or stage 2 again)."""
    train_set = examples(train, labels, config, classes=classes, pairs=pairs)
    valid_set = examples(valid, valid_labels, config, classes=classes, pairs=valid_pairs) if valid is not None else None
    reads_pairs = bool(train_set.texts) and PAIR_SEP in train_set.texts[0]
    require_pairs(train_set.texts, reads_pairs)
    if valid_set is not None:
        require_pairs(valid_set.texts, reads_pairs)
    space = space or LabelSpace.fit(train_set, config.task)
    held_out = valid_set is None and config.valid_fraction > 0
    if held_out:
        train_set, valid_set = train_valid_split(train_set, config.valid_fraction, config.seed)
    return Labelled(train_set, valid_set, space, space.encode(train_set),
                    space.encode(valid_set) if valid_set is not None else None, held_out, reads_pairs)
