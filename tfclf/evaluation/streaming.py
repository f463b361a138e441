"""Evaluating a file of any size: a block at a time, keeping only what the metrics need (each
row's probabilities and targets) and the texts of the most confident mistakes for the report."""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np

from tfclf.errors import TfclfError
from tfclf.evaluation import metrics
from tfclf.evaluation.report import MistakeTexts


@dataclasses.dataclass
class Evaluation:
    result: dict
    probs: np.ndarray  # one column per unit of the head
    targets: np.ndarray
    texts: dict[int, str]  # the rows a report may show


def evaluate_blocks(blocks: Iterable, probabilities: Callable[[list[str]], np.ndarray], labels, task: str,
                    thresholds: np.ndarray) -> Evaluation:
    """The task's metrics over Blocks (data/blocks.py) or Examples, each encoded by the label
    space `labels` and run through `probabilities` (texts -> one column per head unit)."""
    probs, targets, mistakes, row = [], [], MistakeTexts(task, thresholds), 0
    for block in blocks:
        examples = getattr(block, "examples", block)
        if not len(examples):
            continue
        found, encoded = probabilities(examples.texts), labels.encode(examples)
        mistakes.add(row, encoded, found, examples.texts)
        probs.append(found)
        targets.append(encoded)
        row += len(examples)
    if not probs:
        raise TfclfError("nothing to evaluate: every text is empty")
    probs, targets = np.concatenate(probs), np.concatenate(targets)
    result = metrics.evaluate(task, targets, probs, labels.classes, thresholds)
    return Evaluation(result, probs, targets, mistakes.texts)
