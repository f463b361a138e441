"""Defaults that learn on small data: the head starts at the training label prior."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfclf import TextClassifier, tasks
from conftest import signal_texts


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 80), st.data())
def test_prior_logits_give_back_the_label_frequencies(num_outputs, n, data):
    """The oracle: softmax / sigmoid of the starting biases are the frequencies counted directly."""
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    multiclass = rng.integers(0, num_outputs, n)
    found = tasks.prior_logits("multiclass", multiclass, num_outputs)
    probs = np.exp(found) / np.exp(found).sum()
    counts = np.bincount(multiclass, minlength=num_outputs) / n
    present = counts > 0
    assert found.shape == (num_outputs,) and abs(found.mean()) < 1e-5
    np.testing.assert_allclose(probs[present] / probs[present].sum(), counts[present], rtol=1e-3)
    assert np.all(probs[~present] < 1e-3)  # a class absent from training starts low, and finite
    multihot = (rng.random((n, num_outputs)) < rng.random(num_outputs)).astype(np.float32)
    rate = _sigmoid(tasks.prior_logits("multilabel", multihot, num_outputs))
    np.testing.assert_allclose(rate, np.clip(multihot.mean(0), 1e-4, 1 - 1e-4), rtol=1e-3, atol=1e-6)
    binary = multihot[:, 0]
    np.testing.assert_allclose(_sigmoid(tasks.prior_logits("binary", binary, 1)),
                               [np.clip(binary.mean(), 1e-4, 1 - 1e-4)], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_a_fresh_head_starts_at_the_prior_unless_classes_are_balanced(tiny_bert, class_weight):
    """A learning rate of ~0 leaves the biases where they started: at the prior of the training
    labels (3 of 4 texts positive here), or at 0 with balanced class weights (the weighted loss
    treats the classes as equally common)."""
    X, y = signal_texts(200, 0)
    keep = [i for i, label in enumerate(y) if label == "pos" or i % 3 == 0]  # unbalanced: ~3:1
    X, y = [X[i] for i in keep], [y[i] for i in keep]
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=1, learning_rate=1e-12,
                                         batch_size=16, max_length=16, valid_fraction=0.0, class_weight=class_weight)
    clf.fit(X, y, verbose=0)
    bias = clf.model.get_layer("logits").bias.numpy()
    positive = np.mean(np.asarray(y) == clf.classes_[1])
    expected = np.log(positive / (1 - positive)) if class_weight is None else 0.0
    np.testing.assert_allclose(bias, [expected], atol=1e-4)
