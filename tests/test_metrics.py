"""Metrics against hand-computed values, and threshold tuning."""
import numpy as np
import pytest

from tfclf.evaluation import metrics


def test_multilabel_metrics_by_hand():
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    probs = np.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.3], [0.7, 0.3, 0.6]])
    result = metrics.evaluate("multilabel", truth, probs, ["a", "b", "c"], np.full(3, 0.5))
    # predicted: [1,0,0], [0,1,0], [1,0,1]
    assert result["subset_accuracy"] == pytest.approx(1 / 3)
    assert result["hamming_loss"] == pytest.approx(3 / 9)
    assert result["hamming_score"] == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)
    assert result["per_label"]["a"]["f1-score"] == 1.0
    assert result["per_label"]["c"]["f1-score"] == 0.0
    assert result["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert 0 <= result["macro_roc_auc"] <= 1


def test_single_label_metrics():
    result = metrics.evaluate("multiclass", np.array([0, 1, 2, 2]),
                              np.eye(3)[[0, 1, 1, 2]], ["x", "y", "z"])
    assert result["accuracy"] == 0.75
    assert result["per_class"]["z"]["recall"] == 0.5
    assert result["per_class"]["y"]["precision"] == 0.5


def test_binary_uses_threshold_and_reports_auc():
    result = metrics.evaluate("binary", np.array([[0], [1], [1]]), np.array([[0.3], [0.6], [0.4]]), ["n", "p"])
    assert result["accuracy"] == pytest.approx(2 / 3) and result["roc_auc"] == 1.0


def test_tuned_thresholds_beat_a_fixed_half_on_skewed_scores():
    rng = np.random.default_rng(0)
    truth = (rng.random((400, 2)) < 0.2).astype(int)
    # label 0's positives score around 0.3: 0.5 misses all of them; label 1 has no positives
    probs = np.where(truth == 1, 0.3, 0.1) + rng.normal(0, 0.02, truth.shape)
    truth[:, 1] = 0
    thresholds = metrics.tune_thresholds(truth, probs)
    assert 0.1 < thresholds[0] < 0.3 and thresholds[1] == 0.5
    tuned = metrics.evaluate("multilabel", truth, probs, ["a", "b"], thresholds)
    fixed = metrics.evaluate("multilabel", truth, probs, ["a", "b"], None)
    assert tuned["per_label"]["a"]["f1-score"] > 0.95 > fixed["per_label"]["a"]["f1-score"]
