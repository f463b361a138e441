"""Defaults that learn on small data: the head starts at the training label prior, the learning rate
suits the checkpoint, and `tfclf train` says what it chose."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from tfclf import TextClassifier, cli, config, tasks
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


@settings(max_examples=80, deadline=None)
@given(st.integers(16, 4096))
def test_the_default_learning_rate_follows_the_width(width):
    """2e-4 at MiniLM's 384, the square law around it (5e-5 at BERT-base's 768), never above the cap,
    one significant digit, and never larger for a wider model."""
    found = config.default_learning_rate(width)
    exact = min(config.LR_HIGHEST, config.LR_AT_384 * (384 / width) ** 2)
    assert found == float(f"{found:.1g}") and abs(found - exact) <= 0.5 * 10 ** np.floor(np.log10(exact)) + 1e-15
    assert found <= config.LR_HIGHEST and config.default_learning_rate(width + 64) <= found
    assert (config.default_learning_rate(384), config.default_learning_rate(768)) == (2e-4, 5e-5)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 2_000_000), st.sampled_from([1, 8, 16, 32, 64, 256]))
def test_default_epochs_give_small_data_enough_steps_and_large_data_three(examples, batch_size):
    found = config.default_epochs(examples, batch_size)
    steps = -(-examples // batch_size)
    assert config.EPOCHS_LEAST <= found <= config.EPOCHS_MOST
    assert found * steps >= config.STEPS_LEAST or found == config.EPOCHS_MOST
    assert (found - 1) * steps < config.STEPS_LEAST or found == config.EPOCHS_LEAST  # no more than needed
    assert config.default_epochs(examples * 2, batch_size) <= found
    assert config.default_epochs(2000, 32) == 6 and config.default_epochs(40_000, 32) == 3  # the measured cases


def test_a_learning_rate_not_given_is_chosen_from_the_checkpoint_and_saved(tiny_bert, tmp_path):
    chosen = TextClassifier.from_pretrained(str(tiny_bert), task="binary")
    assert chosen.config.learning_rate == config.default_learning_rate(chosen.backbone_config.hidden_size)
    assert "learning_rate" not in chosen.given
    assert TextClassifier.from_pretrained(str(tiny_bert), task="binary", learning_rate=1e-5).config.learning_rate == 1e-5


def _train(tiny_bert, tmp_path, capsys, *options):
    X, y = signal_texts(60, 0)
    pd.DataFrame({"text": X, "labels": y}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"text": X[:12], "labels": y[:12]}).to_csv(tmp_path / "valid.csv", index=False)
    out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
    argv = ["train", "--train", tmp_path / "train.csv", "--task", "binary", "--model", tiny_bert, "--max-length", "16",
            "--precision", "float32", "--out", out, *options]
    assert cli.main(list(map(str, argv))) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tfclf:")]
    return lines, json.loads((out / "config.json").read_text())


def test_train_says_what_it_chose_one_line_each_and_nothing_the_user_gave(tiny_bert, tmp_path, capsys):
    width = 32  # the tiny checkpoint's (conftest.py)
    lines, saved = _train(tiny_bert, tmp_path, capsys, "--epochs", "1")
    assert lines == [f"tfclf: learning rate 0.002, for a {width}-wide checkpoint (0.0002 x (384/width)^2, at most "
                     "0.002); --lr sets another",
                     "tfclf: validation: a seeded 10% of the training data (6 of 60) for early stopping, the best "
                     "epoch and the thresholds; --valid gives a file instead"]
    assert saved["learning_rate"] == 0.002 and saved["epochs"] == 1
    lines, saved = _train(tiny_bert, tmp_path, capsys, "--lr", "1e-3", "--valid", tmp_path / "valid.csv",
                          "--patience", "1")
    assert lines == ["tfclf: epochs: at most 6 (3, or enough for 360 steps on small data, at most 6); early stopping "
                     "(patience 1) keeps the best epoch on the validation set; --epochs sets another"]
    assert saved["learning_rate"] == 1e-3 and saved["epochs"] == 6  # 60 texts: 2 steps an epoch
    lines, _ = _train(tiny_bert, tmp_path, capsys, "--lr", "1e-3", "--epochs", "1", "--valid-fraction", "0")
    assert lines == []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 60), min_size=2, max_size=60), st.sampled_from(["truncate", "hierarchical"]))
@example([40] * 30, "hierarchical")  # 30 documents, 480 chunks: 3 epochs, not the 6 that 30 steps would need
def test_default_epochs_count_the_sequences_stage_1_trains_on(tiny_bert, monkeypatch, words, long_doc):
    """A two-stage run's stage 1 takes a step per batch of chunks, not of documents: the default
    epochs come from the sequences `reader.sequences` gives stage 1 (the oracle), one per text
    when truncating, one per chunk when hierarchical."""
    from tfclf import runs

    fitted = {}
    monkeypatch.setattr(runs, "fit", lambda run, *args: fitted.update(epochs=run.config.epochs, reader=run.reader))
    filler = signal_texts(1, 0)[0][0].split()
    texts = [" ".join((filler * 60)[:n]) for n in words]
    labels = ["a" if i % 2 else "b" for i in range(len(texts))]
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", long_doc=long_doc, max_length=4,
                                         batch_size=1, max_chunks=16, valid_fraction=0.0)
    clf.fit(texts, labels, verbose=0)
    sequences = fitted["reader"].sequences(texts, np.zeros(len(texts)))[0]
    assert fitted["epochs"] == config.default_epochs(len(sequences), 1)
