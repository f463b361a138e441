"""The Python API's boundaries: a re-entrant fit, and clear errors for inputs of the wrong shape."""

import numpy as np
import pandas as pd
import pytest

from conftest import signal_texts
from tfclf import TextClassifier, TfclfError

SETTINGS = dict(task="binary", epochs=4, learning_rate=3e-3, batch_size=16, max_length=32, seed=3)


def test_every_fit_starts_from_the_pretrained_checkpoint(tiny_bert, tmp_path):
    X, y = signal_texts(128, 0)
    probe = signal_texts(40, 1)[0]
    # one epoch is enough: a random backbone (what a second fit trained before) predicts otherwise
    once = TextClassifier.from_pretrained(str(tiny_bert), **{**SETTINGS, "epochs": 1}).fit(X, y, run_dir=tmp_path / "run", verbose=0)
    first = once.predict_proba(probe)
    # a notebook cell run again: the same object, the same data, the same seed -> the same model
    np.testing.assert_allclose(once.fit(X, y, verbose=0).predict_proba(probe), first, atol=1e-5)
    # and after load: fit starts from the checkpoint config.json names, not from random weights
    loaded = TextClassifier.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.fit(X, y, verbose=0).predict_proba(probe), first, atol=1e-5)


def test_warm_start_continues_from_the_current_weights(tiny_bert):
    X, y = signal_texts(300, 0)
    probe, probe_labels = signal_texts(100, 1)
    clf = TextClassifier.from_pretrained(str(tiny_bert), **SETTINGS).fit(X, y, verbose=0)
    assert clf.evaluate(probe, probe_labels)["accuracy"] > 0.9
    trained = clf.predict_proba(probe)
    clf.set_params(learning_rate=1e-9, epochs=1)  # a step too small to move
    np.testing.assert_allclose(clf.fit(X, y, verbose=0, warm_start=True).predict_proba(probe), trained, atol=1e-3)
    # without warm_start the same tiny step starts over from the checkpoint: nothing learnt
    assert clf.fit(X, y, verbose=0).evaluate(probe, probe_labels)["accuracy"] < 0.75
    with pytest.raises(TfclfError, match="labels the model was trained on"):
        clf.fit(X, ["a" if v == "pos" else "b" for v in y], verbose=0, warm_start=True)
    with pytest.raises(TfclfError, match="fit or load one first"):
        TextClassifier.from_pretrained(str(tiny_bert), **SETTINGS).fit(X, y, warm_start=True)


def test_wrong_shapes_of_input_are_said_before_any_work(tiny_bert, tmp_path):
    clf = TextClassifier.from_pretrained(str(tiny_bert), **SETTINGS)
    X, y = signal_texts(20, 0)
    pd.DataFrame({"text": X, "labels": y}).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(TfclfError, match="a string names a file.*pass the texts as a list"):
        clf.fit("the movie was good", ["pos"])
    with pytest.raises(TfclfError, match="whose labels are in a column"):
        clf.fit(str(tmp_path / "train.csv"), y)
    with pytest.raises(TfclfError, match="texts without labels"):
        clf.fit(X)
    with pytest.raises(TfclfError, match="20 texts but 19 labels"):
        clf.fit(X, y[:-1])
    clf.fit(tmp_path / "train.csv", verbose=0)  # a file with its label column is fine
    with pytest.raises(TfclfError, match="one string received"):
        clf.predict("the movie was good")
    assert len(clf.predict(["the movie was good"])) == 1
