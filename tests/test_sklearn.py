"""TextClassifier as scikit-learn's model selection takes it: clone, get_params and set_params,
GridSearchCV over the settings, cross_val_score, tags; checked with scikit-learn itself."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import signal_texts
from tfclf import TextClassifier, TfclfError

TINY = dict(epochs=4, max_length=32, batch_size=16, precision="float32", valid_fraction=0.0)


def test_clone_gives_an_unfitted_copy_with_the_same_settings(tiny_bert):
    from sklearn.base import clone, is_classifier
    from sklearn.utils import get_tags

    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", **TINY)
    copy = clone(clf)
    assert type(copy) is TextClassifier and copy.get_params() == clf.get_params()
    assert copy.get_params()["learning_rate"] is None  # as given: the fit chooses, the setting stays unset
    assert is_classifier(copy) and get_tags(copy).input_tags.string and not get_tags(copy).input_tags.two_d_array
    assert get_tags(TextClassifier(task="multilabel")).target_tags.multi_output
    X, y = signal_texts(120, 0)
    clf.fit(X, y, verbose=0)
    assert clf.get_params() == copy.get_params()  # fit changes no setting
    assert clf.config.learning_rate == 2e-3  # what it chose is in the run's config
    with pytest.raises(TfclfError, match="not trained yet"):
        clone(clf).predict(X[:2])
    assert clone(clf).set_params(epochs=1).get_params()["epochs"] == 1 and clf.get_params()["epochs"] == 4
    with pytest.raises(TfclfError, match="unknown setting 'learnin_rate'"):
        clf.set_params(learnin_rate=1e-3)
    with pytest.raises(TfclfError, match="unknown setting 'lr'"):
        TextClassifier(lr=1e-3)
    assert "TextClassifier(model=" in repr(clf) and "epochs=4" in repr(clf)


def test_grid_search_picks_the_learning_rate_that_learns_and_cross_val_scores(tiny_bert):
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, y = signal_texts(600, 0)
    clf = TextClassifier(str(tiny_bert), task="binary", **TINY)
    search = GridSearchCV(clf, {"learning_rate": [1e-9, 3e-3]}, cv=2).fit(X, np.array(y))
    assert search.best_params_ == {"learning_rate": 3e-3}, search.cv_results_["mean_test_score"]
    assert search.best_score_ > 0.9 > search.cv_results_["mean_test_score"][0]  # 1e-9 learns nothing
    probe, truth = signal_texts(60, 1)
    assert np.mean(search.predict(probe) == np.array(truth)) > 0.9  # the refit model
    scores = cross_val_score(TextClassifier(str(tiny_bert), task="binary", learning_rate=3e-3, **TINY), X, y, cv=2)
    assert scores.shape == (2,) and scores.min() > 0.9, scores


def test_score_is_accuracy_or_subset_accuracy(tiny_run):
    import pandas as pd

    clf = TextClassifier.load(tiny_run / "run")
    frame = pd.read_csv(tiny_run / "valid.csv")
    X, y = frame["text"].tolist(), frame["labels"].tolist()
    assert clf.score(X, y) == pytest.approx(np.mean(np.array(clf.predict(X)) == np.array(y)))
