"""Metrics with scikit-learn, decisions from probabilities, and per-label threshold tuning.

Pure: numbers in, numbers out; the run folder keeps them (storage/run_folder.record)."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn import metrics as skm

from tfclf import tasks

_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def tune_thresholds(targets: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per label, the threshold on a grid from 0.05 to 0.95 that maximises F1 on these rows.

    Among thresholds with the same F1, the one nearest 0.5 (the higher of two as near): a
    label whose positives and negatives lie far apart scores the same F1 anywhere between them,
    and the lowest such threshold would flood new data with false positives. A label with no
    positive row keeps 0.5: there is nothing to tune it on.
    """
    targets = np.asarray(targets).reshape(probs.shape)
    best = np.full(probs.shape[1], 0.5)
    for j in range(probs.shape[1]):
        truth = targets[:, j] > 0.5
        if not truth.any():
            continue
        predicted = probs[:, j][:, None] >= _GRID[None, :]  # rows x grid
        tp = (predicted & truth[:, None]).sum(axis=0)
        f1 = 2 * tp / (predicted.sum(axis=0) + truth.sum())
        tied = _GRID[np.isclose(f1, f1.max(), rtol=0, atol=1e-12)]
        best[j] = tied[np.lexsort((-tied, np.abs(tied - 0.5)))[0]]
    return best


def evaluate(task: str, targets: np.ndarray, probs: np.ndarray, classes: Sequence[str],
             thresholds: np.ndarray | None = None) -> dict:
    """The task's metrics as a JSON-ready dict, with a per-class (or per-label) report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined precision of a never-predicted class is 0, said in docs
        if task == "multilabel":
            return _multilabel(targets, probs, classes, thresholds)
        if task == "regression":
            return regression(targets, probs)
        return _single_label(task, targets, probs, classes, thresholds)


def _single_label(task: str, targets: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                  thresholds: np.ndarray | None) -> dict:
    truth = np.asarray(targets).reshape(-1).astype(int)
    predicted = tasks.decide(task, probs, thresholds)
    labels = list(range(len(classes)))
    present = [j for j in labels if (truth == j).any()]
    report = skm.classification_report(truth, predicted, labels=labels, target_names=list(classes),
                                       output_dict=True, zero_division=0)
    result = {
        "examples": int(len(truth)),
        "accuracy": float(skm.accuracy_score(truth, predicted)),
        "micro_f1": float(skm.f1_score(truth, predicted, labels=labels, average="micro", zero_division=0)),
        "macro_f1": float(skm.f1_score(truth, predicted, labels=present, average="macro", zero_division=0)),
        **_absent(classes, present),
        "per_class": {name: _rounded(report[name]) for name in classes},
    }
    if task == "binary" and len(np.unique(truth)) == 2:
        result["roc_auc"] = float(skm.roc_auc_score(truth, probs[:, 0]))
    if task == "binary":  # of the positive (second) class, as GLUE's MRPC and QQP figures are
        result["f1"] = float(skm.f1_score(truth, predicted, pos_label=1, zero_division=0))
    return result


def regression(targets: np.ndarray, scores: np.ndarray) -> dict:
    """Pearson and Spearman (the STS and SICK-relatedness figures), MAE, MSE and R^2. A
    correlation of constant predictions is undefined: null, not a number that looks like one."""
    from scipy import stats

    truth, found = np.asarray(targets, np.float64).reshape(-1), np.asarray(scores, np.float64).reshape(-1)
    varied = len(truth) > 1 and truth.std() > 0 and found.std() > 0
    return {
        "examples": int(len(truth)),
        "pearson": float(stats.pearsonr(truth, found)[0]) if varied else None,
        "spearman": float(stats.spearmanr(truth, found)[0]) if varied else None,
        "mae": float(skm.mean_absolute_error(truth, found)),
        "mse": float(skm.mean_squared_error(truth, found)),
        "r2": float(skm.r2_score(truth, found)) if len(truth) > 1 else None,
    }


def _multilabel(targets: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                thresholds: np.ndarray | None) -> dict:
    truth = (np.asarray(targets) > 0.5).astype(int)
    predicted = tasks.decide("multilabel", probs, thresholds)
    present = truth.any(axis=0) & ~truth.all(axis=0)  # ROC-AUC needs both kinds of rows
    f1 = skm.f1_score(truth, predicted, average=None, zero_division=0)
    precision = skm.precision_score(truth, predicted, average=None, zero_division=0)
    recall = skm.recall_score(truth, predicted, average=None, zero_division=0)
    supported = np.flatnonzero(truth.any(axis=0))
    return {
        "examples": int(len(truth)),
        "macro_f1": float(f1[supported].mean()) if len(supported) else 0.0,
        **_absent(classes, supported),
        "micro_f1": float(skm.f1_score(truth, predicted, average="micro", zero_division=0)),
        "hamming_loss": float(skm.hamming_loss(truth, predicted)),
        "hamming_score": float(_hamming_score(truth, predicted)),
        "subset_accuracy": float(skm.accuracy_score(truth, predicted)),
        "macro_roc_auc": float(skm.roc_auc_score(truth[:, present], probs[:, present], average="macro"))
        if present.any() else None,
        "per_label": {
            name: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1-score": round(float(f), 4),
                   "support": int(s), "threshold": None if thresholds is None else float(t)}
            for name, p, r, f, s, t in zip(classes, precision, recall, f1, truth.sum(axis=0),
                                           thresholds if thresholds is not None else [None] * len(classes))
        },
    }


def _absent(classes: Sequence[str], present) -> dict:
    """The labels a set has no example of: macro averages are taken without them (their F1 would
    count as 0 and a small test set would understate the average), and they are named beside it."""
    missing = [name for j, name in enumerate(classes) if j not in set(int(k) for k in present)]
    return {"macro_over": len(classes) - len(missing), "absent_labels": missing} if missing else {}


def _hamming_score(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Example-based accuracy: |true ∩ predicted| / |true ∪ predicted| per row, 1 where both are empty."""
    inter = (truth & predicted).sum(axis=1)
    union = (truth | predicted).sum(axis=1)
    return float(np.mean(np.where(union == 0, 1.0, inter / np.maximum(union, 1))))


def _rounded(entry: dict) -> dict:
    return {k: (int(v) if k == "support" else round(float(v), 4)) for k, v in entry.items()}


def validation(task: str, targets: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> tuple[np.ndarray, dict]:
    """Thresholds (tuned on the validation set where the task tunes them, else 0.5) and the set's
    figures, marked in-sample: the set chose the best epoch and the thresholds."""
    thresholds, chose = np.full(probs.shape[1], 0.5), ["the best epoch"]
    if tasks.tunes_thresholds(task):
        thresholds = tune_thresholds(targets, probs)
        chose.append("the thresholds")
    result = evaluate(task, targets, probs, classes, thresholds)
    # figures on the set that chose them flatter the model: say so wherever they are read
    result["in_sample"] = f"this set chose {' and '.join(chose)}: evaluate on held-out data for a fair figure"
    return thresholds, result


def with_fixed_thresholds(task: str, result: dict, targets: np.ndarray, probs: np.ndarray,
                          classes: Sequence[str]) -> dict:
    """`result` as a run records it: with tuned thresholds, the figures at a fixed 0.5 beside them,
    so a reader sees what tuning bought."""
    if tasks.tunes_thresholds(task):
        fixed = evaluate(task, targets, probs, classes, None)
        result["at_0.5"] = {k: v for k, v in fixed.items() if k != "per_label"}
    return result
