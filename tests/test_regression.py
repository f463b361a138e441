"""task="regression": one linear unit, mean-squared error; Pearson, Spearman, MAE, MSE and R^2 as
scipy and scikit-learn compute them; the best epoch is the one of least validation error; the
CLI, the Python API and the SavedModel give the same scores, for sentence pairs as SICK's
relatedness is; numbers that are not numbers are refused with their row."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from tfclf import TextClassifier, TfclfError
from tfclf.cli import main

WORDS = ["the", "film", "was", "day", "story", "scene"]


def scored_pairs(n: int, seed: int) -> pd.DataFrame:
    """A first text of filler, and a second whose score is how many times it says "great" (0-3),
    plus a little noise: only the second text carries the target."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        count = int(rng.integers(0, 4))
        second = list(rng.choice(WORDS, size=rng.integers(2, 7)))
        for _ in range(count):
            second.insert(rng.integers(0, len(second) + 1), "great")
        rows.append({"a": " ".join(rng.choice(WORDS, size=rng.integers(2, 7))), "b": " ".join(second),
                     "relatedness": round(1.0 + count + float(rng.normal(0, 0.1)), 3)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def regression_run(tiny_bert, tmp_path_factory):
    folder = tmp_path_factory.mktemp("regression")
    for name, n, seed in (("train", 500, 0), ("valid", 120, 1), ("test", 120, 2)):
        scored_pairs(n, seed).to_csv(folder / f"{name}.csv", index=False)
    assert main(["train", "--train", str(folder / "train.csv"), "--valid", str(folder / "valid.csv"),
                 "--task", "regression", "--model", str(tiny_bert), "--text-column", "a", "--pair-column", "b",
                 "--label-column", "relatedness", "--epochs", "6", "--lr", "3e-3", "--max-length", "32",
                 "--batch-size", "16", "--out", str(folder / "run")]) == 0
    return folder


def test_a_regression_learns_its_score_and_its_metrics_are_scipys(regression_run):
    clf = TextClassifier.load(regression_run / "run")
    assert clf.config.precision == "auto" and clf.prediction_precision == "float32"  # runtime/precision.py says why
    test = pd.read_csv(regression_run / "test.csv")
    X, y = list(zip(test["a"], test["b"])), test["relatedness"].to_numpy()
    scores = clf.predict(X)
    assert scores.dtype == np.float64 and scores.shape == (len(test),)
    result = clf.evaluate(regression_run / "test.csv")
    assert result["pearson"] > 0.8  # the count of "great" in the second text is learnt
    assert result["pearson"] == pytest.approx(stats.pearsonr(y, scores)[0], abs=1e-6)
    assert result["spearman"] == pytest.approx(stats.spearmanr(y, scores)[0], abs=1e-6)
    assert result["mae"] == pytest.approx(skm.mean_absolute_error(y, scores), abs=1e-6)
    assert result["mse"] == pytest.approx(skm.mean_squared_error(y, scores), abs=1e-6)
    assert clf.score(X, y) == pytest.approx(skm.r2_score(y, scores), abs=1e-6)
    assert clf.__sklearn_tags__().estimator_type == "regressor"
    with pytest.raises(TfclfError, match="predicts a score, not probabilities"):
        clf.predict_proba(X)
    assert not hasattr(clf, "classes_")


def test_the_best_epoch_is_the_one_of_least_validation_error(regression_run):
    history = pd.read_csv(regression_run / "run" / "history.csv")
    recorded = json.loads((regression_run / "run" / "metrics.json").read_text())["valid"]
    assert len(history) > 1 and history["val_mse"].idxmin() != history["val_mse"].idxmax()
    # Keras's streaming mean and scikit-learn's differ in the last digits; "max" would keep epoch 1's
    assert recorded["mse"] == pytest.approx(history["val_mse"].min(), rel=5e-3)


def test_cli_python_and_saved_model_give_the_same_scores(regression_run, tmp_path, capsys):
    from tfclf.serving.export import load_saved_model, predict_saved_model

    clf = TextClassifier.load(regression_run / "run")
    test = pd.read_csv(regression_run / "test.csv").head(8)
    scores = clf.predict(list(zip(test["a"], test["b"])))
    capsys.readouterr()
    argv = ["predict", "--run", str(regression_run / "run")]
    for a, b in zip(test["a"], test["b"]):
        argv += ["--text", a, "--pair", b]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "probabilities" not in rows[0]
    np.testing.assert_allclose([r["score"] for r in rows], scores, atol=1e-6)
    assert main(["predict", "--run", str(regression_run / "run"), "--data", str(regression_run / "test.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    written = pd.read_csv(tmp_path / "p.csv").head(8)
    assert "p_score" not in written and list(written.columns[:3]) == ["a", "b", "relatedness"]
    np.testing.assert_allclose(written["prediction"], scores, atol=1e-6)
    loaded = load_saved_model(clf.export(tmp_path / "saved"))
    served = predict_saved_model(loaded, list(zip(test["a"], test["b"])))
    assert set(served) == {"score"}
    np.testing.assert_allclose(served["score"], scores, atol=1e-5)
    assert main(["predict", "--saved-model", str(tmp_path / "saved" / "1"), "--text", test["a"][0], "--pair",
                 test["b"][0]]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == pytest.approx(scores[0], abs=1e-5)
    hf = clf.export(tmp_path / "hf", format="huggingface")
    config = json.loads((hf / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "score"}


def test_the_report_plots_scores_and_shows_the_largest_errors(regression_run, tmp_path):
    import shutil

    run = shutil.copytree(regression_run / "run", tmp_path / "run")
    assert main(["evaluate", "--run", str(run), "--data", str(regression_run / "test.csv")]) == 0
    assert main(["report", "--run", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "scores_test.csv.png" in report and (run / "plots" / "scores_test.csv.png").is_file()
    assert "| wrong about | error |" in report


def test_labels_that_are_not_numbers_are_refused_with_their_row(tiny_bert, tmp_path, capsys):
    frame = pd.DataFrame({"text": ["a b", "c d", "e f"], "labels": ["1.5", "high", "2"]})
    frame.to_csv(tmp_path / "train.csv", index=False)
    assert main(["train", "--train", str(tmp_path / "train.csv"), "--task", "regression", "--model", str(tiny_bert),
                 "--out", str(tmp_path / "run")]) == 2
    assert "train.csv line 3: 'high' where a regression task needs a finite number" in capsys.readouterr().err
    with pytest.raises(TfclfError, match="labels row 1: nothing where a regression task needs a finite number"):
        TextClassifier(str(tiny_bert), task="regression").fit(["a", "b"], [1.0, float("nan")])
    with pytest.raises(TfclfError, match="class_weight weights classes: a regression has none"):
        TextClassifier(str(tiny_bert), task="regression", class_weight="balanced").fit(["a", "b"], [1.0, 2.0])
